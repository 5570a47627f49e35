"""Domain errors. Domain code raises these; api.py / views.py turn them into HTTP answers."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a rule of the domain was broken by the caller's input."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The object does not exist, or the actor may not see it (both look the same from outside)."""


class InvalidInput(DomainError):
    """The input is malformed; ``field`` names the offending field."""


class PermissionDenied(DomainError):
    """The actor may see the object but not do this to it."""
