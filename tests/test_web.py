"""Operator platform (issue item 8): login, CSRF, rate limit, pages, health, map layers."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.authorities import services as authorities
from tocsin.authorities.models import AuditEntry, AuditPersonal, Authority, User
from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.core.settings import Settings
from tocsin.web.app import create_app
from weblogin import csrf_of, log_in

PASSWORD = "correct horse battery staple"
CAMPAIGNS = importlib.util.find_spec("tocsin.campaigns.services") is not None
needs_campaigns = pytest.mark.skipif(not CAMPAIGNS, reason="tocsin.campaigns.services missing")


def _square(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
    }


def _authority(id_: str, kind: str, name: str, parent: str | None, geom: dict) -> Authority:
    ring = geom["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return Authority(
        id=id_, kind=kind, name_fr=name, name_nl=name, name_de=None, parent_id=parent,
        languages="fr", agreement_type=1, population=1000, territory=json.dumps(geom),
        min_lon=min(lons), min_lat=min(lats), max_lon=max(lons), max_lat=max(lats),
    )


def seed(engine: Engine) -> None:
    """A province (a 0.2 degree square near Wavre) with two municipalities, and users."""
    with transaction(engine) as s:
        s.add(_authority("25000", "province", "Brabant wallon", None,
                         _square(4.5, 50.6, 4.7, 50.8)))
        s.flush()
        s.add(_authority("25112", "municipality", "Wavre", "25000", _square(4.5, 50.6, 4.6, 50.8)))
        s.add(_authority("25084", "municipality", "Ottignies-Louvain-la-Neuve", "25000",
                         _square(4.6, 50.6, 4.7, 50.8)))
    authorities.create_user(engine, "op", PASSWORD, "25000", display_name="Olivia Operator")
    authorities.create_user(engine, "wavre", PASSWORD, "25112")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(eng)
    seed(eng)
    return eng


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    app = create_app(engine, start_worker=False, settings=settings)
    with TestClient(app) as c:
        yield c


def login(c: TestClient, username: str = "op", password: str = PASSWORD,
          environment: str = "simulation") -> httpx.Response:
    return log_in(c, username, password, environment)


def test_login_ok_opens_session_and_audits(client: TestClient, engine: Engine) -> None:
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/"
    r = client.get("/campaigns/new")
    assert r.status_code == 200
    assert "Brabant wallon" in r.text and "Olivia Operator" in r.text
    # The chained entry names the user by id; the user name and address sit on the side (F6).
    with transaction(engine) as s:
        uid = s.scalar(sa.select(User.id).where(User.username == "op"))
        rows = s.execute(sa.select(AuditEntry.action, AuditEntry.actor, AuditPersonal.actor_name)
                         .join(AuditPersonal, AuditPersonal.entry_id == AuditEntry.id)
                         .where(AuditEntry.actor_id == f"user:{uid}")).all()
    assert ("login", f"user:{uid}", "op") in rows


def test_login_bad_password(client: TestClient) -> None:
    r = login(client, password="wrong")
    assert r.status_code == 401
    assert "Wrong username or password" in r.text
    assert client.get("/campaigns/new", follow_redirects=False).status_code == 303


def test_unknown_user_same_answer(client: TestClient) -> None:
    r = login(client, username="nobody")
    assert r.status_code == 401 and "Wrong username or password" in r.text


def test_login_requires_csrf(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": "op", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/login", data={"username": "op", "password": PASSWORD,
                                    "csrf_token": "forged"}, follow_redirects=False)
    assert r.status_code == 403


def test_logout_requires_csrf(client: TestClient) -> None:
    login(client)
    assert client.post("/logout", follow_redirects=False).status_code == 403
    token = csrf_of(client.get("/campaigns/new").text)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/campaigns/new", follow_redirects=False).status_code == 303


def test_api_post_requires_csrf_header(client: TestClient) -> None:
    login(client)
    r = client.post("/api/campaigns/estimate", json={"texts": {"fr": "x"}, "channels": ["sms"]})
    assert r.status_code == 403
    assert r.json()["error"]["field"] == "csrf_token"


def test_login_rate_limit(client: TestClient) -> None:
    # Issue 8: slowed down (exponential delay), not locked for 15 minutes.
    for _ in range(4):
        assert login(client, password="wrong").status_code == 401
    r = login(client)  # even the right password waits a few seconds
    assert r.status_code == 429
    assert "Too many failed attempts. Try again in" in r.text
    # another user from the same address is not blocked
    assert login(client, username="wavre").status_code == 303


def test_simulation_banner_on_every_page(client: TestClient) -> None:
    login(client)
    page = client.get("/campaigns/new").text
    assert "SIMULATION" in page and 'class="env-banner env-banner-simulation"' in page
    assert '<html lang="en">' in page
    assert 'href="#main"' in page


def test_live_has_no_simulation_banner(client: TestClient) -> None:
    login(client, environment="live")
    page = client.get("/campaigns/new").text
    assert "env-banner-simulation" not in page
    assert "env-banner-live" in page and "Send LIVE alert now" in page


def test_pages_redirect_and_api_401_when_logged_out(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = client.get("/api/authority/territory.geojson")
    assert r.status_code == 401 and r.json()["error"]["field"] == "session"


def test_compose_page_lists_languages_and_vendored_map(client: TestClient) -> None:
    login(client)
    page = client.get("/campaigns/new").text
    assert 'id="text-fr"' in page and 'id="text-nl"' in page  # nl collapsed under "Other"
    assert "/static/vendor/leaflet/leaflet.js" in page
    assert "/static/vendor/leaflet-geoman/leaflet-geoman.min.js" in page
    for path in ("/static/vendor/leaflet/leaflet.js", "/static/compose.js", "/static/tocsin.css",
                 "/static/vendor/leaflet-geoman/leaflet-geoman.min.js"):
        assert client.get(path).status_code == 200, path


def test_healthz_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_territory_endpoints(client: TestClient) -> None:
    login(client)
    f = client.get("/api/authority/territory.geojson").json()
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
    assert f["properties"] == {"id": "25000", "name": "Brabant wallon", "languages": ["fr"]}
    fc = client.get("/api/authority/municipalities.geojson").json()
    assert fc["type"] == "FeatureCollection"
    assert [x["properties"]["nis"] for x in fc["features"]] == ["25084", "25112"]


def test_municipality_sees_itself(client: TestClient) -> None:
    login(client, username="wavre")
    fc = client.get("/api/authority/municipalities.geojson").json()
    assert [x["properties"] for x in fc["features"]] == [
        {"nis": "25112", "name": "Wavre", "names": ["Wavre"]}]


def test_security_headers(client: TestClient) -> None:
    r = client.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_create_user_is_idempotent(engine: Engine) -> None:
    authorities.create_user(engine, "op", "new password", "25000")
    assert authorities.authenticate(engine, "op", PASSWORD) is None
    user = authorities.authenticate(engine, "op", "new password")
    assert user is not None and user.authority_name == "Brabant wallon"
    assert user.display_name == "Olivia Operator"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"username": "u" * 121}, "username: 121 characters; at most 120"),
    ({"username": "olivia\nadmin"}, "username: must be one line"),
    ({"username": " \u200b"}, "username: must not be empty"),
    ({"display_name": "O" * 3000}, "display_name: 3,000 characters; at most 200"),
    ({"display_name": "Olivia\x1b[31m"}, "display_name: contains the control character U+001B"),
    ({"password": "p" * 1025}, "password: 1,025 characters; at most 1,024"),
])
def test_user_names_have_limits_naming_the_field(engine: Engine, kwargs: dict,
                                                 message: str) -> None:
    """Issue 7.12: a display name is shown in every page header; one too long or holding
    terminal escapes is refused by the service, so the CLI and any form share the rule."""
    args = {"username": "newbie", "password": "a long password", "display_name": None, **kwargs}

    def audit_rows() -> int:
        with transaction(engine) as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0)

    before = audit_rows()
    with pytest.raises(ValueError) as exc:
        authorities.create_user(engine, args["username"], args["password"], "25000",
                                display_name=args["display_name"])
    assert str(exc.value).startswith(message), str(exc.value)
    assert audit_rows() == before
    assert authorities.authenticate(engine, "newbie", "a long password") is None


def test_user_display_name_is_normalised(engine: Engine) -> None:
    info = authorities.create_user(engine, " newbie ", "a long password", "25000",
                                   display_name="  Nora \u200b  Newbie ")
    assert info.username == "newbie" and info.display_name == "Nora Newbie"


def test_cli_user_display_name_and_limits(engine: Engine, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app
    from tocsin.core.settings import get_settings

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    get_settings.cache_clear()
    runner = CliRunner()
    ok = runner.invoke(app, ["user", "nora", "--authority", "25000", "--password", "pw pw pw pw pw",
                             "--display-name", "Nora Newbie"])
    assert ok.exit_code == 0, ok.output
    assert authorities.authenticate(engine, "nora", "pw pw pw pw pw").display_name == "Nora Newbie"
    bad = runner.invoke(app, ["user", "nina", "--authority", "25000", "--password", "pw",
                              "--display-name", "N" * 500])
    assert bad.exit_code != 0 and "display_name: 500 characters; at most 200" in bad.output
    assert authorities.authenticate(engine, "nina", "pw") is None


def test_get_authority(engine: Engine) -> None:
    a = authorities.get_authority(engine, "25112")
    assert a.name == "Wavre" and a.parent_id == "25000" and a.languages == ["fr"]
    with pytest.raises(LookupError):
        authorities.get_authority(engine, "nope")


# --- needs the campaign services --------------------------------------------------------


@needs_campaigns
def test_dashboard_renders(client: TestClient) -> None:
    login(client)
    r = client.get("/")
    assert r.status_code == 200 and "New alert" in r.text and "SIMULATION" in r.text


@needs_campaigns
def test_estimate_error_names_field(client: TestClient) -> None:
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    r = client.post(
        "/api/campaigns/estimate",
        json={"texts": {"fr": "Test"}, "channels": ["sms"], "municipality_nis": "99999"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 422
    assert set(r.json()["error"]) == {"field", "reason"}


@needs_campaigns
def test_launch_and_report(client: TestClient) -> None:
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"texts": {"fr": "Exercice: restez chez vous."}, "channels": ["sms", "email", "cap"],
            "municipality_nis": "25112", "kind": "exercise"}
    r = client.post("/api/campaigns/estimate", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    assert "recipients" in r.json()
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    rep = client.get(f"/api/campaigns/{cid}/report")
    assert rep.status_code == 200 and rep.json()["campaign_id"] == cid
    dl = client.get(f"/api/campaigns/{cid}/report?download=1")
    assert "attachment" in dl.headers["content-disposition"]
    page = client.get(f"/campaigns/{cid}")
    assert page.status_code == 200 and "Download report" in page.text
    assert cid in client.get("/").text
    # another authority does not see it
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    login(client, username="wavre")
    assert client.get(f"/api/campaigns/{cid}/report").status_code == 404


@needs_campaigns
def test_live_launch_needs_typed_area_name(client: TestClient) -> None:
    login(client, environment="live")
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"texts": {"fr": "Alerte"}, "channels": ["cap"], "municipality_nis": "25112",
            "kind": "alert", "confirm_area_name": "Somewhere else"}
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "confirm_area_name"


def test_favicon_is_served_and_linked(client: TestClient) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert client.get("/static/favicon.svg").status_code == 200
    assert 'rel="icon"' in client.get("/login").text


def _launch(client: TestClient, token: str, **extra: object) -> str:
    body = {"texts": {"fr": "Exercice: restez chez vous."}, "channels": ["sms", "email", "cap"],
            "municipality_nis": "25112", "kind": "exercise", **extra}
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    return str(r.json()["campaign_id"])


@needs_campaigns
def test_pages_show_no_specification_references(client: TestClient) -> None:
    import re

    login(client)
    compose = client.get("/campaigns/new")
    cid = _launch(client, csrf_of(compose.text))
    for page in (compose, client.get("/"), client.get(f"/campaigns/{cid}"),
                 client.get("/templates")):
        assert page.status_code == 200
        assert not re.search(r"\((?:SPEC )?F\d+\)", page.text), page.url
    for name in ("compose.js", "message-tools.js", "campaign.js"):
        js = client.get(f"/static/{name}").text
        strings = re.findall(r'"[^"\n]*"|`[^`]*`', js)
        assert not [s for s in strings if re.search(r"\bF\d\d\b", s)], name


@needs_campaigns
def test_report_and_list_say_what_a_message_is(client: TestClient) -> None:
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    cid = _launch(client, token)
    r = client.post(f"/api/campaigns/{cid}/all-clear", json={},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    clear_id = r.json()["campaign_id"]
    original = client.get(f"/campaigns/{cid}").text
    assert "All clear sent" in original and f'href="/campaigns/{clear_id}"' in original
    page = client.get(f"/campaigns/{clear_id}").text
    assert "the all-clear of" in page and f'href="/campaigns/{cid}"' in page
    assert ">All clear</span>" in page
    listing = client.get("/").text
    assert ">All clear</span>" in listing and ">New</span>" in listing
    assert ">Alert</span>" not in listing  # the kind (exercise) is not badged "Alert"
    # the update composer is prefilled with the original's text
    update = client.get(f"/campaigns/new?update={cid}")
    assert update.status_code == 200 and "Exercice: restez chez vous." in update.text
    assert "Update of" in update.text
    # nothing to update in another authority's campaign
    client.post("/logout", data={"csrf_token": csrf_of(update.text)})
    login(client, username="wavre")
    assert client.get(f"/campaigns/new?update={cid}").status_code == 404


@needs_campaigns
def test_scheduled_report_polls_nothing_and_links_no_cap_yet(client: TestClient) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    when = (dt.datetime.now(ZoneInfo("Europe/Brussels")) + dt.timedelta(hours=5))
    cid = _launch(client, token, scheduled_for=when.strftime("%Y-%m-%d %H:%M"))
    page = client.get(f"/campaigns/{cid}").text
    assert "Scheduled for" in page and when.strftime("%H:%M") in page
    assert "Updating every second" not in page and 'id="cap-link"' not in page
    assert 'id="action-cancel"' in page and 'id="action-update"' not in page
    assert when.strftime("%Y-%m-%d %H:%M") in client.get("/").text


@needs_campaigns
def test_draft_opens_in_the_composer(client: TestClient, engine: Engine) -> None:
    from test_cap_validate import area_xml, cap_xml, info_xml
    from tocsin.campaigns.drafts import save_draft
    from tocsin.cap.importer import import_cap

    wavre = "50.65,4.52 50.65,4.58 50.75,4.58 50.75,4.52 50.65,4.52"
    doc = cap_xml(info_xml("fr-BE", areas=(area_xml("Wavre centre", polygons=(wavre,)),),
                           expires="2099-01-01T12:00:00+01:00"))
    draft_id = save_draft(engine, "25000", import_cap(doc), "op")
    login(client)
    listing = client.get("/").text
    assert f'href="/campaigns/new?draft={draft_id}"' in listing
    report = client.get(f"/campaigns/{draft_id}").text
    assert "Open in composer" in report and f"/campaigns/new?draft={draft_id}" in report
    compose = client.get(f"/campaigns/new?draft={draft_id}").text
    assert "Draft from an imported CAP alert" in compose
    assert 'value="2099-01-01T12:00"' in compose  # the imported expiry, Brussels time


@needs_campaigns
def test_list_shows_chains_and_launch_times(client: TestClient) -> None:
    """Each follow-up row names the alert it belongs to; the original says what became of
    it; every row shows its launch time (Brussels) to tell same-named alerts apart."""
    import re

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    cid = _launch(client, token)
    other = _launch(client, token)  # same area, same name: told apart by the time
    r = client.post(f"/api/campaigns/{cid}/update", json={"texts": {"fr": "Exercice: suite."}},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    update_id = r.json()["campaign_id"]
    r = client.post(f"/api/campaigns/{update_id}/all-clear", json={},
                    headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    clear_id = r.json()["campaign_id"]
    listing = client.get("/").text
    rows = {m.group(1): m.group(0) for m in re.finditer(
        r'<tr data-campaign="(\w+)".*?</tr>', listing, re.S)}
    assert {cid, other, update_id, clear_id} <= set(rows)
    assert "update of" in rows[update_id] and f'href="/campaigns/{cid}"' in rows[update_id]
    assert "all clear of" in rows[clear_id]
    assert "updated" in rows[cid] and "all clear" in rows[cid].split("msg-label")[-1]
    assert "updated" not in rows[other] and "all clear" not in rows[other]
    assert re.search(r"\d\d:\d\d", rows[other])


@needs_campaigns
def test_older_messages_of_a_chain_act_on_the_latest(client: TestClient) -> None:
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    cid = _launch(client, token)
    r = client.post(f"/api/campaigns/{cid}/update", json={"texts": {"fr": "Exercice: suite."}},
                    headers={"X-CSRF-Token": token})
    update_id = r.json()["campaign_id"]
    original = client.get(f"/campaigns/{cid}").text
    # the original offers no update of itself: the latest message (the update) is linked
    assert f'href="/campaigns/new?update={cid}"' not in original
    assert 'id="action-all-clear"' not in original
    assert f'href="/campaigns/{update_id}" id="action-latest"' in original
    latest = client.get(f"/campaigns/{update_id}").text
    assert f'href="/campaigns/new?update={update_id}"' in latest
    assert 'id="action-all-clear"' in latest
    r = client.post(f"/api/campaigns/{update_id}/all-clear", json={},
                    headers={"X-CSRF-Token": token})
    clear_id = r.json()["campaign_id"]
    for page_id in (cid, update_id, clear_id):
        page = client.get(f"/campaigns/{page_id}").text
        assert 'id="action-update"' not in page, page_id
        assert 'id="action-all-clear"' not in page, page_id
    # the all-clear ended the alert: the server refuses a cancel too (issue 7.1), so no
    # page of the chain offers one
    for page_id in (cid, update_id, clear_id):
        assert 'id="action-cancel"' not in client.get(f"/campaigns/{page_id}").text


def test_gateway_admin_reads_for_humans(client: TestClient, engine: Engine,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import socket

    with transaction(engine) as s:
        s.add(_authority("BE", "federal", "Belgique", None, _square(2.5, 49.5, 6.4, 51.5)))
    authorities.create_user(engine, "crisis", PASSWORD, "BE", role="federal_operator")
    login(client, username="crisis", environment="live")
    page = client.get("/admin/gateway").text
    csrf = csrf_of(page)
    assert 'id="key-webhook" name="webhook_url" type="url"' in page

    def no_dns(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    bad = client.post("/admin/gateway/keys", data={
        "name": "x", "webhook_url": "https://example.org/hook", "csrf_token": csrf})
    assert bad.status_code == 422
    assert "Webhook URL: the host example.org could not be found (DNS)" in bad.text
    assert "Errno" not in bad.text and "webhook_url:" not in bad.text
    # shown next to the input too, which is marked invalid
    assert re.search(r'id="key-webhook"[^>]*aria-invalid="true"', bad.text)
    assert 'id="key-webhook-error"' in bad.text
    monkeypatch.undo()
    r = client.post("/admin/gateway/keys", data={"name": "Panel vendor", "csrf_token": csrf})
    assert r.status_code == 201
    kid = re.search(r"Key (\d+) created", r.text)[1]  # type: ignore[index]
    listing = client.get("/admin/gateway").text
    assert 'id="revoke-dialog"' in listing and "data-revoke" in listing
    r = client.post(f"/admin/gateway/keys/{kid}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 200 and f"Key {kid} (Panel vendor) revoked" in r.text


def test_demo_templates_speak_the_authoritys_language(client: TestClient, engine: Engine) -> None:
    """A Dutch-only municipality (Beersel) sees its demo templates' descriptions in Dutch."""
    from tocsin.messages import templates as tpl

    geom = _square(4.25, 50.7, 4.35, 50.8)
    beersel = _authority("23003", "municipality", "Beersel", None, geom)
    beersel.languages = "nl"
    with transaction(engine) as s:
        s.add(beersel)
    authorities.create_user(engine, "beersel", PASSWORD, "23003")
    assert tpl.seed_demo_templates(engine, ["23003"]) == 3
    login(client, username="beersel")
    page = client.get("/").text
    assert "Fumées toxiques" not in page and "Information aux abonnés" not in page
    assert "Test du premier jeudi" not in page
    assert "Giftige rook" in page


