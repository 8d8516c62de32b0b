"""Transactional messages (one-time codes of the citizen portal, issue 10 point 2).

A code must leave within seconds, alone, and is no campaign: it has no area, no
report, no bill line of its own. So it does not go through the delivery queue; a
:class:`ChannelCodeSender` sends it at once with the same channel adapters as campaigns
(``channels.sms.SmppSender``, ``channels.email.SmtpSender``): one SMPP bind or SMTP
session, one ``OutgoingMessage``, closed again. Live providers come from the settings
(``TOCSIN_SMPP_URL``, ``TOCSIN_SMTP_URL``); without them, the simulators of the
in-process worker (``make demo``) are used, and the message is also written to the log
(the demo's console) since no phone reads the simulators; without those either, the message is only
kept in memory and logged as not sent (:class:`MemoryOutbox`, also what tests read).

A code for a landline (or "call me instead") is a voice call
(``channels.voice.place_code_call``) through the live Twilio-compatible account
(``TOCSIN_VOICE_URL``), else the in-process worker's voice gateway simulator, whose
TwiML requests go to its loopback callback listener. The call carries no code: the
provider fetches the TwiML from ``/voice/codes/{id}/twiml`` (``dispatch.code_calls``).
Nothing here logs a code said by voice, not even in the demo; with the simulator only,
its simulated phone prints what it hears on the demo's console
(``VoiceGatewaySimulator.announce``), as the SMS and e-mail simulators' codes appear there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tocsin.channels.base import ChannelSender, OutgoingMessage
from tocsin.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class OutboxMessage:
    """One message handed to a :class:`MemoryOutbox`."""

    channel: str
    address: str
    text: str
    subject: str
    language: str


@dataclass
class OutboxCall:
    """One code call handed to a :class:`MemoryOutbox` (the code is not in it)."""

    address: str
    code_id: int
    language: str


@dataclass
class MemoryOutbox:
    """Keeps messages in memory (tests; a server with no provider). ``accept`` False
    makes every send fail (the provider refused)."""

    messages: list[OutboxMessage] = field(default_factory=list)
    calls: list[OutboxCall] = field(default_factory=list)
    accept: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, channel: str, address: str, text: str, subject: str, language: str) -> bool:
        """Keep the message; returns ``accept``."""
        with self._lock:
            self.messages.append(OutboxMessage(channel, address, text, subject, language))
        return self.accept

    def call(self, address: str, code_id: int, language: str) -> bool:
        """Keep the call; returns ``accept``."""
        with self._lock:
            self.calls.append(OutboxCall(address, code_id, language))
        return self.accept

    def last_to(self, address: str) -> OutboxMessage | None:
        """The last message to ``address``, or None."""
        with self._lock:
            return next((m for m in reversed(self.messages) if m.address == address), None)


def _noop_receipts(_: Any) -> Any:
    async def drop(*_args: Any) -> None:
        return None
    return drop


async def send_one(sender: ChannelSender, message: OutgoingMessage) -> bool:
    """Start ``sender``, send ``message``, close; True when the provider accepted it."""
    try:
        await sender.start()
        outcomes = await sender.send([message])
        return bool(outcomes) and outcomes[0].result == "sent"
    except (ConnectionError, OSError) as exc:
        log.warning("transactional %s not sent: %s", sender.channel, exc)
        return False
    finally:
        with contextlib.suppress(Exception):
            await sender.close()


class ChannelCodeSender:
    """Sends one code by SMS (SMPP) or e-mail (SMTP) through the campaign adapters.

    ``endpoints``: callable returning ``{"sms": (host, port) or smpp URL, "email": …}`` at
    send time (the simulators start after the app); a channel missing there is kept in
    ``fallback`` (a :class:`MemoryOutbox`) and logged.
    """

    def __init__(self, settings: Settings,
                 simulators: Callable[[], Any] | None = None) -> None:
        self.settings = settings
        self.simulators = simulators or (lambda: None)
        self.fallback = MemoryOutbox()

    def _sender(self, channel: str) -> ChannelSender | None:
        from tocsin.channels.email import DkimSigner, SmtpAccount, SmtpSender
        from tocsin.channels.smpp import SmppAccount, parse_smpp_urls
        from tocsin.channels.sms import SmppSender

        sims = self.simulators()
        if channel == "sms":
            if self.settings.smpp_url.strip():
                return SmppSender(parse_smpp_urls(self.settings.smpp_url)[:1],
                                  _noop_receipts(None), "smpp")
            if sims is not None:
                return SmppSender([SmppAccount(host=sims.smsc_host, port=sims.smsc_port,
                                               system_id="tocsin", binds=1)],
                                  _noop_receipts(None), "simulator")
        if channel == "email":
            dkim = DkimSigner.from_settings(self.settings)
            if self.settings.smtp_url.strip():
                return SmtpSender(SmtpAccount.from_url(self.settings.smtp_url), "smtp", dkim)
            if sims is not None:
                return SmtpSender(SmtpAccount(sims.smtp_host, sims.smtp_port, connections=1),
                                  "simulator", dkim)
        return None

    def send(self, channel: str, address: str, text: str, subject: str, language: str) -> bool:
        """Send now (blocking, at most ~30 s); True when the provider accepted it."""
        sender = self._sender(channel)
        if sender is None:
            log.warning("no %s provider configured: the code to %s… was not sent", channel,
                        address[:3])
            return self.fallback.send(channel, address, text, subject, language)
        source = self.settings.sms_source if channel == "sms" else self.settings.mail_from
        message = OutgoingMessage(0, "portal-code", address, language, text, subject=subject,
                                  source=source)
        sent = asyncio.run(send_one(sender, message))
        if sender.name == "simulator":  # the demo: nobody reads the simulators' phones
            log.warning("simulated %s to %s: %s", channel, address, text)
        return sent

    def _voice_account(self) -> Any:
        from tocsin.channels.voice import VoiceAccount

        st = self.settings
        if st.voice_url.strip():
            return VoiceAccount(st.voice_url, st.voice_account_sid, st.voice_auth_token,
                                st.voice_callback_url or st.public_url(),
                                ring_timeout=st.voice_ring_timeout)
        gateway = self._simulated_gateway()
        listener = getattr(self.simulators(), "voice_listener", None)
        if gateway is not None and listener is not None:
            return VoiceAccount(gateway.base_url, gateway.account_sid, gateway.auth_token,
                                listener.base_url, ring_timeout=st.voice_ring_timeout)
        return None

    def _simulated_gateway(self) -> Any:
        """The voice gateway simulator, when calls go to it (no live provider)."""
        if self.settings.voice_url.strip():
            return None
        return getattr(self.simulators(), "voice", None)

    def call(self, address: str, code_id: int, language: str) -> bool:
        """Place a code call now (blocking, at most ~10 s); True when the provider
        accepted it. Logged with the number's first digits and the call SID only."""
        from tocsin.channels.voice import place_code_call

        account = self._voice_account()
        if account is None:
            log.warning("no voice provider configured: the code call to %s… was not placed",
                        address[:5])
            return self.fallback.call(address, code_id, language)
        sid = place_code_call(account, address, self.settings.voice_caller, code_id, language)
        if sid is not None:
            log.info("code call %s to %s… placed", sid, address[:5])
            gateway = self._simulated_gateway()
            if gateway is not None and hasattr(gateway, "announce"):
                gateway.announce(sid)  # the demo: its simulated phone prints what it hears
        return sid is not None
