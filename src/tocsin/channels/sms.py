"""SMS channel: one message per delivery, encoded per 3GPP TS 23.038 and sent over SMPP 3.4.

The same ``tocsin.messages.sms`` code computes the preview, the parts sent here
and the bill, so the three never disagree (SPEC F14, F29).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from tocsin.channels.base import OutgoingMessage, ReceiptEvent, SendOutcome
from tocsin.channels.smpp import (
    InboundHandler,
    Receipt,
    SmppAccount,
    SmppClient,
    SmppError,
    SmppSubmitError,
)
from tocsin.messages.sms import SmsPart, analyse, encode_message, segment_count

log = logging.getLogger(__name__)

ReceiptSink = Callable[[ReceiptEvent], Awaitable[None]]

#: Submissions of one message to a throttling SMSC before it goes back to the queue.
THROTTLE_TRIES = 4
#: First pause after a throttle, seconds (doubling per try).
THROTTLE_PAUSE_SECONDS = 0.05


def _segments_if_changed(text: str, account: SmppAccount) -> int:
    """Segments the network counts for ``text`` sent through ``account`` when that is not
    what the plan counted (``analyse``), else 0. Whatever the concatenation mode
    (message_payload too: the SMSC cuts by the same 3GPP TS 23.040 rule), only a
    16-bit reference changes the count (152 septets / 66 code units a part)."""
    if account.udh_ref == 8:
        return 0  # gsm_coding=3 never costs more segments (messages.sms._fits_latin1)
    counted = segment_count(text, gsm_coding=account.gsm_coding, udh_ref=account.udh_ref)
    return counted if counted != analyse(text).segments else 0


class SmppSender:
    """Sends SMS through one or more SMSC accounts (failover in the order given).

    ``receipts`` is awaited for every delivery receipt before the SMSC gets its
    deliver_sm_resp, so a receipt acknowledged to the SMSC has been stored.
    """

    channel = "sms"

    def __init__(self, accounts: Sequence[SmppAccount], receipts: ReceiptSink,
                 name: str = "smpp", inbound: InboundHandler | None = None) -> None:
        if not accounts:
            raise ValueError("SMPP accounts: at least one is required")
        self.name = name
        self._receipts = receipts
        # ``inbound``: mobile-originated SMS (answers to group messages, issue 10).
        self._clients = [SmppClient(a, on_receipt=self._receipt_handler(a.key),
                                    on_inbound=inbound)
                         for a in accounts]
        self._started: list[SmppClient] = []
        self._reference = itertools.count(1)

    def _receipt_handler(self, account: str) -> Callable[[Receipt], Awaitable[None]]:
        async def on_receipt(receipt: Receipt) -> None:
            # The account is kept with the receipt: message ids repeat across accounts.
            await self._receipts(ReceiptEvent(
                "sms", receipt.message_id, receipt.stat, receipt.err, receipt.done_at,
                extra={"id_source": "tlv"} if receipt.id_from_tlv else {}, account=account))
        return on_receipt

    async def start(self) -> None:
        """Bind every account that answers; raises ``ConnectionError`` when none does."""
        errors = []
        for client in self._clients:
            if client in self._started:
                continue
            try:
                await client.start()
                self._started.append(client)
            except (SmppError, OSError) as exc:
                errors.append(f"{client.account.address}: {exc}")
        if not self._started:
            raise ConnectionError("no SMSC reachable: " + "; ".join(errors))

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Submit each message (all its parts) to the first SMSC that takes it."""
        return list(await asyncio.gather(*(self._send_one(m) for m in messages)))

    async def _send_one(self, message: OutgoingMessage) -> SendOutcome:
        """Submit one message to the first SMSC that takes it (issue 13 classification).

        A final refusal (``smpp_pdu.classify_status``) fails the delivery with its
        status; a throttle slows that account down and tries again a few times
        (``THROTTLE_TRIES``) before handing the message back as a throttled retry; a
        transient error tries the next account, then hands it back as a retry (the
        queue retries until the message's validity ends). A connection lost or a
        response missing with the submit_sm on the wire is an ``unconfirmed`` retry.
        """
        if message.valid_until is not None and message.valid_until <= datetime.now(UTC):
            # A stale alert is never sent; the queue records it as expired (abandoned).
            return SendOutcome(message.delivery_id, "retry",
                               error="validity ended before it could be submitted")
        reference = next(self._reference)
        encoded: dict[tuple[str, int, int], list[SmsPart]] = {}
        last_error, throttled, unconfirmed = "no SMSC bound", False, False
        for client in self._started:
            if client.bound == 0:
                continue
            # Each account has its own concatenation mode and codings (decision 0025).
            account = client.account
            options = (account.concat, account.udh_ref, account.gsm_coding)
            if options not in encoded:
                try:
                    encoded[options] = encode_message(
                        message.text, reference % (256 if account.udh_ref == 8 else 65536),
                        concat=account.concat, udh_ref=account.udh_ref,
                        gsm_coding=account.gsm_coding)
                except ValueError as exc:
                    return SendOutcome(message.delivery_id, "failed", error=f"text: {exc}")
            parts = encoded[options]
            for attempt in range(THROTTLE_TRIES):
                try:
                    ids = await client.submit(message.source, message.address, parts,
                                              valid_until=message.valid_until)
                    return SendOutcome(message.delivery_id, "sent", tuple(ids),
                                       account=client.account.key,
                                       segments=_segments_if_changed(message.text, account))
                except ValueError as exc:
                    return SendOutcome(message.delivery_id, "failed", error=str(exc))
                except SmppSubmitError as exc:
                    last_error = str(exc)
                    if not exc.retryable:
                        return SendOutcome(message.delivery_id, "failed", error=last_error)
                    if not exc.throttle:
                        break  # transient: the next account, or back to the queue
                    throttled = True
                    client.slow_down(pause=THROTTLE_PAUSE_SECONDS * 2 ** attempt)
                except SmppError as exc:
                    last_error = str(exc)
                    unconfirmed = unconfirmed or bool(getattr(exc, "maybe_sent", False))
                    break
            else:
                continue
        return SendOutcome(message.delivery_id, "retry", error=last_error,
                           unconfirmed=unconfirmed, throttled=throttled and not unconfirmed)

    @property
    def connected(self) -> bool:
        return any(c.bound for c in self._started)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._started), return_exceptions=True)
        self._started = []
