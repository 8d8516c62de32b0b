"""SMS channel: one message per delivery, encoded per 3GPP TS 23.038 and sent over SMPP 3.4.

The same ``tocsin.messages.sms`` code computes the preview, the parts sent here
and the bill, so the three never disagree (SPEC F14, F29).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence

from tocsin.channels.base import OutgoingMessage, ReceiptEvent, SendOutcome
from tocsin.channels.smpp import Receipt, SmppAccount, SmppClient, SmppError
from tocsin.messages.sms import encode_parts

log = logging.getLogger(__name__)

ReceiptSink = Callable[[ReceiptEvent], Awaitable[None]]


class SmppSender:
    """Sends SMS through one or more SMSC accounts (failover in the order given).

    ``receipts`` is awaited for every delivery receipt before the SMSC gets its
    deliver_sm_resp, so a receipt acknowledged to the SMSC has been stored.
    """

    channel = "sms"

    def __init__(self, accounts: Sequence[SmppAccount], receipts: ReceiptSink,
                 name: str = "smpp") -> None:
        if not accounts:
            raise ValueError("SMPP accounts: at least one is required")
        self.name = name
        self._receipts = receipts
        self._clients = [SmppClient(a, on_receipt=self._on_receipt) for a in accounts]
        self._started: list[SmppClient] = []
        self._reference = itertools.count(1)

    async def _on_receipt(self, receipt: Receipt) -> None:
        await self._receipts(
            ReceiptEvent("sms", receipt.message_id, receipt.stat, receipt.err, receipt.done_at)
        )

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
        try:
            parts = encode_parts(message.text, next(self._reference) % 256)
        except ValueError as exc:
            return SendOutcome(message.delivery_id, "failed", error=f"text: {exc}")
        last_error = "no SMSC bound"
        for client in self._started:
            if client.bound == 0:
                continue
            try:
                ids = await client.submit(message.source, message.address, parts)
                return SendOutcome(message.delivery_id, "sent", tuple(ids))
            except ValueError as exc:
                return SendOutcome(message.delivery_id, "failed", error=str(exc))
            except SmppError as exc:
                last_error = str(exc)
                if not exc.retryable:
                    return SendOutcome(message.delivery_id, "failed", error=last_error)
        return SendOutcome(message.delivery_id, "retry", error=last_error)

    @property
    def connected(self) -> bool:
        return any(c.bound for c in self._started)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._started), return_exceptions=True)
        self._started = []
