"""CAP gateway (SPEC F24, F36): integrators' keys, their feed, signed webhook pushes, SSRF.

Webhooks are pushed to a real HTTP server on 127.0.0.1 (allowed only with
``TOCSIN_WEBHOOK_ALLOW_INSECURE``); the SSRF rules are checked on real URLs
and real name resolution (``localhost``), plus a resolver stand-in for a name
that resolves to a private address (no such name exists offline).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from lxml import etree
from typer.testing import CliRunner

from tocsin.authorities import services as authorities
from tocsin.authorities.models import AuditEntry
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.services import CampaignRequest, cancel_campaign, launch_campaign
from tocsin.cap.gateway import (
    AlreadyRevoked,
    GatewayKeyError,
    authenticate,
    create_key,
    list_keys,
    revoke_key,
)
from tocsin.cap.models import CapGatewayKey
from tocsin.channels.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookUrlError,
    check_webhook_url,
    forbidden_reason,
    parse_webhook_url,
    resolve_checked,
    sign,
    verify_signature,
)
from tocsin.core.db import transaction
from tocsin.core.settings import get_settings
from tocsin.dispatch.models import Delivery
from tocsin.web.app import create_app

ATOM = {"a": "http://www.w3.org/2005/Atom"}
PASSWORD = "correct horse battery staple"
# A square around Liège (62063), far from Brussels (21004).
LIEGE_AREA = json.dumps({"type": "Polygon", "coordinates": [[
    [5.45, 50.55], [5.70, 50.55], [5.70, 50.70], [5.45, 50.70], [5.45, 50.55]]]})


def _launch(engine, nis: str, environment: str = "live") -> tuple[str, str]:
    cid = launch_campaign(engine, CampaignRequest(
        authority_id=nis, municipality_nis=nis, texts={"fr": "Alerte", "nl": "Alarm"},
        channels=["cap"], environment=environment))
    with transaction(engine) as s:
        return cid, s.get(Campaign, cid).cap_identifier


def _entries(response) -> list[str]:
    assert response.status_code == 200, response.text
    hrefs = etree.fromstring(response.content).xpath(
        "//a:entry/a:link[@rel='alternate']/@href", namespaces=ATOM)
    assert all("/gateway/" in h for h in hrefs)
    return [h.rsplit("/", 1)[1].removesuffix(".xml") for h in hrefs]


# ----------------------------------------------------------------------------- keys and feed


def test_keys_authenticate_filter_by_area_and_revoke(engine):
    national = create_key(engine, "Panel vendor", "crisis")
    liege = create_key(engine, "Liège map", "crisis", area=LIEGE_AREA)
    _, in_brussels = _launch(engine, "21004")
    _, in_liege = _launch(engine, "62063")
    _launch(engine, "62063", "simulation")
    client = TestClient(create_app(engine, start_worker=False))

    wrong = national.key[:-1] + ("B" if national.key.endswith("A") else "A")
    for headers in ({}, {"Authorization": "Bearer tcg_0000000000_" + "x" * 43},
                    {"Authorization": f"Basic {national.key}"}, {"X-Api-Key": wrong}):
        r = client.get("/gateway/feed.atom", headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(f"/gateway/{in_liege}.xml").status_code == 401

    bearer = {"Authorization": f"Bearer {national.key}"}
    r = client.get("/gateway/feed.atom", headers=bearer)
    assert set(_entries(r)) == {in_brussels, in_liege}  # live only, never simulation
    assert r.headers["Cache-Control"].startswith("private")
    assert client.get("/gateway/feed.atom", headers={
        **bearer, "If-None-Match": r.headers["ETag"]}).status_code == 304
    api_key = {"X-Api-Key": liege.key}
    assert _entries(client.get("/gateway/feed.atom", headers=api_key)) == [in_liege]
    assert client.get(f"/gateway/{in_liege}.xml", headers=api_key).status_code == 200
    assert client.get(f"/gateway/{in_brussels}.xml", headers=api_key).status_code == 404
    doc = client.get(f"/gateway/{in_brussels}.xml", headers=bearer)
    assert doc.status_code == 200 and doc.headers["content-type"] == "application/cap+xml"

    with transaction(engine) as s:  # only a hash is kept, and use is recorded
        row = s.get(CapGatewayKey, national.info.id)
        assert national.key not in (row.key_hash, row.key_prefix) and row.last_used_at
        assert national.key.startswith(row.key_prefix)
    revoke_key(engine, national.info.id, "crisis")
    assert client.get("/gateway/feed.atom", headers=bearer).status_code == 401
    assert authenticate(engine, national.key) is None
    assert authenticate(engine, liege.key) is not None
    with transaction(engine) as s:
        actions = s.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.action.like("cap.key.%"))).all()
    assert sorted(actions) == ["cap.key.create", "cap.key.create", "cap.key.revoke"]


def test_key_input_errors_name_the_field(engine):
    with pytest.raises(GatewayKeyError) as exc:
        create_key(engine, " ", "crisis")
    assert exc.value.field == "name"
    with pytest.raises(GatewayKeyError) as exc:
        create_key(engine, "x", "crisis", area='{"type": "Point", "coordinates": [4, 50]}')
    assert exc.value.field == "area"
    for url in ("http://example.org/hook", "https://127.0.0.1/hook", "https://localhost/hook",
                "https://10.0.0.8/hook", "https://[::1]/hook"):
        with pytest.raises(GatewayKeyError) as exc:
            create_key(engine, "x", "crisis", webhook_url=url)
        assert exc.value.field == "webhook_url", url
    with pytest.raises(GatewayKeyError) as exc:
        revoke_key(engine, 999, "crisis")
    assert exc.value.field == "id"
    assert list_keys(engine) == []  # nothing written


def test_cli_key_create_list_revoke(engine, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    get_settings.cache_clear()
    runner = CliRunner()
    area = tmp_path / "liege.geojson"
    area.write_text(LIEGE_AREA)
    result = runner.invoke(app, ["cap", "key", "create", "--name", "Liège map", "--area",
                                 str(area), "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["area"] is True and created["webhook_secret"] is None
    assert authenticate(engine, created["key"]).name == "Liège map"
    listed = runner.invoke(app, ["cap", "key", "list", "--json"])
    assert [k["id"] for k in json.loads(listed.stdout)] == [created["id"]]
    assert created["key"] not in listed.stdout
    bad = runner.invoke(app, ["cap", "key", "create", "--name", "x", "--webhook",
                              "https://169.254.169.254/latest/meta-data"])
    assert bad.exit_code == 1 and "webhook_url" in bad.output and "Traceback" not in bad.output
    revoked = runner.invoke(app, ["cap", "key", "revoke", str(created["id"])])
    assert revoked.exit_code == 0 and authenticate(engine, created["key"]) is None
    assert runner.invoke(app, ["cap", "key", "revoke", "nope"]).exit_code == 1


def test_admin_page_is_for_the_federal_operator(engine):
    import re

    authorities.create_user(engine, "crisis", PASSWORD, "BE", role="federal_operator")
    authorities.create_user(engine, "op", PASSWORD, "21004")
    client = TestClient(create_app(engine, start_worker=False))

    def login(username: str) -> str:
        from weblogin import log_in  # live logins of senders need TOTP (issue 8)

        client.cookies.clear()
        log_in(client, username, PASSWORD, "live")
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)[1]
        return re.search(r'name="csrf_token" value="([^"]+)"',
                         client.get("/admin/gateway").text or "")[1] \
            if username == "crisis" else token

    login("op")
    assert client.get("/admin/gateway").status_code == 403
    assert 'href="/admin/gateway"' not in client.get("/").text
    csrf = login("crisis")
    assert 'href="/admin/gateway"' in client.get("/").text  # in the federal operator's menu
    r = client.post("/admin/gateway/keys", data={"name": "Panel vendor", "csrf_token": csrf})
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    key = re.search(r'id="new-key">([^<]+)<', r.text)[1]
    assert authenticate(engine, key).name == "Panel vendor"
    assert key not in client.get("/admin/gateway").text  # shown once
    bad = client.post("/admin/gateway/keys", data={
        "name": "x", "webhook_url": "https://10.1.2.3/", "csrf_token": csrf})
    assert bad.status_code == 422 and "webhook_url" in bad.text
    kid = list_keys(engine)[0].id
    assert client.post(f"/admin/gateway/keys/{kid}/revoke",
                       data={"csrf_token": "forged"}).status_code == 403
    r = client.post(f"/admin/gateway/keys/{kid}/revoke", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and authenticate(engine, key) is None


# ----------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://127.1.2.3/", "https://10.0.0.1/", "https://172.16.5.4/",
    "https://192.168.1.1/", "https://169.254.169.254/latest/meta-data", "https://[::1]/",
    "https://[fe80::1]/", "https://[fd00::1]/", "https://[::ffff:10.0.0.1]/",
    "https://[::ffff:127.0.0.1]/", "https://0.0.0.0/", "https://100.64.0.1/",
    "https://224.0.0.1/", "https://240.0.0.1/", "https://255.255.255.255/",
    "https://[2002:0a00:0001::1]/", "http://93.184.215.14/", "ftp://93.184.215.14/",
    "https://user:pw@93.184.215.14/", "https:///nohost", "https://exa mple.org/",
    "https://93.184.215.14:99999/", "", "https://[::1%25eth0]/",
])
def test_webhook_urls_refused(url):
    with pytest.raises(WebhookUrlError) as exc:
        check_webhook_url(url)
    assert exc.value.field == "webhook_url"


def test_webhook_url_rules_and_resolution():
    assert check_webhook_url("https://93.184.215.14/hook?x=1") == "https://93.184.215.14/hook?x=1"
    target = parse_webhook_url("https://Example.ORG:8443/p?q=1#frag")
    assert (target.host, target.port, target.target, target.host_header) == \
        ("example.org", 8443, "/p?q=1", "example.org:8443")
    assert target.url_for("2001:db8::1") == "https://[2001:db8::1]:8443/p?q=1"
    # localhost really resolves to a loopback address: refused unless insecure mode.
    with pytest.raises(WebhookUrlError, match="loopback"):
        check_webhook_url("https://localhost/hook")
    assert check_webhook_url("http://localhost:8080/hook", allow_insecure=True)
    with pytest.raises(WebhookUrlError):  # insecure mode allows loopback, nothing else
        check_webhook_url("http://10.0.0.1/hook", allow_insecure=True)
    assert forbidden_reason("8.8.8.8") is None
    assert forbidden_reason("2001:4860:4860::8888") is None

    async def private_dns(host: str, port: int) -> list[str]:
        # One public and one private answer: the private one taints the name.
        return ["93.184.215.14", "10.20.30.40"]

    async def public_dns(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    named = parse_webhook_url("https://hooks.example.org/x")
    with pytest.raises(WebhookUrlError, match="10.20.30.40"):
        asyncio.run(resolve_checked(named, resolver=private_dns))
    assert asyncio.run(resolve_checked(named, resolver=public_dns)) == "93.184.215.14"


def test_signature_scheme():
    body = b"<alert/>"
    header = sign("s3cret", 1_700_000_000, body)
    import hashlib
    import hmac

    assert header == "sha256=" + hmac.new(b"s3cret", b"1700000000.<alert/>",
                                          hashlib.sha256).hexdigest()
    assert verify_signature("s3cret", "1700000000", header, body, now=1_700_000_100)
    assert not verify_signature("s3cret", "1700000000", header, body, now=1_700_000_400)
    assert not verify_signature("s3cret", "1700000001", header, body, now=1_700_000_000)
    assert not verify_signature("other", "1700000000", header, body, now=1_700_000_000)
    assert not verify_signature("s3cret", "1700000000", header, body + b" ",
                                now=1_700_000_000)


# ----------------------------------------------------------------------------- webhooks


class Receiver:
    """A real HTTP server: ``/flaky`` answers 500 once then 204, ``/gone`` 410, ``/moved`` 302."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.flaky_failures = 1
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                if self.path == "/flaky":
                    status = 500 if receiver.flaky_failures > 0 else 204
                    receiver.flaky_failures -= 1
                else:
                    status = {"/gone": 410, "/moved": 302}.get(self.path, 404)
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _send(engine, campaign_id: str) -> None:
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.worker import sender_factories

    settings = get_settings()
    assert asyncio.run(send_campaign(engine, campaign_id, sender_factories(settings, None),
                                     send_timeout=20, settings=settings)) == []


