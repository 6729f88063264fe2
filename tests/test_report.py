"""The HTML report of `emobench leaderboard`: ranked table, charts, confusion matrices and sample
replies, with model output shown as text and never run, opened in a real headless Chromium.

The runs are published results files copied into a fresh folder, one with a samples log in
lm-eval's format beside it whose replies carry markup and script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from emobench.leaderboard.collect import collect
from emobench.leaderboard.frontier import load_sweeps, sweep_files
from emobench.leaderboard.render import render

from emobench import EMOTIONS
from emobench.errors import EmoBenchError
from tests.helpers import ROOT, emobench, last_line

PUBLISHED = ROOT / "leaderboard" / "published"
STAMP = "2026-11-24T15-06-59.452091"
CIRCUIT = PUBLISHED / "sev_emotion" / f"results_{STAMP}.json"  # confusion in its results
STEER = PUBLISHED / "sev_emotion" / "results_2026-11-24T14-32-58.965843.json"
SWEEPS = [PUBLISHED / "steer_sweep", PUBLISHED / "circuit_sweep"]

SCRIPT = "<script>window.__pwned=1</script><b>bold</b>"
# If this ran, the page's title would change: an effect --dump-dom can see.
TITLE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
TITLE_TEXT = "emobench leaderboard: sev_emotion"
FIRST_ANGER = f"I am furious. {SCRIPT}"


def sample(doc_id: int, emotion: str, reply: str, label: str) -> dict[str, Any]:
    """One line of lm-eval's samples log as the sev_emotion task writes it."""
    scored = {"text": reply, "label": label, "probs": {label: 0.9}, "classifier": "minilm"}
    return {
        "doc_id": doc_id,
        "doc": {"key": f"work_00__positive__{emotion}", "target_emotion": emotion},
        "target": emotion,
        "arguments": {"gen_args_0": {"arg_0": "a situation", "arg_1": {"max_gen_toks": 100}}},
        "resps": [[reply]],
        "filtered_resps": [json.dumps(scored)],
        "filter": "classify",
        "acc": float(label == emotion),
    }


def samples_log() -> list[dict[str, Any]]:
    lines = []
    for i, emotion in enumerate(EMOTIONS):
        replies = [f"{emotion} reply one", f"{emotion} reply two", f"{emotion} reply three"]
        if emotion == "anger":
            replies[:2] = [FIRST_ANGER, TITLE]
        for k, reply in enumerate(replies):
            lines.append(sample(6 * k + i, emotion, reply, emotion if k == 0 else "neutral"))
    return lines


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A circuit run with a samples log beside its results, and a steer run without one."""
    root = tmp_path_factory.mktemp("report") / "runs"
    (root / "circuit").mkdir(parents=True)
    shutil.copy(CIRCUIT, root / "circuit" / CIRCUIT.name)
    log = root / "circuit" / f"samples_sev_emotion_{STAMP}.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in samples_log()), encoding="utf-8")
    (root / "steer").mkdir()
    # A re-scored run names the samples log it came from; here that log must be nowhere.
    steer = json.loads(STEER.read_text())
    steer["config"]["emobench"].pop("rescored_from", None)
    (root / "steer" / STEER.name).write_text(json.dumps(steer))
    return root


@pytest.fixture(scope="module")
def report(runs: Path) -> str:
    return render(collect([runs]), "html")


def test_model_text_is_escaped_never_inserted_as_markup(report: str) -> None:
    assert "I am furious. &lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in (
        report
    )
    assert "<script>window.__pwned" not in report and "<b>bold</b>" not in report
    assert "&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;" in report
    assert "<img src=x" not in report
    assert "<script" not in report.lower()  # the report itself runs no script at all


def test_report_has_table_bars_confusion_and_samples(report: str, runs: Path) -> None:
    (section,) = re.findall(r'<table class="ranked">.*?</table>', report, re.S)
    assert len(re.findall(r"<tr>", section)) == 3  # header, circuit, steer
    assert section.index("circuit") < section.index("steer")
    images = re.findall(
        r'<img class="chart" src="data:image/png;base64,[^"]+" alt="([^"]+)"', report
    )
    assert images == [
        "Expression accuracy per target emotion, grouped bars for 1. circuit, 2. steer, "
        "with the chance level of 16.7 %."
    ]
    # The circuit run's confusion matrix: 99 of 480 anger targets read as anger, on the diagonal.
    assert re.search(r'<td class="hit" style="[^"]+">99</td>', report)
    # Two replies per target emotion, in the log's order; the third is left out.
    assert "anger reply three" not in report and "sadness reply two" in report
    assert "sadness reply three" not in report
    assert report.count('<td class="miss">neutral</td>') == len(EMOTIONS)
    missing = runs / "steer" / "samples_sev_emotion_2026-11-24T14-32-58.965843.jsonl"
    looked = f"{missing} or {missing}.gz"  # as lm-eval writes it, or as `emobench publish` keeps it
    assert f"No samples log for this run (looked for {looked}); run with --log_samples." in report
    assert "No sweeps given" in report


def test_sweeps_that_are_missing_or_empty_are_errors(tmp_path: Path) -> None:
    with pytest.raises(EmoBenchError, match=r"--sweeps .*nowhere does not exist"):
        sweep_files([tmp_path / "nowhere"])
    with pytest.raises(EmoBenchError, match=r"no sweep\.json under it"):
        sweep_files([tmp_path])
    (tmp_path / "sweep.json").write_text('{"rows": ')
    assert load_sweeps([tmp_path]) == []  # damaged: skipped with a warning


@pytest.fixture(scope="module")
def board(runs: Path) -> Path:
    """The real command: --out writes the report, --format html -o writes the same one."""
    out = runs.parent / "board"
    proc = emobench(
        *["leaderboard", str(runs), "--out", str(out), "--format", "html"],
        *["-o", str(runs.parent / "report.html"), "--sweeps", *map(str, SWEEPS)],
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_command_writes_the_report_with_the_sweeps_frontier(board: Path) -> None:
    html = (board / "leaderboard.html").read_text(encoding="utf-8")
    assert html == (board.parent / "report.html").read_text(encoding="utf-8")
    alts = re.findall(r'<img class="chart" src="data:image/png;base64,[^"]+" alt="([^"]+)"', html)
    assert len(alts) == 2
    assert alts[1].startswith("Expression accuracy against the share of replies through")
    assert "Chosen points: steer alpha 1 layers 12-21: accuracy 29.2 %" in alts[1]
    assert "circuit lam 3: accuracy 52.8 %, gate pass 62.5 %" in alts[1]
    for sweep in SWEEPS:
        assert f"<code>{sweep / 'sweep.json'}</code>" in html


def test_command_with_a_missing_sweeps_path_is_a_one_line_error(tmp_path: Path) -> None:
    proc = emobench("leaderboard", str(CIRCUIT), "--sweeps", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert last_line(proc) == (
        f"emobench: error: --sweeps {tmp_path / 'nowhere'} does not exist; pass an "
        "`emobench sweep --out` directory (holding sweep.json) or a sweep.json file"
    )


# In a real browser

CHROMIUM = shutil.which("chromium")


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        # CI installs it (.ci/run): there a missing browser is a failure, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail("the `chromium` binary is not installed (Debian package chromium)")
        pytest.skip("the `chromium` binary is not installed (Debian package chromium)")
    # Root in a container has no sandbox to drop into; the page is a local file.
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]
    return subprocess.run(
        [CHROMIUM, *flags, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


class Dom(HTMLParser):
    """What the page became in the browser: its elements and the text of its cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.images: list[dict[str, str | None]] = []
        self.scripts = 0
        self.ranked_rows = 0
        self.replies: list[str] = []
        self._stack: list[tuple[str, dict[str, str | None]]] = []
        self._table = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        self._stack.append((tag, attr))
        if tag == "img":
            self._stack.pop()  # a void element
            self.images.append(attr)
        elif tag == "script":
            self.scripts += 1
        elif tag == "table":
            self._table = attr.get("class") or ""
        elif tag == "tr" and self._table == "ranked" and any(t == "tbody" for t, _ in self._stack):
            self.ranked_rows += 1
        elif tag == "td" and attr.get("class") == "reply":
            self.replies.append("")

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        inside = [t for t, _ in self._stack]
        if inside and inside[-1] == "title":
            self.title += data
        if any(t == "td" and a.get("class") == "reply" for t, a in self._stack):
            self.replies[-1] += data


