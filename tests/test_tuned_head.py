"""The fine-tuned head (`minilm-ft`): its training pieces on a tiny random encoder, its data, and
the shipped artifact against its own training card."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emobench import EMOTIONS
from emobench.classify.augment import unnamed
from emobench.classify.tuning import bases, data, model, train
from emobench.classify.tuning.events import BY_VALENCE, FRAMED, events, told
from emobench.classify.tuning.written import asides, compose, crossed, parts
from emobench.errors import DataError

HARD_CASES = Path(__file__).parent / "data" / "hard_cases.jsonl"


@pytest.fixture(scope="module")
def minilm():
    return model.load_base()


def tiny_encoder(family: str, layers: int):
    """A random encoder that reads MiniLM's token ids: BERT-style, or MPNet (a relative position
    bias in every layer)."""
    from transformers import BertConfig, BertModel, MPNetConfig, MPNetModel

    config_cls, model_cls, vocab = {
        "bert": (BertConfig, BertModel, 30522),
        "mpnet": (MPNetConfig, MPNetModel, 30527),
    }[family]
    torch.manual_seed(0)
    config = config_cls(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
    )
    return model_cls(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="module")
def tiny_bert():
    return tiny_encoder("bert", 3)


@pytest.mark.parametrize("encoder", ["minilm", "tiny_mpnet"])
def test_frozen_bottom_then_top_equals_the_whole_encoder(minilm, encoder):
    tokenizer, base = minilm if encoder == "minilm" else (minilm[0], tiny_encoder("mpnet", 4))
    texts = ["What if the plane goes down?", "Wait, WHAT?! They sold the house?", "Fine."]
    states = model.bottom_states(tokenizer, base, len(base.encoder.layer) - 2, texts)
    top = model.TunedEncoder(base, 2, data.LABELS).eval()
    with torch.no_grad():
        hidden, lengths = train._pad(states, [0, 1, 2])
        hidden = top.encode(hidden, lengths)
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        full = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(full.last_hidden_state[i, :n], hidden[i, :n], atol=1e-5)


def test_training_learns_a_separable_toy_set(minilm, tiny_bert):
    tokenizer, _ = minilm
    texts = [f"{w} {w} {w} {i}" for i in range(24) for w in ("red", "blue")]
    labels = ["anger" if "red" in t else "fear" for t in texts]
    ex = data.Examples(
        texts,
        np.stack([data.one_hot(y) for y in labels]),
        ["sev"] * len(texts),
        np.zeros(len(texts), dtype=np.int64),
        list(labels),
        np.full(len(texts), -1),
    )
    states = model.bottom_states(tokenizer, tiny_bert, 2, texts)
    saved = dict(train.HYPER)
    train.HYPER.update(tuned_layers=1, batch_size=8, lr_layers=1e-3, lr_head=1e-2)
    try:
        rows = np.arange(len(texts))
        fitted, watched = train.fit(tiny_bert, states, ex, rows, 0, 15, rows)
    finally:
        train.HYPER.clear()
        train.HYPER.update(saved)
    truth = np.array(labels)
    accs = [float((np.array(data.LABELS)[p.argmax(1)] == truth).mean()) for p in watched]
    assert accs[-1] == 1.0, accs
    # The base stays untouched: each fold starts from the same frozen encoder.
    assert not any(p is q for p in fitted.parameters() for q in tiny_bert.parameters())


def test_soup_is_the_mean_of_its_members_weights(minilm, tiny_bert):
    tokenizer, _ = minilm
    texts = ["My hands will not stop shaking.", "Wait, the bus came early?!", "Fine."]
    states = model.bottom_states(tokenizer, tiny_bert, 1, texts)
    members = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        # Each on its own copy of the base, as train.fit builds them, with its tuned layers moved
        # by its seed: the soup must average those layers, not only the heads.
        member = model.TunedEncoder(copy.deepcopy(tiny_bert), 2, data.LABELS).eval()
        with torch.no_grad():
            for p in member.top.parameters():
                p.add_(0.05 * torch.randn_like(p))
        members.append(member)
    before = [copy.deepcopy(m.state_dict()) for m in members]
    mixed = train.soup(members)
    for key, value in mixed.state_dict().items():
        want = torch.stack([b[key] for b in before]).mean(0)
        assert torch.allclose(value, want), key
        assert not torch.allclose(value, before[0][key]), key
    # What forward runs is what was averaged: the tuned layers are the copied encoder's own.
    assert all(
        layer is mixed._encoder[0].layer[mixed.first + i] for i, layer in enumerate(mixed.top)
    )
    # The members are left as they were, and a soup of one is that model.
    for m, b in zip(members, before, strict=True):
        assert all(torch.equal(m.state_dict()[k], v) for k, v in b.items())
    rows = np.arange(len(texts))
    one = train.predict(train.soup(members[:1]), states, rows)
    assert np.allclose(one, train.predict(members[0], states, rows))
    assert not np.allclose(train.predict(mixed, states, rows), one)
    with pytest.raises(ValueError, match="model 1 has other tuned layers"):
        train.soup([members[0], model.TunedEncoder(tiny_bert, 1, data.LABELS)])
    with pytest.raises(ValueError, match="model 1 has other tuned layers, labels"):
        train.soup([members[0], model.TunedEncoder(tiny_bert, 2, data.LABELS[::-1])])
    with pytest.raises(ValueError, match="at least one"):
        train.soup([])
    # A count cannot be averaged: it must agree, or the soup is refused.
    for m, steps in zip(members[:2], (3, 4), strict=True):
        m.register_buffer("steps", torch.tensor(steps))
    with pytest.raises(ValueError, match="steps: differs between models"):
        train.soup(members[:2])


def test_artifact_round_trip_and_refusals(minilm, tmp_path):
    tokenizer, base = minilm
    torch.manual_seed(1)
    tuned = model.TunedEncoder(copy.deepcopy(base), 2, data.LABELS).eval()
    with torch.no_grad():  # so that loading must replace the base's layers to match
        for param in tuned.top.parameters():
            param.add_(0.05 * torch.randn_like(param))
    texts = ["My hands would not stop shaking.", "Ugh, the sink smelled rotten."]
    card = {
        "labels": list(data.LABELS),
        "base": {"sha256": bases.BASES["minilm"].weights_sha256},
        "hyperparameters": {"tuned_layers": 2},
    }
    path = tmp_path / "head.safetensors"
    model.save(tuned, path, card)
    loaded = model.TunedHead(path)
    states = model.bottom_states(tokenizer, base, tuned.first, texts)
    expect = train.predict(tuned, states, np.arange(2))
    got = torch.softmax(torch.from_numpy(loaded.logits(texts)), -1).numpy()
    assert np.allclose(got, expect, atol=2e-3)  # float16 on disk

    wrong = tmp_path / "wrong.safetensors"
    shutil.copy(path, wrong)
    wrong.with_suffix(".json").write_text(json.dumps({**card, "base": {"sha256": "0" * 64}}))
    with pytest.raises(DataError, match=r"wrong\.safetensors: trained on base weights 0{12}"):
        model.TunedHead(wrong)
    with pytest.raises(FileNotFoundError, match="train-classifier --head ft"):
        model.TunedHead(tmp_path / "missing.safetensors")
    # Half a layer in the file would mix trained and base weights: refused.
    from safetensors.torch import save_file

    partial = tmp_path / "partial.safetensors"
    kept = {k: v for k, v in tuned.tensors().items() if "layer.5.output.dense" not in k}
    save_file({k: v.contiguous() for k, v in kept.items()}, str(partial))
    partial.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(DataError, match=r"partial\.safetensors: .* lacks .*train-classifier"):
        model.TunedHead(partial)


def test_soft_targets_keep_every_label_of_a_comment():
    both = data.soft_target(("joy", "surprise"))
    assert both[data.LABELS.index("happiness")] == both[data.LABELS.index("surprise")] == 0.5
    same_class = data.soft_target(("anger", "annoyance"))
    assert same_class[data.LABELS.index("anger")] == 1.0


def test_unnamed_copies_drop_the_name_and_its_frame():
    assert unnamed("I'm shocked that the bus came early!", "surprise") == "the bus came early!"
    bare = unnamed("Oh no, I'm so terrified, what if it breaks?", "fear")
    assert bare == "Oh no, what if it breaks?"
    assert unnamed("What if it breaks?", "fear") is None  # nothing named
    assert unnamed("Accidents happen, don't worry about the saddle.", "happiness") is None
    assert unnamed("Happily, it happened.", "happiness") is None  # "it happened." is too short
    assert unnamed("I'm so happy that it happened at last!", "happiness") == "it happened at last!"
    assert unnamed("I'm terrified.", "fear") is None  # nothing left to learn from


def test_copies_sit_in_their_source_fold_and_skeletons_do_not_straddle(sev_dir):
    ex, counts = data.build(0, with_asides=True)
    assert counts["goemotions"] == 5426  # every comment, multi-label ones included
    assert len(ex.texts) == sum(counts.values())
    sev_fold = {}
    for text, src, k in zip(ex.texts, ex.source, ex.fold, strict=True):
        if src == "sev":
            sev_fold.setdefault(text, set()).add(int(k))
    recs = [json.loads(line) for line in (sev_dir / "judged" / "train_accepted.jsonl").open()]
    by_skeleton: dict[str, set[int]] = {}
    for rec in recs:
        by_skeleton.setdefault(rec["skeleton_id"], set()).update(sev_fold[rec["gen_text"]])
    assert all(len(folds) == 1 for folds in by_skeleton.values())
    copies = np.flatnonzero(ex.origin >= 0)
    originals = ("sev", "goemotions", "written")
    assert len(copies) == sum(v for k, v in counts.items() if k not in originals)
    for i in copies:
        source = int(ex.origin[i])
        assert ex.fold[i] == ex.fold[source] and ex.label[i] == ex.label[source]
        if ex.source[i] != "aside":
            assert ex.source[source] == "sev"
            assert ex.targets[i].tolist() == ex.targets[source].tolist()
            continue
        # A written reply with another emotion named beside it: still mostly its own.
        assert ex.source[source] == "written" and ex.texts[source] in ex.texts[i]
        own = data.LABELS.index(str(ex.label[i]))
        assert ex.targets[i][own] == 1 - data.ASIDE_WEIGHT and ex.targets[i].argmax() == own
        named = [data.LABELS[k] for k in np.flatnonzero(ex.targets[i]) if k != own]
        assert len(named) == 1 and named[0] != "neutral"
        assert ex.texts[i].replace(ex.texts[source], "").strip() in asides()[named[0]]
    emotional = sum(w.emotion != "neutral" for w in compose(0))
    assert 0.3 < counts["aside"] / emotional < 0.5
    assert sorted(set(ex.fold.tolist())) == list(range(data.FOLDS))
    group = {w.text: w.group for w in compose(0)}
    written_folds: dict[str, set[int]] = {}
    for text, src, k in zip(ex.texts, ex.source, ex.fold, strict=True):
        if src == "written":
            written_folds.setdefault(group[text], set()).add(int(k))
    assert counts["written"] == len(group) and len(written_folds) > data.FOLDS
    assert all(len(folds) == 1 for folds in written_folds.values())
    assert not {"written", "aside"} & set(data.build(0, written=False)[1])
    # The shipped recipe: the same examples, only without the aside copies.
    bare, bare_counts = data.build(0)
    assert bare_counts == {k: v for k, v in counts.items() if k != "aside"}
    kept = np.flatnonzero(np.array(ex.source) != "aside")
    assert bare.texts == [ex.texts[i] for i in kept] and (bare.fold == ex.fold[kept]).all()


def test_crossed_replies_join_the_examples_in_their_facts_fold(sev_dir):
    """The flat facts met with feeling come on top of the shipped recipe's examples, which stay as
    they were, each in the fold of its fact's neutral replies."""
    ex, counts = data.build(0, with_crossed=True)
    bare, bare_counts = data.build(0)
    assert counts == bare_counts | {"crossed": len(crossed(0))}
    assert (
        ex.texts[: len(bare.texts)] == bare.texts
        and (ex.fold[: len(bare.texts)] == bare.fold).all()
    )
    neutral_fold = {
        w.group: int(ex.fold[ex.texts.index(w.text)]) for w in compose(0) if w.emotion == "neutral"
    }
    added = range(len(bare.texts), len(ex.texts))
    assert [ex.texts[i] for i in added] == [w.text for w in crossed(0)]
    for i, w in zip(added, crossed(0), strict=True):
        assert ex.source[i] == "crossed" and ex.label[i] == w.emotion
        assert ex.fold[i] == neutral_fold[w.group] and ex.origin[i] == -1
        assert ex.targets[i][data.LABELS.index(w.emotion)] == 1
    with pytest.raises(ValueError, match="with_crossed needs written=True"):
        data.build(0, written=False, with_crossed=True)


