"""Wiring of the location-based channels into workers (issue 11): their senders, the
simulators (one LB-SMS operator per synthetic operator, one CBC speaking ECBE) and the
loopback listener the simulated operators' signed callbacks come back to.

Kept apart from ``dispatch.worker`` so that the worker plugs them in like any channel
(``sender_factories``, ``start_simulators``). A sender takes claimed deliveries of
channel ``lbsms`` / ``cb`` (address = the operator's key), loads what to send
(``campaigns.location.load_job``) and sends one request per operator; the outcome is
``sent`` once the operator accepted it (its ``operator_ref``), ``failed`` when it
refused the request for good, ``retry`` when it could not be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from tocsin.channels.base import OutgoingMessage, SendOutcome
from tocsin.core.settings import Settings
from tocsin.dispatch.worker import SenderFactory, Simulators

log = logging.getLogger(__name__)

#: The callback key id Tocsin gives the operators (one secret per deployment).
KEY_ID = "k1"


class _Server:
    """An ASGI app served by uvicorn on a free loopback port of this process."""

    def __init__(self, app: Any) -> None:
        self.app, self.port = app, 0
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                     lifespan="off", access_log=False))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(500):
            if self._server.started:
                break
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)


@dataclass
class LocationSimulators:
    """The simulation's operators (key -> server), CBC and callback listener."""

    secret: str
    operators: dict[str, _Server] = field(default_factory=dict)
    cbc: _Server | None = None
    listener: _Server | None = None

    @property
    def callback_url(self) -> str:
        assert self.listener is not None
        return f"{self.listener.base_url}/hooks/lbsms"

    def endpoints(self) -> dict[str, str]:
        return {k: s.base_url for k, s in self.operators.items()}

    @property
    def cbc_url(self) -> str:
        assert self.cbc is not None
        return f"{self.cbc.base_url}/api/ecbe/v1"

    async def stop(self) -> None:
        for s in [*self.operators.values(), self.cbc, self.listener]:
            if s is not None:
                await s.stop()


async def start_location_simulators(sims: Simulators, engine: Engine,
                                    settings: Settings) -> LocationSimulators:
    """Start the LB-SMS operator simulators (``op1``…, on the synthetic cell model, at
    ``lbsms_simulator_rate_per_s``), the CBC simulator and Tocsin's callback listener,
    all on loopback, into ``sims.location``."""
    from tocsin.channels.simulators.cbc import create_cbc_app
    from tocsin.channels.simulators.lbsms_operator import SimulatorParams, create_operator_app
    from tocsin.geo.cellmodel import SYNTHETIC_OPERATORS
    from tocsin.web.routes.location_hooks import callback_app

    loc = LocationSimulators(secrets.token_hex(16))
    params = SimulatorParams(rate_per_s=settings.lbsms_simulator_rate_per_s,
                             tick_s=settings.lbsms_simulator_tick_s,
                             resolve_delay_s=settings.lbsms_simulator_resolve_delay_s)
    loc.listener = _Server(callback_app(engine, loc.secret))
    await loc.listener.start()
    for op in SYNTHETIC_OPERATORS:
        server = _Server(create_operator_app(op.key, params=params,
                                             callback_secrets={KEY_ID: loc.secret}))
        await server.start()
        loc.operators[op.key] = server
    loc.cbc = _Server(create_cbc_app())
    await loc.cbc.start()
    sims.location = loc
    return loc


