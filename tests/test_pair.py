"""Out-of-fold files (tuning.oof) and `ft-pair`, the mean of the two fine-tuned heads, whose
thresholds are chosen on them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from emobench import EMOTIONS
from emobench.classify import get_classifier
from emobench.classify.pair import MEMBERS, decision_sha256, default_card
from emobench.classify.thresholds import choose_thresholds
from emobench.classify.tuned import default_head
from emobench.classify.tuning import oof
from emobench.classify.tuning.data import LABELS, Examples
from emobench.errors import DataError
from emobench.registry import CLASSIFIERS, create
from tests.helpers import emobench, last_line


def small_examples() -> Examples:
    sources = ["sev", "goemotions", "goemotions", "unnamed", "written", "sev"]
    labels = ["anger", "fear", None, "anger", "disgust", "neutral"]
    targets = np.eye(len(LABELS), dtype=np.float32)[[0, 3, 2, 0, 5, 6]]
    return Examples(
        [f"text {i}" for i in range(6)],
        targets,
        sources,
        np.array([0, 1, 2, 0, 3, 4]),
        labels,
        np.array([-1, -1, -1, 0, -1, -1]),
    )


def test_oof_file_keeps_only_the_threshold_rows_and_round_trips(tmp_path):
    ex = small_examples()
    probs = np.random.default_rng(0).dirichlet(np.ones(len(LABELS)), 6).astype(np.float32)
    path = oof.save(tmp_path / "h.oof.safetensors", probs, ex, "abc", {"epochs": 2})
    got = oof.load(path)
    # SEV replies and single-label comments only: no copies, no written, no multi-label.
    assert oof.scored_rows(ex) == [0, 1, 5]
    assert got.truth == ["anger", "fear", "neutral"]
    assert np.array_equal(got.probs, probs[[0, 1, 5]])
    assert got.labels == list(LABELS) and got.meta["head_sha256"] == "abc"
    moved = small_examples()
    moved.fold[5] = 0
    assert oof.rows_sha256(moved, [0, 1, 5]) != got.rows_sha256
    assert oof.oof_path(Path("heads/mpnet_ft.safetensors")) == Path(
        "heads/mpnet_ft.oof.safetensors"
    )


def test_oof_load_refuses_a_missing_file_or_a_head(tmp_path):
    with pytest.raises(FileNotFoundError, match="--oof-only"):
        oof.load(tmp_path / "none.oof.safetensors")
    with pytest.raises(DataError, match=r"minilm_ft\.safetensors: not an out-of-fold file"):
        oof.load(default_head("minilm"))


def test_recompute_refuses_before_cross_validating(tmp_path, sev_dir):
    """Every refusal comes before the hour of cross-validation: another head beside the card,
    other training data, other hyperparameters."""
    head = default_head("minilm")
    card = json.loads(head.with_suffix(".json").read_text())
    copy = tmp_path / "h.safetensors"
    (tmp_path / "h.json").write_text(json.dumps(card))
    with pytest.raises(FileNotFoundError, match=r"h\.safetensors not found"):
        oof.recompute(copy)
    shutil.copy(head, copy)
    cases = [
        ({"sha256": "0" * 64}, r"h\.safetensors: not the head its card h\.json names"),
        ({"hyperparameters": {**card["hyperparameters"], "lr_head": 0.5}}, r"lr_head"),
        (
            {
                "trained_on": [
                    {**card["trained_on"][0], "sha256": "0" * 64},
                    *card["trained_on"][1:],
                ]
            },
            r"h\.json: trained on another .*train_accepted\.jsonl",
        ),
    ]
    for change, message in cases:
        (tmp_path / "h.json").write_text(json.dumps({**card, **change}))
        with pytest.raises(DataError, match=message):
            oof.recompute(copy)


def test_flags_the_pair_and_oof_only_do_not_take(tmp_path):
    cases = [
        (("--head", "pair", "--asides", "--seed", "0"), "--head pair takes no --asides --seed 0"),
        (
            ("--head", "pair", "--out", str(tmp_path / "p.safetensors")),
            "give a path ending in .json",
        ),
        (("--head", "sev6", "--oof-only"), "--oof-only needs --head ft"),
        (("--oof-only", "--seed", "3"), "--oof-only takes no --seed 3"),
        (("--oof-only", "--asides", "--base", "mpnet"), "--oof-only takes no --asides:"),
        (
            ("--oof-only", "--base", "mpnet", "--out", str(tmp_path / "h.safetensors")),
            "--oof-only with --out takes no --base mpnet",
        ),
    ]
    for args, message in cases:
        proc = emobench("train-classifier", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in last_line(proc), (args, last_line(proc))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", MEMBERS)
def test_shipped_oof_files_give_their_heads_thresholds(sev_dir, name):
    """Each head's out-of-fold file is the one its thresholds were chosen on: the rule, run again
    on it, gives the card's thresholds."""
    from emobench.classify.train import load_judged

    clf = get_classifier(name)
    got = oof.load(oof.oof_path(default_head(clf.base_key)))
    assert got.meta["head_sha256"] == clf.meta["sha256"]
    texts, targets, _ = load_judged(sev_dir / "judged" / "train_rejected.jsonl")
    rejected = list(zip(clf.predict_proba(texts), targets, strict=True))
    again = choose_thresholds(got.probs, clf.labels, got.truth, EMOTIONS, rejected=rejected)
    assert {e: v["threshold"] for e, v in again.items()} == clf.meta["match"]["thresholds"]
    assert again == clf.meta["match"]["per_target"]