def test_sev_outcomes_are_met_by_their_valences_emotions_in_their_skeletons_fold(sev_dir):
    """Every training skeleton's three outcomes, each under every emotion its valence allows and
    no other, wrapped in that emotion's own written parts, in the fold of the skeleton's judged
    replies; the shipped recipe's examples stay as they were."""
    from emobench.data import load_skeletons, resolve_split

    skeletons = load_skeletons(resolve_split("train"))
    made = events(0)
    assert made == events(0) and made != events(1)
    assert len(made) == len(skeletons) * sum(map(len, BY_VALENCE.values()))
    per_valence = {}
    for w, (sk, valence, emotion) in zip(
        made,
        [(sk, v, e) for sk in skeletons for v, es in BY_VALENCE.items() for e in es],
        strict=True,
    ):
        account = told(sk, valence)
        assert w.group == sk.skeleton_id and w.emotion == emotion and account in w.text
        before, after = (x.strip() for x in w.text.split(account))
        p = parts(emotion)
        if emotion in FRAMED:
            assert before in p["openers"] and after in p["codas"]
        else:
            assert before == "" and after in p["cues"]
        per_valence.setdefault(valence, set()).add(emotion)
    assert per_valence == {v: set(es) for v, es in BY_VALENCE.items()}

    ex, counts = data.build(0, with_events=True)
    bare, bare_counts = data.build(0)
    assert counts == bare_counts | {"events": len(made)}
    assert ex.texts[: len(bare.texts)] == bare.texts
    sev = np.flatnonzero(np.array(bare.source) == "sev")
    judged = [json.loads(line) for line in (sev_dir / "judged/train_accepted.jsonl").open()]
    fold_of = {r["skeleton_id"]: int(bare.fold[i]) for r, i in zip(judged, sev, strict=True)}
    for i, w in zip(range(len(bare.texts), len(ex.texts)), made, strict=True):
        assert ex.source[i] == "events" and ex.label[i] == w.emotion
        assert ex.fold[i] == fold_of[w.group] and ex.origin[i] == -1