class LbsmsSender:
    """Location-based SMS: one ``POST /lbsms/v1/broadcasts`` per claimed delivery (one
    per operator), with the ``Idempotency-Key`` of Tocsin's reference so that a retried
    request never sends twice."""

    channel = "lbsms"

    def __init__(self, engine: Engine, settings: Settings, endpoints: dict[str, str],
                 callback_url: str, name: str) -> None:
        self.engine, self.settings = engine, settings
        self.endpoints, self.callback_url, self.name = endpoints, callback_url, name
        self.connected = True

    async def start(self) -> None:
        self.connected = True

    async def close(self) -> None:
        self.connected = False

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        return [await asyncio.to_thread(self._send_one, m) for m in messages]

    def _send_one(self, m: OutgoingMessage) -> SendOutcome:
        from tocsin.campaigns import location
        from tocsin.channels.lbsms import LbsmsError, LbsmsOperatorClient, broadcast_body

        endpoint = self.endpoints.get(m.address)
        if endpoint is None:
            return SendOutcome(m.delivery_id, "failed",
                               error=f"no LB-SMS operator {m.address} is configured")
        try:
            job = location.load_job(self.engine, m.delivery_id, self.settings)
            body = broadcast_body(
                reference=job.reference, environment=job.environment, area=job.area,
                text=job.text, not_after=job.not_after, justification=job.justification,
                callback_url=f"{self.callback_url}/{job.operator}", key_id=KEY_ID,
                priority=job.priority, follow_up_of=job.follow_up_of)
        except (LookupError, LbsmsError) as exc:
            location.record_error(self.engine, m.delivery_id, str(exc), final=True)
            return SendOutcome(m.delivery_id, "failed", error=str(exc)[:500])
        client = LbsmsOperatorClient(endpoint, retries=2, max_wait_s=5.0)
        try:
            answer = client.send(body, key=job.reference)
        except LbsmsError as exc:
            final = exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
            location.record_error(self.engine, m.delivery_id, str(exc), final=final)
            return SendOutcome(m.delivery_id, "failed" if final else "retry",
                               error=str(exc)[:500])
        finally:
            client.close()
        ref = str(answer.get("operator_ref") or "")
        location.record_sent(self.engine, m.delivery_id, endpoint=endpoint,
                             operator_ref=ref, state=str(answer.get("state") or "accepted"))
        return SendOutcome(m.delivery_id, "sent", message_ids=(ref,) if ref else (),
                           account=m.address)


class CbSender:
    """Cell broadcast through one CBC, ``protocol`` ``ecbe`` or ``cap``.

    ECBE: the alert's messages created in order (local-language identifier, then
    additional); an Update deletes the original's messages then creates the new ones
    (update number + 1); a Cancel deletes them. CAP (an operator's CBC): one CAP 1.2
    Alert per alert, an Update referencing every earlier CAP message of the alert, a
    Cancel likewise (``campaigns.location.cap_cbc_message``); the messages' identifiers
    are kept in the ``location_send`` detail. Requests to the CBC are one at a time
    (the next waits for the previous answer)."""

    channel = "cb"

    def __init__(self, engine: Engine, settings: Settings, endpoint: str, name: str,
                 allow_plmn_wide: bool, protocol: str = "ecbe") -> None:
        self.engine, self.settings, self.endpoint, self.name = engine, settings, endpoint, name
        self.allow_plmn_wide = allow_plmn_wide
        self.protocol = protocol
        self.connected = True
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.connected = True

    async def close(self) -> None:
        self.connected = False

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        out = []
        async with self._lock:
            for m in messages:
                out.append(await asyncio.to_thread(self._send_one, m))
        return out

    def _send_cap(self, m: OutgoingMessage) -> SendOutcome:
        from tocsin.campaigns import location
        from tocsin.cap.build import CapBuildError
        from tocsin.channels.cbc import CapCbcClient, CbcError
        from tocsin.channels.cell_broadcast import CbError
        from tocsin.geo.areas import AreaError

        try:
            job = location.load_job(self.engine, m.delivery_id, self.settings)
            xml, detail = location.cap_cbc_message(job, self.settings.cap_sender,
                                                   self.settings.cb_repetition_period)
        except (LookupError, CbError, AreaError, CapBuildError) as exc:
            location.record_error(self.engine, m.delivery_id, str(exc), final=True)
            return SendOutcome(m.delivery_id, "failed", error=str(exc)[:500])
        client = CapCbcClient(self.endpoint, username=self.settings.cbc_username,
                              password=self.settings.cbc_password,
                              token=self.settings.cbc_token)
        try:
            send = {"Alert": client.send_alert, "Update": client.update_alert,
                    "Cancel": client.cancel_alert}[detail["msg_type"]]
            send(xml)
        except CbcError as exc:
            final = exc.code != "unreachable" and not (exc.status or 0) >= 500
            location.record_error(self.engine, m.delivery_id, str(exc), final=final)
            return SendOutcome(m.delivery_id, "failed" if final else "retry",
                               error=str(exc)[:500])
        finally:
            client.close()
        updates = detail["msg_type"] == "Update"
        location.record_sent(self.engine, m.delivery_id, endpoint=self.endpoint,
                             state="stopped" if detail["msg_type"] == "Cancel"
                             else "broadcasting", detail=detail,
                             replaces=job.original_id if updates else None)
        ident = detail["cap"][-1]["identifier"]
        return SendOutcome(m.delivery_id, "sent", message_ids=(ident,), account=m.address)

    def _send_one(self, m: OutgoingMessage) -> SendOutcome:
        if self.protocol == "cap":
            return self._send_cap(m)
        from tocsin.campaigns import location
        from tocsin.channels.cbc import (
            CbcError,
            EcbeClient,
            PlannedMessage,
            next_update_plan,
            plan_messages,
        )
        from tocsin.channels.cell_broadcast import CbError

        try:
            job = location.load_job(self.engine, m.delivery_id, self.settings)
            previous = [PlannedMessage(tuple(p["languages"]), p["body"])
                        for p in (job.previous or {}).get("messages", [])]
            options: dict[str, Any] = {
                "kind": job.kind, "cbe_name": self.settings.cbc_name,
                "severity": job.severity, "urgency": job.urgency, "certainty": job.certainty,
                "national": job.national, "allow_plmn_wide": self.allow_plmn_wide,
                "repetition_period": self.settings.cb_repetition_period}
            if job.msg_type == "Cancel":
                planned: list[PlannedMessage] = []
            elif previous:
                planned = next_update_plan(previous, job.texts, **options)
            else:
                planned = plan_messages(job.texts, msg_code=job.msg_code, **options)
        except (LookupError, CbcError, CbError) as exc:
            location.record_error(self.engine, m.delivery_id, str(exc), final=True)
            return SendOutcome(m.delivery_id, "failed", error=str(exc)[:500])
        client = EcbeClient(self.endpoint)
        try:
            if job.msg_type == "Cancel":
                client.cancel_alert(previous)
            elif previous:
                client.update_alert(previous, planned)
            else:
                client.send_alert(planned)
        except CbcError as exc:
            final = exc.code not in ("unreachable",) and not (exc.status or 0) >= 500
            location.record_error(self.engine, m.delivery_id, str(exc), final=final)
            return SendOutcome(m.delivery_id, "failed" if final else "retry",
                               error=str(exc)[:500])
        finally:
            client.close()
        detail = {"msg_code": job.msg_code,
                  "messages": [{"languages": list(p.languages), "body": p.body}
                               for p in planned]}
        location.record_sent(self.engine, m.delivery_id, endpoint=self.endpoint,
                             state="stopped" if job.msg_type == "Cancel" else "broadcasting",
                             detail=detail, replaces=job.original_id if previous else None)
        ids = tuple(str(p.message_id) for p in planned)
        return SendOutcome(m.delivery_id, "sent", message_ids=ids, account=m.address)