def _webhooks(engine, campaign_id: str) -> dict[str, Delivery]:
    with transaction(engine) as s:
        rows = s.scalars(sa.select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                   Delivery.channel == "webhook")).all()
        s.expunge_all()
        return {r.address: r for r in rows}


def test_webhook_pushes_are_signed_retried_and_final(engine, receiver, monkeypatch):
    monkeypatch.setenv("TOCSIN_WEBHOOK_ALLOW_INSECURE", "1")
    get_settings.cache_clear()
    flaky = create_key(engine, "Flaky panel", "crisis", webhook_url=receiver.url("/flaky"))
    gone = create_key(engine, "Gone", "crisis", webhook_url=receiver.url("/gone"))
    moved = create_key(engine, "Moved", "crisis", webhook_url=receiver.url("/moved"))
    far = create_key(engine, "Liège only", "crisis", area=LIEGE_AREA,
                     webhook_url=receiver.url("/flaky"))
    revoked = create_key(engine, "Revoked", "crisis", webhook_url=receiver.url("/flaky"))
    create_key(engine, "Feed only", "crisis")
    revoke_key(engine, revoked.info.id, "crisis")

    sim, _ = _launch(engine, "21004", "simulation")
    assert _webhooks(engine, sim) == {}  # simulation campaigns push to nobody
    cid, identifier = _launch(engine, "21004")
    rows = _webhooks(engine, cid)
    assert set(rows) == {str(flaky.info.id), str(gone.info.id), str(moved.info.id)}
    assert str(far.info.id) not in rows and all(r.language == "" for r in rows.values())

    _send(engine, cid)
    rows = _webhooks(engine, cid)
    ok, failed, redirected = (rows[str(k.info.id)] for k in (flaky, gone, moved))
    assert (ok.state, ok.attempts) == ("sent", 2)
    assert (failed.state, failed.attempts) == ("failed", 1) and "410" in failed.error
    assert redirected.state == "failed" and "redirect" in redirected.error

    with transaction(engine) as s:
        published = s.get(Campaign, cid).cap_xml.encode("utf-8")
    pushes = [r for r in receiver.requests if r["path"] == "/flaky"]
    assert len(pushes) == 2 and receiver.flaky_failures < 0
    for push in pushes:
        h = push["headers"]
        assert push["body"] == published
        assert h["Content-Type"] == "application/cap+xml"
        assert h[DELIVERY_HEADER] == str(ok.id)
        assert verify_signature(flaky.webhook_secret, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER],
                                push["body"])
        assert not verify_signature(gone.webhook_secret, h[TIMESTAMP_HEADER],
                                    h[SIGNATURE_HEADER], push["body"])
    assert not any(r["path"] == "/elsewhere" for r in receiver.requests)
    assert identifier.encode() in pushes[0]["body"]

    # The Cancel reaches the panels too.
    result = cancel_campaign(engine, cid, "crisis")
    cancel_id = result["cancel_campaign_id"]
    assert set(_webhooks(engine, cancel_id)) == set(rows)
    _send(engine, cancel_id)
    cancel_push = [r for r in receiver.requests if r["path"] == "/flaky"][-1]
    assert b"<msgType>Cancel</msgType>" in cancel_push["body"]
    assert _webhooks(engine, cancel_id)[str(flaky.info.id)].state == "sent"


