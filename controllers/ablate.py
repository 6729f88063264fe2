"""`ablate`: zero a set of MLP neurons (knock-out), with any task.

The set is an attribute's top neurons from `emobench discover attributes` (`attribute=valence
top=100`), its discoveries (`attribute=valence discoveries=true`: the neurons the permutation test
found at the artifact's FDR, however many), a random control of the same size with the same count
in every layer (either, with `random=<seed>`), or named neurons (`neurons=12:345,20:7`,
layer:index). The neurons' activations (the input of each block's MLP down projection) are set
to zero at every position, for generation (whatever the target emotion) and for log-likelihood
tasks alike: an ablation needs no target, so it also runs emotion-inference tasks.

No attribute artifact ships with the package (14 MB for the embedded model): build one with
`emobench discover attributes --out DIR` (about half a minute on the embedded model) and pass
`artifact=DIR`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from emobench.controller import ArtifactController, whole_number
from emobench.errors import EmoBenchError
from emobench.hooks import hook_points, hooked
from emobench.model_args import flag


def parse_neurons(spec: str) -> list[tuple[int, int]]:
    out = []
    for part in (p.strip() for p in str(spec).split(",") if p.strip()):
        layer, sep, index = part.partition(":")
        try:
            if not sep:
                raise ValueError
            out.append((int(layer), int(index)))
        except ValueError:
            raise EmoBenchError(
                f"ablate: neurons={spec!r}: each neuron is layer:index, e.g. neurons=12:345,20:7"
            ) from None
    if not out:
        raise EmoBenchError("ablate: neurons= names no neuron (layer:index, comma-separated)")
    return out


class AblateController(ArtifactController):
    name = "ablate"
    strength = "top"
    kind = "emotion-attributes"
    shipped = "attributes"
    main_job = False  # it needs a neuron set; it is a tool for analyses, not a leaderboard row

    def __init__(
        self,
        attribute: str | None = None,
        top: int = 100,
        random: int | None = None,
        neurons: str | None = None,
        artifact: str | None = None,
        discoveries: bool | str = False,
    ) -> None:
        self.discoveries = flag("discoveries", discoveries, given_by="ablate:")
        if neurons not in (None, "") and attribute not in (None, ""):
            raise EmoBenchError(
                "ablate: give attribute= (with top=, random=) or neurons=, not both"
            )
        if neurons in (None, "") and attribute in (None, ""):
            raise EmoBenchError(
                "ablate: name what to zero: attribute=<name> (top=N, random=SEED for the "
                "control) or neurons=layer:index,..."
            )
        if neurons not in (None, "") and (
            extra := [
                k
                for k, given in (
                    ("top", top != 100),
                    ("discoveries", self.discoveries),
                    ("random", random not in (None, "")),
                    ("artifact", artifact not in (None, "")),
                )
                if given
            ]
        ):
            # They choose among an artifact's ranked neurons; named neurons are the whole set.
            raise EmoBenchError(
                f"ablate: neurons= names every neuron to zero; {', '.join(extra)}= would be "
                "ignored, so leave it out (or give attribute= instead of neurons=)"
            )
        super().__init__(artifact)
        self.attribute = attribute or None
        self.top = whole_number("ablate", "top", top)
        if self.discoveries and top != 100:
            raise EmoBenchError(
                "ablate: discoveries=true zeroes every discovery of the attribute, however many; "
                f"top={top} would be ignored, so leave it out"
            )
        self.random = None if random in (None, "") else whole_number("ablate", "random", random)
        if self.top < 1:
            raise EmoBenchError(f"ablate: top must be at least 1, got {self.top}")
        if self.attribute and artifact in (None, ""):
            # No attribute artifact ships: the neurons are the output of a discovery on the model.
            raise EmoBenchError(
                f"ablate: attribute={self.attribute} needs artifact=DIR, the folder written by "
                "`emobench discover attributes --out DIR` for the model that runs"
            )
        self.neurons = parse_neurons(neurons) if neurons not in (None, "") else None
        if self.neurons is not None and len(set(self.neurons)) < len(self.neurons):
            twice = sorted({n for n in self.neurons if self.neurons.count(n) > 1})
            raise EmoBenchError(
                "ablate: neurons= names "
                + ", ".join(f"{la}:{i}" for la, i in twice)
                + " more than once; name each neuron once"
            )
        self._chosen: dict[int, list[int]] | None = None

    def chosen(self, model: Any) -> dict[int, list[int]]:
        """{layer: neuron indices} to zero, resolved once per controller."""
        if self._chosen is not None:
            return self._chosen
        points = hook_points(model)
        widths = [p.d_ff for p in points]
        picked = self.neurons if self.neurons is not None else self._from_artifact(model, widths)
        chosen: dict[int, list[int]] = {}
        for layer, index in picked:
            if not (0 <= layer < len(widths) and 0 <= index < widths[layer]):
                raise EmoBenchError(
                    f"ablate: neuron {layer}:{index} is outside the model "
                    f"({len(widths)} layers of {widths[0]} neurons)"
                )
            chosen.setdefault(layer, []).append(index)
        self._chosen = {k: sorted(set(v)) for k, v in sorted(chosen.items())}
        return self._chosen

    def _from_artifact(self, model: Any, widths: list[int]) -> list[tuple[int, int]]:
        tensors, meta = self.load_artifact(model)
        attributes = list(meta["attributes"])
        if self.attribute not in attributes:
            raise EmoBenchError(
                f"ablate: attribute {self.attribute!r} is not in {self.artifact_path()}; "
                f"its attributes: {', '.join(attributes)}"
            )
        ranking = tensors["ranking"][attributes.index(self.attribute)].long()
        if self.discoveries:
            flat = self._discoveries(tensors, meta)
        elif self.top > len(ranking):
            raise EmoBenchError(f"ablate: top={self.top}, but the artifact ranks {len(ranking)}")
        else:
            flat = ranking[: self.top]
        offsets = torch.tensor([0, *widths]).cumsum(0)
        layers = torch.searchsorted(offsets, flat, right=True) - 1
        if self.random is None:
            return [(int(la), int(f - offsets[la])) for la, f in zip(layers, flat, strict=True)]
        # The control: as many neurons in each layer as the attribute's set has, drawn at random
        # (seeded) among that layer's other neurons, so that depth cannot explain a difference.
        gen = torch.Generator().manual_seed(self.random)
        out = []
        for layer in sorted(set(layers.tolist())):
            taken = {
                int(f - offsets[layer]) for f, la in zip(flat, layers, strict=True) if la == layer
            }
            pool = torch.tensor([i for i in range(widths[layer]) if i not in taken])
            if len(pool) < len(taken):
                raise EmoBenchError(
                    f"ablate: random={self.random}: layer {layer} has {len(taken)} of the set's "
                    f"{widths[layer]} neurons, too few others for a control of the same size"
                )
            pick = pool[torch.randperm(len(pool), generator=gen)[: len(taken)]]
            out += [(layer, int(i)) for i in pick]
        return out

    def _discoveries(self, tensors: dict[str, Any], meta: dict[str, Any]) -> torch.Tensor:
        """The attribute's discoveries (all of them: the ranking keeps only the top by rho)."""
        from emobench.discovery.attributes.build import STALE, tested_by_permutations

        if not tested_by_permutations(meta) or "significant" not in tensors:
            raise EmoBenchError(f"ablate: discoveries=true: {self.artifact_path()} was {STALE}")
        significant = tensors["significant"][list(meta["attributes"]).index(self.attribute)]
        flat = torch.nonzero(significant.bool()).flatten()
        if len(flat) == 0:
            raise EmoBenchError(
                f"ablate: attribute {self.attribute!r} has no discoveries in "
                f"{self.artifact_path()}; knock out its top neurons instead (top=N)"
            )
        return flat

    @contextlib.contextmanager
    def _zeroed(self, model: Any) -> Iterator[None]:
        points = hook_points(model)
        device = next(model.parameters()).device

        def make(indices: list[int]):
            idx = torch.tensor(indices, device=device)

            def hook(module, args):
                return (args[0].index_fill(-1, idx, 0.0), *args[1:])

            return hook

        pre = {points[layer].mlp_down: make(ix) for layer, ix in self.chosen(model).items()}
        with hooked(model, forward_pre=pre):
            yield

    def scope(self, model: Any, emotion: str) -> contextlib.AbstractContextManager[None]:
        return self._zeroed(model)

    def task_scope(self, model: Any) -> contextlib.AbstractContextManager[None]:
        return self._zeroed(model)

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        if self.neurons is not None:
            spec.pop("artifact", None)
        top: int | None = self.top
        if self.neurons is not None:
            top = len(self.neurons)
        elif self.discoveries:
            top = None  # as many as the artifact's discoveries
        spec["effective"] = {
            "attribute": self.attribute,
            "top": top,
            "discoveries": self.discoveries,
            "random": self.random,
        }
        return spec
