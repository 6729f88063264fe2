"""`emobench bench`: the main job in one command.

Every installed controller that runs unattended (`Controller.main_job`; `ablate` needs a neuron
set and is for analyses), on one model, over the full SEV test split, each run with its own
journal so that an interrupted job resumes where it stopped; a controller with a strength knob
and a `sweep_grid` but no recommended setting is swept on the *train* split first and runs at
the best quality-adjusted point (the model's quality gate is calibrated first if it has none);
a controller whose shipped artifact is another model's gets one discovered on train for this
model first; then the leaderboard of everything under --output_path.

    emobench bench [--controllers none,prompt,...] [--model_args pretrained=...] [--limit N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from emobench.controller import ArtifactController, create_controller
from emobench.data import load_docs
from emobench.errors import EmoBenchError, PluginLoadError
from emobench.registry import CONTROLLERS, installed, load_class

TASK = "sev_emotion"


def main_job_controllers() -> list[str]:
    """Installed controllers that the main job runs, built-ins first."""
    builtins = ["none", "prompt", "steer", "circuit"]
    names, broken = [], []
    for name in installed(CONTROLLERS):
        try:
            if getattr(load_class(CONTROLLERS, name), "main_job", True):
                names.append(name)
        except PluginLoadError as exc:
            broken.append(exc)
    names = [n for n in builtins if n in names] + sorted(set(names) - set(builtins))
    if broken:
        raise EmoBenchError(
            f"{broken[0]}; the main job runs every installed controller: mend or uninstall that "
            f"plugin, or name the ones to run, e.g. --controllers {','.join(names)}"
        ) from broken[0]
    return names


def _construct_all(names: list[str]) -> None:
    """Build every controller before the first run: one whose constructor fails would otherwise
    stop the job when its turn came, hours in."""
    for name in names:
        try:
            create_controller(name)
        except EmoBenchError as exc:
            others = ",".join(n for n in names if n != name)
            around = f", or leave it out (--controllers {others})" if others else ""
            raise EmoBenchError(f"{exc}; no run started: mend that controller{around}") from exc


def unfit_artifacts(names: list[str], model_args: dict[str, str]) -> list[str]:
    """The controllers whose shipped artifact was built for another model: of another shape
    (type, depth, width), or of the same shape with other weights (a fine-tune, the base model
    of an instruct one, another revision). bench builds them an artifact of their own first."""
    from transformers import AutoConfig

    from emobench import artifacts, loading
    from emobench.record import reply_settings

    pretrained = model_args.get("pretrained")

    unfit: list[str] = []
    shape: tuple[Any, ...] | None = None
    loaded: list[Any] = []  # the model, loaded once, only if a same-shape artifact needs it
    for name in names:
        controller = create_controller(name)
        if not isinstance(controller, ArtifactController) or controller.artifact:
            continue
        meta_path = controller.artifact_path() / "meta.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        built = meta.get("model") or {}
        if shape is None:
            try:
                path = loading.model_path(pretrained)
                config = AutoConfig.from_pretrained(path, **loading.location(model_args))
            except (OSError, ValueError):
                return []  # no config to read here: the run's own check at load time remains
            config = getattr(config, "text_config", None) or config
            shape = (config.model_type, config.num_hidden_layers, config.hidden_size)
        if (
            built.get("model_type"),
            built.get("num_hidden_layers"),
            built.get("hidden_size"),
        ) != shape:
            unfit.append(name)
        elif built.get("name") != loading.model_name(pretrained) or reply_settings(model_args):
            # Same shape, another name or revision: only the weights can tell (the run would
            # refuse them), loaded as the run loads them.
            if not loaded:
                loaded.append(loading.load_model({**model_args, "device": "cpu"})[0])
            try:
                artifacts.check_model(meta, loaded[0], meta_path.parent)
            except EmoBenchError:
                unfit.append(name)
    return unfit


def _given(model_args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in model_args if "=" in a and not a.startswith("{"))


def _emobench(*args: str, failed: str) -> None:
    """An emobench command of the job, its output shown as it comes."""
    if subprocess.run([sys.executable, "-m", "emobench", *args]).returncode != 0:
        raise EmoBenchError(
            f"{failed} (its error is above); run `emobench bench` again to resume from what is "
            "done (journals, sweeps, artifacts)"
        )


def _own_artifact(name: str, out: Path, model_flag: list[str], step: str) -> Path:
    """An artifact for the job's model, discovered on the train split (kept: a rerun reuses it)."""
    folder = out / "artifacts" / name
    if not (folder / "meta.json").is_file():  # written last: a folder with it is complete
        kind = create_controller(name).shipped
        print(
            f"{step} {name}: its shipped artifact is another model's; discovering {kind} ({folder})"
        )
        _emobench(
            "discover",
            kind,
            "--out",
            str(folder),
            *model_flag,
            failed=f"discovering {name}'s {kind}",
        )
    return folder


def _ensure_gate(pretrained: str | None, model_flag: list[str]) -> None:
    """A sweep chooses by quality-adjusted accuracy, which needs the model's quality gate."""
    from emobench import loading
    from emobench.scoring.gate import gate_for

    model = loading.model_name(pretrained)
    if gate_for(model) is None:
        print(f"no quality gate for {model}: calibrating one (emobench calibrate-gate)")
        _emobench("calibrate-gate", *model_flag, failed=f"calibrating the gate of {model}")


def sweep_grid(name: str) -> dict[str, list[str]]:
    grid = getattr(load_class(CONTROLLERS, name), "sweep_grid", None) or {}
    return {k: [str(v) for v in values] for k, values in grid.items()}


