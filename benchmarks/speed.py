"""Speed of emobench on this machine, every figure a ratio measured side by side in one run.

    python benchmarks/speed.py [--docs 48] [--controllers none,prompt,steer,circuit]
                               [--batch_sizes 1,8,32] [--dtype float32] [--skip SECTION,...]

Sections (skip any with --skip):
  loop        emobench against the reference's way (one `generate` call per prompt) on the same
              prompts: the `prompt` controller's, the first --docs SEV test docs, greedy, at most
              100 new tokens. Target: at least 5x end to end.
  tokens      generated tokens per second of every controller at each batch size, fluency off on
              every side, one decoding setting for all (each controller's own settings are
              replaced by it) and exactly --tokens new tokens made for every reply, so only the
              controllers' prompts and hooks differ. Tokens are counted as the model makes them.
              Target: controller overhead at most 5 % against `none` at the same batch.
  classifier  replies scored per second by each of --classifiers (default: the shared
              classifier and the frozen `minilm`), side by side, and their ratio.
Peak memory (the process's maximum resident set so far) is printed after each section.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

import torch
from lm_eval.api.instance import Instance

from emobench.chat import base_messages, render
from emobench.classify import DEFAULT_CLASSIFIER, get_classifier
from emobench.controller import create_controller
from emobench.data import load_docs, user_message
from emobench.model import EmoBenchLM
from emobench.run import CPU_BATCH_SIZE

SEV_GEN = {"until": [], "max_gen_toks": 100, "do_sample": False, "temperature": 0.0}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def requests(docs: list[dict[str, Any]], gen: dict[str, Any]) -> list[Instance]:
    return [
        # The task's own context (its user turn), as lm-eval builds it: the model checks it.
        Instance(
            "generate_until",
            d,
            (user_message(d["scenario"], d["event"]), dict(gen)),
            0,
            ("sev_emotion", i, 1),
        )
        for i, d in enumerate(docs)
    ]


class TokenCounter:
    """New tokens as the model makes them: every forward pass of a decoding loop yields one token
    per row it is given. (Re-tokenising reply texts undercounts replies whose tokens do not
    round-trip, which steered text often has.)"""

    def __init__(self, model: torch.nn.Module) -> None:
        self.tokens = 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int(ids.shape[0])


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def reference_loop(lm: EmoBenchLM, prompts: list[str]) -> tuple[list[str], int]:
    """What the reference scripts do: encode one prompt, generate, decode, next."""
    tok, model = lm.tokenizer, lm.model
    texts, tokens = [], 0
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([lm.tok_encode(prompt)], device=model.device)
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=SEV_GEN["max_gen_toks"],
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            new = out[0, ids.shape[1] :]
            tokens += len(new)
            texts.append(tok.decode(new, skip_special_tokens=True))
    return texts, tokens


def section_loop(args: argparse.Namespace, docs: list[dict[str, Any]]) -> None:
    prompt = create_controller("prompt")
    common = {"controller": prompt, "batch_size": args.batch, "dtype": args.dtype}
    fast = EmoBenchLM(**common)
    fast_no_ppl = EmoBenchLM(**common, measure_fluency=False)
    hf_no_ppl = EmoBenchLM(**common, measure_fluency=False, fast_decode=False)
    prompts = [render(fast.tokenizer, prompt.messages(d, base_messages(d)))[0] for d in docs]
    fast_no_ppl.generate_until(requests(docs[:2], SEV_GEN), True)  # warm up kernels untimed
    loop_s, (_, loop_tokens) = timed(reference_loop, fast, prompts)
    hf_s, _ = timed(hf_no_ppl.generate_until, requests(docs, SEV_GEN), True)
    gen_s, _ = timed(fast_no_ppl.generate_until, requests(docs, SEV_GEN), True)
    full_s, replies = timed(fast.generate_until, requests(docs, SEV_GEN), True)
    print(
        f"\n[loop] {len(docs)} SEV test docs, the prompt controller's prompts, greedy, "
        f"<= {SEV_GEN['max_gen_toks']} new tokens, {args.dtype}"
    )
    print(f"  reference loop (batch 1)                 {loop_s:7.1f} s   {loop_tokens} tokens")
    print(f"  batch {args.batch}, transformers generate      {hf_s:7.1f} s")
    print(f"  batch {args.batch}, emobench.decode            {gen_s:7.1f} s")
    print(f"  batch {args.batch}, emobench.decode + fluency  {full_s:7.1f} s")
    print(f"  emobench.decode / generate at batch {args.batch}: {hf_s / gen_s:.2f}x")
    print(f"  speed-up, generation only: {loop_s / gen_s:.2f}x")
    print(f"  speed-up, end to end:      {loop_s / full_s:.2f}x   (target >= 5x)")
    print(f"  peak memory so far: {peak_mib():.0f} MiB")
    args.replies = [str(r) for r in replies]


def section_tokens(args: argparse.Namespace) -> None:
    names = args.controllers.split(",")
    anger = [d for d in load_docs("test") if d["target_emotion"] == "anger"]
    rows: dict[int, dict[str, float]] = {}
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        # Two full batches each: one emotion, so hooked controllers run full batches too.
        docs = anger[: 2 * batch]
        lms = {
            n: EmoBenchLM(
                controller=create_controller(n),
                batch_size=batch,
                dtype=args.dtype,
                measure_fluency=False,
            )
            for n in names
        }
        samples: dict[str, list[float]] = {n: [] for n in names}
        counters = {n: TokenCounter(lm.model) for n, lm in lms.items()}
        for lm in lms.values():  # warm up each model's kernels at this batch, untimed
            lm.generate_until(requests(docs[:batch], {**SEV_GEN, "max_gen_toks": 2}), True)
        # One decoding setting for all, every controller's overrides merged and then put in place
        # of each controller's own (steer's min_new_tokens=10 would otherwise let its replies end
        # early and shrink its batches): only the controllers' prompts and hooks differ.
        gen = {**SEV_GEN, "max_gen_toks": args.tokens}
        for lm in lms.values():
            gen |= lm.controller.generation_kwargs()
        gen["min_new_tokens"] = args.tokens
        for lm in lms.values():
            lm.controller.generation_kwargs = lambda gen=gen: dict(gen)  # type: ignore[method-assign]
        for _ in range(args.rounds):  # alternate, so machine noise falls on every controller
            for n, lm in lms.items():
                counters[n].tokens = 0
                seconds, _ = timed(lm.generate_until, requests(docs, gen), True)
                if counters[n].tokens != args.tokens * len(docs):
                    raise SystemExit(
                        f"{n} made {counters[n].tokens} tokens, not {args.tokens} x {len(docs)}"
                    )
                samples[n].append(counters[n].tokens / seconds)
        rows[batch] = {n: statistics.median(v) for n, v in samples.items()}
    print(
        f"\n[tokens] generated tokens/s, fluency off, {args.tokens} new tokens asked, "
        f"{args.dtype}, median of {args.rounds} alternating round(s)"
    )
    print("  batch " + "".join(f"{n:>10}" for n in names))
    for batch, row in rows.items():
        print(f"  {batch:>5} " + "".join(f"{row[n]:>10.1f}" for n in names))
    if "none" in names:
        for batch, row in rows.items():
            ratios = ", ".join(f"{n} {row['none'] / row[n]:.3f}" for n in names if n != "none")
            print(f"  time per token vs none at batch {batch}: {ratios}   (target <= 1.05)")
    print(f"  peak memory so far: {peak_mib():.0f} MiB")


def section_classifier(args: argparse.Namespace, docs: list[dict[str, Any]]) -> None:
    texts = getattr(args, "replies", None)
    if not texts:
        # Without the loop's replies: the reference model's held-out judged replies.
        from emobench.classify.train import judged_dir, load_judged

        texts = load_judged(judged_dir() / "test_accepted.jsonl")[0]
    texts = (texts * (args.classifier_texts // len(texts) + 1))[: args.classifier_texts]
    print(f"\n[classifier] {len(texts)} texts, side by side")
    per_reply = {}
    for name in args.classifiers.split(","):
        clf = get_classifier(name)
        clf.predict_proba(texts[:8])  # load the encoder outside the timing
        seconds, _ = timed(clf.predict_proba, texts)
        per_reply[name] = 1000 * seconds / len(texts)
        print(f"  {name}: {len(texts) / seconds:.1f} replies/s, {per_reply[name]:.2f} ms per reply")
    first = next(iter(per_reply))
    for name, ms in list(per_reply.items())[1:]:
        print(f"  time per reply, {first} / {name}: {per_reply[first] / ms:.3f}")
    print(f"  peak memory so far: {peak_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--batch", default=CPU_BATCH_SIZE, help="emobench's batch in [loop]")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--controllers", default="none,prompt,steer,circuit")
    parser.add_argument("--batch_sizes", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--classifier_texts", type=int, default=512)
    parser.add_argument(
        "--classifiers",
        default=f"{DEFAULT_CLASSIFIER},minilm",
        help="classifiers timed side by side in [classifier] (the first is the reference)",
    )
    parser.add_argument("--skip", default="", help="comma-separated: loop, tokens, classifier")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if unknown := skip - {"loop", "tokens", "classifier"}:
        parser.error(f"--skip: unknown section(s) {', '.join(sorted(unknown))}")
    docs = load_docs("test")[: args.docs]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "loop" not in skip:
        section_loop(args, docs)
    if "tokens" not in skip:
        section_tokens(args)
    if "classifier" not in skip:
        section_classifier(args, docs)


if __name__ == "__main__":
    main()
