"""E-mail channel over SMTP (RFC 5321), from the fixed no-reply sender (SPEC F12, F20, F23).

Two ways of sending, chosen per campaign kind (``campaigns.rules.email_mode``):

* **batch** (alerts, warnings, tests, exercises, group messages): the message
  carries no per-recipient content, so recipients who share a language are sent
  in one SMTP transaction (many RCPT TO, ``To: undisclosed-recipients:;``): one
  DATA serves up to ``SmtpAccount.recipients`` people, which is what makes
  thousands of e-mails per second possible. No recipient address appears in
  the headers or the body.
* **per recipient** (general-interest information): one transaction per
  recipient, ``To:`` the recipient, a signed unsubscribe link in the body and
  the RFC 8058 one-click headers ``List-Unsubscribe: <https://…>`` and
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.

Every message has ``From:`` the no-reply address, ``Auto-Submitted:
auto-generated`` (RFC 3834), a ``Message-ID`` that names its campaign
(``<t.<campaign_id>.<random>@<sender domain>>``, stored as the deliveries'
``provider_message_id``, so an asynchronous bounce — a DSN, RFC 3464 — finds
its deliveries by that id and its ``Final-Recipient``), and, when a key is
configured, a DKIM signature (RFC 6376, relaxed/relaxed, rsa-sha256) covering
the List-Unsubscribe headers as RFC 8058 §3 requires.

SMTP replies (RFC 5321 §4.2, enhanced codes RFC 3463): a 5xx at RCPT TO or DATA
fails the delivery with the code in its reason; an address-class refusal
(``5.1.x`` bad address, ``5.2.1`` mailbox disabled, or a bare 550/551/553 at
RCPT TO) is a hard bounce that marks the contact point invalid; a 4xx is
retried with back-off.

When the relay advertises PIPELINING in its EHLO reply (RFC 2920), the envelope
(MAIL FROM and every RCPT TO) goes in one write and the replies are read in
order afterwards: a 100-recipient transaction costs three round trips (envelope,
DATA, message) instead of 103. Without PIPELINING, one command at a time.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import html as html_lib
import itertools
import logging
import re
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import normalize_message_line_endings

from tocsin.channels.base import OutgoingMessage, SendOutcome
from tocsin.core.i18n import N_, gettext

if TYPE_CHECKING:
    from tocsin.core.settings import Settings

log = logging.getLogger(__name__)

UNDISCLOSED = "undisclosed-recipients:;"

# RFC 5322 lines are at most 78 characters, so the SMTP policy folds headers.
_POLICY = email.policy.SMTP


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


# ----------------------------------------------------------------------------- DKIM

# RFC 6376 §5.4.1 recommended fields, plus RFC 8058 §3 (both List-Unsubscribe fields
# MUST be signed) and the fields Tocsin sets; only those present are signed.
DKIM_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "Content-Transfer-Encoding", "Content-Language", "Auto-Submitted",
    "List-Unsubscribe", "List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class DkimSigner:
    """Signs outgoing e-mail with DKIM (RFC 6376): ``d=domain``, ``s=selector``.

    ``private_key``: the PEM RSA private key (PKCS#1 or PKCS#8). The public key is
    published in DNS at ``<selector>._domainkey.<domain>`` (TXT ``v=DKIM1; k=rsa; p=…``).
    """

    domain: str
    selector: str
    private_key: bytes = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        """The signer of ``dkim_domain``/``dkim_selector``/``dkim_private_key_file``,
        or None when DKIM is not configured (all three empty).

        Raises ``ValueError`` naming the setting when it is half configured or the
        key file is unreadable or not an RSA private key.
        """
        domain = settings.dkim_domain.strip()
        selector = settings.dkim_selector.strip()
        key_file = settings.dkim_private_key_file.strip()
        if not (domain or selector or key_file):
            return None
        for name, value in (("TOCSIN_DKIM_DOMAIN", domain), ("TOCSIN_DKIM_SELECTOR", selector),
                            ("TOCSIN_DKIM_PRIVATE_KEY_FILE", key_file)):
            if not value:
                raise ValueError(f"{name}: required when DKIM signing is configured")
        try:
            pem = Path(key_file).read_bytes()
        except OSError as exc:
            raise ValueError(f"TOCSIN_DKIM_PRIVATE_KEY_FILE: cannot read {key_file}: "
                             f"{exc.strerror}") from None
        return cls(domain, selector, pem).checked()

    def checked(self) -> DkimSigner:
        """This signer, after checking its key parses; raises ``ValueError``."""
        from dkim.crypto import UnparsableKeyError, parse_pem_private_key

        try:
            parse_pem_private_key(self.private_key)
        except (UnparsableKeyError, ValueError, IndexError) as exc:
            raise ValueError(f"TOCSIN_DKIM_PRIVATE_KEY_FILE: not a PEM RSA private key "
                             f"({exc})") from None
        return self

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends) with a ``DKIM-Signature`` header prepended."""
        import dkim

        present = {k.lower() for k in email.message_from_bytes(message).keys()}
        include = [h.lower().encode() for h in DKIM_HEADERS if h.lower() in present]
        signature = dkim.sign(message, self.selector.encode(), self.domain.encode(),
                              self.private_key, canonicalize=(b"relaxed", b"relaxed"),
                              include_headers=include)
        return bytes(signature) + message


# ----------------------------------------------------------------------------- messages

_MESSAGE_ID = re.compile(r"<?t\.([A-Za-z0-9_-]{1,64})\.[0-9a-f]+@[^>\s]+>?")


def new_message_id(campaign_id: str, sender: str) -> str:
    """A fresh ``<t.<campaign_id>.<random>@<sender's domain>>`` (RFC 5322 §3.6.4)."""
    domain = sender.rpartition("@")[2] or "tocsin.invalid"
    return f"<t.{campaign_id}.{secrets.token_hex(8)}@{domain}>"


def campaign_of_message_id(message_id: str) -> str | None:
    """The campaign id a Tocsin ``Message-ID`` names, or None for any other id."""
    m = _MESSAGE_ID.fullmatch(message_id.strip())
    return m.group(1) if m else None


#: The information e-mail's footer, in the recipient's language through the catalogues:
#: why they receive it, and the words before the unsubscribe link.
_UNSUBSCRIBE_TEXT = (
    N_("You receive this general-interest information because you signed up for it. "
       "Alerts will still reach you."),
    N_("Stop receiving general-interest information"),
)

_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def _check_header_url(url: str) -> str:
    if not url.isascii() or any(c.isspace() or c in "<>\"" for c in url) \
            or not url.startswith(("https://", "http://")):
        raise ValueError(f"unsubscribe_url: not an http(s) URL usable in a header: {url!r}")
    return url


def build_email(sender: str, subject: str, body: str, language: str, *, html: str = "",
                recipient: str = "", unsubscribe_url: str = "", message_id: str = "",
                dkim: DkimSigner | None = None) -> bytes:
    """The RFC 5322 message, CRLF line ends, ready for DATA.

    ``body``: plain text; ``html``: its HTML alternative (``multipart/alternative``
    when given). Without ``recipient`` the message is a batched alert: ``To:
    undisclosed-recipients:;`` and nothing personal. With ``recipient`` and
    ``unsubscribe_url`` (information e-mails), ``To:`` is the recipient, the
    body (text and HTML) ends with the unsubscribe link in ``language`` and the
    RFC 8058 headers are set. ``message_id`` defaults to a random one;
    ``dkim`` signs the result. Raises ``ValueError`` for an unusable URL.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient or UNDISCLOSED
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id or new_message_id("x", sender)
    if language:
        msg["Content-Language"] = language
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to an alert
    if unsubscribe_url:
        _check_header_url(unsubscribe_url)
        note, label = (gettext(language, text) for text in _UNSUBSCRIBE_TEXT)
        body = f"{body.rstrip()}\n\n-- \n{note}\n{label}: {unsubscribe_url}\n"
        if html:
            link = html_lib.escape(unsubscribe_url, quote=True)
            footer = (f'<hr><p style="font-size:small">{html_lib.escape(note)}<br>'
                      f'<a href="{link}">{html_lib.escape(label)}</a></p>')
            ends = list(_BODY_END.finditer(html))
            html = (html[:ends[-1].start()] + footer + html[ends[-1].start():]) if ends \
                else html + footer
    msg.set_content(body, cte="quoted-printable")
    if html:
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    data = msg.as_bytes(policy=_POLICY)
    if unsubscribe_url:
        # Written raw: the header folder would turn a long URL into RFC 2047 encoded
        # words, which no mail client follows (RFC 5322 §2.1.1: lines up to 998 octets).
        data = (f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n").encode("ascii") + data
    return dkim.sign(data) if dkim is not None else data


# ----------------------------------------------------------------------------- SMTP replies

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(message: str) -> str:
    """The RFC 3463 enhanced status code at the start of a reply text (``"5.1.1"``), or ""."""
    m = _ENHANCED.match(message or "")
    return ".".join(m.groups()) if m else ""


def is_address_failure(status: str, code: int = 0, at_rcpt: bool = False) -> bool:
    """True when a refusal condemns the address itself (a hard bounce).

    RFC 3463: ``5.1.x`` (bad destination mailbox / system / syntax) and ``5.2.1``
    (mailbox disabled). Without an enhanced code, RFC 5321 §4.2.3 550, 551 and 553
    answered at RCPT TO. ``5.2.2`` (mailbox full), ``5.7.x`` (policy) and other
    permanent failures fail the delivery but leave the address valid.
    """
    if status:
        return status.startswith("5.1.") or status == "5.2.1"
    return at_rcpt and code in (550, 551, 553)


def _refusal(m: OutgoingMessage, code: int, message: str, at_rcpt: bool,
             single: bool = True) -> SendOutcome:
    status = enhanced_status(message)
    text = " ".join(message.split())
    if code >= 500:
        # The reply text starts with the enhanced code when the server has one.
        return SendOutcome(m.delivery_id, "failed", error=f"SMTP {code}: {text}"[:500],
                           hard_bounce=single and is_address_failure(status, code, at_rcpt))
    return SendOutcome(m.delivery_id, "retry", error=f"SMTP {code}: {text}"[:500])


# ----------------------------------------------------------------------------- pipelining

_REPLY_END = re.compile(rb"^\d{3}(?: [^\n]*)?\r?\n", re.MULTILINE)
_MAX_REPLY_BUFFER = 1 << 20


class _ReplyCollector(asyncio.Protocol):
    """Collects the successive SMTP replies to pipelined commands (RFC 2920 §3.1).

    aiosmtplib's protocol reads one reply per command and drops bytes arriving
    while no command awaits a reply, so the replies to a pipelined group would
    be lost. While the envelope is pipelined, the session's transport is handed
    to this collector (``transport.set_protocol``) and handed back afterwards.
    Flow control goes on to the session's own protocol.
    """

    def __init__(self, owner: asyncio.BaseProtocol) -> None:
        self._owner = owner
        self._buffer = bytearray()
        self._replies: list[aiosmtplib.SMTPResponse] = []
        self._changed = asyncio.get_running_loop().create_future()
        self.lost: Exception | None = None

    def pause_writing(self) -> None:
        self._owner.pause_writing()

    def resume_writing(self) -> None:
        self._owner.resume_writing()

    def _wake(self) -> None:
        if not self._changed.done():
            self._changed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        if len(self._buffer) > _MAX_REPLY_BUFFER:
            self.lost = aiosmtplib.SMTPResponseException(-1, "Response too long")
        else:
            while (end := _REPLY_END.search(self._buffer)) is not None:
                lines = bytes(self._buffer[:end.end()]).splitlines()
                del self._buffer[:end.end()]
                try:
                    code = int(lines[-1][:3])
                except ValueError:
                    self.lost = aiosmtplib.SMTPResponseException(-1, "Malformed SMTP reply")
                    break
                text = b"\n".join(line[4:].strip(b" \t\r\n") for line in lines)
                self._replies.append(aiosmtplib.SMTPResponse(
                    code, text.decode("utf-8", "surrogateescape")))
        self._wake()

    def eof_received(self) -> bool:
        self.lost = self.lost or aiosmtplib.SMTPServerDisconnected("Unexpected EOF received")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or aiosmtplib.SMTPServerDisconnected("Connection lost")
        self._wake()

    async def replies(self, count: int, timeout: float | None) -> list[aiosmtplib.SMTPResponse]:
        """The first ``count`` replies; raises ``SMTPServerDisconnected``,
        ``SMTPReadTimeoutError`` or ``SMTPResponseException``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while len(self._replies) < count:
            if self.lost is not None:
                raise self.lost
            self._changed = loop.create_future()
            left = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                await asyncio.wait_for(self._changed, left)
            except TimeoutError:
                raise aiosmtplib.SMTPReadTimeoutError(
                    "Timed out waiting for pipelined replies") from None
        if self._buffer or len(self._replies) > count:
            raise aiosmtplib.SMTPResponseException(-1, "Unexpected data after the replies")
        return self._replies[:count]


async def pipelined_envelope(client: aiosmtplib.SMTP, commands: Sequence[bytes]
                             ) -> list[aiosmtplib.SMTPResponse]:
    """Write ``commands`` (each ending in CRLF) in one write; their replies, in order.

    RFC 2920 §3.1: MAIL and RCPT may be pipelined; the caller sends DATA on its
    own and awaits its 354. The session's transport goes to a collector for
    the duration and back to its protocol. On a lost connection, a timeout or
    a garbled reply the session is closed and the error raised
    (``SMTPServerDisconnected``, ``SMTPReadTimeoutError``, ``SMTPResponseException``).
    """
    transport = client.transport
    if client.protocol is None or transport is None or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    owner = transport.get_protocol()
    collector = _ReplyCollector(owner)
    transport.set_protocol(collector)
    try:
        client.protocol.write(b"".join(commands))
        replies = await collector.replies(len(commands), client.timeout)
    except BaseException:
        transport.set_protocol(owner)
        client.close()
        raise
    transport.set_protocol(owner)
    return replies


# ----------------------------------------------------------------------------- sender


@dataclass(frozen=True, slots=True)
class _Transaction:
    """One SMTP transaction: one message to one or more recipients."""

    messages: tuple[OutgoingMessage, ...]
    utf8: bool  # RFC 6531 SMTPUTF8: a recipient address is not ASCII


class SmtpSender:
    """Sends e-mail deliveries through one SMTP relay with a pool of sessions.

    ``dkim``: signs every message when given (``DkimSigner.from_settings``).
    """

    channel = "email"

    def __init__(self, account: SmtpAccount, name: str = "smtp",
                 dkim: DkimSigner | None = None) -> None:
        self.account = account
        self.name = name
        self.dkim = dkim
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

    def transactions(self, messages: Sequence[OutgoingMessage]) -> list[_Transaction]:
        """Group messages into SMTP transactions.

        A message with an ``unsubscribe_url`` is personal: a transaction of its own.
        The others are grouped by identical content (sender, subject, text, HTML,
        language) in transactions of up to ``recipients`` addresses.
        """
        out: list[_Transaction] = []
        groups: dict[tuple[str, str, str, str, str, bool], list[OutgoingMessage]] = {}
        for m in messages:
            utf8 = not m.address.isascii()
            if m.unsubscribe_url:
                out.append(_Transaction((m,), utf8))
            else:
                key = (m.source, m.subject, m.text, m.html, m.language, utf8)
                groups.setdefault(key, []).append(m)
        size = self.account.recipients
        for key, group in groups.items():
            out += [_Transaction(tuple(group[i:i + size]), key[-1])
                    for i in range(0, len(group), size)]
        return out

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Send every message; one outcome per message (see ``transactions``)."""
        results = await asyncio.gather(*(self._send_transaction(t)
                                         for t in self.transactions(messages)))
        return [outcome for chunk in results for outcome in chunk]

    async def _send_transaction(self, tx: _Transaction) -> list[SendOutcome]:
        chunk = list(tx.messages)
        first = chunk[0]
        personal = bool(first.unsubscribe_url)
        message_id = new_message_id(first.campaign_id, first.source)
        try:
            data = build_email(
                first.source, first.subject, first.text, first.language, html=first.html,
                recipient=first.address if personal else "",
                unsubscribe_url=first.unsubscribe_url, message_id=message_id, dkim=self.dkim)
        except Exception as exc:  # noqa: BLE001 - a message that cannot be built never will be
            log.exception("building an e-mail for campaign %s failed", first.campaign_id)
            return [SendOutcome(m.delivery_id, "failed", error=f"message: {exc}"[:500])
                    for m in chunk]
        stored_id = message_id.strip("<>")
        client = await self._pool.get()
        try:
            if not client.is_connected:
                await client.connect()
            errors = await self._sendmail(client, first.source, [m.address for m in chunk],
                                          data, tx.utf8)
            return [
                _refusal(m, errors[m.address].code, errors[m.address].message, at_rcpt=True)
                if m.address in errors else SendOutcome(m.delivery_id, "sent", (stored_id,))
                for m in chunk
            ]
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = {r.recipient: r for r in exc.recipients}
            return [_refusal(m, refused[m.address].code, refused[m.address].message,
                             at_rcpt=True) for m in chunk]
        except aiosmtplib.SMTPDataError as exc:
            # One reply for the whole transaction: it condemns an address only when
            # the transaction had one recipient (else a content filter would
            # invalidate a hundred good addresses).
            return [_refusal(m, exc.code, exc.message, at_rcpt=False, single=len(chunk) == 1)
                    for m in chunk]
        except aiosmtplib.SMTPNotSupported as exc:
            return [SendOutcome(m.delivery_id, "failed",
                                error=f"SMTP: the relay cannot take this address ({exc})"[:500])
                    for m in chunk]
        except aiosmtplib.SMTPSenderRefused as exc:
            # Our own sender refused: a relay configuration problem, retried with back-off.
            return [SendOutcome(m.delivery_id, "retry",
                                error=f"SMTP {exc.code}: sender {exc.sender} refused: "
                                      f"{exc.message}"[:500]) for m in chunk]
        except ValueError as exc:
            # aiosmtplib refuses an address it cannot put in a command: never sendable.
            return [SendOutcome(m.delivery_id, "failed", error=f"address: {exc}"[:500])
                    for m in chunk]
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The session is in an unknown state: reconnect it next time.
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken session must not mask the cause
                pass
            return [SendOutcome(m.delivery_id, "retry", error=f"SMTP: {exc}"[:500]) for m in chunk]
        finally:
            self._pool.put_nowait(client)

    async def _sendmail(self, client: aiosmtplib.SMTP, sender: str, recipients: list[str],
                        data: bytes, utf8: bool) -> dict[str, aiosmtplib.SMTPResponse]:
        """One transaction; the refused recipients and their replies.

        Raises as ``aiosmtplib.SMTP.sendmail`` does (``SMTPRecipientsRefused``
        when every RCPT TO is refused, ``SMTPSenderRefused``, ``SMTPDataError``,
        ``SMTPNotSupported``, ``ValueError`` for an address unfit for a command),
        after RSET when the envelope or the message was refused. The envelope is
        pipelined when the relay advertises PIPELINING (RFC 2920).
        """
        if client.is_ehlo_or_helo_needed:
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
        if not client.supports_extension("pipelining"):
            errors, _response = await client.sendmail(
                sender, recipients, data, mail_options=["SMTPUTF8"] if utf8 else None)
            return errors
        if utf8 and not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
        encoding = "utf-8" if utf8 else "ascii"
        options = b""
        if client.supports_extension("size"):  # RFC 1870: octets as sent, CRLF included
            options += b" SIZE=%d" % len(normalize_message_line_endings(data))
        if utf8:
            options += b" SMTPUTF8"
        commands = [b"MAIL FROM:" + quote_address(sender).encode(encoding) + options + b"\r\n"]
        commands += [b"RCPT TO:" + quote_address(r).encode(encoding) + b"\r\n"
                     for r in recipients]
        mail, *rcpts = await pipelined_envelope(client, commands)
        refused = [aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, address)
                   for address, reply in zip(recipients, rcpts, strict=True)
                   if reply.code not in (250, 251)]
        try:
            if mail.code != 250:
                raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
            if len(refused) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(refused)
            await client.data(data)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            try:
                await client.rset()
            except (ConnectionError, aiosmtplib.SMTPResponseException):
                pass
            raise
        return {e.recipient: aiosmtplib.SMTPResponse(e.code, e.message) for e in refused}

    async def close(self) -> None:
        for client in self._clients:
            try:
                if client.is_connected:
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        self._clients = []
        self._pool = asyncio.Queue()


# ----------------------------------------------------------------------------- bounces


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One per-recipient block of a delivery status notification (RFC 3464 §2.3).

    ``address``: the ``Final-Recipient`` (else ``Original-Recipient``) mailbox;
    ``action``: failed | delayed | delivered | relayed | expanded; ``status``:
    the RFC 3463 code (``5.1.1``); ``diagnostic``: the remote MTA's reply, if any.
    """

    address: str
    action: str
    status: str
    diagnostic: str = ""

    @property
    def permanent_failure(self) -> bool:
        """``Action: failed`` with a 5.x.x status (RFC 3464 §2.3.3)."""
        return self.action == "failed" and self.status.startswith("5.")


@dataclass(frozen=True, slots=True)
class Dsn:
    """A parsed delivery status notification: the bounced message's id and recipients."""

    message_id: str  # without angle brackets; "" when the report does not say
    recipients: tuple[DsnRecipient, ...]


def _field_value(value: str | None) -> str:
    """``rfc822; alice@example.org`` -> ``alice@example.org`` (RFC 3464 §2.3.1 type prefix)."""
    text = " ".join(str(value or "").split())
    return text.partition(";")[2].strip() if ";" in text else text


def parse_dsn(data: bytes) -> Dsn:
    """Parse a bounce: ``multipart/report; report-type=delivery-status`` (RFC 3462/3464).

    The original ``Message-ID`` is read from the returned ``text/rfc822-headers``
    or ``message/rfc822`` part. Raises ``ValueError`` when ``data`` is not a
    delivery status notification or names no recipient.
    """
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    report_type = msg.get_param("report-type")
    if msg.get_content_type() != "multipart/report" \
            or not isinstance(report_type, str) or report_type.lower() != "delivery-status":
        raise ValueError("dsn: not a multipart/report; report-type=delivery-status message "
                         "(RFC 3464)")
    recipients: list[DsnRecipient] = []
    message_id = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            if not isinstance(blocks, list):
                raise ValueError("dsn: the message/delivery-status part is empty")
            for block in blocks[1:]:  # the first block holds the per-message fields
                if not isinstance(block, Message):
                    continue
                address = _field_value(block.get("Final-Recipient")
                                       or block.get("Original-Recipient"))
                if address:
                    recipients.append(DsnRecipient(
                        address=address,
                        action=str(block.get("Action", "")).strip().lower(),
                        status=str(block.get("Status", "")).strip().split(" ")[0],
                        diagnostic=_field_value(block.get("Diagnostic-Code"))[:300]))
        elif ctype == "text/rfc822-headers" and not message_id:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = email.message_from_bytes(payload, policy=email.policy.compat32)
                message_id = str(headers.get("Message-ID", "")).strip()
        elif ctype == "message/rfc822" and not message_id:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                message_id = str(inner[0].get("Message-ID", "")).strip()
    if not recipients:
        raise ValueError("dsn: no per-recipient block with a Final-Recipient")
    return Dsn(message_id.strip("<> \t"), tuple(recipients))
