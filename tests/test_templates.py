"""Templates (SPEC F15): checks naming the field, roles, audit, launching, demo seed, pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy.engine import Engine

from tocsin.authorities import services as authorities
from tocsin.authorities.models import AuditEntry
from tocsin.campaigns import services as campaigns
from tocsin.core.db import transaction
from tocsin.core.settings import Settings
from tocsin.dispatch.models import Delivery
from tocsin.messages import templates as tpl
from tocsin.messages.models import MessageTemplate
from tocsin.subscribers.importer import import_subscribers
from weblogin import session_csrf

PASSWORD = "correct horse battery staple"
WAVRE, BRUXELLES, HALLE = "25112", "21004", "23027"
SQUARE_IN_WAVRE = {"type": "Polygon", "coordinates": [[[4.59, 50.70], [4.62, 50.70],
                                                        [4.62, 50.72], [4.59, 50.72],
                                                        [4.59, 50.70]]]}


def _input(**kw: object) -> tpl.TemplateInput:
    data: dict = {"name": "Incendie industriel", "kind": "alert",
                  "channels": ["sms", "email", "cap"],
                  "texts": {"fr": "ALERTE {area_name} {time}: restez à l'intérieur."}}
    data.update(kw)
    return tpl.TemplateInput(**data)


def _create(engine: Engine, authority: str = WAVRE, **kw: object) -> tpl.TemplateInfo:
    return tpl.create_template(engine, authority, _input(**kw), actor="op", role="operator",
                               source="127.0.0.1")


def _error(engine: Engine, authority: str = WAVRE, **kw: object) -> tpl.TemplateInputError:
    with pytest.raises(tpl.TemplateInputError) as exc:
        _create(engine, authority, **kw)
    return exc.value


# ---------------------------------------------------------------- service


def test_create_list_get_update_delete_and_audit(any_engine: Engine) -> None:
    engine = any_engine
    t = _create(engine, area_nis=WAVRE, fields=[], cap={"event": "Fire", "severity": "Severe"})
    assert t.area_label == "Wavre" and t.has_area and t.kind == "alert"
    assert [x.id for x in tpl.list_templates(engine, WAVRE)] == [t.id]
    assert tpl.list_templates(engine, HALLE) == []
    assert tpl.get_template(engine, t.id, WAVRE).texts == t.texts
    with pytest.raises(LookupError):
        tpl.get_template(engine, t.id, HALLE)  # other authorities' templates do not exist

    u = tpl.update_template(engine, t.id, WAVRE, _input(
        name="Incendie – confinement", kind="warning",
        texts={"fr": "Attention {area_name}: fumées près de {street}."}, fields=["street"],
        content={"fr": {"email_subject": "Fumées à {area_name}", "voice": ""}},
        area_geojson=SQUARE_IN_WAVRE), actor="op", role="admin")
    assert u.fields == ["street"] and u.area_label == "drawn area" and u.area_nis is None
    assert u.content == {"fr": {"email_subject": "Fumées à {area_name}"}}  # blanks dropped
    assert u.updated_at >= t.updated_at

    tpl.delete_template(engine, t.id, WAVRE, actor="op", role="operator")
    assert tpl.list_templates(engine, WAVRE) == []
    with transaction(engine) as s:
        actions = s.scalars(sa.select(AuditEntry.action).where(AuditEntry.target == t.id)
                            .order_by(AuditEntry.id)).all()
    assert actions == ["template.create", "template.update", "template.delete"]


def test_viewers_read_only(engine: Engine) -> None:
    t = _create(engine)
    for call in (
        lambda: tpl.create_template(engine, WAVRE, _input(name="x"), actor="v", role="viewer"),
        lambda: tpl.update_template(engine, t.id, WAVRE, _input(), actor="v", role="viewer"),
        lambda: tpl.delete_template(engine, t.id, WAVRE, actor="v", role="viewer"),
    ):
        with pytest.raises(tpl.TemplatePermissionError):
            call()
    assert tpl.get_template(engine, t.id, WAVRE).name == "Incendie industriel"


@pytest.mark.parametrize(("kw", "field", "words"), [
    ({"name": "  "}, "name", "empty"),
    ({"kind": "promo"}, "kind", "not one of"),
    ({"channels": []}, "channels", "at least one"),
    ({"channels": ["sms", "fax"]}, "channels", "fax"),
    ({"texts": {}}, "texts", "at least one language"),
    ({"texts": {"fr": "x", "xx": "y"}}, "texts.xx", "unknown language"),
    ({"kind": "group"}, "channels", "not published as CAP"),
    ({"texts": {"fr": "Fuite à {street}."}}, "texts.fr", "{street}"),
    ({"texts": {"fr": "Fuite à {Street}."}}, "texts.fr", "not a placeholder"),
    ({"texts": {"fr": "Fuite à {area_name."}}, "texts.fr", "unmatched '{'"),
    ({"texts": {"fr": "Fuite } ici."}}, "texts.fr", "unmatched '}'"),
    ({"texts": {"fr": "Fuite\x07"}}, "texts.fr", "U+0007"),
    ({"fields": ["street"]}, "fields", "used in no text"),
    ({"fields": ["time"]}, "fields", "automatically"),
    ({"fields": ["rue principale"]}, "fields", "not a field name"),
    ({"content": {"nl": {"sms": "x"}}}, "content.nl", "without a base text"),
    ({"content": {"fr": {"fax": "x"}}}, "content.fr.fax", "unknown content field"),
    ({"content": {"fr": {"email_subject": "{who}"}}}, "content.fr.email_subject", "{who}"),
    ({"area_nis": "99999"}, "area_nis", "unknown NIS"),
    ({"area_nis": HALLE}, "area_nis", "outside the territory"),
    ({"area_nis": WAVRE, "area_geojson": SQUARE_IN_WAVRE}, "area", "not both"),
    ({"area_geojson": {"type": "Point", "coordinates": [4.6, 50.7]}}, "area", ""),
    ({"cap": {"severity": "Apocalyptic"}}, "cap.severity", "CAP 1.2"),
    ({"cap": {"colour": "red"}}, "cap.colour", "unknown"),
])
def test_bad_input_names_the_field_and_writes_nothing(engine: Engine, kw: dict, field: str,
                                                      words: str) -> None:
    err = _error(engine, **kw)
    assert err.field == field and words in err.reason, (err.field, err.reason)
    with transaction(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(MessageTemplate)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0


def test_name_unique_per_authority_and_official_languages_required(engine: Engine) -> None:
    _create(engine)
    err = _error(engine, name="incendie INDUSTRIEL")
    assert err.field == "name" and "already has" in err.reason
    # the same name in another authority is fine
    _create(engine, HALLE, texts={"nl": "ALARM {area_name}: blijf binnen."})
    # Brussels sends in French and Dutch (F13)
    err = _error(engine, BRUXELLES)
    assert err.field == "texts.nl" and "French and Dutch" in err.reason
    err = _error(engine, "63023", texts={"fr": "ALERTE: restez."})  # Eupen
    assert err.field == "texts.de" and "German and French" in err.reason
    t = _create(engine, BRUXELLES, texts={"nl": "ALARM: blijf binnen.", "fr": "ALERTE: restez."})
    assert list(t.texts) == ["fr", "nl"]  # in the authority's language order


@pytest.mark.parametrize("first, second", [
    ("Éruption", "éruption"),                 # non-ASCII case
    ("Straße", "STRASSE"),                    # full case folding
    ("Éruption", "E\u0301ruption"),           # decomposed accent (NFD)
    ("Crue Senne", "Crue\u200b Senne"),       # zero-width space
    ("Crue Senne", "  Crue   Senne "),        # spacing
])
def test_names_that_look_the_same_are_the_same(engine: Engine, first: str,
                                               second: str) -> None:
    _create(engine, name=first)
    err = _error(engine, name=second)
    assert err.field == "name" and "already has" in err.reason


def test_names_are_stored_normalised(engine: Engine) -> None:
    t = _create(engine, name="  Crue\u200b   de la E\u0301ruption ")
    assert t.name == "Crue de la Éruption"


def _subscribers(engine: Engine) -> None:
    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    for i in range(6):
        lines.append(f"T{i},fr,+3247712340{i},t{i}@example.org,{50.705 + i * 0.001},4.60")
    report = import_subscribers(engine, ("\n".join(lines) + "\n").encode())
    assert report.ok, report.errors


class _Op:
    username, authority_id, environment = "op", WAVRE, "simulation"


def test_template_request_launches(engine: Engine, tmp_path: Path) -> None:
    _subscribers(engine)
    t = _create(engine, area_nis=WAVRE, channels=["sms", "email"],
                texts={"fr": "EXERCICE Wavre: restez à l'intérieur."})
    req = tpl.template_request(t, _Op())
    assert req.municipality_nis == WAVRE and req.area_geojson is None
    assert req.environment == "simulation" and req.created_by == "op"
    settings = Settings(var_dir=tmp_path / "var")
    estimate = campaigns.estimate_campaign(engine, req, settings=settings)
    assert estimate["recipients"] == {"sms": 6, "email": 6}
    cid = campaigns.launch_campaign(engine, req, settings=settings)
    with transaction(engine) as s:
        n = s.scalar(sa.select(sa.func.count()).select_from(Delivery)
                     .where(Delivery.campaign_id == cid))
    assert n == 12


def test_template_request_area_and_overrides(engine: Engine) -> None:
    t = _create(engine, texts={"fr": "Coupure {street}."}, fields=["street"], kind="information")
    assert not t.has_area and t.area_label == "chosen at launch"
    with pytest.raises(tpl.TemplateInputError) as exc:
        tpl.template_request(t, _Op())
    assert exc.value.field == "area"
    req = tpl.template_request(t, _Op(), tpl.TemplateOverrides(
        area_geojson=SQUARE_IN_WAVRE, fields={"street": "rue de Namur"}, kind="warning"))
    assert req.area_geojson == SQUARE_IN_WAVRE and req.municipality_nis is None
    assert req.kind == "warning" and req.texts == {"fr": "Coupure {street}."}
    if hasattr(req, "fields"):
        assert req.fields == {"street": "rue de Namur"}
    if hasattr(req, "template_id"):
        assert req.template_id == t.id

    class Other(_Op):
        authority_id = HALLE

    with pytest.raises(LookupError):
        tpl.template_request(t, Other())


def test_placeholders_parser() -> None:
    assert tpl.placeholders("{area_name} à {time}, {street}", "t") == ["area_name", "time",
                                                                         "street"]
    assert tpl.placeholders("no placeholder", "t") == []
    with pytest.raises(tpl.TemplateInputError, match="unmatched"):
        tpl.placeholders("{{area_name}}", "t")


def test_demo_templates_idempotent(engine: Engine) -> None:
    ids = ["23003", BRUXELLES, "63023", "BE"]
    assert tpl.seed_demo_templates(engine, ids) == 12
    assert tpl.seed_demo_templates(engine, ids) == 0
    eupen = tpl.list_templates(engine, "63023")
    assert {t.name for t in eupen} == {"Industriebrand – drinnen bleiben", "Monatlicher Test",
                                       "Wasserunterbrechung"}
    fire = next(t for t in eupen if t.kind == "alert")
    assert list(fire.texts) == ["de", "fr"] and fire.area_nis == "63023"
    water = next(t for t in tpl.list_templates(engine, BRUXELLES) if t.kind == "information")
    assert water.fields == ["street", "until"] and not water.has_area
    federal = tpl.list_templates(engine, "BE")
    assert all(list(t.texts) == ["fr", "nl", "de"] and not t.has_area for t in federal)


# ---------------------------------------------------------------- pages


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    from tocsin.web.app import create_app

    authorities.create_user(engine, "op", PASSWORD, WAVRE, display_name="Olivia Operator")
    authorities.create_user(engine, "viewer", PASSWORD, WAVRE, role="viewer")
    authorities.create_user(engine, "halle", PASSWORD, HALLE)
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    app = create_app(engine, start_worker=False, settings=settings)
    with TestClient(app) as c:
        yield c


def _login(c: TestClient, username: str = "op") -> str:
    return session_csrf(c, username, PASSWORD, page="/templates")


def _form(token: str, **kw: str) -> dict[str, str]:
    data = {"csrf_token": token, "name": "Fuite de gaz", "kind": "alert",
            "channels": "sms", "text-fr": "ALERTE {area_name}: fuite de gaz {street}.",
            "fields": "street", "area": WAVRE, "description": ""}
    data.update(kw)
    return data


def test_template_pages_create_edit_use_delete(client: TestClient, engine: Engine) -> None:
    token = _login(client)
    assert "No templates yet" in client.get("/templates").text
    page = client.get("/templates/new")
    assert page.status_code == 200 and 'name="text-fr"' in page.text
    r = client.post("/templates/new", data=_form(token), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/templates"
    t = tpl.list_templates(engine, WAVRE)[0]
    assert t.fields == ["street"] and t.area_nis == WAVRE and t.channels == ["sms"]
    listing = client.get("/templates").text
    assert "Fuite de gaz" in listing and f'href="/campaigns/new?template={t.id}"' in listing
    assert f'href="/campaigns/new?template={t.id}"' in client.get("/").text  # dashboard

    # the composer is prefilled from the template
    compose = client.get(f"/campaigns/new?template={t.id}").text
    assert "Fuite de gaz" in compose and "fuite de gaz {street}" in compose
    assert 'id="field-street"' in compose

    # bad input: the form comes back with the error naming the field, nothing changed
    r = client.post(f"/templates/{t.id}/edit",
                    data=_form(token, **{"text-fr": "ALERTE {rue}", "fields": ""}))
    assert r.status_code == 422 and "texts.fr" in r.text and "{rue}" in r.text
    assert 'value="Fuite de gaz"' in r.text  # what was typed is kept
    r = client.post(f"/templates/{t.id}/edit", data=_form(token, name="Fuite de gaz – rue"),
                    follow_redirects=False)
    assert r.status_code == 303
    assert tpl.get_template(engine, t.id, WAVRE).name == "Fuite de gaz – rue"
    assert client.get(f"/templates/{t.id}/edit").status_code == 200

    r = client.post(f"/templates/{t.id}/delete", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and tpl.list_templates(engine, WAVRE) == []


def test_template_pages_csrf_roles_and_authorities(client: TestClient, engine: Engine) -> None:
    t = _create(engine, area_nis=WAVRE)
    token = _login(client, "viewer")
    assert "Incendie industriel" in client.get("/templates").text
    assert client.get("/templates/new").status_code == 403
    assert client.post("/templates/new", data=_form(token)).status_code == 403
    assert client.post(f"/templates/{t.id}/delete", data={"csrf_token": token}).status_code == 403
    assert len(tpl.list_templates(engine, WAVRE)) == 1
    client.post("/logout", data={"csrf_token": token})

    token = _login(client, "halle")
    assert "Incendie industriel" not in client.get("/templates").text
    assert client.get(f"/templates/{t.id}/edit").status_code == 404
    assert client.get(f"/campaigns/new?template={t.id}").status_code == 404
    assert client.post(f"/templates/{t.id}/delete", data={"csrf_token": token}).status_code == 404
    assert client.post("/templates/new", data=_form("forged")).status_code == 403


def test_save_as_template_api(client: TestClient, engine: Engine) -> None:
    token = _login(client)
    body = {"name": "Zone drawn", "kind": "warning", "channels": ["sms", "cap"],
            "texts": {"fr": "Attention {area_name}"}, "area_geojson": SQUARE_IN_WAVRE,
            "content": {"fr": {"cap_headline": "Attention"}}}
    r = client.post("/api/templates", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    assert r.json()["area_label"] == "drawn area"
    r = client.post("/api/templates", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 422 and r.json()["error"]["field"] == "name"
    assert client.post("/api/templates", json=body).status_code == 403  # no CSRF header


# ---------------------------------------------------------------- CAP import upload

CAP_IN_WAVRE = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>KMI-RMI-2026-0042</identifier>
  <sender>meteo@example.be</sender>
  <sent>2026-06-01T14:00:00+02:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>fr-BE</language>
    <category>Met</category>
    <event>Orages violents</event>
    <urgency>Expected</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <headline>Orages violents sur Wavre</headline>
    <description>Grêle et rafales jusqu'à 100 km/h.</description>
    <instruction>Rentrez les objets légers et restez à l'abri.</instruction>
    <area>
      <areaDesc>Wavre centre</areaDesc>
      <polygon>50.70,4.59 50.70,4.62 50.72,4.62 50.72,4.59</polygon>
    </area>
  </info>
</alert>
"""


