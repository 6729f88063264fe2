"""Hand-written training replies that show an emotion without naming it.

The judged SEV replies name their emotion most of the time, and GoEmotions has few comments of
implicit fear, physical disgust, sarcastic anger or astonishment; a head trained on those alone
reads "my heart hasn't slowed down since" as neutral. Each JSON file here holds the parts of one
emotion's replies, written by hand as whole sentences:

- `situations` + `cues`: a situation, then what the body or mind does (fear, disgust, sadness,
  happiness; neutral gets a flat next step instead);
- anger: `openers` (mock praise) + `grievances` + `codas` (sarcasm), or a grievance + `blunt`;
  `mock` lines are sarcastic thanks, praise or agreement with the grievance inside, + `codas`;
- surprise: `openers` (disbelief) + `news` + `codas`.

`compose` joins parts at random (seeded), so a situation appears in several replies with different
cues; every reply made from one situation (or grievance, mock line, or piece of news) shares a
`group`, and cross-validation keeps a group in one fold. The validation set in tests/data/implicit/
is never read here; a test checks that no composed reply shares a five-word run with it, and that
no part names its own emotion. The parts were written apart from it, but the `mock` lines and the
later happiness, sadness and neutral parts after reading which of its lines a head misread (kinds
of sentence, not its wording), so a score on that set is an upper bound.

`asides.json` holds the opposite: one sentence per line that *names* an emotion in passing ("Part
of me is scared, I won't lie."). Added to a reply that shows another emotion, it makes a mixed
reply whose own emotion still dominates (`tuning.data`, only when asked: no shipped head has them):
a head that lets any emotion word outweigh the tone around it reads "I'm glad for her, of course,
but I haven't slept since the call" as happiness, and a reply that says "shocked" while it fumes as
surprise.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from importlib.resources import files

EMOTION_FILES = ("fear", "disgust", "anger", "surprise", "sadness", "happiness", "neutral")
# Replies composed per situation; the four emotions a head misses most get more.
PER_GROUP = {"fear": 6, "disgust": 6, "anger": 8, "surprise": 6}
PER_GROUP_DEFAULT = 5
MOCK_PER_LINE = 4
# In `crossed`: replies per flat fact and emotion.
CROSSED_PER_EMOTION = 2


@dataclass(frozen=True)
class Written:
    text: str
    emotion: str
    group: str  # emotion:index of the situation, grievance or news it was made from


def parts(emotion: str) -> dict:
    return json.loads(files(__package__).joinpath(f"{emotion}.json").read_text())


def _situation_cue(p: dict, emotion: str, rng: random.Random) -> list[Written]:
    out = []
    n = PER_GROUP.get(emotion, PER_GROUP_DEFAULT)
    for i, situation in enumerate(p["situations"]):
        for cue in rng.sample(p["cues"], n):
            out.append(Written(f"{situation} {cue}", emotion, f"{emotion}:{i}"))
    return out


def _anger(p: dict, rng: random.Random) -> list[Written]:
    out = []
    for i, grievance in enumerate(p["grievances"]):
        for k in range(PER_GROUP["anger"]):
            # Three in four sarcastic: the blunt kind is what a head already reads.
            if k % 4 < 3:
                text = f"{rng.choice(p['openers'])} {grievance} {rng.choice(p['codas'])}"
            else:
                text = f"{grievance} {rng.choice(p['blunt'])}"
            out.append(Written(text, "anger", f"anger:{i}"))
    # A mock line carries its own grievance inside the praise, thanks or agreement; alone or
    # with a coda, never behind an opener (two layers of mock praise read as a parody).
    for i, mock in enumerate(p["mock"]):
        for coda in rng.sample(p["codas"], MOCK_PER_LINE - 1):
            out.append(Written(f"{mock} {coda}", "anger", f"anger:mock{i}"))
        out.append(Written(mock, "anger", f"anger:mock{i}"))
    return out


def _surprise(p: dict, rng: random.Random) -> list[Written]:
    out = []
    for i, news in enumerate(p["news"]):
        for k in range(PER_GROUP["surprise"]):
            opener = rng.choice(p["openers"])
            # Some without the closing line, so the exclamation alone carries it.
            text = f"{opener} {news}" if k % 3 == 2 else f"{opener} {news} {rng.choice(p['codas'])}"
            out.append(Written(text, "surprise", f"surprise:{i}"))
    return out


def crossed(seed: int = 0) -> list[Written]:
    """The neutral file's flat facts met with feeling: each fact followed by happiness, sadness
    and fear cues, and behind surprise openers and sarcastic anger openers and codas.

    Every other written reply's situation belongs to its emotion (a scan to fear, a late plumber
    to anger, a first bike ride to happiness), so a head can learn an emotion from the topic and
    read a clear scan or a cancelled flight that turns into a day at the sea as fear or anger.
    Here one fact carries five labels and only the reaction tells them apart. Disgust is left
    out: its cues are about what is touched, smelt or eaten, and follow no appointment or bill.
    Each reply's group is its fact's, the same as the fact's neutral replies, so a fold holds a
    fact under every label it has."""
    rng = random.Random(seed)
    cues = {e: parts(e)["cues"] for e in ("happiness", "sadness", "fear")}
    anger, surprise = parts("anger"), parts("surprise")
    n = CROSSED_PER_EMOTION

    def framed(p: dict) -> list[tuple[str, str]]:
        return list(zip(rng.sample(p["openers"], n), rng.sample(p["codas"], n), strict=True))

    out = []
    for i, fact in enumerate(parts("neutral")["situations"]):
        texts = [(f"{fact} {cue}", e) for e, pool in cues.items() for cue in rng.sample(pool, n)]
        texts += [(f"{o} {fact} {c}", "surprise") for o, c in framed(surprise)]
        texts += [(f"{o} {fact} {c}", "anger") for o, c in framed(anger)]
        out += [Written(text, emotion, f"neutral:{i}") for text, emotion in texts]
    return out


def asides() -> dict[str, list[str]]:
    """For each of the six emotions, the sentences that name it in passing."""
    found = parts("asides")
    return {e: found[e] for e in EMOTION_FILES if e in found}


def written_sha256() -> str:
    """One hash over every parts file, so a card names the exact text it was trained on."""
    digest = hashlib.sha256()
    for name in (*EMOTION_FILES, "asides"):
        digest.update(files(__package__).joinpath(f"{name}.json").read_bytes())
    return digest.hexdigest()


def compose(seed: int = 0) -> list[Written]:
    """Every composed reply, the same list for the same seed."""
    rng = random.Random(seed)
    out: list[Written] = []
    for emotion in EMOTION_FILES:
        p = parts(emotion)
        if emotion == "anger":
            out += _anger(p, rng)
        elif emotion == "surprise":
            out += _surprise(p, rng)
        else:
            out += _situation_cue(p, emotion, rng)
    # Random openers and codas can meet twice; one copy is enough (a text holds its situation,
    # so both copies have the same group).
    return list({w.text: w for w in out}.values())