def test_revoked_before_sending_fails_and_private_target_is_refused(engine, receiver,
                                                                    monkeypatch):
    monkeypatch.setenv("TOCSIN_WEBHOOK_ALLOW_INSECURE", "1")
    get_settings.cache_clear()
    key = create_key(engine, "Panel", "crisis", webhook_url=receiver.url("/flaky"))
    sneaky = create_key(engine, "Sneaky", "crisis", webhook_url=receiver.url("/flaky"))
    # The URL changed behind the check (e.g. edited in the database): the sender checks again.
    with transaction(engine) as s:
        s.get(CapGatewayKey, sneaky.info.id).webhook_url = "http://10.0.0.1/hook"
    cid, _ = _launch(engine, "21004")
    revoke_key(engine, key.info.id, "crisis")
    _send(engine, cid)
    rows = _webhooks(engine, cid)
    assert rows[str(key.info.id)].state == "failed" and "revoked" in rows[str(key.info.id)].error
    assert rows[str(sneaky.info.id)].state == "failed"
    assert "private" in rows[str(sneaky.info.id)].error
    assert receiver.requests == []


# ----------------------------------------------------------------------------- fix round

DEEP = "[" * 100_000


def test_revoke_huge_or_revoked_ids(engine):
    key = create_key(engine, "Panel vendor", "crisis")
    for bad in ("99999999999999999999999", 2**63, -1, "0"):
        with pytest.raises(GatewayKeyError) as caught:
            revoke_key(engine, bad, "crisis")
        assert caught.value.field == "id" and "no gateway key" in caught.value.reason
    revoke_key(engine, key.info.id, "crisis")
    with pytest.raises(AlreadyRevoked) as again:
        revoke_key(engine, key.info.id, "crisis")
    assert again.value.field == "id" and "already revoked (at " in again.value.reason
    assert "Europe/Brussels" in again.value.reason
    with transaction(engine) as s:
        actions = s.scalars(sa.select(AuditEntry.action).where(
            AuditEntry.action == "cap.key.revoke")).all()
    assert actions == ["cap.key.revoke"]  # the second revoke wrote nothing


