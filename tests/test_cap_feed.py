"""Only live campaigns enter the public CAP feed; simulation ones stay under /simulation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from tocsin.campaigns.services import CampaignRequest, launch_campaign
from tocsin.cap.xml import validate_xsd
from tocsin.web.app import create_app

ATOM = {"a": "http://www.w3.org/2005/Atom"}


def _launch(engine, environment: str) -> str:
    from tocsin.campaigns.services import campaign_report

    cid = launch_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004", texts={"fr": "Alerte", "nl": "Alarm"},
        channels=["cap"], environment=environment))
    return campaign_report(engine, cid)["cap_identifier"]


def test_simulation_alerts_never_reach_the_public_feed(engine, monkeypatch):
    monkeypatch.setenv("TOCSIN_SMPP_URL", "")
    sim = _launch(engine, "simulation")
    live = _launch(engine, "live")  # CAP only: needs no SMS/e-mail provider
    client = TestClient(create_app(engine, start_worker=False))

    public = client.get("/cap/feed.atom")
    assert public.status_code == 200
    assert public.headers["content-type"].startswith("application/atom+xml")
    assert "ETag" in public.headers and "Cache-Control" in public.headers
    links = etree.fromstring(public.content).xpath("//a:entry/a:link/@href", namespaces=ATOM)
    assert any(live in href for href in links)
    assert not any(sim in href for href in links)
    assert client.get(f"/cap/{sim}.xml").status_code == 404

    simfeed = client.get("/simulation/cap/feed.atom")
    links = etree.fromstring(simfeed.content).xpath("//a:entry/a:link/@href", namespaces=ATOM)
    assert any(sim in href for href in links) and not any(live in href for href in links)
    assert client.get(f"/simulation/cap/{live}.xml").status_code == 404

    for path in (f"/cap/{live}.xml", f"/simulation/cap/{sim}.xml"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"] == "application/cap+xml"
        assert validate_xsd(r.content) == []
    assert b"<status>Actual</status>" in client.get(f"/cap/{live}.xml").content
    assert b"<status>Exercise</status>" in client.get(f"/simulation/cap/{sim}.xml").content
    etag = client.get("/cap/feed.atom").headers["ETag"]
    assert client.get("/cap/feed.atom", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("kind, environment, status", [
    ("alert", "live", "Actual"), ("warning", "live", "Actual"),
    ("information", "live", "Actual"), ("test", "live", "Test"),
    ("exercise", "live", "Exercise"), ("alert", "simulation", "Exercise"),
])
def test_cap_status(kind, environment, status):
    from tocsin.campaigns.rules import cap_status

    assert cap_status(kind, environment) == status


# ----------------------------------------------------------------------------- publishing

RFC5005 = {"a": "http://www.w3.org/2005/Atom"}


def _live(engine, nis: str = "21004", **extra) -> str:
    """Launch a live CAP-only campaign of municipality ``nis``; returns its campaign id."""
    return launch_campaign(engine, CampaignRequest(
        authority_id=nis, municipality_nis=nis, texts={"fr": "Alerte", "nl": "Alarm"},
        channels=["cap"], environment="live", **extra))


def _identifier(engine, campaign_id: str) -> str:
    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import transaction

    with transaction(engine) as s:
        return s.get(Campaign, campaign_id).cap_identifier


def _set(engine, campaign_id: str, **values) -> None:
    import sqlalchemy as sa

    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import transaction

    with transaction(engine) as s:
        s.execute(sa.update(Campaign).where(Campaign.id == campaign_id).values(**values))


def _feed_ids(client, path: str) -> list[str]:
    r = client.get(path)
    assert r.status_code == 200, r.text
    root = etree.fromstring(r.content)
    return [href.rsplit("/", 1)[1].removesuffix(".xml")
            for href in root.xpath("//a:entry/a:link[@rel='alternate']/@href", namespaces=ATOM)]


def _clone(engine, campaign_id: str, n: int) -> list[str]:
    """``n`` more published copies of a campaign, one minute apart (older), for paging."""
    import datetime as dt
    import uuid

    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import transaction

    out = []
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        columns = {col.key: getattr(c, col.key) for col in Campaign.__table__.columns}
        for i in range(n):
            cid = uuid.uuid4().hex
            s.add(Campaign(**{**columns, "id": cid, "cap_identifier": f"BE-TEST-{i:03d}-{cid[:6]}",
                              "launched_at": c.launched_at - dt.timedelta(minutes=i + 1)}))
            out.append(f"BE-TEST-{i:03d}-{cid[:6]}")
    return out


def test_feed_pages_links_etag_and_cache(engine):
    older = _clone(engine, _live(engine), 59)
    first = _identifier(engine, _live(engine))
    client = TestClient(create_app(engine, start_worker=False))

    r = client.get("/cap/feed.atom")
    assert r.headers["Cache-Control"] == "public, max-age=10"
    root = etree.fromstring(r.content)
    entries = root.xpath("//a:entry", namespaces=ATOM)
    assert len(entries) == 50
    links = {link.get("rel"): link.get("href") for link in root.xpath("a:link", namespaces=ATOM)}
    assert links["first"].endswith("/cap/feed.atom") and links["next"].endswith("?page=2")
    assert "previous" not in links
    ids = _feed_ids(client, "/cap/feed.atom")
    assert ids[0] == first  # newest first
    page2 = client.get("/cap/feed.atom?page=2")
    root2 = etree.fromstring(page2.content)
    links2 = {link.get("rel"): link.get("href")
              for link in root2.xpath("a:link", namespaces=ATOM)}
    assert links2["previous"].endswith("/cap/feed.atom") and "next" not in links2
    assert links2["self"].endswith("?page=2")
    assert root2.findtext("a:id", namespaces=ATOM) == root.findtext("a:id", namespaces=ATOM)
    all_ids = ids + _feed_ids(client, "/cap/feed.atom?page=2")
    assert len(all_ids) == 61 and len(set(all_ids)) == 61 and set(older) <= set(all_ids)
    assert client.get("/cap/feed.atom?page=3").status_code == 404
    assert client.get("/cap/feed.atom?page=0").status_code == 422

    etag = r.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for header in (etag, f'"x", {etag}', f"W/{etag}", "*"):
        again = client.get("/cap/feed.atom", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert client.get("/cap/feed.atom", headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head("/cap/feed.atom")
    assert head.status_code == 200 and head.headers["ETag"] == etag

    doc = client.get(f"/cap/{first}.xml")
    assert "immutable" in doc.headers["Cache-Control"]
    assert "public" in doc.headers["Cache-Control"]
    assert client.get(f"/cap/{first}.xml",
                      headers={"If-None-Match": doc.headers["ETag"]}).status_code == 304


def test_expired_updated_and_cancelled_leave_the_active_feed(any_engine):
    import datetime as dt

    engine = any_engine

    from tocsin.campaigns.services import cancel_campaign, update_campaign
    from tocsin.core.db import utcnow

    soon = utcnow() + dt.timedelta(hours=2)
    expiring = _live(engine, expires_at=soon)
    cancelled = _live(engine)
    updated = _live(engine)
    client = TestClient(create_app(engine, start_worker=False))
    ids = {name: _identifier(engine, cid) for name, cid in
           (("expiring", expiring), ("cancelled", cancelled), ("updated", updated))}
    assert set(ids.values()) <= set(_feed_ids(client, "/cap/feed.atom"))

    _set(engine, expiring, expires_at=utcnow() - dt.timedelta(seconds=1))
    cancel = cancel_campaign(engine, cancelled, "tester")
    update_id = update_campaign(engine, updated, CampaignRequest(
        authority_id="", texts={"fr": "Alerte prolongée", "nl": "Alarm verlengd"},
        channels=["cap"], environment="", kind=""))
    update = _identifier(engine, update_id)

    active = _feed_ids(client, "/cap/feed.atom")
    assert not set(ids.values()) & set(active)
    assert cancel["cap_identifier"] in active and update in active
    terms = etree.fromstring(client.get("/cap/feed.atom").content).xpath(
        "//a:entry/a:category/@term", namespaces=ATOM)
    assert {"Cancel", "Update"} <= set(terms)
    archive = _feed_ids(client, "/cap/feed.atom?all=1")
    assert set(ids.values()) | {cancel["cap_identifier"], update} <= set(archive)
    for identifier in ids.values():  # stable URLs stay
        assert client.get(f"/cap/{identifier}.xml").status_code == 200
    assert b"<msgType>Cancel</msgType>" in client.get(
        f"/cap/{cancel['cap_identifier']}.xml").content


def test_authority_feeds_and_private_scope(engine):
    brussels = _identifier(engine, _live(engine, "21004"))
    private = _live(engine, "21004")
    liege = _identifier(engine, _live(engine, "62063"))
    sim = launch_campaign(engine, CampaignRequest(
        authority_id="62063", municipality_nis="62063", texts={"fr": "Exercice"},
        channels=["cap"], environment="simulation"))
    _set(engine, private, scope="Private")
    client = TestClient(create_app(engine, start_worker=False))

    assert _feed_ids(client, "/cap/authorities/21004/feed.atom") == [brussels]
    assert _feed_ids(client, "/cap/authorities/62063/feed.atom") == [liege]
    assert _feed_ids(client, "/simulation/cap/authorities/62063/feed.atom") == [
        _identifier(engine, sim)]
    assert _feed_ids(client, "/simulation/cap/authorities/21004/feed.atom") == []
    assert client.get("/cap/authorities/99999/feed.atom").status_code == 404
    national = _feed_ids(client, "/cap/feed.atom")
    assert set(national) == {brussels, liege}
    hidden = _identifier(engine, private)
    assert hidden not in _feed_ids(client, "/cap/feed.atom?all=1")
    assert client.get(f"/cap/{hidden}.xml").status_code == 404


def test_feed_query_count_is_constant(engine):
    """The hot path (a panel polling the feed) makes the same few queries at any size."""
    import sqlalchemy as sa

    _clone(engine, _live(engine), 30)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    from tocsin.cap.services import cap_feed

    cap_feed(engine, "live")
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2


def _signing_files(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tocsin CAP test signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_file, cert_file = tmp_path / "cap.key", tmp_path / "cap.crt"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def test_published_cap_is_signed_when_configured(engine, tmp_path, monkeypatch):
    from signxml import XMLVerifier
    from signxml.exceptions import InvalidSignature

    from tocsin.core.settings import get_settings

    key_file, cert_file = _signing_files(tmp_path)
    monkeypatch.setenv("TOCSIN_CAP_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("TOCSIN_CAP_SIGNING_CERT_FILE", str(cert_file))
    get_settings.cache_clear()
    identifier = _identifier(engine, _live(engine))
    client = TestClient(create_app(engine, start_worker=False))
    xml = client.get(f"/cap/{identifier}.xml").content

    assert validate_xsd(xml) == []
    root = etree.fromstring(xml)
    dsig = "{http://www.w3.org/2000/09/xmldsig#}"
    assert root[-1].tag == f"{dsig}Signature"  # the XSD's <any> slot: last child of alert
    assert root.find(f".//{dsig}SignatureMethod").get("Algorithm").endswith("rsa-sha256")
    result = XMLVerifier().verify(xml, x509_cert=cert_file.read_text())
    assert result.signed_xml.findtext("{urn:oasis:names:tc:emergency:cap:1.2}identifier") \
        == identifier
    tampered = xml.replace(b"<status>Actual</status>", b"<status>Test</status>")
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(tampered, x509_cert=cert_file.read_text())


def test_signing_needs_both_settings(tmp_path):
    from tocsin.cap.signing import CapSigningError, sign_if_configured
    from tocsin.core.settings import Settings

    key_file, _ = _signing_files(tmp_path)
    assert sign_if_configured(b"<x/>", Settings()) == b"<x/>"
    with pytest.raises(CapSigningError, match="cap_signing_cert_file"):
        sign_if_configured(b"<x/>", Settings(cap_signing_key_file=key_file))


def test_feed_pages_are_reused_for_feed_cache_seconds(engine, monkeypatch):
    import time

    monkeypatch.setenv("TOCSIN_FEED_CACHE_SECONDS", "0.5")
    from tocsin.core.settings import get_settings

    get_settings.cache_clear()
    first = _launch(engine, "live")
    client = TestClient(create_app(engine, start_worker=False))
    before = _feed_ids(client, "/cap/feed.atom")
    second = _launch(engine, "live")
    # Within the window the built page is served again: the spike after an alert
    # costs one build per process and window, not one per request.
    assert _feed_ids(client, "/cap/feed.atom") == before == [first]
    time.sleep(0.6)
    assert _feed_ids(client, "/cap/feed.atom") == [second, first]


def _updated(client, path: str):
    import datetime as dt

    r = client.get(path)
    assert r.status_code == 200, r.text
    text = etree.fromstring(r.content).findtext("a:updated", namespaces=ATOM)
    return dt.datetime.fromisoformat(text), r.headers["ETag"]


def test_empty_feed_updated_is_the_last_change_not_a_fixed_date(engine):
    """An empty feed's <updated> is when it last changed (the newest launch or expiry of
    its environment), or the current minute when nothing was ever published; the strong
    ETag stays the same between identical requests."""
    import datetime as dt

    from tocsin.core.db import utcnow

    client = TestClient(create_app(engine, start_worker=False))
    before = utcnow().replace(second=0, microsecond=0)
    updated, etag = _updated(client, "/cap/feed.atom")
    assert updated.year != 2020 and before <= updated <= utcnow()
    assert updated.second == 0 and updated.microsecond == 0
    again, etag_again = _updated(client, "/cap/feed.atom")
    assert etag_again == etag or again > updated  # only a new minute changes it

    gone = _live(engine)
    expired_at = (utcnow() - dt.timedelta(minutes=5)).replace(microsecond=0)
    _set(engine, gone, expires_at=expired_at, launched_at=expired_at - dt.timedelta(hours=1))
    assert _feed_ids(client, "/cap/feed.atom") == []
    updated, etag = _updated(client, "/cap/feed.atom")
    assert updated == expired_at
    assert _updated(client, "/cap/feed.atom")[1] == etag  # stable
    authority_updated, _ = _updated(client, "/cap/authorities/21004/feed.atom")
    assert authority_updated == expired_at
    # A feed that still lists an older entry is updated when a newer one left it.
    stays = _live(engine, "62063")
    _set(engine, stays, launched_at=expired_at - dt.timedelta(hours=3))
    assert _feed_ids(client, "/cap/feed.atom") == [_identifier(engine, stays)]
    assert _updated(client, "/cap/feed.atom")[0] == expired_at
    # The archive lists both: its newest entry is the last change.
    assert _updated(client, "/cap/feed.atom?all=1")[0] == expired_at - dt.timedelta(hours=1)
