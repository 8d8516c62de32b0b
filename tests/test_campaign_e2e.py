"""End to end: subscribers inside and outside a polygon in Beersel get exactly one message each,
in the right language, through a real SMPP session and a real SMTP conversation (issue 2)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from lxml import etree
from shapely.geometry import Point, box, mapping

from tocsin.campaigns.services import CampaignRequest, campaign_report, launch_campaign
from tocsin.cap.services import get_cap_xml
from tocsin.cap.xml import validate_xsd
from tocsin.channels.email import SmtpAccount, SmtpSender
from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.simulators.smtp_sink import SmtpSink
from tocsin.channels.smpp import SmppAccount
from tocsin.channels.sms import SmppSender
from tocsin.dispatch.services import send_campaign
from tocsin.subscribers.importer import import_subscribers

# A box inside Beersel (NIS 23003, Flemish: official language nl) and points around it.
AREA = box(4.295, 50.7445, 4.311, 50.754)
IN = [Point(4.297 + i * 0.0005, 50.746 + (i % 5) * 0.001) for i in range(20)]
OUT_SAME_MUNICIPALITY = Point(4.28, 50.76)
OUT_OTHER_MUNICIPALITY = Point(4.23, 50.735)  # Halle

TEXTS = {"fr": "Alerte: restez à l'intérieur, fermez portes et fenêtres.",
         "nl": "Alarm: blijf binnen, sluit deuren en ramen."}


def _rows() -> tuple[str, dict[str, str], dict[str, str]]:
    """CSV text, expected SMS (number -> language), expected e-mail (address -> language)."""
    rows: list[tuple[str, str, str, str, Point]] = []
    sms: dict[str, str] = {}
    mail: dict[str, str] = {}
    # 1-6: inside, fr and nl, both channels.
    for i in range(6):
        lang = "fr" if i % 2 else "nl"
        rows.append((f"A{i}", lang, f"+3247000000{i}", f"a{i}@example.org", IN[i]))
        sms[f"+3247000000{i}"] = lang
        mail[f"a{i}@example.org"] = lang
    # 7-8: two addresses, one inside and one outside: one message, not two.
    for i in range(2):
        for p in (OUT_SAME_MUNICIPALITY, IN[6 + i]):
            rows.append((f"B{i}", "fr", f"+3247100000{i}", f"b{i}@example.org", p))
        sms[f"+3247100000{i}"] = "fr"
        mail[f"b{i}@example.org"] = "fr"
    # A family phone shared by an nl subscriber (imported first) and a fr one: one SMS, in nl.
    rows.append(("C0", "nl", "+32472000000", "c0@example.org", IN[8]))
    rows.append(("C1", "fr", "+32472000000", "c1@example.org", IN[9]))
    sms["+32472000000"] = "nl"
    mail["c0@example.org"] = "nl"
    mail["c1@example.org"] = "fr"
    # German speaker: no German text -> the authority's language (nl).
    rows.append(("D0", "de", "+32473000000", "", IN[10]))
    sms["+32473000000"] = "nl"
    # E-mail only, and mobile only.
    rows.append(("E0", "fr", "", "e0@example.org", IN[11]))
    mail["e0@example.org"] = "fr"
    rows.append(("F0", "nl", "+32474000000", "", IN[12]))
    sms["+32474000000"] = "nl"
    # Outside: same municipality, other municipality, on two addresses both outside.
    rows.append(("G0", "fr", "+32475000000", "g0@example.org", OUT_SAME_MUNICIPALITY))
    rows.append(("G1", "nl", "+32475000001", "g1@example.org", OUT_OTHER_MUNICIPALITY))
    rows.append(("G2", "nl", "+32475000002", "", OUT_SAME_MUNICIPALITY))
    rows.append(("G2", "", "", "", OUT_OTHER_MUNICIPALITY))
    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    lines += [f"{sid},{lang},{mob},{em},{p.y:.6f},{p.x:.6f}" for sid, lang, mob, em, p in rows]
    return "\n".join(lines) + "\n", sms, mail


@pytest.mark.slow
async def test_right_people_get_exactly_one_message_in_their_language(any_engine) -> None:
    engine = any_engine
    csv, expected_sms, expected_mail = _rows()
    report = await asyncio.to_thread(import_subscribers, engine, csv.encode())
    assert report.errors == []

    campaign_id = await asyncio.to_thread(launch_campaign, engine, CampaignRequest(
        authority_id="23003", texts=TEXTS, channels=["sms", "email", "cap"],
        area_geojson=json.dumps({"type": "Feature", "properties": {},
                                 "geometry": mapping(AREA)}),
    ))

    smsc = SmscSimulator(receipt_delay=0.05)
    await smsc.start()
    sink = SmtpSink(keep=True).start()
    try:
        smpp = SmppAccount(host="127.0.0.1", port=smsc.port, system_id="tocsin", window=20)
        smtp = SmtpAccount("127.0.0.1", sink.port, connections=2)
        senders = {
            ("sms", "simulation"): lambda rb: SmppSender([smpp], rb.add),
            ("email", "simulation"): lambda rb: SmtpSender(smtp),
        }
        unfinished = await send_campaign(engine, campaign_id, senders, receipt_timeout=10,
                                         send_timeout=20)
    finally:
        await smsc.stop()
        sink.stop()
    assert unfinished == []

    # SMS: exactly the expected numbers, once each, each in its expected language.
    texts = smsc.texts()
    assert Counter(dest for dest, _ in texts) == Counter(list(expected_sms))
    for dest, text in texts:
        assert text == TEXTS[expected_sms[dest]], dest
    # E-mail: exactly the expected addresses, once each, with the body in their language.
    got = sink.deliveries()
    assert Counter(rcpt for rcpt, _ in got) == Counter(list(expected_mail))
    for rcpt, message in got:
        assert message.body.strip() == TEXTS[expected_mail[rcpt]], rcpt
        assert message.message["To"] == "undisclosed-recipients:;"

    final = await asyncio.to_thread(campaign_report, engine, campaign_id)
    assert final["status"] == "finished"
    assert final["channels"]["sms"]["by_status"] == {"delivered": len(expected_sms)}
    assert final["channels"]["email"]["by_status"] == {"sent": len(expected_mail)}
    assert final["channels"]["sms"]["by_language"] == dict(Counter(expected_sms.values()))
    assert final["channels"]["email"]["by_language"] == dict(Counter(expected_mail.values()))
    # Every text here is 1 GSM-7 segment... except the French one (à is GSM-7, so still 1).
    assert final["channels"]["sms"]["segments"] == len(expected_sms)
    assert final["channels"]["sms"]["cost_eur"] == pytest.approx(0.055 * len(expected_sms))

    # CAP: valid against the OASIS schema, one info per language, status Exercise (simulation).
    xml = await asyncio.to_thread(get_cap_xml, engine, final["cap_identifier"])
    assert validate_xsd(xml) == []
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    doc = etree.fromstring(xml)
    assert doc.findtext("cap:status", namespaces=ns) == "Exercise"
    assert [i.findtext("cap:language", namespaces=ns) for i in doc.findall("cap:info", ns)] == [
        "fr-BE", "nl-BE"]
    for polygon in doc.iterfind(".//cap:polygon", ns):
        points = polygon.text.split()
        assert points[0] == points[-1] and len(points) >= 4


def test_sender_identity_comes_from_the_deployment_settings(engine, monkeypatch):
    # SPEC F20: a fixed, recognisable sender per channel, set per deployment.
    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import transaction
    from tocsin.core.settings import get_settings

    monkeypatch.setenv("TOCSIN_SMS_SOURCE", "1722")
    monkeypatch.setenv("TOCSIN_MAIL_FROM", "no-reply@crisis.example.be")
    monkeypatch.setenv("TOCSIN_VOICE_CALLER", "+3222534800")
    get_settings.cache_clear()
    cid = launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", channels=["cap"],
        texts={"nl": "Blijf binnen."}))
    with transaction(engine) as s:
        c = s.get(Campaign, cid)
        assert (c.sms_source, c.mail_from, c.voice_caller) == (
            "1722", "no-reply@crisis.example.be", "+3222534800")
