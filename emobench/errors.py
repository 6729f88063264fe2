"""Errors that reach the user: each message says what is wrong and what to do."""


class EmoBenchError(Exception):
    """Base class; the CLI prints these as one line, without a traceback."""


class DataError(EmoBenchError):
    """A data file is missing or malformed (the message names the file and line)."""


class UnknownPluginError(EmoBenchError, KeyError):
    """A controller or classifier name that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


class PluginLoadError(EmoBenchError):
    """An installed plugin failed to import or to construct."""
