"""emobench: a pluggable benchmark for emotion control in language models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("emobench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

EMOTIONS: tuple[str, ...] = ("anger", "sadness", "happiness", "fear", "surprise", "disgust")
VALENCES: tuple[str, ...] = ("positive", "neutral", "negative")

__all__ = ["EMOTIONS", "VALENCES", "__version__"]