def test_chromium_renders_table_and_charts_and_runs_no_model_text(
    board: Path, tmp_path: Path
) -> None:
    from PIL import Image

    page = (board / "leaderboard.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,2000", page)
    assert shot.is_file(), proc.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 2000)
    colours = image.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 500  # text, table shading and charts; a blank page has one
    # The bar chart is on screen: matplotlib's first bar colour (C0, #1f77b4) fills its bars.
    bars = sum(
        n
        for n, rgb in colours
        if max(abs(a - b) for a, b in zip(rgb, (31, 119, 180), strict=True)) < 8
    )
    assert bars > 2000

    proc = chromium(tmp_path / "profile", "--dump-dom", page)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom()
    dom.feed(proc.stdout)
    assert dom.ranked_rows == 2
    charts = [i for i in dom.images if (i.get("src") or "").startswith("data:image/png;base64,")]
    assert len(charts) == len(dom.images) == 2 and all(i.get("alt") for i in charts)
    # The replies are there as text and their script never ran: the page has no script element
    # (so `window.__pwned=1` had nothing to run in; a variable cannot be read from outside), and
    # the payload that would retitle the page left the title as it was.
    assert FIRST_ANGER in dom.replies and TITLE in dom.replies
    assert dom.scripts == 0
    assert dom.title == TITLE_TEXT


def test_a_rescored_run_says_whose_labels_its_samples_show(runs: Path, tmp_path: Path) -> None:
    """The samples log keeps the verdicts made when the run ran; beside a re-scored row's
    confusion matrix, the sample table names that classifier."""
    folder = tmp_path / "circuit"
    shutil.copytree(runs / "circuit", folder)
    # The published file was itself re-scored once; here it stands for the run as it ran.
    ran = json.loads(CIRCUIT.read_text())
    ran["config"]["emobench"].pop("rescored_from", None)
    (folder / CIRCUIT.name).write_text(json.dumps(ran))
    rescored = json.loads(CIRCUIT.read_text())
    own = rescored["config"]["emobench"]["classifier"]["name"]
    rescored["config"]["emobench"]["classifier"] = {"name": "kw"}
    rescored["config"]["emobench"]["rescored_from"] = str(
        folder / f"samples_sev_emotion_{STAMP}.jsonl"
    )
    (folder / f"results_{STAMP}_kw.json").write_text(json.dumps(rescored))
    html = render(collect([tmp_path]), "html")
    assert html.count("<th>read as</th>") == 1  # the run as it ran
    assert html.count(f"<th>read as by {own}</th>") == 1  # the re-scored row
    assert (
        f"This row was re-scored by kw: the confusion matrix above is its verdicts; the labels "
        f"below are {own}&#39;s, given when the run ran." in html
    )