@needs_campaigns
def test_update_composer_keeps_the_kind(client: TestClient) -> None:
    import re

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    cid = _launch(client, token)
    page = client.get(f"/campaigns/new?update={cid}").text
    select = re.search(r'<select id="kind"[^>]*>', page)
    assert select and "disabled" in select[0]
    assert "An update keeps the type of message" in page
    assert re.search(r'<select id="kind"[^>]*>', client.get("/campaigns/new").text)[0].count(
        "disabled") == 0  # type: ignore[index]


@needs_campaigns
def test_estimate_gives_every_warning_with_its_code(client: TestClient) -> None:
    """Issue 7.5/7.14: the estimate (which the launch dialog repeats) knows the text that
    reads as another language and each channel that reaches nobody."""
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    r = client.post("/api/campaigns/estimate", headers={"X-CSRF-Token": token}, json={
        "texts": {"fr": "Blijf binnen, sluit alle deuren en ramen en luister naar de radio."},
        "channels": ["sms", "email", "cap"], "municipality_nis": "25112", "kind": "alert"})
    assert r.status_code == 200, r.text
    warnings = r.json()["warnings"]
    assert all(w["code"] and w["field"] and w["message"] for w in warnings)
    codes = [(w["code"], w["field"]) for w in warnings]
    assert ("wrong_language", "text.fr") in codes
    assert ("no_recipients", "channels.sms") in codes
    assert ("no_recipients", "channels.email") in codes
    wrong = next(w for w in warnings if w["code"] == "wrong_language")
    assert wrong["message"].startswith("The French text reads as Dutch")