def test_shipped_head_reproduces_its_card(sev_dir):
    """The packaged weights score the held-out judged replies exactly as the card says."""
    from emobench.classify import get_classifier

    clf = get_classifier("minilm-ft")
    card = clf.meta
    assert clf.labels == data.LABELS
    assert set(card["match"]["thresholds"]) == set(EMOTIONS)
    recs = [json.loads(line) for line in (sev_dir / "judged" / "test_accepted.jsonl").open()]
    scored = clf.classify([r["gen_text"] for r in recs], [r["emotion"] for r in recs])
    forced = [max(EMOTIONS, key=lambda e: s["probs"][e]) for s in scored]
    acc = np.mean([f == r["emotion"] for f, r in zip(forced, recs, strict=True)])
    match = np.mean([s["match"] for s in scored])
    assert round(float(acc), 4) == card["heldout"]["forced_choice_accuracy"]
    assert round(float(match), 4) == card["heldout"]["match_rate"]
    from emobench.classify.tuned import default_head

    assert "## Held out" in default_head().with_suffix(".md").read_text()


@pytest.mark.parametrize("name", ["minilm-ft", "mpnet-ft"])
def test_shipped_heads_reproduce_their_cards_on_the_rejected_replies(sev_dir, name):
    """Each packaged head, loaded as users load it, reads the held-out replies the judge rejected
    exactly as its card says (30 replies: cheap enough for the six-times-costlier mpnet)."""
    from emobench.classify import get_classifier

    clf = get_classifier(name)
    card = clf.meta["heldout"]["rejected"]
    recs = [json.loads(line) for line in (sev_dir / "judged" / "test_rejected.jsonl").open()]
    assert len(recs) == card["n"]
    scored = clf.classify([r["gen_text"] for r in recs], [r["emotion"] for r in recs])
    read = np.mean([s["label"] == r["emotion"] for s, r in zip(scored, recs, strict=True)])
    assert round(float(read), 4) == card["read_as_target"]
    assert round(float(np.mean([s["match"] for s in scored])), 4) == card["match_rate"]


def test_hard_cases_beside_the_frozen_head():
    """Measured on tests/data/hard_cases.jsonl: 30 of the 32 hand-written cases (the frozen
    `minilm`: 25) and 4 of the 4 bland ones read as neutral (2), but only 10 of the 17
    over-steered replies (15): it reads word salad as an emotion more often. The bars guard
    those margins, a case or two below what was measured."""
    from emobench.classify import get_classifier

    cases = [json.loads(line) for line in HARD_CASES.read_text().splitlines()]
    scored = get_classifier("minilm-ft").classify([c["text"] for c in cases])
    hits = {"hand": [], "over-steered": [], "bland": []}
    for s, c in zip(scored, cases, strict=True):
        kind = "over-steered" if c["kind"] == "over-steered" else "hand"
        hits[kind].append(s["label"] == c["label"])
        if c["kind"] == "bland":
            hits["bland"].append(s["label"] == "neutral")
    assert len(hits["hand"]) == 32 and len(hits["over-steered"]) == 17
    assert sum(hits["hand"]) >= 29, hits
    assert sum(hits["bland"]) >= 3, hits
    assert sum(hits["over-steered"]) >= 9, hits
