"""Provider rate limits that hold across every worker, kept in the database (issue 13).

One ``provider_rate`` row per provider account is a token bucket: ``rate`` tokens
a second, at most ``burst`` kept. A worker takes tokens in blocks (``take``: one
short row-locked transaction per block, about a tenth of a second's worth), then
spends them locally, so N workers together never submit more than the account's
``tps`` (plus one block each at the start), with no service beyond the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.core.db import is_postgres, table, transaction, utcnow
from tocsin.dispatch.models import ProviderRate


def take(engine: Engine, account: str, rate: float, want: int,
         burst: float | None = None, now: dt.datetime | None = None) -> int:
    """Take up to ``want`` tokens of ``account``'s bucket (``rate`` per second, at most
    ``burst`` stored, default ``rate / 5``); returns how many were granted (0 when
    the bucket is empty: retry after ``want / rate`` seconds). Creates the bucket,
    full, on first use."""
    if rate <= 0 or want <= 0:
        return 0
    burst = max(float(want), burst if burst is not None else rate / 5)
    now = now or utcnow()
    p = table(ProviderRate)
    with transaction(engine) as s:
        q = sa.select(p.c.tokens, p.c.updated_at).where(p.c.account == account)
        if is_postgres(engine):
            q = q.with_for_update()
        row = s.execute(q).first()
        if row is None:
            tokens = burst
            if is_postgres(engine):
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                s.execute(pg_insert(p).values(account=account, tokens=tokens, updated_at=now)
                          .on_conflict_do_nothing())
                row = s.execute(q).first()
                assert row is not None
            else:
                s.execute(sa.insert(p).values(account=account, tokens=tokens, updated_at=now))
        if row is not None:
            last = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(
                tzinfo=dt.UTC)
            elapsed = max(0.0, (now - last).total_seconds())
            tokens = min(burst, float(row.tokens) + elapsed * rate)
        granted = min(want, math.floor(tokens))
        s.execute(sa.update(p).where(p.c.account == account)
                  .values(tokens=tokens - granted, updated_at=now))
    return int(granted)


class SharedRateLimiter:
    """``acquire()`` once per message: waits for a token of the account's shared bucket
    (taken from the database in blocks of ``block``), then for the ``local`` limiter
    (the client's own pacing, if any)."""

    def __init__(self, engine: Engine, account: str, rate: float, *, block: int | None = None,
                 local: Any = None) -> None:
        self.engine, self.account, self.rate = engine, account, float(rate)
        self.block = block or max(1, int(rate // 10))
        self.local = local
        self._tokens = 0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self._tokens <= 0:
            async with self._lock:
                while self._tokens <= 0:
                    got = await asyncio.to_thread(take, self.engine, self.account,
                                                  self.rate, self.block)
                    if got:
                        self._tokens += got
                    else:
                        await asyncio.sleep(self.block / self.rate)
        self._tokens -= 1
        if self.local is not None:
            await self.local.acquire()

    def slow_down(self, pause: float = 0.0) -> None:
        """The provider throttled this client: its own pacing slows (the shared bucket
        still caps the account across workers)."""
        if self.local is not None:
            self.local.slow_down(pause)

    def speed_up(self) -> None:
        """An accepted submission: the client's own pacing recovers."""
        if self.local is not None:
            self.local.speed_up()


def share_limits(engine: Engine, sender: Any) -> Any:
    """Make every SMPP client of ``sender`` (``channels.sms.SmppSender``) take its
    tokens from its account's shared bucket; returns ``sender``."""
    for client in getattr(sender, "_clients", []):
        account = client.account
        key = f"smpp:{account.host}:{account.port}:{account.system_id}"
        client._limiter = SharedRateLimiter(engine, key, account.tps, local=client._limiter)
    return sender
