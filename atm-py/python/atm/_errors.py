"""The exceptions of the atm package (raised by its native half too)."""

__all__ = [
    "Error",
    "CorruptError",
    "NeedsRecoveryError",
    "UnsupportedVersionError",
    "SeriesNotFoundError",
    "StoreNotFoundError",
]


class Error(Exception):
    """Base class of every error atm raises (besides ``ValueError`` for bad
    arguments)."""


class CorruptError(Error):
    """A file of the store is damaged or truncated: a checksum or an invariant
    failed. The message names the file and the series (and the block, time and
    column where known). atm never returns values it could not verify."""


class NeedsRecoveryError(Error):
    """A writer crashed in the middle of changing this series. A read-only
    reader never replays journals; the next writer (``atm verify``, ``atm
    sync``, ...) repairs it."""


class UnsupportedVersionError(Error):
    """A file was written by a newer atm (format version this one cannot read)."""


class SeriesNotFoundError(Error, KeyError):
    """The store holds no such series; the message says what it has."""

    def __str__(self) -> str:  # KeyError would quote the message.
        return str(self.args[0]) if self.args else ""


class StoreNotFoundError(Error, FileNotFoundError):
    """No atm store in the directory."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