def test_deeply_nested_area_is_an_input_error(engine, tmp_path):
    with pytest.raises(GatewayKeyError) as caught:
        create_key(engine, "Deep", "crisis", area=DEEP)
    assert caught.value.field == "area" and "nested too deeply" in caught.value.reason


def test_cli_keys_list_revoke_twice_and_huge_ids(engine, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    get_settings.cache_clear()
    runner = CliRunner()
    deep = tmp_path / "deep.geojson"
    deep.write_text(DEEP)
    refused = runner.invoke(app, ["cap", "key", "create", "--name", "x", "--area", str(deep)])
    assert refused.exit_code == 1 and "nested too deeply" in refused.output
    created = create_key(engine, "Liège map", "crisis", area=LIEGE_AREA)
    listed = runner.invoke(app, ["cap", "key", "list"])
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()[:2]
    for column in ("ID", "PREFIX", "STATE", "CREATED", "LAST USED", "NAME"):
        assert column in header
    assert "Liège map" in row and created.info.key_prefix in row
    assert "Europe/Brussels" in listed.output
    assert runner.invoke(app, ["cap", "key", "revoke", str(created.info.id)]).exit_code == 0
    again = runner.invoke(app, ["cap", "key", "revoke", str(created.info.id)])
    assert again.exit_code == 0 and "already revoked (at " in again.output
    huge = runner.invoke(app, ["cap", "key", "revoke", "99999999999999999999999"])
    assert huge.exit_code == 1 and "no gateway key" in huge.output
    listed = runner.invoke(app, ["cap", "key", "list"])
    assert "revoked" in listed.stdout.splitlines()[1]
    for result in (refused, again, huge, listed):
        assert "Traceback" not in result.output


def test_admin_page_huge_ids_deep_areas_and_revoking_twice(engine):
    from weblogin import session_csrf

    authorities.create_user(engine, "crisis", PASSWORD, "BE", role="federal_operator")
    client = TestClient(create_app(engine, start_worker=False))
    csrf = session_csrf(client, "crisis", PASSWORD, "live", page="/admin/gateway")
    r = client.post("/admin/gateway/keys/99999999999999999999999/revoke",
                    data={"csrf_token": csrf})
    assert r.status_code == 404
    r = client.post("/admin/gateway/keys", data={"name": "Deep", "area": DEEP,
                                                 "csrf_token": csrf})
    assert r.status_code == 422 and "nested too deeply" in r.text
    kid = create_key(engine, "Panel vendor", "crisis").info.id
    assert client.post(f"/admin/gateway/keys/{kid}/revoke", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 303
    r = client.post(f"/admin/gateway/keys/{kid}/revoke", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 409 and "already revoked (at " in r.text


# ----------------------------------------------------------------------------- limits (7.12)

PARIS_AREA = json.dumps({"type": "Polygon", "coordinates": [[
    [2.25, 48.80], [2.45, 48.80], [2.45, 48.90], [2.25, 48.90], [2.25, 48.80]]]})
# Over the border at Tournai / Lille: partly in Belgium, the Belgian part is what counts.
BORDER_AREA = json.dumps({"type": "Polygon", "coordinates": [[
    [3.00, 50.55], [3.40, 50.55], [3.40, 50.70], [3.00, 50.70], [3.00, 50.55]]]})


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"name": "N" * 5000}, "name", "5,000 characters; at most 200"),
    ({"name": "Panel\nvendor"}, "name", "one line"),
    ({"name": "Panel\x1bvendor"}, "name", "U+001B"),
    ({"name": "\u200b"}, "name", "required"),
    ({"name": "Paris panels", "area": PARIS_AREA}, "area", "wholly outside Belgium"),
])
def test_key_limits_name_the_field_and_write_nothing(engine, kwargs, field, words):
    with pytest.raises(GatewayKeyError) as exc:
        create_key(engine, created_by="crisis", **kwargs)
    assert exc.value.field == field and words in exc.value.reason, exc.value
    assert list_keys(engine) == []