@needs_campaigns
def test_launch_dialog_says_back_to_editing_not_cancel(client: TestClient) -> None:
    """Issue 7.11: the button that closes the launch dialog is not called "Cancel" (which
    reads as cancelling an alert)."""
    import re

    login(client)
    page = client.get("/campaigns/new").text
    dialog = page[page.index('<dialog id="confirm-dialog"'):]
    dialog = dialog[:dialog.index("</dialog>")]
    assert 'id="confirm-cancel">Back to editing</button>' in dialog
    assert not re.search(r">\s*Cancel\s*<", dialog)


@needs_campaigns
def test_cancelled_scheduled_message_page_says_nothing_was_sent(client: TestClient) -> None:
    """Issue 7.11: after cancelling a scheduled message the page does not claim that
    messages were stopped."""
    import datetime as dt

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    day = dt.date.today() + dt.timedelta(days=3)
    cid = _launch(client, token, scheduled_for=f"{day:%Y-%m-%d} 12:00")
    r = client.post(f"/api/campaigns/{cid}/cancel", json={}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == ("The scheduled message will not be sent; nothing had "
                                   "been sent.")
    page = client.get(f"/campaigns/{cid}").text
    assert "The scheduled message will not be sent; nothing had been sent." in page
    assert "were stopped" not in page


def test_links_use_the_request_base_url_unless_the_public_url_is_set(
        engine: Engine, tmp_path: Path) -> None:
    """Without ``TOCSIN_PUBLIC_URL`` the web links to the address it was reached on;
    with it, to the setting (issue 7, point 11)."""
    for public, base, expected in (("", "http://alerts.local:8765", "http://alerts.local:8765"),
                                   ("https://alert.example.be", "https://10.0.0.5:8443",
                                    "https://alert.example.be")):
        settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url),
                            public_base_url=public)
        with TestClient(create_app(engine, start_worker=False, settings=settings),
                        base_url=base) as c:
            login(c)
            cid = _launch(c, csrf_of(c.get("/campaigns/new").text))
            rep = c.get(f"/api/campaigns/{cid}/report").json()
            assert rep["channels"]["cap"]["url"].startswith(f"{expected}/simulation/cap/")
            feed = c.get("/simulation/cap/feed.atom").text
            assert f"{expected}/simulation/cap/{rep['cap_identifier']}.xml" in feed


