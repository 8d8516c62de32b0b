"""E-mail per message kind over real SMTP (aiosmtpd sink): batched alerts, per-recipient
information with RFC 8058 one-click unsubscription, hard bounces (RFC 3463) and DSNs
(RFC 3464), DKIM (RFC 6376), sender identity (SPEC F12, F20, F23)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.authorities.models import AuditEntry
from tocsin.campaigns.models import Campaign
from tocsin.channels.base import OutgoingMessage
from tocsin.channels.email import (
    DkimSigner,
    SmtpAccount,
    SmtpSender,
    campaign_of_message_id,
    parse_dsn,
)
from tocsin.channels.simulators.smtp_sink import ReceivedEmail, SmtpSink
from tocsin.core.db import table, transaction, utcnow
from tocsin.core.settings import Settings
from tocsin.dispatch import queue
from tocsin.dispatch.models import Delivery
from tocsin.dispatch.services import send_campaign
from tocsin.dispatch.worker import campaign_content, load_content
from tocsin.subscribers.importer import import_subscribers
from tocsin.subscribers.models import ContactPoint
from tocsin.subscribers.optout import unsubscribe_token, unsubscribe_url
from tocsin.web.app import create_app

BASE_URL = "https://alert.example.be"
MAIL_FROM = "no-reply@alert.example.be"
AREA = {"type": "Polygon", "coordinates": [[[4.29, 50.74], [4.31, 50.74], [4.31, 50.76],
                                            [4.29, 50.76], [4.29, 50.74]]]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", public_base_url=BASE_URL, mail_from=MAIL_FROM)


@pytest.fixture
def sink() -> SmtpSink:
    s = SmtpSink(keep=True).start()
    yield s
    s.stop()


def _subscribers(engine: Engine, people: dict[str, str], info_opt_in: bool = True) -> None:
    """Register e-mail subscribers (address -> language) in Beersel, verified."""
    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    lines += [f"S{i},{lang},,{addr},50.7480,4.3000" for i, (addr, lang) in
              enumerate(people.items())]
    assert import_subscribers(engine, ("\n".join(lines) + "\n").encode()).errors == []
    with transaction(engine) as s:
        s.execute(sa.update(ContactPoint).values(info_opt_in=info_opt_in))


def _campaign(engine: Engine, kind: str, recipients: dict[str, str],
              texts: dict[str, str] | None = None,
              content: dict[str, dict[str, str]] | None = None) -> str:
    """A launched campaign row and its queued e-mail deliveries (address -> language)."""
    cid = uuid.uuid4().hex
    texts = texts or {"fr": "Travaux rue de la Station lundi.", "nl": "Werken Stationsstraat."}
    with transaction(engine) as s:
        s.add(Campaign(
            id=cid, authority_id="23003", kind=kind, environment="simulation",
            status="sending", priority=0, channels="email", texts=texts,
            content=content or {}, area=json.dumps(AREA), area_name="Beersel",
            area_nis="23003", cap_params={}, cap_identifier=f"BE-TEST-{cid}",
            sms_source="1789", mail_from=MAIL_FROM, created_by="test", launched_at=utcnow()))
        s.flush()
        if recipients:
            s.execute(sa.insert(table(Delivery)), [
                {"campaign_id": cid, "channel": "email", "address": a, "language": lang,
                 "state": "queued", "priority": 0, "environment": "simulation", "attempts": 0}
                for a, lang in recipients.items()])
    return cid


def _deliveries(engine: Engine, cid: str) -> dict[str, Delivery]:
    with transaction(engine) as s:
        rows = s.scalars(sa.select(Delivery).where(Delivery.campaign_id == cid)).all()
        s.expunge_all()
    return {d.address: d for d in rows}


async def _send(engine: Engine, cid: str, sink: SmtpSink, settings: Settings,
                dkim_signer: DkimSigner | None = None) -> None:
    account = SmtpAccount("127.0.0.1", sink.port, connections=2)
    unfinished = await send_campaign(
        engine, cid, {("email", "simulation"): lambda rb: SmtpSender(account, dkim=dkim_signer)},
        send_timeout=10, settings=settings)
    assert unfinished == []


# ----------------------------------------------------------------------------- alerts


async def test_alert_goes_to_many_recipients_in_one_transaction_to_undisclosed(
        engine: Engine, sink: SmtpSink, settings: Settings) -> None:
    people = {f"person{i}@example.org": "fr" for i in range(40)}
    people.update({f"persoon{i}@example.be": "nl" for i in range(5)})
    content = {"fr": {"email_subject": "ALERTE – Beersel : incendie",
                      "email_text": "Restez à l'intérieur.",
                      "email_html": "<html><body><p>Restez <b>à l'intérieur</b>.</p>"
                                    "</body></html>", "sms": "Restez dedans"},
               "nl": {}}
    cid = _campaign(engine, "alert", people, content=content,
                    texts={"fr": "Alerte incendie", "nl": "Brandalarm: blijf binnen."})
    await _send(engine, cid, sink, settings)

    # One transaction per language (40 and 5 RCPT TO), each one DATA.
    assert sorted(len(m.recipients) for m in sink.messages) == [5, 40]
    assert sorted(r for r, _ in sink.deliveries()) == sorted(people)
    for received in sink.messages:
        msg = received.message
        assert msg["To"] == "undisclosed-recipients:;"
        assert msg["From"] == MAIL_FROM and received.mail_from == MAIL_FROM
        assert msg["Auto-Submitted"] == "auto-generated"
        assert campaign_of_message_id(msg["Message-ID"]) == cid
        assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
        raw = received.data.decode("ascii").lower()
        assert not any(a.lower() in raw for a in people), "a recipient address leaked"
        assert "unsubscribe" not in raw
    fr = next(m for m in sink.messages if len(m.recipients) == 40).message
    nl = next(m for m in sink.messages if len(m.recipients) == 5).message
    # Content per language and channel, with the fallback for an empty content.
    assert fr.get_content_type() == "multipart/alternative"
    assert fr["Subject"] == "ALERTE – Beersel : incendie"
    assert fr.get_body(("plain",)).get_content().strip() == "Restez à l'intérieur."
    assert "<b>à l'intérieur</b>" in fr.get_body(("html",)).get_content()
    assert nl.get_content_type() == "text/plain"
    assert nl["Subject"] == "ALARM – Beersel"
    assert nl.get_content().strip() == "Brandalarm: blijf binnen."

    rows = _deliveries(engine, cid)
    assert {d.state for d in rows.values()} == {"sent"}
    assert rows["person0@example.org"].provider_message_id == fr["Message-ID"].strip().strip("<>")


def test_content_falls_back_to_texts_and_kind_subject(engine: Engine) -> None:
    fr = {"sms": "Orage violent", "email_subject": "", "email_text": "Long"}
    c = campaign_content("warning", {"fr": "Orage", "de": "Gewitter"}, {"fr": fr},
                         "Eupen", "1789", MAIL_FROM)
    assert c.email_mode == "batch"
    assert c.sms == {"fr": "Orage violent", "de": "Gewitter"}
    assert c.email["fr"].subject == "Avertissement – Eupen" and c.email["fr"].text == "Long"
    assert c.email["de"].subject == "Vorwarnung – Eupen" and c.email["de"].html == ""
    assert campaign_content("information", {"en": "x"}, {}, "A", "1", MAIL_FROM).email_mode \
        == "per_recipient"
    cid = _campaign(engine, "alert", {}, content={"fr": {"sms": "SMS fr"}})
    loaded = load_content(engine, cid)
    assert loaded.sms["fr"] == "SMS fr" and loaded.sms["nl"] == "Werken Stationsstraat."


# ----------------------------------------------------------------------------- information


def _unsubscribe_path(msg: ReceivedEmail) -> str:
    header = msg.message["List-Unsubscribe"]
    m = re.fullmatch(r"<(https://alert\.example\.be(/unsubscribe/[A-Za-z0-9_.-]+)\?lang=\w\w)>",
                     header)
    assert m, header
    return m.group(2) + "?" + m.group(1).split("?")[1]


async def test_information_goes_one_per_recipient_with_one_click_unsubscribe(
        any_engine: Engine, sink: SmtpSink, settings: Settings) -> None:
    engine = any_engine
    people = {"alice@example.org": "fr", "bob@example.org": "nl", "carol@example.org": "fr"}
    _subscribers(engine, people)
    cid = _campaign(engine, "information", people, content={
        "fr": {"email_subject": "Travaux", "email_text": "Rue fermée lundi.",
               "email_html": "<html><body><p>Rue fermée lundi.</p></body></html>"},
        "nl": {"email_subject": "Werken", "email_text": "Straat dicht maandag."}})
    await _send(engine, cid, sink, settings)

    assert len(sink.messages) == 3 and all(len(m.recipients) == 1 for m in sink.messages)
    by_rcpt = {m.recipients[0]: m for m in sink.messages}
    assert set(by_rcpt) == set(people)
    alice = by_rcpt["alice@example.org"]
    msg = alice.message
    assert msg["To"] == "alice@example.org"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = _unsubscribe_path(alice)
    url = BASE_URL + path
    assert url in msg.get_body(("plain",)).get_content()
    assert url.replace("&", "&amp;") in msg.get_body(("html",)).get_content()
    assert "Les alertes continueront de vous parvenir" in msg.get_body(("plain",)).get_content()
    assert "?lang=nl" in by_rcpt["bob@example.org"].message["List-Unsubscribe"]
    assert _unsubscribe_path(by_rcpt["bob@example.org"]) != path  # each address its own token

    app = create_app(engine, start_worker=False, settings=settings)
    with TestClient(app, base_url=BASE_URL) as client:
        # GET only asks (mail scanners prefetch links): nothing changes.
        page = client.get(path)
        assert page.status_code == 200
        assert 'lang="fr"' in page.text and "Me désabonner" in page.text
        assert 'method="post"' in page.text and "a…@example.org" in page.text
        assert _opt_in(engine) == {a: True for a in people}
        # RFC 8058 one-click POST as a mail client sends it: no cookie, no CSRF token.
        client.cookies.clear()
        done = client.post(path, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "set-cookie" not in done.headers
        assert _opt_in(engine) == {"alice@example.org": False, "bob@example.org": True,
                                   "carol@example.org": True}
        assert client.post(path).status_code == 200  # again: idempotent
        with transaction(engine) as s:
            audit = s.scalars(sa.select(AuditEntry).where(
                AuditEntry.action == "contact_point.info_opt_out")).all()
            assert len(audit) == 2 and audit[0].actor == "citizen"
            assert "alice" not in json.dumps(audit[0].detail)  # ids, not the address

        # A forged token (another deployment's key, or an altered signature): 400, no change.
        forged = unsubscribe_token("not-the-deployment-secret", "bob@example.org")
        for bad in (f"/unsubscribe/{forged}", path.split("?")[0][:-3] + "xyz", "/unsubscribe/x"):
            for method in (client.get, client.post):
                r = method(bad)
                assert r.status_code == 400, bad
                assert "not valid" in r.text
        assert "signature does not match" in client.post(f"/unsubscribe/{forged}").text
        assert _opt_in(engine)["bob@example.org"] is True


async def test_opt_out_and_hard_bounce_shape_the_next_campaigns(
        engine: Engine, sink: SmtpSink, settings: Settings) -> None:
    """Through launch: an opted-out address gets no more information but still gets alerts;
    a hard-bounced address gets nothing any more (SPEC F8)."""
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    people = {"keen@example.org": "fr", "done@example.org": "fr", "gone@example.org": "fr"}
    _subscribers(engine, people)
    sink.handler.reject = {"gone@example.org"}

    def launch(kind: str) -> str:
        return launch_campaign(engine, CampaignRequest(
            authority_id="23003", municipality_nis="23003", channels=["email"], kind=kind,
            texts={"fr": "Marché de Noël samedi sur la place."}), settings)

    first = await asyncio.to_thread(launch, "information")
    await _send(engine, first, sink, settings)
    assert _deliveries(engine, first)["gone@example.org"].state == "failed"
    done = next(m for m in sink.messages if m.recipients == ["done@example.org"])
    app = create_app(engine, start_worker=False, settings=settings)
    with TestClient(app, base_url=BASE_URL) as client:
        assert client.post(_unsubscribe_path(done)).status_code == 200

    info = await asyncio.to_thread(launch, "information")
    alert = await asyncio.to_thread(launch, "alert")
    assert set(_deliveries(engine, info)) == {"keen@example.org"}
    assert set(_deliveries(engine, alert)) == {"keen@example.org", "done@example.org"}


def _opt_in(engine: Engine) -> dict[str, bool]:
    with transaction(engine) as s:
        return dict(s.execute(sa.select(ContactPoint.value, ContactPoint.info_opt_in)
                              .where(ContactPoint.kind == "email")).all())


def test_unsubscribe_link_is_signed_without_database() -> None:
    url = unsubscribe_url(BASE_URL, "k" * 32, "dave@example.org", "de")
    assert url.startswith(f"{BASE_URL}/unsubscribe/") and url.endswith("?lang=de")
    assert unsubscribe_url(BASE_URL, "k" * 32, "dave@example.org") != \
        unsubscribe_url(BASE_URL, "other-key", "dave@example.org")


# ----------------------------------------------------------------------------- bounces


async def test_hard_bounce_fails_delivery_with_code_and_invalidates_contact_point(
        any_engine: Engine, settings: Settings) -> None:
    engine = any_engine
    people = {"ok@example.org": "fr", "gone@example.org": "fr", "full@example.org": "fr"}
    _subscribers(engine, people)
    sink = SmtpSink(reject={"gone@example.org"},
                    replies={"full@example.org": "552 5.2.2 mailbox full"}).start()
    try:
        cid = _campaign(engine, "alert", people)
        await _send(engine, cid, sink, settings)
    finally:
        sink.stop()
    rows = _deliveries(engine, cid)
    assert rows["ok@example.org"].state == "sent"
    assert rows["gone@example.org"].state == "failed"
    assert rows["gone@example.org"].error == "SMTP 550: 5.1.1 mailbox unavailable"
    assert rows["full@example.org"].state == "failed"
    assert rows["full@example.org"].error == "SMTP 552: 5.2.2 mailbox full"
    with transaction(engine) as s:
        cps = {c.value: c for c in s.scalars(sa.select(ContactPoint)).all()}
        assert cps["gone@example.org"].invalid_at is not None
        assert cps["gone@example.org"].invalid_reason == "SMTP 550: 5.1.1 mailbox unavailable"
        # A full mailbox (RFC 3463: persistent transient) keeps the address valid.
        assert cps["full@example.org"].invalid_at is None
        assert cps["ok@example.org"].invalid_at is None
        audit = s.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "contact_point.invalid")).all()
        assert [a.detail["contact_points"] for a in audit] == [[cps["gone@example.org"].id]]


async def test_smtp_replies_map_to_sent_failed_or_retry(sink: SmtpSink) -> None:
    sink.handler.replies = {"later@example.org": "451 4.3.0 try again later",
                            "nobody@example.org": "550 5.1.1 no such user"}
    sender = SmtpSender(SmtpAccount("127.0.0.1", sink.port, connections=1))
    await sender.start()
    try:
        def msg(i: int, address: str, personal: bool = False) -> OutgoingMessage:
            return OutgoingMessage(i, "c1", address, "en", "Body", "Subject", MAIL_FROM,
                                   unsubscribe_url=f"{BASE_URL}/unsubscribe/t{i}"
                                   if personal else "")
        out = {o.delivery_id: o for o in await sender.send(
            [msg(1, "fine@example.org"), msg(2, "later@example.org"),
             msg(3, "nobody@example.org")])}
        assert out[1].result == "sent" and out[2].result == "retry"
        assert out[3].result == "failed" and out[3].hard_bounce
        assert out[2].error == "SMTP 451: 4.3.0 try again later" and not out[2].hard_bounce
        # A content filter refusing DATA fails the batch but condemns no address...
        sink.handler.data_reply = "554 5.7.1 rejected by content filter"
        out = {o.delivery_id: o for o in await sender.send(
            [msg(4, "a@example.org"), msg(5, "b@example.org")])}
        assert {o.result for o in out.values()} == {"failed"}
        assert not any(o.hard_bounce for o in out.values())
        assert out[4].error == "SMTP 554: 5.7.1 rejected by content filter"
        # ... a 5.1.1 at DATA for a one-recipient message does; a 4xx at DATA is retried.
        sink.handler.data_reply = "550 5.1.1 unknown user"
        (alone,) = await sender.send([msg(6, "c@example.org", personal=True)])
        assert alone.result == "failed" and alone.hard_bounce
        sink.handler.data_reply = "452 4.3.1 insufficient storage"
        (later,) = await sender.send([msg(7, "d@example.org")])
        assert later.result == "retry"
        # The session survives every refusal (RSET), so the next message goes through.
        sink.handler.data_reply = ""
        (ok,) = await sender.send([msg(8, "e@example.org")])
        assert ok.result == "sent"
    finally:
        await sender.close()


def _dsn(message_id: str, recipients: list[tuple[str, str, str, str]]) -> bytes:
    """A bounce as Postfix writes it (RFC 3464 multipart/report)."""
    blocks = "".join(
        f"\r\nFinal-Recipient: rfc822; {addr}\r\nOriginal-Recipient: rfc822;{addr}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.org\r\n"
        f"Diagnostic-Code: smtp; {diag}\r\n" for addr, action, status, diag in recipients)
    return (
        "From: MAILER-DAEMON@mx.alert.example.be (Mail Delivery System)\r\n"
        "To: no-reply@alert.example.be\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status;\r\n'
        ' boundary="BOUNDARY"\r\n\r\n'
        "--BOUNDARY\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--BOUNDARY\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.alert.example.be\r\n"
        "Arrival-Date: Mon, 1 Dec 2026 10:00:00 +0100\r\n"
        f"{blocks}\r\n"
        "--BOUNDARY\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {MAIL_FROM}\r\nTo: undisclosed-recipients:;\r\nSubject: ALERTE\r\n"
        f"Message-ID: <{message_id}>\r\n\r\n"
        "--BOUNDARY--\r\n"
    ).encode()


async def test_dsn_bounce_fails_the_delivery_and_invalidates_the_address(
        any_engine: Engine, sink: SmtpSink, settings: Settings) -> None:
    engine = any_engine
    people = {"one@example.org": "fr", "Two@example.org": "fr", "three@example.org": "fr"}
    _subscribers(engine, people)
    cid = _campaign(engine, "alert", people)
    await _send(engine, cid, sink, settings)
    (received,) = sink.messages
    mid = received.message["Message-ID"].strip().strip("<>")

    data = _dsn(mid, [
        ("two@example.org", "failed", "5.1.1",
         "550 5.1.1 <two@example.org>: Recipient address rejected: User unknown"),
        ("three@example.org", "delayed", "4.4.1", "connect to mx.example.org: timed out"),
    ])
    dsn = parse_dsn(data)
    assert dsn.message_id == mid
    assert [(r.address, r.action, r.status) for r in dsn.recipients] == [
        ("two@example.org", "failed", "5.1.1"), ("three@example.org", "delayed", "4.4.1")]
    assert dsn.recipients[0].permanent_failure and not dsn.recipients[1].permanent_failure

    failed = await asyncio.to_thread(queue.apply_dsn, engine, dsn)
    rows = _deliveries(engine, cid)
    assert failed == [rows["Two@example.org"].id]  # matched whatever the address's case
    assert rows["Two@example.org"].state == "failed"
    assert rows["Two@example.org"].error.startswith("bounce 5.1.1: 550 5.1.1 <two@example.org>")
    assert rows["three@example.org"].state == "sent" and rows["one@example.org"].state == "sent"
    with transaction(engine) as s:
        invalid = s.scalars(sa.select(ContactPoint.value)
                            .where(ContactPoint.invalid_at.is_not(None))).all()
    assert invalid == ["Two@example.org"]
    # Applying it again, or a DSN of a message Tocsin did not send, changes nothing.
    assert queue.apply_dsn(engine, dsn) == []
    assert queue.apply_dsn(engine, parse_dsn(_dsn("abc@elsewhere.example", [
        ("one@example.org", "failed", "5.1.1", "550 unknown")]))) == []
    assert _deliveries(engine, cid)["one@example.org"].state == "sent"
    with pytest.raises(ValueError, match="dsn: not a multipart/report"):
        parse_dsn(received.data)


async def test_cli_applies_bounces_from_files_or_stdin(
        engine: Engine, sink: SmtpSink, settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app

    people = {"one@example.org": "fr", "two@example.org": "nl"}
    _subscribers(engine, people)
    cid = _campaign(engine, "alert", people)
    await _send(engine, cid, sink, settings)
    mids = {m.recipients[0]: m.message["Message-ID"].strip().strip("<>") for m in sink.messages}
    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    runner = CliRunner()
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(_dsn(mids["one@example.org"], [
        ("one@example.org", "failed", "5.1.2", "550 5.1.2 domain not found")]))
    result = runner.invoke(app, ["email", "bounce", "--json", str(bounce)])
    assert result.exit_code == 0, result.output
    rows = _deliveries(engine, cid)
    assert json.loads(result.output) == {"failed_deliveries": [rows["one@example.org"].id]}
    assert rows["one@example.org"].error == "bounce 5.1.2: 550 5.1.2 domain not found"
    result = runner.invoke(app, ["email", "bounce", "-"], input=_dsn(mids["two@example.org"], [
        ("two@example.org", "failed", "5.7.1", "550 5.7.1 message refused")]))
    assert result.exit_code == 0 and "1 delivery(ies) failed" in result.output
    with transaction(engine) as s:  # a policy refusal leaves the address valid
        assert s.scalars(sa.select(ContactPoint.value)
                         .where(ContactPoint.invalid_at.is_not(None))).all() == ["one@example.org"]
    not_dsn = tmp_path / "plain.eml"
    not_dsn.write_bytes(sink.messages[0].data)
    result = runner.invoke(app, ["email", "bounce", str(not_dsn)])
    assert result.exit_code == 1 and "not a multipart/report" in result.output


# ----------------------------------------------------------------------------- DKIM


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, bytes]:
    """An RSA key pair: the private key file and the DNS TXT record of its public key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to generate a test RSA key")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import base64

    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


