"""The interface every channel sender implements, and what it returns.

A sender takes a batch of claimed deliveries and reports, per delivery, whether
the provider accepted it (``sent``, with its message ids), refused it for good
(``failed``) or could not take it now (``retry``). It never touches the database:
the dispatch worker records outcomes (STYLE: outside systems behind a small
interface with a real and a local implementation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One claimed delivery, ready to send.

    ``address``: E.164 number or e-mail address; ``text``: the SMS text or e-mail
    body in ``language``; ``subject``: e-mail subject (empty for SMS); ``source``:
    SMS source address or e-mail From. E-mail only: ``html`` the HTML alternative
    of ``text`` (empty = plain text only); ``unsubscribe_url`` the recipient's
    signed one-click unsubscribe link (RFC 8058) — a message that has one is
    personal, so it is sent alone, never batched with other recipients.
    ``valid_until``: aware UTC datetime after which the message must not be
    delivered any more (SMS: submit_sm validity_period), or None.
    """

    delivery_id: int
    campaign_id: str
    address: str
    language: str
    text: str
    subject: str = ""
    source: str = ""
    html: str = ""
    unsubscribe_url: str = ""
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one ``OutgoingMessage``.

    ``result``: ``sent`` (accepted by the provider: SMPP submit_sm_resp OK, SMTP 250),
    ``failed`` (refused for good) or ``retry`` (transient: try again later).
    ``message_ids``: provider ids (one per SMS part; the e-mail's Message-ID) so
    receipts and bounces find the delivery. ``hard_bounce``: the provider refused
    the address itself for good (e-mail: RFC 3463 ``5.1.x`` bad address or
    ``5.2.1`` mailbox disabled); the contact points with it are marked invalid.
    ``account``: the provider account that accepted it (``SmppAccount.key``), so
    its message ids are keyed by account. ``unconfirmed``: a ``retry`` whose
    message may have been accepted all the same (the connection was lost or the
    response timed out with the request on the wire): counted, never billed as
    sure. ``throttled``: a ``retry`` because the provider asked to slow down
    (not the message's fault: it does not count as an attempt). ``segments``: SMS
    only, when the provider account cut the text into another number of segments than
    the plan counted (a 16-bit concatenation reference leaves 152 septets a part, not
    153; decision 0025): the delivery's segments and cost are recorded anew; 0 = as
    planned.
    """

    delivery_id: int
    result: Literal["sent", "failed", "retry"]
    message_ids: tuple[str, ...] = ()
    error: str = ""
    hard_bounce: bool = False
    account: str = ""
    unconfirmed: bool = False
    throttled: bool = False
    segments: int = 0


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """A delivery receipt as received from a provider (SMPP deliver_sm, DSN)."""

    channel: str
    message_id: str
    stat: str
    err: str = ""
    done_at: object = None  # aware datetime or None
    extra: dict[str, str] = field(default_factory=dict)
    account: str = ""  # the provider account whose session received it, "" unknown


class ChannelSender(Protocol):
    """A provider connection for one channel (``sms``, ``email``)."""

    channel: str
    name: str

    async def start(self) -> None:
        """Connect; raises ``ConnectionError`` (or a subclass) when the provider is unreachable."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Send a batch; returns one outcome per message, in any order. Never raises for
        a per-message problem; raises ``ConnectionError`` when the provider is lost."""

    async def close(self) -> None:
        """Disconnect gracefully."""