def needs_sweep(name: str) -> dict[str, list[str]] | None:
    """The controller's sweep grid when it has one and no recommended setting to run at."""
    grid = sweep_grid(name)
    if not grid:
        return None
    controller = create_controller(name)
    if isinstance(controller, ArtifactController) and controller.recommended():
        return None
    return grid


def _journal(out: Path, name: str) -> Path:
    return out / f"{name}-cache.emobench-journal.jsonl"


def _journaled(path: Path) -> int:
    """Replies already in a journal (a reply per line); an estimate, as a reply journaled
    under other settings is not reused."""
    if not path.is_file():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _generation(out: Path, since: float) -> tuple[int, float] | None:
    """(replies generated, seconds spent generating them) by the run that just ended, from its
    record (a controller's sweep runs before `since`)."""
    from emobench.record import read_record
    from emobench.sweep import newest_results

    newest = newest_results(out, since)
    if newest is None:
        return None
    results = json.loads(newest.read_text())
    replies = (read_record(results) or {}).get("replies") or {}
    generated = replies.get("generated")
    seconds = (results.get("config") or {}).get("emobench_generation_seconds")
    if isinstance(generated, int) and isinstance(seconds, (int, float)):
        return generated, float(seconds)
    return None


def time_left(
    seconds: float,
    generated: int,
    remaining: list[str],
    docs: int,
    out: Path,
    own: Collection[str] = (),
) -> str | None:
    """The job's remaining generation time at the finished runs' pace per generated reply
    (their seconds in generation, without loading and scoring): each remaining controller
    generates the docs its journal does not hold yet."""
    if generated <= 0 or not remaining:
        return None
    todo = sum(max(docs - _journaled(_journal(out, n)), 0) for n in remaining)
    left = seconds / generated * todo
    duration = f"{left / 60:.0f} min" if left >= 60 else f"{left:.0f} s"
    swept = [n for n in remaining if n in own or needs_sweep(n) is not None]
    note = f"; sweeps of {', '.join(swept)} not counted" if swept else ""
    return (
        f"about {duration} left for {', '.join(remaining)} ({todo:,} "
        f"{'reply' if todo == 1 else 'replies'} to generate "
        f"at {seconds / generated:.2f} s a reply so far; loading and scoring not counted{note})"
    )


def run_main_job(
    output_path: str | Path,
    controllers: list[str] | None = None,
    model_args: list[str] | None = None,
    limit: int | None = None,
    batch_size: str | None = None,
    sweep_items: int = 12,
) -> list[dict[str, Any]]:
    from emobench.leaderboard.render import collect, write_all
    from emobench.sweep import controller_argv, sweep, swept_before

    out = Path(output_path)
    names = controllers or main_job_controllers()
    # A "module:Class" path is a plugin that is not installed under an entry point.
    unknown = sorted(n for n in set(names) - set(installed(CONTROLLERS)) if ":" not in n)
    if unknown:
        raise EmoBenchError(
            f"--controllers: {', '.join(unknown)} not installed; installed: "
            f"{', '.join(installed(CONTROLLERS))}"
        )
    _construct_all(names)
    given = _given(model_args or [])
    pretrained = given.get("pretrained")
    own = set(unfit_artifacts(names, given))
    model_flag = ["--model_args", *model_args] if model_args else []
    shared = [*model_flag, *(["--batch_size", str(batch_size)] if batch_size else [])]
    timings = []
    split = len(load_docs("test"))
    docs = min(limit, split) if limit else split
    # The finished runs' pace: their seconds and the replies they generated.
    spent, made = 0.0, 0
    for i, name in enumerate(names, start=1):
        step = f"[{i}/{len(names)}]"
        args: dict[str, Any] = {}
        grid = needs_sweep(name)
        if name in own:
            artifact = _own_artifact(name, out, model_flag, step)
            grid = {**sweep_grid(name), "artifact": [str(artifact)]}
        if grid is not None:
            folder = out / "sweeps" / name
            chosen = swept_before(folder, name, grid, sweep_items, shared)
            if chosen is None:
                _ensure_gate(pretrained, model_flag)
                print(f"{step} {name}: no recommended setting; sweeping {grid} on train")
                sweep(name, grid, folder, folder / "work", items=sweep_items, extra=shared)
                chosen = json.loads((folder / "recommended.json").read_text())
            else:
                print(f"{step} {name}: swept before, {folder / 'recommended.json'}")
            args = {k: chosen[k] for k in grid if k in chosen}
        size = f"the first {limit} docs of {TASK}" if limit else f"full {TASK} run"
        journal = _journal(out, name)
        print(f"{step} {name}: {size} (journal {journal})")
        start, started = time.perf_counter(), time.time()
        _emobench(
            *["--tasks", TASK, "--controller", name, *controller_argv(args)],
            *[
                "--output_path",
                str(out),
                "--log_samples",
                "--use_cache",
                str(out / f"{name}-cache"),
            ],
            *shared,
            *(["--limit", str(limit)] if limit else []),
            failed=f"the {name} run failed",
        )
        timings.append((name, time.perf_counter() - start))
        generation = _generation(out, started)
        if generation is not None:
            made, spent = made + generation[0], spent + generation[1]
        left = time_left(spent, made, names[i:], docs, out, own)
        if left:
            print(f"{step} {name} done in {timings[-1][1] / 60:.1f} min; {left}")
    # The sweeps' train-split runs live under out/sweeps and are not leaderboard rows.
    rows = collect(
        [p for p in out.iterdir() if p.is_dir() and p.name not in ("sweeps", "leaderboard")]
    )
    print(write_all(rows, out / "leaderboard"))
    print("wall time: " + ", ".join(f"{n} {s / 60:.1f} min" for n, s in timings))
    print(f"leaderboard: {out / 'leaderboard'} (leaderboard.md, .csv, .json, .html)")
    return rows