async def test_every_email_is_dkim_signed_and_verifies(
        engine: Engine, sink: SmtpSink, tmp_path: Path, dkim_key: tuple[Path, bytes]) -> None:
    key, txt = dkim_key
    settings = Settings(var_dir=tmp_path / "var", public_base_url=BASE_URL, mail_from=MAIL_FROM,
                        dkim_domain="alert.example.be", dkim_selector="tocsin2026",
                        dkim_private_key_file=str(key))
    signer = DkimSigner.from_settings(settings)
    assert signer is not None
    people = {"alice@example.org": "fr", "bob@example.org": "fr"}
    _subscribers(engine, people)
    info = _campaign(engine, "information", people)
    alert = _campaign(engine, "alert", people)
    await _send(engine, info, sink, settings, signer)
    await _send(engine, alert, sink, settings, signer)
    assert len(sink.messages) == 3

    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return txt if name == b"tocsin2026._domainkey.alert.example.be." else b""

    for received in sink.messages:
        assert dkim.verify(received.data, dnsfunc=dns), received.message["To"]
        signature = received.message["DKIM-Signature"]
        assert "d=alert.example.be" in signature and "s=tocsin2026" in signature
        if received.message["List-Unsubscribe"]:
            # RFC 8058 §3: both List-Unsubscribe fields are covered by the signature.
            h = re.search(r"h=([^;]+)", signature.replace("\r\n", "").replace(" ", "")).group(1)
            assert {"list-unsubscribe", "list-unsubscribe-post"} <= set(h.lower().split(":"))
            tampered = received.data.replace(b"/unsubscribe/", b"/unsubscribe/X", 1)
            assert not dkim.verify(tampered, dnsfunc=dns)
    assert set(looked_up) == {b"tocsin2026._domainkey.alert.example.be."}


