"""Errors of the message tools (voice estimate, language check, SMS preview)."""

from __future__ import annotations

__all__ = ["MessageInputError"]


class MessageInputError(ValueError):
    """A message-tool input is invalid; ``field`` names it, ``reason`` says why.

    A ``ValueError`` with ``field``: the web app answers it 422
    ``{"error": {"field", "reason"}}`` and the CLI exits 1 naming the field.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason
