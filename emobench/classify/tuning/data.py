"""The fine-tuned head's training examples, each with a soft target over seven labels and a fold.

- Judged SEV training replies (`judged/train_accepted.jsonl`): their target emotion.
- Every GoEmotions comment: its labels mapped to Ekman + neutral and averaged, so a comment
  labelled joy and surprise is half happiness, half surprise. Multi-label comments are where
  human readers saw two emotions at once; dropping them would teach the head that emotions never
  mix.
- Degraded copies of the SEV replies (`augment.AUGMENTATIONS`) and unnamed copies (the words
  naming the emotion removed, `augment.unnamed`), labels kept.
- Hand-written replies that show fear, disgust, sarcastic anger, astonishment (and some sadness,
  happiness and flat ones) without naming them (`tuning.written`).
- Only with `with_asides` (measured, in no shipped head: docs/classifier-experiments.md,
  "Asides"): aside copies, a written reply with a sentence that names *another* emotion in
  passing (`written.asides`), its target mostly the reply's own emotion (`ASIDE_WEIGHT`), against
  a head that lets one emotion word outweigh everything around it.
- Only with `with_crossed` (measured, in no shipped head: docs/classifier-experiments.md,
  "Flat facts"): the neutral replies' flat facts followed by five emotions' reactions
  (`written.crossed`), so that a topic predicts no label.
- Only with `with_events` (measured, in no shipped head: docs/classifier-experiments.md,
  "SEV's outcomes met with feeling"): each SEV training skeleton's three outcomes told in the
  first person and met with the reactions their valence allows (`tuning.events`).

Folds: SEV replies are split by skeleton (a skeleton's 18 replies share a situation), GoEmotions
comments stratified by their main label, written replies by the situation they were made from; a
copy sits in its source's fold, so a held-out fold never has a copy of its own texts in training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from emobench import EMOTIONS
from emobench.classify.augment import AUGMENTATIONS, unnamed
from emobench.classify.goemotions import FINE_TO_EKMAN, default_path, ekman_label, load_comments
from emobench.classify.train import judged_dir, load_judged
from emobench.classify.tuning.events import events
from emobench.classify.tuning.written import asides, compose, crossed

LABELS = (*EMOTIONS, "neutral")
FOLDS = 5
DEGRADED_SHARE = 0.15
# Share of the written replies that also get an aside copy (not the unnamed copies: with the
# name gone, many of those show their emotion too faintly to outweigh another's name), and how
# much of that copy's target the named emotion takes: a mixed reply's second emotion, not its
# first (a GoEmotions comment with two labels splits its target evenly).
ASIDE_SHARE = 0.4
ASIDE_WEIGHT = 0.25


@dataclass
class Examples:
    texts: list[str]
    targets: np.ndarray  # (n, 7) rows summing to 1
    # sev | goemotions | <augmentation name> | unnamed | written | aside | crossed | events
    source: list[str]
    fold: np.ndarray  # (n,) in 0..FOLDS-1
    # The one label a text is scored against (None for a GoEmotions comment with several).
    label: list[str | None]
    # For a copy, the row of the reply it was made from; -1 for an original text.
    origin: np.ndarray

    def select(self, rows: np.ndarray) -> Examples:
        idx = [int(i) for i in rows]
        return Examples(
            [self.texts[i] for i in idx],
            self.targets[idx],
            [self.source[i] for i in idx],
            self.fold[idx],
            [self.label[i] for i in idx],
            self.origin[idx],
        )


def one_hot(label: str) -> np.ndarray:
    row = np.zeros(len(LABELS), dtype=np.float32)
    row[LABELS.index(label)] = 1.0
    return row


def soft_target(fine_labels: tuple[str, ...]) -> np.ndarray:
    row = np.zeros(len(LABELS), dtype=np.float32)
    for fine in fine_labels:
        row[LABELS.index(FINE_TO_EKMAN[fine])] += 1.0
    return row / row.sum()


def with_aside(
    text: str, emotion: str, rng: random.Random, sentences: dict[str, list[str]]
) -> tuple[str, np.ndarray]:
    """`text` with a sentence naming another emotion (one of `sentences`, by the emotion it
    names) before or after it, and its soft target."""
    named = rng.choice([e for e in EMOTIONS if e != emotion])
    aside = rng.choice(sentences[named])
    target = (1 - ASIDE_WEIGHT) * one_hot(emotion) + ASIDE_WEIGHT * one_hot(named)
    return (f"{aside} {text}" if rng.random() < 0.5 else f"{text} {aside}"), target


def _group_folds(groups: list[str], seed: int) -> dict[str, int]:
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    return {name: i % FOLDS for i, name in enumerate(names)}


def _stratified_folds(labels: list[str], seed: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    fold = np.zeros(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    for k, (_, te) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold[te] = k
    return fold


def build(
    seed: int = 0,
    written: bool = True,
    with_asides: bool = False,
    with_crossed: bool = False,
    with_events: bool = False,
) -> tuple[Examples, dict[str, int]]:
    """Every training example, and how many each source gave."""
    if with_crossed and not written:
        # A crossed reply sits in the fold of its fact's neutral replies, which are written ones.
        raise ValueError("with_crossed needs written=True: crossed replies take their facts' folds")
    s_text, s_y, s_groups = load_judged(judged_dir() / "train_accepted.jsonl")
    by_group = _group_folds(s_groups, seed)
    replies = compose(seed) if written else []
    by_written = _group_folds([w.group for w in replies], seed)
    s_fold = [by_group[g] for g in s_groups]
    texts, targets, source, fold, label, origin = [], [], [], [], [], []

    def add(
        text: str, target: np.ndarray, src: str, k: int, lab: str | None, row: int = -1
    ) -> None:
        texts.append(text)
        targets.append(target)
        source.append(src)
        fold.append(k)
        label.append(lab)
        origin.append(row)

    for text, y, k in zip(s_text, s_y, s_fold, strict=True):
        add(text, one_hot(y), "sev", k, y)
    comments = load_comments(default_path())
    main = [FINE_TO_EKMAN[c.labels[0]] for c in comments]
    for comment, k in zip(comments, _stratified_folds(main, seed), strict=True):
        single = ekman_label(comment.labels)
        add(comment.text, soft_target(comment.labels), "goemotions", int(k), single)
    # Degraded copies: each augmentation on its own random share, as the frozen head was trained.
    rng = random.Random(seed)
    for fn in AUGMENTATIONS:
        for row, (text, y, k) in enumerate(zip(s_text, s_y, s_fold, strict=True)):
            if rng.random() < DEGRADED_SHARE:
                add(fn(text, rng), one_hot(y), fn.__name__, k, y, row)
    for row, (text, y, k) in enumerate(zip(s_text, s_y, s_fold, strict=True)):
        if (bare := unnamed(text, y)) is not None:
            add(bare, one_hot(y), "unnamed", k, y, row)
    for w in replies:
        add(w.text, one_hot(w.emotion), "written", by_written[w.group], w.emotion)
    if with_asides:
        # Its own generator, so that adding asides leaves every other example as it was.
        aside_rng, sentences = random.Random(seed), asides()
        for row, src in enumerate(list(source)):
            if src == "written" and label[row] in EMOTIONS and aside_rng.random() < ASIDE_SHARE:
                text, target = with_aside(texts[row], str(label[row]), aside_rng, sentences)
                add(text, target, "aside", fold[row], label[row], row)
    if with_crossed:
        # After the asides, which are made from the written replies only; in their fact's fold.
        for w in crossed(seed):
            add(w.text, one_hot(w.emotion), "crossed", by_written[w.group], w.emotion)
    if with_events:
        # Last, so that every other example stays as it was; in their skeleton's fold.
        for w in events(seed):
            add(w.text, one_hot(w.emotion), "events", by_group[w.group], w.emotion)
    counts: dict[str, int] = {}
    for src in source:
        counts[src] = counts.get(src, 0) + 1
    examples = Examples(texts, np.stack(targets), source, np.array(fold), label, np.array(origin))
    return examples, counts