def test_key_name_is_normalised_and_a_border_area_is_kept(engine):
    created = create_key(engine, "  Panel\u200b   vendor ", "crisis", area=BORDER_AREA)
    assert created.info.name == "Panel vendor"
    assert created.info.area is not None


def test_cli_refuses_a_key_outside_belgium_and_a_long_name(engine, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    get_settings.cache_clear()
    runner = CliRunner()
    area = tmp_path / "paris.geojson"
    area.write_text(PARIS_AREA)
    outside = runner.invoke(app, ["cap", "key", "create", "--name", "Paris", "--area",
                                  str(area)])
    assert outside.exit_code == 1 and "area" in outside.output
    assert "wholly outside Belgium" in outside.output
    long = runner.invoke(app, ["cap", "key", "create", "--name", "N" * 5000])
    assert long.exit_code == 1 and "name" in long.output and "at most 200" in long.output
    assert list_keys(engine) == []


def test_admin_page_refuses_an_area_outside_belgium(engine):
    import re

    authorities.create_user(engine, "crisis", PASSWORD, "BE", role="federal_operator")
    from weblogin import log_in

    client = TestClient(create_app(engine, start_worker=False))
    assert log_in(client, "crisis", PASSWORD, "live").status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/gateway").text)[1]
    r = client.post("/admin/gateway/keys", data={"name": "Paris panels", "area": PARIS_AREA,
                                                 "csrf_token": csrf})
    assert r.status_code == 422 and "wholly outside Belgium" in r.text
    assert 'id="key-area-error"' in r.text
    r = client.post("/admin/gateway/keys", data={"name": "N" * 5000, "csrf_token": csrf})
    assert r.status_code == 422 and "5,000 characters; at most 200" in r.text
    assert list_keys(engine) == []
