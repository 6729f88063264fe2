"""Hook overhead of `steer` vs `none`, per generated token, measured side by side in one run.

    python benchmarks/hook_overhead.py [--docs 32] [--tokens 64] [--rounds 5]

Both controllers generate the same SEV test prompts with the same decoding settings (the steer
controller's), alternating round by round so that machine noise falls on both; the target in
issue 4 is at most 5 % slower per generated token.
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
    args = parser.parse_args()

    docs = [d for d in load_docs("test") if d["target_emotion"] == "anger"][: args.docs]
    steer = create_controller("steer")
    # Same decoding for both, and every reply exactly --tokens long (no early end of turn), so
    # the two runs do the same number of forward passes and only the hooks differ.
    gen = {
        "until": [],
        "max_gen_toks": args.tokens,
        "do_sample": False,
        **steer.generation_kwargs(),
        "min_new_tokens": args.tokens,
    }
    lms = {
        "none": EmoBenchLM(controller="none", batch_size=args.batch_size),
        "steer": EmoBenchLM(controller=steer, batch_size=args.batch_size),
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
        print(f"{name:>5}: {value:.2f} ms per generated token (median of rounds)")
    print(f"steer / none = {ms['steer'] / ms['none']:.3f}")


if __name__ == "__main__":
    main()