def test_pair_is_the_mean_of_its_members_and_reproduces_its_card(sev_dir):
    pair = get_classifier("ft-pair")
    card = pair.meta
    assert [m["name"] for m in card["members"]] == list(MEMBERS)
    recs = [json.loads(line) for line in (sev_dir / "judged" / "test_rejected.jsonl").open()]
    texts, targets = [r["gen_text"] for r in recs], [r["emotion"] for r in recs]
    mean = np.mean([get_classifier(n).predict_proba(texts) for n in MEMBERS], axis=0)
    np.testing.assert_allclose(pair.predict_proba(texts), mean, rtol=0, atol=1e-7)
    scored = pair.classify(texts, targets)
    read = np.mean([s["label"] == t for s, t in zip(scored, targets, strict=True)])
    assert round(float(read), 4) == card["heldout"]["rejected"]["read_as_target"]
    assert (
        round(float(np.mean([s["match"] for s in scored])), 4)
        == (card["heldout"]["rejected"]["match_rate"])
    )
    spec = pair.spec()
    assert spec["name"] == "ft-pair"
    assert {m["name"]: m["sha256"] for m in spec["head"]["members"]} == {
        n: get_classifier(n).meta["sha256"] for n in MEMBERS
    }
    assert spec["match"]["thresholds"] == card["match"]["thresholds"]
    assert spec["head"]["sha256"] == card["sha256"] == decision_sha256(card)


def test_pair_refuses_a_card_made_for_other_heads_or_edited(tmp_path):
    card = json.loads(default_card().read_text())
    edited = json.loads(json.dumps(card))
    edited["match"]["thresholds"]["fear"] = 0.5
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(DataError, match=r"edited\.json: its sha256 is not that of"):
        create(CLASSIFIERS, "ft-pair", card=str(tmp_path / "edited.json"))
    stale = json.loads(json.dumps(card))
    stale["members"][1]["sha256"] = "0" * 64
    stale["sha256"] = decision_sha256(stale)
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    with pytest.raises(
        DataError, match=r"stale\.json: .*other heads: minilm-ft 00000000 .*--head pair"
    ):
        create(CLASSIFIERS, "ft-pair", card=str(tmp_path / "stale.json"))
    shutil.copy(default_card(), tmp_path / "ok.json")
    assert create(CLASSIFIERS, "ft-pair", card=str(tmp_path / "ok.json")).labels == LABELS


@pytest.mark.parametrize("name", MEMBERS)
def test_out_of_fold_accuracy_repeats_the_cards_cross_validation(sev_dir, name):
    """The pair's card measures its mean the way a head's card measures the head: on a member's
    own file, the same code gives the accuracies its card reports for the chosen epoch."""
    from emobench.classify.tuning.pair import out_of_fold_accuracy

    clf = get_classifier(name)
    got = oof.load(oof.oof_path(default_head(clf.base_key)))
    chosen = clf.meta["selection"]["per_epoch"][clf.meta["hyperparameters"]["epochs"] - 1]
    measured = out_of_fold_accuracy(got.probs, got, clf.meta["seed"])
    for key in ("goemotions_7_label", "sev_train_forced_choice"):
        assert measured[key] == chosen[key]


def test_pair_card_thresholds_come_from_its_members_files(sev_dir):
    """The rule, run again on the shipped out-of-fold files and the rejected training replies,
    gives the card's thresholds and out-of-fold accuracy (not the held-out report: 2,850 replies
    through both heads is too slow for a test)."""
    from emobench.classify.tuning.pair import choose, out_of_fold_accuracy

    card = json.loads(default_card().read_text())
    members = [get_classifier(n) for n in MEMBERS]
    chosen = choose(members)
    assert chosen.per_target == card["match"]["per_target"]
    assert [f["sha256"] for f in chosen.files] == [
        m["out_of_fold"]["sha256"] for m in card["members"]
    ]
    seed = members[0].meta["seed"]
    assert out_of_fold_accuracy(chosen.mean_oof, chosen.first, seed) == card["cross_validation"]


def test_choose_refuses_members_cross_validated_on_other_rows(tmp_path, sev_dir):
    """Two heads' out-of-fold probabilities are only averaged row by row if the rows and folds
    are the same: a file whose folds were drawn otherwise is refused, naming both files."""
    from emobench.classify.tuning.pair import choose

    members = [get_classifier(n) for n in MEMBERS]
    paths = [oof.oof_path(default_head(m.base_key)) for m in members]
    with safe_open(str(paths[1]), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta["rows_sha256"] = "0" * 64
    moved = tmp_path / "other_folds.oof.safetensors"
    save_file(tensors, str(moved), metadata=meta)
    with pytest.raises(
        DataError,
        match=rf"^{re.escape(str(moved))}: other rows or folds than heads/mpnet_ft\.oof",
    ):
        choose(members, [None, moved])
    with pytest.raises(ValueError, match="1 out-of-fold files for 2 members"):
        choose(members, [moved])
