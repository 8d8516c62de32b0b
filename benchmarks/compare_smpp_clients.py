"""Tocsin's SMPP client against PyPI's ``smpp34`` and ``aiosmpplib`` on one peer (ADR 0021).

Both submit N messages over one bind with a window of 100 to the npm ``smpp`` SMSC
(tests/interop/bench_smsc.js), asking for a receipt each, and consume the receipts.
Neither library is a Tocsin dependency: install them beside the venv to run this
(``pip install --target /tmp/smpplibs smpp34 aiosmpplib``, ``PYTHONPATH=/tmp/smpplibs``).

usage: python benchmarks/compare_smpp_clients.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import time

from bench_peers import NodeSmsc, load

from tocsin.channels.smpp import Receipt, SmppAccount, SmppClient, SmsPart

TEXT = b"Bench: blijf binnen, sluit ramen en deuren."


async def tocsin_client(port: int, n: int) -> tuple[float, int]:
    receipts: list[Receipt] = []
    account = SmppAccount("127.0.0.1", "tocsin", "secret", port=port, binds=1, window=100,
                          tps=1_000_000)
    async with SmppClient(account, on_receipt=receipts.append) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(client.submit("Tocsin", f"+32470{i:06d}", [SmsPart(0, 0, TEXT)])
                               for i in range(n)))
        elapsed = time.perf_counter() - t0
        deadline = time.monotonic() + 10
        while len(receipts) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    return elapsed, len(receipts)


async def smpp34_client(port: int, n: int) -> tuple[float, int]:
    import smpp34

    client = smpp34.Client("127.0.0.1", port, "tocsin", "secret", window_size=100)
    smsc = await client.connect()
    got = 0

    async def drain() -> None:
        nonlocal got
        while True:
            event = await smsc.next()  # type: ignore[attr-defined]
            if isinstance(event, smpp34.Disconnected):
                return
            got += 1

    reader = asyncio.create_task(drain())
    slots = asyncio.Semaphore(100)
    errors: list[str] = []

    async def one(i: int) -> None:
        async with slots:
            try:
                await submit(i)
            except smpp34.SmppError as exc:
                errors.append(str(exc))

    async def submit(i: int) -> None:
        if True:
            # (with source_addr_ton=5 / dest_addr_ton=1 set, smpp34 answered ESME_RSYSERR
            # against this peer under load; the defaults go through)
            resp = await smsc.submit_sm(f"32470{i:06d}", TEXT, source_addr="Tocsin",
                                        registered_delivery=1)
            assert resp.is_success

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - t0
    deadline = time.monotonic() + 10
    while got < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    reader.cancel()
    await client.stop()
    if errors:
        print(f"smpp34: {len(errors)} of {n} submit_sm failed, first: {errors[0]}")
    return elapsed, got


async def aiosmpplib_client(port: int, n: int) -> tuple[float, int]:
    """aiosmpplib: messages go through its broker queue; responses and receipts come
    to a hook (it has no window of its own: its rate limiter paces it, 100,000/s here)."""
    import aiosmpplib
    from aiosmpplib.state import PhoneNumber

    class Count(aiosmpplib.AbstractHook):  # type: ignore[misc]
        def __init__(self) -> None:
            self.responses = self.receipts = 0

        async def sending(self, smpp_message: object, pdu: bytes, client_id: str) -> None:
            pass

        async def received(self, smpp_message: object, pdu: bytes, client_id: str) -> None:
            if isinstance(smpp_message, aiosmpplib.SubmitSmResp):
                self.responses += 1
            elif isinstance(smpp_message, aiosmpplib.DeliverSm):
                self.receipts += 1

        async def send_error(self, smpp_message: object, error: Exception,
                             client_id: str) -> None:
            pass

    hook = Count()
    esme = aiosmpplib.ESME("127.0.0.1", port, "tocsin", "secret", hook=hook,
                           log_level="ERROR")
    task = asyncio.create_task(esme.start())
    t0 = time.perf_counter()
    for i in range(n):
        await esme.broker.enqueue(aiosmpplib.SubmitSm(
            short_message=TEXT.decode(), source=PhoneNumber("Tocsin"),
            destination=PhoneNumber(f"32470{i:06d}"), log_id=str(i)))
    deadline = time.monotonic() + 120
    while hook.responses < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    deadline = time.monotonic() + 10
    while hook.receipts < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    if hook.responses < n:
        print(f"aiosmpplib: {hook.responses} of {n} submit_sm_resp after 120 s")
    await esme.stop()
    task.cancel()
    return elapsed, hook.receipts


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    smsc = NodeSmsc()
    try:
        for name, run in (("smpp34", smpp34_client), ("aiosmpplib", aiosmpplib_client),
                          ("tocsin SmppClient", tocsin_client)):
            try:
                seconds, receipts = asyncio.run(run(smsc.port, n))
            except ImportError as exc:
                print(f"{name:18}: not installed ({exc})")
                continue
            print(f"{name:18}: {n:,} submit_sm in {seconds:5.2f} s = {n / seconds:8,.0f}/s, "
                  f"{receipts:,} receipts   load {load()}", flush=True)
    finally:
        smsc.stop()


if __name__ == "__main__":
    main()