def _upload(c: TestClient, token: str, data: bytes, name: str = "alert.xml") -> object:
    return c.post("/campaigns/import-cap", data={"csrf_token": token},
                  files={"file": (name, data, "application/xml")}, follow_redirects=False)


def test_cap_import_upload_opens_a_draft(client: TestClient, engine: Engine) -> None:
    token = _login(client)
    r = _upload(client, token, CAP_IN_WAVRE.encode())
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("/campaigns/new?draft=")
    page = client.get(location)
    assert page.status_code == 200
    assert "Imported CAP alert" in page.text and "not closed" in page.text  # warning shown
    assert "Orages violents sur Wavre" in page.text
    assert '"draft_id"' in page.text  # the launch replaces the draft
    # another authority cannot open it
    client.post("/logout", data={"csrf_token": token})
    _login(client, "halle")
    assert client.get(location).status_code == 404


@pytest.mark.parametrize(("data", "status", "words"), [
    (b"<alert><unclosed>", 422, "document"),
    (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', 422, "document"),
    (b"<rss/>", 422, "alert"),
    (b" " * (1024 * 1024 + 1), 413, "larger than 1 MiB"),
    (b"", 422, "empty"),
])
def test_cap_import_upload_rejects_bad_files(client: TestClient, engine: Engine, data: bytes,
                                             status: int, words: str) -> None:
    token = _login(client)
    r = _upload(client, token, data)
    assert r.status_code == status and words in r.text, r.text
    assert "Nothing was saved" in r.text
    with transaction(engine) as s:
        assert s.scalar(sa.text("SELECT count(*) FROM campaign")) == 0


def test_cap_import_upload_needs_csrf_and_an_editor(client: TestClient) -> None:
    token = _login(client, "viewer")
    assert _upload(client, token, CAP_IN_WAVRE.encode()).status_code == 403
    assert _upload(client, "forged", CAP_IN_WAVRE.encode()).status_code == 403


def test_a_template_that_could_not_be_launched_is_refused_when_saved(engine: Engine) -> None:
    err = _error(engine, content={"fr": {"cap_headline": "x" * 161}})
    assert err.field == "content.fr.cap_headline" and "at most 160" in err.reason
    err = _error(engine, content={"fr": {"email_subject": "Alerte\r\nBcc: x@example.org"}})
    assert err.field == "content.fr.email_subject" and "one line" in err.reason
    err = _error(engine, texts={"fr": "Alerte \u0085 zone"})
    assert err.field == "texts.fr" and "U+0085" in err.reason


def test_saving_a_drawn_area_across_the_border_says_what_was_cut(engine: Engine) -> None:
    """Issue 7.3 elsewhere: a template's drawn area is cut when saved; say so then."""
    inside = _create(engine, name="Inside", area_geojson=SQUARE_IN_WAVRE)
    assert inside.warnings == []
    minx, miny, maxx, maxy = shape(SQUARE_IN_WAVRE).bounds
    across = {"type": "Polygon", "coordinates": [[[minx, miny], [minx + 0.3, miny],
                                                  [minx + 0.3, maxy], [minx, maxy],
                                                  [minx, miny]]]}
    t = _create(engine, name="Across", area_geojson=across)
    assert [w["code"] for w in t.warnings] == ["area_cut"]
    assert t.warnings[0]["message"].startswith("The area was cut at the border of Wavre: ")
    assert t.to_json()["warnings"] == t.warnings  # what the composer's "Save" shows
    assert tpl.get_template(engine, t.id, WAVRE).warnings == []  # said once, when saved


# ---------------------------------------------------------------- form limits (issue 7.12)


@pytest.mark.parametrize(("kw", "field", "words"), [
    ({"name": ""}, "name", "the name is empty"),
    ({"name": " \u200b "}, "name", "the name is empty"),
    ({"name": "x" * 3000}, "name", "3,000 characters; at most 200"),
    ({"name": "Fuite\nde gaz"}, "name", "one line"),
    ({"name": "Fuite\x07"}, "name", "U+0007"),
    ({"description": "x" * 2001}, "description", "2,001 characters; at most 2,000"),
    ({"cap": {"event": "x" * 201}}, "cap.event", "201 characters; at most 200"),
    ({"cap": {"event": "Gas\nleak"}}, "cap.event", "one line"),
])
def test_names_and_free_text_have_limits_naming_the_field(engine: Engine, kw: dict, field: str,
                                                          words: str) -> None:
    err = _error(engine, **kw)
    assert err.field == field and words in err.reason, (err.field, err.reason)
    assert "text is empty" not in err.reason
    assert tpl.list_templates(engine, WAVRE) == []


def test_web_form_refuses_a_long_or_empty_name_naming_the_field(client: TestClient,
                                                                 engine: Engine) -> None:
    token = _login(client)
    r = client.post("/templates/new", data=_form(token, name="N" * 3000))
    assert r.status_code == 422
    assert "name: 3,000 characters; at most 200" in r.text
    r = client.post("/templates/new", data=_form(token, name="   "))
    assert r.status_code == 422 and "name: the name is empty" in r.text
    assert "text is empty" not in r.text
    assert tpl.list_templates(engine, WAVRE) == []


def test_web_forms_declare_the_service_limits(client: TestClient) -> None:
    """The browser stops typing where the service would refuse (the service still decides)."""
    _login(client)
    page = client.get("/templates/new").text
    assert f'id="name" name="name" type="text" value="" maxlength="{tpl.MAX_NAME}"' in page
    assert f'maxlength="{tpl.MAX_DESCRIPTION}"' in page
    assert 'id="cap-event" name="cap-event" type="text" value="" maxlength="200"' in page


def test_long_template_names_wrap_on_the_dashboard(client: TestClient, engine: Engine) -> None:
    """A 200-character name without a space must wrap inside its card, never widen the
    page: the card text may break anywhere (the browser test looks at the result)."""
    _create(engine, name="W" * tpl.MAX_NAME, description="D" * 500)
    _login(client)
    assert "W" * tpl.MAX_NAME in client.get("/").text
    css = client.get("/static/tocsin.css").text
    rule = css[css.index(".template-name"):]
    assert "overflow-wrap: anywhere" in rule[:rule.index("}")]
