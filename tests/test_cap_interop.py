"""Interoperability (SPEC F24): an independent CAP library reads what Tocsin publishes.

``capparselib`` (PyPI, MPL 1.1; its own CAP 1.2 schema and lxml.objectify
reading, no code shared with Tocsin) parses the published documents; what it
reads must be what the campaign said. It is a test dependency only
(requirements-test-nodeps.lock: installed without its obsolete ``lxml==4.6.3``
pin, which cannot build on Python 3.11).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Polygon, shape

from tocsin.campaigns.models import Campaign
from tocsin.campaigns.services import CampaignRequest, launch_campaign, update_campaign
from tocsin.core.db import transaction
from tocsin.core.settings import get_settings
from tocsin.web.app import create_app

capparselib = pytest.importorskip("capparselib.parsers", reason="make venv installs capparselib")


def _read(xml: bytes) -> dict:
    alerts = capparselib.CAPParser(xml.decode("utf-8")).as_dict()
    assert len(alerts) == 1
    return alerts[0]


def _ring(text: str) -> list[tuple[float, float]]:
    """CAP polygon text ``lat,lon lat,lon …`` as (lat, lon) pairs."""
    return [tuple(float(x) for x in pair.split(",")) for pair in str(text).split()]


def _campaign(engine, campaign_id: str) -> Campaign:
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        s.expunge(c)
        return c


def test_capparselib_reads_a_multilingual_update_with_polygon_and_geocode(engine):
    original_id = launch_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004",
        texts={"fr": "Incendie: restez à l'intérieur.", "nl": "Brand: blijf binnen.",
               "de": "Brand: bleiben Sie drinnen."},
        content={"fr": {"cap_instruction": "Fermez portes et fenêtres."}},
        channels=["cap"], environment="live"))
    update_id = update_campaign(engine, original_id, CampaignRequest(
        authority_id="", kind="", environment="", channels=["cap"],
        texts={"fr": "Incendie maîtrisé, restez prudents.", "nl": "Brand onder controle.",
               "de": "Brand unter Kontrolle."}))
    original, update = _campaign(engine, original_id), _campaign(engine, update_id)
    client = TestClient(create_app(engine, start_worker=False))
    published = client.get(f"/cap/{update.cap_identifier}.xml")
    assert published.status_code == 200

    alert = _read(published.content)
    assert str(alert["cap_id"]) == update.cap_identifier
    assert str(alert["cap_sender"]) == get_settings().cap_sender
    sent = dt.datetime.fromisoformat(str(alert["cap_sent"]))
    assert sent == update.launched_at.replace(microsecond=0)
    assert sent.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))  # Brussels
    assert str(alert["cap_status"]) == "Actual"
    assert str(alert["cap_message_type"]) == "Update"
    assert str(alert["cap_scope"]) == "Public"
    references = str(alert["cap_references"]).split()
    assert references == update.cap_references.split()
    sender, identifier, ref_sent = references[-1].split(",")
    assert (sender, identifier) == (get_settings().cap_sender, original.cap_identifier)
    assert dt.datetime.fromisoformat(ref_sent) == original.launched_at.replace(microsecond=0)

    infos = alert["cap_info"]
    assert [str(i["cap_language"]) for i in infos] == ["fr-BE", "nl-BE", "de-BE"]
    area = shape(json.loads(update.area))
    for info, lang in zip(infos, ("fr", "nl", "de"), strict=True):
        assert str(info["cap_headline"]) == update.content[lang]["cap_headline"]
        assert str(info["cap_description"]) == update.content[lang]["cap_description"]
        (cap_area,) = info["cap_area"]
        assert str(cap_area["area_description"]) == update.area_name
        assert [(str(g["valueName"]), str(g["value"])) for g in cap_area["geocodes"]] == [
            ("NIS", "21004")]
        rings = [_ring(p) for p in cap_area["polygons"]]
        assert rings and all(len(r) >= 4 and r[0] == r[-1] for r in rings)
        for ring in rings:  # latitude first, inside Belgium
            assert all(49.4 < lat < 51.6 and 2.5 < lon < 6.5 for lat, lon in ring)
        covered = Polygon([(lon, lat) for lat, lon in rings[0]])
        for ring in rings[1:]:
            covered = covered.union(Polygon([(lon, lat) for lat, lon in ring]))
        # The published polygons cover the campaign's area (simplified outward).
        assert covered.buffer(1e-6).covers(area)
        assert covered.area < area.area * 1.5


def test_capparselib_reads_a_signed_alert(engine, tmp_path, monkeypatch):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tocsin interop")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("TOCSIN_CAP_SIGNING_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("TOCSIN_CAP_SIGNING_CERT_FILE", str(tmp_path / "c.pem"))
    get_settings.cache_clear()
    cid = launch_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004", texts={"fr": "Alerte", "nl": "Alarm"},
        channels=["cap"], environment="live"))
    campaign = _campaign(engine, cid)
    assert "Signature" in campaign.cap_xml
    alert = _read(campaign.cap_xml.encode("utf-8"))
    assert str(alert["cap_id"]) == campaign.cap_identifier
    assert str(alert["cap_info"][0]["cap_language"]) == "fr-BE"
