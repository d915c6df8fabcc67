"""Errors a user can act on. Each names the file or setting at fault and the fix.

The CLI prints ``str(error)`` as one line and exits 2; the GUI shows it in a message box.
Anything that is not a :class:`ConvScopeError` is a bug and is shown with its traceback.
"""

from __future__ import annotations

from typing import Mapping, TypeVar

_Entry = TypeVar("_Entry")


class ConvScopeError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def __reduce__(self):
        # pickle with the hint (errors travel back from the GUI's job processes, engine.worker)
        return (type(self), (self.message, self.hint), self.__dict__)


class InvalidSetting(ConvScopeError):
    """A configuration value is out of range or inconsistent."""


def look_up(table: Mapping[str, _Entry], name: str, what: str) -> _Entry:
    """``table[name]``, or :class:`InvalidSetting` "unknown WHAT 'NAME'" listing the names to choose from."""
    try:
        return table[name]
    except KeyError:
        raise InvalidSetting(f"unknown {what} '{name}'", f"choose one of: {', '.join(table)}") from None


def check_at_least(what: str, value: int, minimum: int = 1) -> None:
    """:class:`InvalidSetting` "WHAT VALUE must be at least MINIMUM" when ``value`` is below ``minimum``."""
    if value < minimum:
        raise InvalidSetting(f"{what} {value} must be at least {minimum}")


class DatasetError(ConvScopeError):
    """A dataset folder cannot be used (missing, empty, one class...)."""


class ModelFileError(ConvScopeError):
    """A model or weights file cannot be loaded (not Keras, truncated, unsafe...)."""


class UnsafeModelError(ModelFileError):
    """The model needs arbitrary code (Lambda, custom objects) and was not trusted."""


class DiskFullError(ConvScopeError):
    """A file could not be written because its disk (or the user's quota) is full."""


class IntrospectionError(ConvScopeError):
    """An activation / filter / CAM request does not fit the model (no conv layer, bad class...)."""


class ExportError(ConvScopeError):
    """A model cannot be exported to the requested format (an op the format lacks, a runtime that fails)."""


class ParityError(ExportError):
    """The exported artifact does not compute what the Keras model computes (kept under a .failed name)."""
