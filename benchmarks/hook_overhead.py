"""Hook overhead of each controller vs `none`, per generated token, side by side in one run.

    python benchmarks/hook_overhead.py [--controllers steer,circuit] [--docs 32] [--tokens 64]

Every controller generates the same SEV test prompts with the same decoding settings, alternating
round by round so that machine noise falls on all of them; fluency is off on every side (it is
not the hooks' cost). Target: at most 5 % slower per generated token than `none`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from emobench.controller import create_controller
from emobench.data import load_docs
from emobench.model import EmoBenchLM


def generate_tokens(lm: EmoBenchLM, docs: list[dict], gen: dict) -> tuple[float, int]:
    from lm_eval.api.instance import Instance

    requests = [
        Instance("generate_until", d, ("", dict(gen)), 0, ("sev_emotion", i, 1))
        for i, d in enumerate(docs)
    ]
    start = time.perf_counter()
    lm.generate_until(requests, disable_tqdm=True)
    elapsed = time.perf_counter() - start
    return elapsed, len(docs) * gen["max_gen_toks"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--controllers", default="steer", help="comma-separated, besides none")
    args = parser.parse_args()

    docs = [d for d in load_docs("test") if d["target_emotion"] == "anger"][: args.docs]
    controllers = {"none": create_controller("none")}
    controllers |= {name: create_controller(name) for name in args.controllers.split(",")}
    # Same decoding for all (the first steered controller's), and every reply exactly --tokens
    # long (no early end of turn), so every run does the same forward passes and only the hooks
    # differ.
    steered = next(c for name, c in controllers.items() if name != "none")
    gen = {
        "until": [],
        "max_gen_toks": args.tokens,
        "do_sample": False,
        **steered.generation_kwargs(),
        "min_new_tokens": args.tokens,
    }
    lms = {
        name: EmoBenchLM(controller=c, batch_size=args.batch_size, measure_fluency=False)
        for name, c in controllers.items()
    }
    per_token: dict[str, list[float]] = {name: [] for name in lms}
    for _ in range(args.rounds):
        for name, lm in lms.items():
            seconds, tokens = generate_tokens(lm, docs, gen)
            per_token[name].append(seconds / tokens)
    ms = {name: 1000 * statistics.median(v) for name, v in per_token.items()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.docs} prompts, "
        f"{args.tokens} new tokens max, {args.rounds} alternating rounds"
    )
    for name, value in ms.items():
        print(f"{name:>8}: {value:.2f} ms per generated token (median of rounds)")
    for name in controllers:
        if name != "none":
            print(f"{name} / none = {ms[name] / ms['none']:.3f}")


if __name__ == "__main__":
    main()