def test_estimate_draws_the_area_used_and_says_what_was_cut(client: TestClient) -> None:
    """Issue 7.3: a drawing across the territory's border is cut; the estimate says how much
    (the warning the launch confirmation repeats) and returns the area really used."""
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"texts": {"fr": "Alerte à {area_name}"}, "channels": ["cap"], "kind": "alert",
            "area_geojson": _square(4.65, 50.70, 4.80, 50.75)}  # 2/3 east of the province
    r = client.post("/api/campaigns/estimate", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    est = r.json()
    [cut] = [w for w in est["warnings"] if w.get("code") == "area_cut"]
    assert cut["field"] == "area" and cut["share"] == pytest.approx(2 / 3, abs=0.01)
    assert cut["km2"] == pytest.approx(2 * est["area_km2"], rel=0.01)
    assert cut["message"].startswith("The area was cut at the border of Brabant wallon: ")
    assert "(67% of the area) lies outside" in cut["message"]
    assert est["area"]["type"] == "Polygon"
    lons = [p[0] for p in est["area"]["coordinates"][0]]
    assert min(lons) == pytest.approx(4.65) and max(lons) == pytest.approx(4.70)
    # Inside the territory: nothing cut, nothing said; the area is the drawing.
    body["area_geojson"] = _square(4.52, 50.70, 4.55, 50.75)
    est = client.post("/api/campaigns/estimate", json=body,
                      headers={"X-CSRF-Token": token}).json()
    assert not [w for w in est["warnings"] if w.get("code") == "area_cut"]
    assert est["area_name"] == "Wavre" and est["content"]["fr"]["sms"] == "Alerte à Wavre"


def test_composer_inputs_declare_the_service_limits(client: TestClient) -> None:
    """Issue 7.12: the composer's typed fields stop where the services would refuse."""
    from tocsin.messages.content import FIELD_MAX, TEXT_MAX
    from tocsin.messages.templates import MAX_NAME

    login(client)
    page = client.get("/campaigns/new").text
    assert f'rows="4" maxlength="{TEXT_MAX}"' in page
    assert f'data-content-field="email_subject" value="" maxlength="{FIELD_MAX["email_subject"]}"' \
        in page
    assert f'id="template-name" type="text" maxlength="{MAX_NAME}"' in page


@needs_campaigns
def test_dashboard_open_links_name_their_campaign(client: TestClient) -> None:
    """Each "Open" link's text names its campaign's kind and area, in the page's
    language, so two links never read the same (WCAG 2.4.4; issue 10 trial: every
    German link said the CAP message type, the same for every new message)."""
    import re

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    _launch(client, token, kind="exercise")
    _launch(client, token, kind="test", municipality_nis="25084")
    page = client.get("/?lang=de").text
    links = re.findall(r'<a href="/campaigns/[^"?]+">Öffnen<span class="visually-hidden">'
                       r"([^<]*)</span>", page)
    assert len(links) == 2, page
    assert len(set(links)) == 2
    assert any("Übung" in t and "Wavre" in t for t in links), links
    assert any("Test" in t and "Ottignies" in t for t in links), links


def test_unknown_address_page_is_translated_and_portal_links_to_the_portal(
        client: TestClient) -> None:
    """Fresh-user trial: the 404 page said "Erreur / Not Found" in French, and on the
    citizen side offered "Back to campaigns" (an operator page)."""
    login(client)
    r = client.get("/nothing-here?lang=fr")
    assert r.status_code == 404
    assert "Not Found" not in r.text and "Introuvable" in r.text
    assert 'href="/"' in r.text                              # operators: back to campaigns
    for path, back in (("/me/nothing", "/me"), ("/register/nothing", "/register")):
        r = client.get(f"{path}?lang=fr")
        assert r.status_code == 404 and "Not Found" not in r.text
        assert "Retour aux campagnes" not in r.text and f'href="{back}"' in r.text