def location_sender_factories(settings: Settings, sims: Simulators | None
                              ) -> dict[tuple[str, str], SenderFactory]:
    """Senders of ``lbsms`` and ``cb``: the simulators' for simulation campaigns (when
    started), the configured operators' for live ones (``TOCSIN_LBSMS_OPERATORS``,
    ``TOCSIN_CBC_URL`` with ``TOCSIN_CBC_PROTOCOL`` ``ecbe`` or ``cap``)."""
    from tocsin.campaigns.location import live_operators

    factories: dict[tuple[str, str], SenderFactory] = {}
    loc: LocationSimulators | None = getattr(sims, "location", None) if sims else None
    if loc is not None:
        sim_loc = loc
        factories[("lbsms", "simulation")] = lambda rb: LbsmsSender(
            rb.engine, settings, sim_loc.endpoints(), sim_loc.callback_url, "simulator")
        # The simulated CBC is the whole (simulated) network: a regional alert goes there.
        factories[("cb", "simulation")] = lambda rb: CbSender(
            rb.engine, settings, sim_loc.cbc_url, "simulator", allow_plmn_wide=True)
    live = live_operators(settings)
    if live:
        callback = (settings.lbsms_callback_url or settings.public_url()).rstrip("/")
        factories[("lbsms", "live")] = lambda rb: LbsmsSender(
            rb.engine, settings, live, f"{callback}/hooks/lbsms", "operators")
    if settings.cbc_url.strip():
        factories[("cb", "live")] = lambda rb: CbSender(
            rb.engine, settings, settings.cbc_url.strip().rstrip("/"), "cbc",
            allow_plmn_wide=settings.cbc_allow_plmn_wide, protocol=settings.cbc_protocol)
    return factories
