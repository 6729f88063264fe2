"""SEV training events told in the first person, each met with the reaction its valence allows.

Every hand-written training reply's situation belongs to its emotion (a scan to fear, a late
plumber to anger, a child's first bike ride to happiness), so a head can learn the emotion from
the topic and read "my scan was all clear, so I bought flowers" as fear. SEV's training
skeletons hold the contrast those replies lack: one situation in each of eight everyday themes
(work, school, relationships, shopping, public services, health, housing, travel), told with a
positive, a neutral and a negative outcome. Here each outcome is told as "{scenario}. {event}"
and followed, or framed, by the written parts of the reactions it can carry:

- positive: happiness (a cue) and surprise (a disbelieving opener and a coda);
- negative: sadness and fear (a cue) and sarcastic anger (a mock-praise opener and a coda);
- neutral: a flat next step.

So a clinic, a train or a landlord comes with every label but disgust (its cues are about what is
touched, smelt or eaten), and the outcome and the reaction tell them apart. Only the training
split is read; a reply's group is its skeleton's, so it sits in the fold of that skeleton's
judged replies.
"""

from __future__ import annotations

import random

from emobench.classify.tuning.written import Written, parts
from emobench.data import Skeleton, load_skeletons, resolve_split

# The emotions each outcome is met with; cue emotions take a sentence after the event, framed
# emotions an opener before it and a coda after.
BY_VALENCE = {
    "positive": ("happiness", "surprise"),
    "negative": ("sadness", "fear", "anger"),
    "neutral": ("neutral",),
}
FRAMED = ("surprise", "anger")


def told(skeleton: Skeleton, valence: str) -> str:
    """The scenario and one outcome as a first-person account."""
    return f"{skeleton.scenario.rstrip('. ')}. {skeleton.events[valence]}"


def events(seed: int = 0, skeletons: list[Skeleton] | None = None) -> list[Written]:
    """One reply per training skeleton, outcome and emotion that outcome allows (960 for SEV's
    160 training skeletons), the same list for the same seed."""
    rng = random.Random(seed)
    found = skeletons if skeletons is not None else load_skeletons(resolve_split("train"))
    p = {e: parts(e) for valence in BY_VALENCE.values() for e in valence}
    out = []
    for sk in found:
        for valence, emotions in BY_VALENCE.items():
            account = told(sk, valence)
            for emotion in emotions:
                if emotion in FRAMED:
                    opener = rng.choice(p[emotion]["openers"])
                    text = f"{opener} {account} {rng.choice(p[emotion]['codas'])}"
                else:
                    text = f"{account} {rng.choice(p[emotion]['cues'])}"
                out.append(Written(text, emotion, sk.skeleton_id))
    return out
