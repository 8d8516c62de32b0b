"""E-mail channel over SMTP (RFC 5321), from the fixed no-reply sender (SPEC F20, F23).

Alert e-mails carry no per-recipient content, so recipients who share a
language are sent in one SMTP transaction (many RCPT TO, ``To:
undisclosed-recipients:;``): one DATA serves up to ``recipients_per_message``
people, which is what makes thousands of e-mails per second possible.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from tocsin.channels.base import OutgoingMessage, SendOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpAccount:
    """An SMTP relay: ``smtp://[user:pass@]host:port[?starttls=1]`` or ``smtps://…``.

    ``connections``: parallel SMTP sessions; ``recipients``: most RCPT TO per message.
    """

    host: str
    port: int
    username: str = ""
    password: str = ""
    implicit_tls: bool = False
    starttls: bool = False
    connections: int = 4
    recipients: int = 100

    @classmethod
    def from_url(cls, url: str) -> SmtpAccount:
        """Parse a ``TOCSIN_SMTP_URL``; raises ``ValueError`` naming the wrong part."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"TOCSIN_SMTP_URL: scheme must be smtp or smtps, got {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("TOCSIN_SMTP_URL: host is missing")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError as exc:
            raise ValueError(f"TOCSIN_SMTP_URL: bad port ({exc})") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            connections = int(query.get("connections", 4))
            recipients = int(query.get("recipients", 100))
        except ValueError:
            raise ValueError(
                "TOCSIN_SMTP_URL: connections and recipients must be integers") from None
        if connections < 1 or recipients < 1:
            raise ValueError("TOCSIN_SMTP_URL: connections and recipients must be at least 1")
        return cls(
            host=parts.hostname, port=port,
            username=unquote(parts.username or ""), password=unquote(parts.password or ""),
            implicit_tls=parts.scheme == "smtps",
            starttls=query.get("starttls", "0") in ("1", "true", "yes"),
            connections=connections, recipients=recipients,
        )


def build_email(sender: str, subject: str, body: str, language: str) -> bytes:
    """The RFC 5322 message for one alert text: plain text UTF-8, no personal data."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "undisclosed-recipients:;"
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "tocsin.invalid")
    msg["Content-Language"] = language
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to an alert
    msg.set_content(body)
    return msg.as_bytes()


class SmtpSender:
    """Sends e-mail deliveries through one SMTP relay with a pool of sessions."""

    channel = "email"

    def __init__(self, account: SmtpAccount, name: str = "smtp") -> None:
        self.account = account
        self.name = name
        self._pool: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._clients: list[aiosmtplib.SMTP] = []
        self._ids = itertools.count(1)

    def _client(self) -> aiosmtplib.SMTP:
        a = self.account
        return aiosmtplib.SMTP(
            hostname=a.host, port=a.port, use_tls=a.implicit_tls, start_tls=a.starttls or None,
            username=a.username or None, password=a.password or None, timeout=30,
            tls_context=ssl.create_default_context() if (a.implicit_tls or a.starttls) else None,
        )

    async def start(self) -> None:
        """Open the sessions; raises ``ConnectionError`` when the relay is unreachable."""
        if self._clients:
            return
        try:
            for _ in range(self.account.connections):
                client = self._client()
                await client.connect()
                self._clients.append(client)
                self._pool.put_nowait(client)
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self.close()
            raise ConnectionError(
                f"SMTP relay {self.account.host}:{self.account.port}: {exc}"
            ) from exc

    @property
    def connected(self) -> bool:
        return bool(self._clients)

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Send in transactions of up to ``recipients`` people sharing one text."""
        groups: dict[tuple[str, str, str, str], list[OutgoingMessage]] = {}
        for m in messages:
            groups.setdefault((m.source, m.subject, m.text, m.language), []).append(m)
        chunks = []
        size = self.account.recipients
        for key, group in groups.items():
            chunks += [(key, group[i:i + size]) for i in range(0, len(group), size)]
        results = await asyncio.gather(*(self._send_chunk(k, c) for k, c in chunks))
        return [outcome for chunk in results for outcome in chunk]

    async def _send_chunk(self, key: tuple[str, str, str, str],
                          chunk: list[OutgoingMessage]) -> list[SendOutcome]:
        source, subject, text, language = key
        data = build_email(source, subject, text, language)
        client = await self._pool.get()
        try:
            if not client.is_connected:
                await client.connect()
            errors, _response = await client.sendmail(source, [m.address for m in chunk], data)
            message_id = f"smtp-{next(self._ids)}"
            return [
                SendOutcome(m.delivery_id, "failed", error=f"SMTP {errors[m.address][0]}: "
                            f"{errors[m.address][1]}"[:500])
                if m.address in errors else SendOutcome(m.delivery_id, "sent", (message_id,))
                for m in chunk
            ]
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = {r.recipient: r for r in exc.recipients}
            return [
                SendOutcome(m.delivery_id, "failed" if refused[m.address].code >= 500 else "retry",
                            error=f"SMTP {refused[m.address].code}: {refused[m.address].message}")
                for m in chunk
            ]
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The session is in an unknown state: reconnect it next time.
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken session must not mask the cause
                pass
            return [SendOutcome(m.delivery_id, "retry", error=f"SMTP: {exc}"[:500]) for m in chunk]
        finally:
            self._pool.put_nowait(client)

    async def close(self) -> None:
        for client in self._clients:
            try:
                if client.is_connected:
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        self._clients = []
        self._pool = asyncio.Queue()
