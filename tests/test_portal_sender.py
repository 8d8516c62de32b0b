"""One-time codes leave through the campaigns' channel adapters (issue 10 point 2): SMPP
to the SMSC simulator and SMTP to the sink — real protocols on loopback, no mocks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.simulators.smtp_sink import SmtpSink
from tocsin.core.settings import Settings
from tocsin.dispatch.transactional import ChannelCodeSender
from tocsin.subscribers.verification import code_message


@pytest.fixture
def sims() -> Iterator[Any]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    smsc = SmscSimulator()
    asyncio.run_coroutine_threadsafe(smsc.start(), loop).result(10)
    smtp = SmtpSink()
    smtp.start()
    yield SimpleNamespace(smsc=smsc, smtp=smtp, smsc_host="127.0.0.1", smsc_port=smsc.port,
                          smtp_host="127.0.0.1", smtp_port=smtp.port)
    smtp.stop()
    asyncio.run_coroutine_threadsafe(smsc.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


def test_codes_by_sms_and_email_through_the_adapters(sims: Any, tmp_path: Path) -> None:
    sender = ChannelCodeSender(Settings(var_dir=tmp_path), lambda: sims)
    text, subject = code_message("nl", "012345")
    assert sender.send("sms", "+32470123456", text, subject, "nl")
    assert sims.smsc.texts() == [("+32470123456", text)]
    text, subject = code_message("fr", "654321", "http://portal/register/code/654321")
    assert sender.send("email", "alice@example.org", text, subject, "fr")
    mail = sims.smtp.messages[-1]
    assert mail.recipients == ["alice@example.org"]
    assert mail.message["Subject"] == "Votre code Tocsin"
    assert "654321" in mail.message.get_content()
    assert not sender.fallback.messages


def test_no_provider_keeps_the_code_and_says_so(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    sender = ChannelCodeSender(Settings(var_dir=tmp_path))
    assert sender.send("sms", "+32470123456", "code 1", "", "en")
    assert sender.fallback.messages[0].address == "+32470123456"
    assert "not sent" in caplog.text


def test_unreachable_provider_is_not_sent(tmp_path: Path) -> None:
    sims = SimpleNamespace(smsc_host="127.0.0.1", smsc_port=1, smtp_host="127.0.0.1",
                           smtp_port=1)
    sender = ChannelCodeSender(Settings(var_dir=tmp_path), lambda: sims)
    assert not sender.send("sms", "+32470123456", "code", "", "en")
    assert not sender.send("email", "a@example.org", "code", "subject", "en")