def test_dkim_settings_errors_name_the_setting(tmp_path: Path) -> None:
    assert DkimSigner.from_settings(Settings(var_dir=tmp_path)) is None
    with pytest.raises(ValueError, match="TOCSIN_DKIM_SELECTOR: required"):
        DkimSigner.from_settings(Settings(var_dir=tmp_path, dkim_domain="a.be",
                                          dkim_private_key_file="k.pem"))
    with pytest.raises(ValueError, match="TOCSIN_DKIM_PRIVATE_KEY_FILE: cannot read"):
        DkimSigner.from_settings(Settings(var_dir=tmp_path, dkim_domain="a.be",
                                          dkim_selector="s", dkim_private_key_file=str(
                                              tmp_path / "missing.pem")))
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="not a PEM RSA private key"):
        DkimSigner.from_settings(Settings(var_dir=tmp_path, dkim_domain="a.be",
                                          dkim_selector="s", dkim_private_key_file=str(junk)))


def test_sender_identity_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_VOICE_CALLER", "+3278151789")
    monkeypatch.setenv("TOCSIN_MAIL_FROM", "no-reply@alerte.be")
    s = Settings()
    assert s.voice_caller == "+3278151789" and s.mail_from == "no-reply@alerte.be"
    assert s.sms_source == "1789"
