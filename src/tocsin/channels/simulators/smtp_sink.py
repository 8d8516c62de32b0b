"""SMTP server that accepts every message and keeps it in memory (the e-mail simulator).

A real SMTP conversation (aiosmtpd), so the e-mail channel is tested over the
protocol it uses in production.
"""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


@dataclass
class ReceivedEmail:
    """One SMTP transaction as received: envelope sender, recipients and the message."""

    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    keep: bool
    reject: set[str] = field(default_factory=set)
    replies: dict[str, str] = field(default_factory=dict)
    data_reply: str = ""
    messages: list[ReceivedEmail] = field(default_factory=list)
    recipients: int = 0
    transactions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.replies:
            return self.replies[address.lower()]
        if address.lower() in self.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.transactions += 1
            self.recipients += len(envelope.rcpt_tos)
            if self.keep:
                self.messages.append(ReceivedEmail(
                    str(envelope.mail_from), list(envelope.rcpt_tos), _as_bytes(envelope.content)
                ))
        return "250 2.0.0 queued"


def _as_bytes(content: bytes | str | None) -> bytes:
    if content is None:
        return b""
    return content.encode("utf-8") if isinstance(content, str) else bytes(content)


class SmtpSink:
    """An SMTP server on ``host``:``port`` (0 = any free port) that accepts everything.

    ``keep=False`` only counts (for benchmarks); ``reject`` lists addresses answered
    with ``550 5.1.1`` at RCPT TO (a permanent failure, RFC 5321 §4.2.2, RFC 3463);
    ``replies`` maps an address to any RCPT TO reply (``"451 4.3.0 try later"``,
    ``"552 5.2.2 mailbox full"``); ``data_reply`` answers every DATA with that reply
    instead of accepting (e.g. ``"554 5.7.1 rejected by content filter"``).
    Attributes of ``handler`` may be changed while the server runs.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep: bool = True,
                 reject: set[str] | None = None, replies: dict[str, str] | None = None,
                 data_reply: str = "") -> None:
        self.handler = _Handler(keep=keep, reject={r.lower() for r in (reject or set())},
                                replies={k.lower(): v for k, v in (replies or {}).items()},
                                data_reply=data_reply)
        self._controller = Controller(self.handler, hostname=host, port=port or _free_port(host),
                                      ready_timeout=10)
        self.host = host

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedEmail]:
        return self.handler.messages

    def deliveries(self) -> list[tuple[str, ReceivedEmail]]:
        """One (recipient, message) pair per recipient received."""
        return [(r, m) for m in self.handler.messages for r in m.recipients]

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
