"""Wiring of the voice channel into workers: its senders, the voice gateway simulator and
the loopback callback listener that the simulator's requests come back to (issue 12).

Kept apart from ``dispatch.worker`` so that the worker only plugs voice in like any
channel (``sender_factories``, ``start_simulators``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from sqlalchemy.engine import Engine

from tocsin.core.settings import Settings
from tocsin.dispatch.worker import SenderFactory, Simulators


async def start_voice_simulator(sims: Simulators, engine: Engine, settings: Settings,
                                **options: object) -> None:
    """Start the voice gateway simulator and Tocsin's callback listener for it (both on
    loopback) into ``sims``; ``options`` go to ``VoiceGatewaySimulator`` (seed, script,
    shares, faults…)."""
    from tocsin.channels.simulators.voice_gateway import VoiceGatewaySimulator

    listener = CallbackListener(engine, settings, "simulator-auth-token")
    await listener.start()
    gateway = VoiceGatewaySimulator(auth_token=listener.auth_token,
                                    time_scale=settings.voice_simulator_time_scale,
                                    **options)  # type: ignore[arg-type]
    await gateway.start()
    sims.voice, sims.voice_listener = gateway, listener


class CallbackListener:
    """Tocsin's ``/voice/calls/…`` routes (``web.routes.voice``) on a loopback port of this
    process, for the simulation's voice gateway: the CLI's run and a worker need no web
    server for simulated calls."""

    def __init__(self, engine: Engine, settings: Settings, auth_token: str,
                 port: int = 0) -> None:
        self.engine, self.settings, self.auth_token = engine, settings, auth_token
        self.port = port
        self._server: object = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        import uvicorn

        from tocsin.web.routes.voice import callback_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = callback_app(self.engine, self.settings, self.auth_token, self.base_url)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                               access_log=False))
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)


def voice_sender_factories(settings: Settings, sims: Simulators | None
                           ) -> dict[tuple[str, str], SenderFactory]:
    """Voice senders: the simulator's (when started) and the live provider's
    (``TOCSIN_VOICE_URL``, account SID, auth token; callbacks to
    ``TOCSIN_VOICE_CALLBACK_URL`` or ``TOCSIN_PUBLIC_URL``)."""
    from tocsin.channels.voice import VoiceAccount, VoiceSender
    from tocsin.dispatch.calls import DbCallPermits

    factories: dict[tuple[str, str], SenderFactory] = {}
    if sims is not None and sims.voice is not None and sims.voice_listener is not None:
        gateway: Any = sims.voice
        sim_account = VoiceAccount(
            gateway.base_url, gateway.account_sid, gateway.auth_token,
            sims.voice_listener.base_url,  # type: ignore[attr-defined]
            ring_timeout=settings.voice_ring_timeout,
            machine_detection=settings.voice_machine_detection)
        factories[("voice", "simulation")] = lambda rb: VoiceSender(
            sim_account, DbCallPermits(rb.engine, "simulation", settings), "simulator")
    if settings.voice_url.strip():
        live = VoiceAccount(settings.voice_url, settings.voice_account_sid,
                            settings.voice_auth_token,
                            settings.voice_callback_url or settings.public_url(),
                            ring_timeout=settings.voice_ring_timeout,
                            machine_detection=settings.voice_machine_detection)
        factories[("voice", "live")] = lambda rb: VoiceSender(
            live, DbCallPermits(rb.engine, "live", settings), "voice")
    return factories
