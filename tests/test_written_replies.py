"""The hand-written training replies (emobench/classify/tuning/written/): well-formed, never naming
their own emotion, and kept apart from the implicit validation set written by the same team."""

from __future__ import annotations

import json
from collections import Counter

from emobench import EMOTIONS
from emobench.classify.tuning.data import LABELS
from emobench.classify.tuning.written import (
    CROSSED_PER_EMOTION,
    EMOTION_FILES,
    asides,
    compose,
    crossed,
    parts,
    written_sha256,
)
from emobench.scoring.quality import words
from tests.test_implicit_set import HERE, lines, names

# Words too common for a shared run of them to mean one text echoes the other.
FUNCTION_WORDS = {
    *("i", "a", "an", "the", "to", "my", "me", "and", "of", "in", "it", "is", "that", "was"),
    *("on", "for", "at", "with", "as", "be", "by", "this", "so", "but"),
}


def runs(text: str, n: int) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def all_parts() -> list[tuple[str, str, str]]:
    """(emotion, kind of part, sentence) for every part in every file."""
    out = []
    for emotion in EMOTION_FILES:
        for kind, items in parts(emotion).items():
            if isinstance(items, list):
                out += [(emotion, kind, s) for s in items]
    return out


def test_every_label_is_written_and_composing_is_reproducible():
    assert sorted(EMOTION_FILES) == sorted(LABELS)
    for emotion in EMOTION_FILES:
        assert parts(emotion)["emotion"] == emotion
    first, again, other = compose(0), compose(0), compose(1)
    assert first == again and first != other
    counts = Counter(w.emotion for w in first)
    assert set(counts) == set(LABELS)
    # The emotions a head misses when unnamed get the most replies.
    assert min(counts[e] for e in ("fear", "disgust", "anger", "surprise")) > max(
        counts[e] for e in ("sadness", "happiness", "neutral")
    )
    assert len({w.text for w in first}) == len(first)
    assert len(written_sha256()) == 64


def test_no_part_names_its_own_emotion():
    banned = json.loads((HERE / "banned_words.json").read_text())
    named = [
        (emotion, kind, s, e)
        for emotion, kind, s in all_parts()
        for e in EMOTIONS
        if (e == emotion or emotion == "neutral") and names(s, banned[e])
    ]
    assert named == []


def test_training_text_does_not_echo_the_validation_set():
    """The validation set is the team's own too, so a shared phrase would let a head learn the
    author's wording instead of the emotion: no composed reply shares five words in a row with it,
    and no part shares four in a row of which two or more are content words."""
    val = [r["text"] for r in lines()]
    five = set().union(*(runs(t, 5) for t in val))
    composed = compose(0) + crossed(0)
    assert [w.text for w in composed if runs(w.text, 5) & five] == []
    four = {g for t in val for g in runs(t, 4) if sum(x not in FUNCTION_WORDS for x in g) >= 2}
    sentences = [s for _, _, s in all_parts()] + [s for a in asides().values() for s in a]
    echoes = [(s, sorted(runs(s, 4) & four)) for s in sentences if runs(s, 4) & four]
    assert echoes == []


def test_each_aside_names_its_emotion_and_no_other():
    """An aside is there to put a named emotion beside a reply's own: if it named none, or two,
    its copy's target would say something the text does not."""
    banned = json.loads((HERE / "banned_words.json").read_text())
    found = asides()
    assert sorted(found) == sorted(EMOTIONS)
    wrong = [
        (emotion, s, [e for e in EMOTIONS if names(s, banned[e])])
        for emotion, sentences in found.items()
        for s in sentences
        if [e for e in EMOTIONS if names(s, banned[e])] != [emotion]
    ]
    assert wrong == []
    assert all(len(sentences) >= 10 for sentences in found.values())


def test_each_flat_fact_is_met_by_five_emotions_in_its_own_group():
    """A crossed reply's topic predicts nothing: every neutral fact appears under each emotion but
    disgust, as often, and in the group of the fact's neutral replies (so in one fold with them);
    the words around the fact are parts of the reply's own emotion."""
    facts = parts("neutral")["situations"]
    made = crossed(0)
    assert made == crossed(0) and made != crossed(1)
    assert len({w.text for w in made}) == len(made)
    per_group: dict[str, Counter] = {}
    for w in made:
        index = int(w.group.removeprefix("neutral:"))
        assert facts[index] in w.text
        per_group.setdefault(w.group, Counter())[w.emotion] += 1
        before, after = (x.strip() for x in w.text.split(facts[index]))
        p = parts(w.emotion)
        if w.emotion in ("anger", "surprise"):
            assert before in p["openers"] and after in p["codas"]
        else:
            assert before == "" and after in p["cues"]
    five = {e: CROSSED_PER_EMOTION for e in EMOTIONS if e != "disgust"}
    assert per_group == {f"neutral:{i}": Counter(five) for i in range(len(facts))}
    assert set(per_group) == {w.group for w in compose(0) if w.emotion == "neutral"}
