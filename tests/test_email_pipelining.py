"""SMTP command pipelining (RFC 2920) for the e-mail channel (SPEC F23), over real SMTP.

The relay here is a small asyncio SMTP server written for the test: it advertises
PIPELINING (or not), answers each command ``latency`` seconds after the command
arrived (a network round trip), refuses the addresses it is told to, and records,
for every command, how many replies it had already written when the command arrived
(a pipelined envelope arrives whole before the first reply leaves). Postfix's
``smtp-sink`` is used too when installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tocsin.channels.base import OutgoingMessage, SendOutcome
from tocsin.channels.email import SmtpAccount, SmtpSender

MAIL_FROM = "no-reply@alert.example.be"
#: a multi-line reply (RFC 5321 §4.2.1) and the error it is recorded as
MULTILINE_550 = "550-5.1.1 no such user\r\n550 5.1.1 see https://relay.test/help"
MULTILINE_ERROR = "SMTP 550: 5.1.1 no such user 5.1.1 see https://relay.test/help"


@dataclass
class Command:
    line: str  # the command as received, without CRLF
    replies_before: int  # replies written on this connection when it arrived
    tls: bool = False  # arrived over TLS (after STARTTLS)


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes


@dataclass
class Relay:
    """A test SMTP relay on a free loopback port."""

    pipelining: bool = True
    latency: float = 0.0
    #: address -> reply to its RCPT TO ("550 5.1.1 no such user")
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    mail_reply: str = ""
    data_reply: str = ""
    #: close the connection instead of answering this command verb
    drop_at: str = ""
    #: offer STARTTLS (RFC 3207) with this server context
    tls: ssl.SSLContext | None = None
    commands: list[Command] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> Relay:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def verbs(self) -> list[str]:
        return [c.line.split(" ", 1)[0].split(":", 1)[0].upper() for c in self.commands]

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        written = 0
        loop = asyncio.get_running_loop()

        async def write_replies() -> None:
            nonlocal written
            while (item := await replies.get()) is not None:
                due, reply = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(reply)
                written += 1
                replies.task_done()
            replies.task_done()
            writer.close()

        def reply(text: str, at: float) -> None:
            replies.put_nowait((at + self.latency, text.encode() + b"\r\n"))

        sender = loop.create_task(write_replies())
        reply("220 relay.test ESMTP", loop.time())
        mail_from, recipients = "", []
        secure = False
        try:
            while line := await reader.readline():
                arrived = loop.time()
                text = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
                self.commands.append(Command(text, written, secure))
                verb = text.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb == self.drop_at:
                    writer.transport.abort()
                    break
                if verb == "EHLO":
                    lines = ["relay.test", "SIZE 10000000", "8BITMIME", "SMTPUTF8"]
                    if self.pipelining:
                        lines.insert(1, "PIPELINING")
                    if self.tls is not None and not secure:
                        lines.insert(1, "STARTTLS")
                    reply("\r\n".join(f"250-{x}" for x in lines[:-1]) + f"\r\n250 {lines[-1]}",
                          arrived)
                elif verb in ("HELO", "NOOP"):
                    reply("250 OK", arrived)
                elif verb == "MAIL":
                    if self.mail_reply:
                        reply(self.mail_reply, arrived)
                    else:
                        mail_from = text.split("<", 1)[1].split(">", 1)[0]
                        recipients = []
                        reply("250 2.1.0 OK", arrived)
                elif verb == "RCPT":
                    address = text.split("<", 1)[1].split(">", 1)[0]
                    if not mail_from:
                        reply("503 5.5.1 MAIL first", arrived)
                    elif address in self.rcpt_replies:
                        reply(self.rcpt_replies[address], arrived)
                    else:
                        recipients.append(address)
                        reply("250 2.1.5 OK", arrived)
                elif verb == "DATA":
                    if not recipients:
                        reply("554 5.5.1 no valid recipients", arrived)
                        continue
                    reply("354 End data with <CR><LF>.<CR><LF>", arrived)
                    body = bytearray()
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        body += chunk
                    if self.data_reply:
                        reply(self.data_reply, loop.time())
                    else:
                        self.messages.append(Received(mail_from, recipients, bytes(body)))
                        reply("250 2.0.0 queued", loop.time())
                    mail_from, recipients = "", []
                elif verb == "STARTTLS" and self.tls is not None and not secure:
                    reply("220 2.0.0 ready to start TLS", arrived)
                    await replies.join()
                    await writer.start_tls(self.tls)
                    secure, mail_from, recipients = True, "", []
                elif verb == "RSET":
                    mail_from, recipients = "", []
                    reply("250 2.0.0 OK", arrived)
                elif verb == "QUIT":
                    reply("221 2.0.0 bye", arrived)
                    break
                else:
                    reply("500 5.5.2 unknown command", arrived)
        finally:
            replies.put_nowait(None)
            await sender


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    r = await Relay().start()
    yield r
    await r.stop()


def _messages(addresses: list[str]) -> list[OutgoingMessage]:
    return [OutgoingMessage(i, "c1", a, "en", "Stay inside.", "ALERT", MAIL_FROM)
            for i, a in enumerate(addresses)]


def _by_address(addresses: list[str], out: list[SendOutcome]) -> dict[str, SendOutcome]:
    return {addresses[o.delivery_id]: o for o in out}


async def _send(port: int, addresses: list[str], **account: int) -> list[SendOutcome]:
    sender = SmtpSender(SmtpAccount("127.0.0.1", port, **account))
    await sender.start()
    try:
        return await sender.send(_messages(addresses))
    finally:
        await sender.close()


async def test_envelope_is_pipelined_and_refusals_map_per_recipient(relay: Relay) -> None:
    relay.latency = 0.05
    relay.rcpt_replies = {"nobody@example.org": "550 5.1.1 no such user",
                          "later@example.org": "451 4.3.0 try again later"}
    addresses = [f"p{i}@example.org" for i in range(98)]
    addresses[10:10] = ["nobody@example.org"]
    addresses[60:60] = ["later@example.org"]
    sender = SmtpSender(SmtpAccount("127.0.0.1", relay.port, connections=1, recipients=100))
    await sender.start()
    try:
        await sender.send(_messages(["warm@example.org"]))  # EHLO done before timing
        relay.commands.clear()
        started = time.perf_counter()
        out = _by_address(addresses, await sender.send(_messages(addresses)))
        elapsed = time.perf_counter() - started
    finally:
        await sender.close()

    # One round trip per command would be 102 x 50 ms = 5.1 s; pipelined it is
    # three: the envelope, DATA's 354, the message's 250.
    assert elapsed < 1.5, f"100 recipients took {elapsed:.2f} s at 50 ms per round trip"
    envelope = relay.commands[:101]
    assert [c.line.split(":")[0] for c in envelope] == ["MAIL FROM"] + ["RCPT TO"] * 100
    assert envelope[0].line.startswith(f"MAIL FROM:<{MAIL_FROM}> SIZE=")
    # The whole envelope was in before the relay wrote its reply to MAIL FROM.
    assert {c.replies_before for c in envelope} == {envelope[0].replies_before}
    data = relay.commands[101]
    assert data.line == "DATA" and data.replies_before == envelope[0].replies_before + 101

    assert out["nobody@example.org"].result == "failed"
    assert out["nobody@example.org"].hard_bounce
    assert out["nobody@example.org"].error == "SMTP 550: 5.1.1 no such user"
    assert out["later@example.org"].result == "retry"
    assert out["later@example.org"].error == "SMTP 451: 4.3.0 try again later"
    assert not out["later@example.org"].hard_bounce
    sent = [a for a, o in out.items() if o.result == "sent"]
    assert len(sent) == 98 and len({o.message_ids for a, o in out.items() if a in sent}) == 1
    (message,) = relay.messages[-1:]
    assert sorted(message.recipients) == sorted(sent) and message.mail_from == MAIL_FROM
    assert b"Stay inside." in message.data


async def test_every_recipient_refused_sends_rset_and_no_data(relay: Relay) -> None:
    relay.rcpt_replies = {"a@example.org": "550 5.1.1 no such user",
                          "b@example.org": "452 4.2.2 mailbox full"}
    sender = SmtpSender(SmtpAccount("127.0.0.1", relay.port, connections=1))
    await sender.start()
    try:
        out = _by_address(["a@example.org", "b@example.org"],
                          await sender.send(_messages(["a@example.org", "b@example.org"])))
        assert relay.verbs()[-4:] == ["MAIL", "RCPT", "RCPT", "RSET"]
        assert "DATA" not in relay.verbs() and relay.messages == []
        assert out["a@example.org"].result == "failed" and out["a@example.org"].hard_bounce
        assert out["b@example.org"].result == "retry"
        # The session is clean after RSET: the next transaction goes through on it.
        (ok,) = await sender.send(_messages(["c@example.org"]))
        assert ok.result == "sent" and relay.messages[-1].recipients == ["c@example.org"]
        assert relay.verbs().count("EHLO") == 1
    finally:
        await sender.close()


async def test_refused_sender_or_message_fails_the_whole_transaction(relay: Relay) -> None:
    sender = SmtpSender(SmtpAccount("127.0.0.1", relay.port, connections=1))
    await sender.start()
    try:
        relay.mail_reply = "451 4.3.2 sender rejected for now"
        out = await sender.send(_messages(["a@example.org", "b@example.org"]))
        assert [o.result for o in out] == ["retry", "retry"]
        assert all("SMTP 451" in o.error and "sender" in o.error for o in out)
        assert relay.verbs()[-4:] == ["MAIL", "RCPT", "RCPT", "RSET"]
        assert "DATA" not in relay.verbs()
        relay.mail_reply = ""
        relay.data_reply = "554 5.7.1 rejected by content filter"
        out = await sender.send(_messages(["a@example.org", "b@example.org"]))
        assert [o.result for o in out] == ["failed", "failed"]
        assert not any(o.hard_bounce for o in out)
        assert out[0].error == "SMTP 554: 5.7.1 rejected by content filter"
        assert relay.verbs()[-1] == "RSET"
        relay.data_reply = ""
        (ok,) = await sender.send(_messages(["c@example.org"]))
        assert ok.result == "sent"
    finally:
        await sender.close()


async def test_a_connection_lost_mid_envelope_is_retried_on_a_new_session(
        relay: Relay) -> None:
    sender = SmtpSender(SmtpAccount("127.0.0.1", relay.port, connections=1))
    await sender.start()
    try:
        relay.drop_at = "RCPT"
        out = await sender.send(_messages(["a@example.org", "b@example.org"]))
        assert [o.result for o in out] == ["retry", "retry"]
        relay.drop_at = ""
        (ok,) = await sender.send(_messages(["c@example.org"]))
        assert ok.result == "sent" and relay.messages[-1].recipients == ["c@example.org"]
    finally:
        await sender.close()


async def test_without_pipelining_commands_go_one_at_a_time(relay: Relay) -> None:
    relay.pipelining = False
    relay.rcpt_replies = {"nobody@example.org": MULTILINE_550,
                          "later@example.org": "451 4.3.0 try again later"}
    addresses = ["a@example.org", "nobody@example.org", "later@example.org", "b@example.org"]
    out = _by_address(addresses, await _send(relay.port, addresses, connections=1))
    assert {a: o.result for a, o in out.items()} == {
        "a@example.org": "sent", "nobody@example.org": "failed",
        "later@example.org": "retry", "b@example.org": "sent"}
    assert out["nobody@example.org"].hard_bounce
    assert out["nobody@example.org"].error == MULTILINE_ERROR  # as when pipelined
    assert relay.messages[0].recipients == ["a@example.org", "b@example.org"]
    envelope = [c for c in relay.commands if c.line.startswith(("MAIL", "RCPT", "DATA"))]
    # Each command was sent after the reply to the one before it.
    assert [c.replies_before for c in envelope] == list(
        range(envelope[0].replies_before, envelope[0].replies_before + len(envelope)))


async def test_envelope_is_pipelined_inside_starttls(
        relay: Relay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the relay's test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    relay.tls = server
    relay.rcpt_replies = {"nobody@example.org": MULTILINE_550}
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the sender verifies the relay's certificate
    addresses = [f"p{i}@example.org" for i in range(30)] + ["nobody@example.org"]
    out = _by_address(addresses, await _send(relay.port, addresses, connections=1))
    assert out["nobody@example.org"].result == "failed" and out["nobody@example.org"].hard_bounce
    assert out["nobody@example.org"].error == MULTILINE_ERROR
    assert sum(o.result == "sent" for o in out.values()) == 30
    assert relay.verbs()[:3] == ["EHLO", "STARTTLS", "EHLO"]
    envelope = [c for c in relay.commands if c.line.startswith(("MAIL", "RCPT"))]
    assert len(envelope) == 32 and all(c.tls for c in envelope)
    assert {c.replies_before for c in envelope} == {envelope[0].replies_before}
    assert sorted(relay.messages[0].recipients) == sorted(addresses[:30])


# ----------------------------------------------------------------------------- Postfix


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[int]:
    binary = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink"
                                           if Path("/usr/sbin/smtp-sink").exists() else None)
    if binary is None:
        pytest.skip("Postfix's smtp-sink is not installed (Debian: apt-get install postfix)")
    port = _free_port()
    command = [binary] + (["-u", "nobody"] if os.geteuid() == 0 else [])
    proc = subprocess.Popen(command + [f"127.0.0.1:{port}", "64"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("smtp-sink did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def test_postfix_smtp_sink_takes_pipelined_transactions(smtp_sink: int) -> None:
    addresses = [f"p{i}@example.org" for i in range(450)]
    sender = SmtpSender(SmtpAccount("127.0.0.1", smtp_sink, connections=2, recipients=100))
    await sender.start()
    try:
        out = await sender.send(_messages(addresses))
        assert all(c.supports_extension("pipelining") for c in sender._clients)
    finally:
        await sender.close()
    assert len(out) == 450 and {o.result for o in out} == {"sent"}
