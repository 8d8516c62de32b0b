"""Importing an upstream CAP alert into a draft campaign (pure import, then the draft).

Drafts are written to real databases (SQLite; PostgreSQL too when configured).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from test_cap_validate import BEERSEL, FIXTURES, LAUGHS, area_xml, cap_xml, info_xml
from tocsin.authorities.models import AuditEntry, AuditPersonal, Authority
from tocsin.campaigns.drafts import get_draft, save_draft
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.services import CampaignInputError
from tocsin.cap.importer import CapImportError, base_sms_text, import_cap, shorten_sms
from tocsin.cap.xml import CAP11_NS
from tocsin.core.db import transaction
from tocsin.core.settings import get_settings
from tocsin.dispatch.models import Delivery
from tocsin.geo.areas import area_km2, territory_of
from tocsin.messages.sms import analyse

NOW = dt.datetime(2026, 11, 29, 10, 30, tzinfo=dt.UTC)
BEERSEL_UNCLOSED = " ".join(BEERSEL.split()[:-1])
# Straddles Beersel's western border (lon 4.2686): part of it lies in Halle.
ACROSS_BORDER = "50.745,4.25 50.745,4.29 50.755,4.29 50.755,4.25 50.745,4.25"


def trilingual() -> bytes:
    return cap_xml(
        info_xml("fr-BE", areas=(area_xml("Beersel centre", polygons=(BEERSEL_UNCLOSED,)),)),
        info_xml("nl-BE", headline="Brand in Beersel",
                 description="Een brand veroorzaakt dikke rook.",
                 instruction="Blijf binnen, sluit deuren en ramen.", event="Brand",
                 areas=(area_xml("Beersel centrum", polygons=(BEERSEL_UNCLOSED,)),)),
        info_xml("de", headline="Brand in Beersel", description="Ein Brand.",
                 instruction="Bleiben Sie drinnen.", event="Brand",
                 areas=(area_xml("Beersel Zentrum", polygons=(BEERSEL_UNCLOSED,)),)),
    )


def _count(engine: Engine, model: type) -> int:
    with transaction(engine) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


# --- import_cap (pure) ----------------------------------------------------------------


def test_import_maps_languages_fields_area_and_params() -> None:
    imported = import_cap(trilingual(), now=NOW)
    assert imported.cap_version == "1.2" and imported.kind == "alert"
    assert list(imported.texts) == ["fr", "nl", "de"]
    assert imported.texts["fr"] == ("Incendie à Beersel. Restez à l'intérieur, fermez portes "
                                    "et fenêtres.")
    assert imported.content["nl"] == {
        "sms": "Brand in Beersel. Blijf binnen, sluit deuren en ramen.",
        "cap_event": "Brand", "cap_headline": "Brand in Beersel",
        "cap_description": "Een brand veroorzaakt dikke rook.",
        "cap_instruction": "Blijf binnen, sluit deuren en ramen."}
    assert imported.cap_params == {"category": "Fire", "urgency": "Immediate",
                                   "severity": "Severe", "certainty": "Observed",
                                   "event": "Incendie"}
    assert imported.expires == dt.datetime(2026, 11, 29, 17, tzinfo=dt.UTC)
    assert imported.area is not None and imported.area.is_valid
    assert imported.area.bounds == pytest.approx((4.2943, 50.7413, 4.3143, 50.7613))
    assert imported.area_name == "Beersel centre, Beersel centrum, Beersel Zentrum"
    assert (imported.identifier, imported.sender) == ("BE-TEST-1", "alert@example.be")
    # The unclosed ring is closed and the import says so (once: the same ring in
    # every language is read once).
    closed = [w for w in imported.warnings if "was not closed" in w.message]
    assert [w.element for w in closed] == ["info[1]/area[1]/polygon[1]"]
    assert imported.to_json()["area"]["type"] == "Polygon"


@pytest.mark.parametrize(("tag", "lang"), [("fr", "fr"), ("fr-BE", "fr"), ("FR-fr", "fr"),
                                           ("nl-BE", "nl"), ("de-BE", "de"), ("en-GB", "en"),
                                           ("", "en")])
def test_language_tags(tag: str, lang: str) -> None:
    doc = cap_xml(info_xml(tag)) if tag else cap_xml(info_xml().replace(
        "<language>fr-BE</language>", ""))
    assert list(import_cap(doc, now=NOW).texts) == [lang]


def test_unsupported_and_repeated_languages_are_skipped_with_a_warning() -> None:
    imported = import_cap(cap_xml(info_xml("es-US"), info_xml("fr-BE"), info_xml("fr")),
                          now=NOW)
    assert list(imported.texts) == ["fr"]
    warnings = {w.element: w.message for w in imported.warnings}
    assert "'es-US' is not a language Tocsin sends" in warnings["info[1]/language"]
    assert "only the first one is used" in warnings["info[3]/language"]
    with pytest.raises(CapImportError) as caught:
        import_cap(cap_xml(info_xml("es-US")), now=NOW)
    assert caught.value.element == "info" and "es-US" in caught.value.reason


@pytest.mark.parametrize(("status", "urgency", "severity", "kind"), [
    ("Actual", "Immediate", "Extreme", "alert"), ("Actual", "Expected", "Severe", "alert"),
    ("Actual", "Future", "Severe", "warning"), ("Actual", "Immediate", "Moderate", "warning"),
    ("Actual", "Past", "Minor", "warning"), ("Test", "Immediate", "Severe", "test"),
    ("Exercise", "Immediate", "Extreme", "exercise"), ("Draft", "Immediate", "Severe", "alert"),
])
def test_kind_from_status_urgency_severity(status: str, urgency: str, severity: str,
                                          kind: str) -> None:
    doc = cap_xml(info_xml(urgency=urgency, severity=severity), status=status)
    assert import_cap(doc, now=NOW).kind == kind


def test_sms_text_is_headline_and_instruction_shortened_sensibly() -> None:
    assert base_sms_text("Flood", "", "Water rising.", "", 3) == "Flood. Water rising."
    assert base_sms_text("", "", "", "Storm", 3) == "Storm"
    assert base_sms_text("Alert!", "Stay in.", "x", "", 3) == "Alert! Stay in."
    sentences = " ".join(f"Sentence number {i} tells what to do." for i in range(60))
    short = shorten_sms(sentences, 2)
    assert analyse(short).segments <= 2 and short.endswith("do.")
    words = "word " * 400
    cut = shorten_sms(words, 1)
    assert analyse(cut).segments == 1 and cut.endswith("word...")
    # The ellipsis is three full stops: it never forces UCS-2.
    assert analyse(cut).encoding == "GSM-7"
    long_cap = cap_xml(info_xml(instruction=sentences))
    imported = import_cap(long_cap, now=NOW, sms_max_segments=2)
    assert analyse(imported.texts["fr"]).segments <= 2
    assert imported.content["fr"]["cap_instruction"] == sentences
    assert any("shortened" in w.message for w in imported.warnings)
    with pytest.raises(ValueError, match="max_segments"):
        shorten_sms("x", 0)
    # Event and description only, the description repeating the event: nothing is cut,
    # so nothing is said to be shortened.
    short_cap = cap_xml(info_xml(headline="", instruction="", event="Orages",
                                 description="Orages violents attendus."))
    imported = import_cap(short_cap, now=NOW, sms_max_segments=3)
    assert imported.texts["fr"] == "Orages violents attendus."
    assert not any("shortened" in w.message for w in imported.warnings)


def test_circles_and_nis_geocodes() -> None:
    circle = area_xml("Rond", polygons=(), circles=("50.7513,4.3043 1.5",))
    imported = import_cap(cap_xml(info_xml(areas=(circle,))), now=NOW)
    assert imported.area is not None
    assert area_km2(imported.area) == pytest.approx(3.14159 * 1.5 ** 2, rel=0.01)
    nis_only = area_xml("Eupen", polygons=(), geocodes=(("NIS", "63023"),
                                                        ("SAME", "006109")))
    imported = import_cap(cap_xml(info_xml(areas=(nis_only,))), now=NOW)
    assert imported.area is None and imported.area_nis == ["63023"]
    point = area_xml("Point", polygons=(), circles=("50.75,4.30 0",))
    with pytest.raises(CapImportError, match="no area"):
        import_cap(cap_xml(info_xml(areas=(point,))), now=NOW)


def test_upstream_update_cancel_and_expiry_are_warnings() -> None:
    doc = cap_xml(msg_type="Cancel",
                  references="alert@example.be,BE-TEST-0,2026-11-29T09:00:00+01:00")
    imported = import_cap(doc, now=NOW + dt.timedelta(days=1))
    warnings = {w.element: w.message for w in imported.warnings}
    assert "Cancel of alert@example.be,BE-TEST-0" in warnings["msgType"]
    assert "expired" in warnings["info[1]/expires"]
    assert imported.msg_type == "Cancel" and imported.references is not None


def test_cap11_is_imported_read_only() -> None:
    imported = import_cap(cap_xml(ns=CAP11_NS), now=NOW)
    assert imported.cap_version == "1.1"
    assert any("CAP 1.1" in w.message for w in imported.warnings)


def test_schema_deviations_are_warnings() -> None:
    doc = cap_xml(info_xml(urgency="Soon"))
    imported = import_cap(doc, now=NOW)
    assert "urgency" not in imported.cap_params
    assert any(w.element == "info[1]/urgency" and "not valid CAP 1.2" in w.message
               for w in imported.warnings)


@pytest.mark.parametrize(("doc", "element", "words"), [
    (LAUGHS.format(enc="UTF-8").encode(), "document", "DOCTYPE"),
    (LAUGHS.format(enc="UTF-16").encode("utf16"), "document", "entity"),
    (b"<alert>", "document", "not well-formed"),
    (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "alert", "root element"),
    (cap_xml().replace(b"<info>", b"<x>").replace(b"</info>", b"</x>"), "info", "no info"),
    (cap_xml(status="System"), "status", "System"),
    (cap_xml(msg_type="Ack", references="a,b,2026-11-29T09:00:00+01:00"), "msgType", "Ack"),
    (cap_xml(info_xml(areas=(area_xml(polygons=(
        "50.74,4.29 50.76,4.31 50.74,4.31 50.76,4.29 50.74,4.29",)),))),
     "info[1]/area[1]/polygon[1]", "intersect"),
    (cap_xml(info_xml(areas=(area_xml(polygons=(" ".join(
        ",".join(reversed(p.split(","))) for p in BEERSEL.split()),)),))),
     "info[1]/area[1]/polygon[1]", "lon,lat"),
    (cap_xml(info_xml(areas=(area_xml(polygons=("50,4 95,4 50,5 50,4",)),))),
     "info[1]/area[1]/polygon[1]", "latitude 95"),
    (cap_xml(info_xml(areas=(area_xml(polygons=("50,4 51,5 50,4",)),))),
     "info[1]/area[1]/polygon[1]", "distinct"),
    (cap_xml(info_xml(areas=(area_xml(polygons=(), circles=("50.75,4.30 -2",)),))),
     "info[1]/area[1]/circle[1]", "negative"),
    (cap_xml(info_xml(areas=(area_xml(polygons=(), circles=("4.30,50.75 2",)),))),
     "info[1]/area[1]/circle[1]", "lon,lat"),
    (cap_xml(info_xml(areas=(area_xml(polygons=()),))), "area", "no area"),
    (cap_xml(info_xml(headline="", description="", instruction="", event="")), "info",
     "no info block has any text"),
])
def test_bad_input_names_the_element(doc: bytes, element: str, words: str) -> None:
    with pytest.raises(CapImportError) as caught:
        import_cap(doc, now=NOW)
    assert caught.value.element == element
    assert words.lower() in caught.value.reason.lower()


# --- drafts ---------------------------------------------------------------------------


def test_save_and_get_draft(engine: Engine) -> None:
    imported = import_cap(trilingual(), now=NOW)
    deliveries = _count(engine, Delivery)
    campaign_id = save_draft(engine, "23003", imported, "beersel", source="127.0.0.1")
    draft = get_draft(engine, campaign_id, "23003")
    assert draft["status"] == "draft" and draft["kind"] == "alert"
    assert draft["texts"] == imported.texts
    assert draft["content"]["de"]["cap_headline"] == "Brand in Beersel"
    assert draft["area_name"] == "Beersel centre, Beersel centrum, Beersel Zentrum"
    assert draft["cap"]["event"] == "Incendie" and draft["cap"]["category"] == "Fire"
    assert draft["expires_at"] == "2026-11-29T17:00:00Z"
    assert draft["source"]["identifier"] == "BE-TEST-1"
    assert draft["source"]["format"] == "CAP 1.2"
    assert any("was not closed" in w["message"] for w in draft["warnings"])
    assert shape(draft["area"]).bounds == pytest.approx((4.2943, 50.7413, 4.3143, 50.7613))
    assert draft["channels"] == ["sms", "email", "cap"]
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None and c.cap_xml is None and c.launched_at is None
        assert c.cap_identifier == f"BE-TOCSIN-DRAFT-{campaign_id}"
        audit = s.scalars(sa.select(AuditEntry).where(AuditEntry.target == campaign_id)).one()
        # Pseudonymous in the hash chain; the name and address on the side (F6).
        assert audit.action == "campaign.draft" and audit.actor_id == audit.actor
        assert audit.actor.startswith("name:") and audit.source.startswith("addr:")
        personal = s.get(AuditPersonal, audit.id)
        assert personal is not None
        assert (personal.actor_name, personal.address) == ("beersel", "127.0.0.1")
    assert _count(engine, Delivery) == deliveries
    # Another authority cannot read it; the federal view (None) can.
    with pytest.raises(LookupError):
        get_draft(engine, campaign_id, "21004")
    assert get_draft(engine, campaign_id, None)["campaign_id"] == campaign_id
    # The same upstream alert imported twice makes two drafts.
    assert save_draft(engine, "23003", imported, "beersel") != campaign_id


def test_draft_area_clipped_to_the_territory(engine: Engine) -> None:
    doc = cap_xml(info_xml(areas=(area_xml("Ouest", polygons=(ACROSS_BORDER,)),)))
    campaign_id = save_draft(engine, "23003", import_cap(doc, now=NOW), "beersel")
    draft = get_draft(engine, campaign_id, "23003")
    with transaction(engine) as s:
        beersel = territory_of(s.get(Authority, "23003"))  # type: ignore[arg-type]
    area = shape(draft["area"])
    assert area.difference(beersel).area < 1e-12
    # The shared message (tocsin.geo.areas.cut_warning): what was cut, in km² and share.
    cut = [w["message"] for w in draft["warnings"] if w["element"] == "area"]
    assert len(cut) == 1 and cut[0].startswith("The area was cut at the border of Beersel: ")
    assert "km² (" in cut[0] and "% of the area) lies outside" in cut[0]


def test_draft_and_composer_say_the_same_cut(engine: Engine) -> None:
    """Issue 7.3: the CAP import, the composer's estimate and the CLI share one message."""
    from tocsin.campaigns.services import CampaignRequest, estimate_campaign
    from tocsin.cap.validate import parse_polygon_text

    doc = cap_xml(info_xml(areas=(area_xml("Ouest", polygons=(ACROSS_BORDER,)),)))
    campaign_id = save_draft(engine, "23003", import_cap(doc, now=NOW), "beersel")
    draft = get_draft(engine, campaign_id, "23003")
    ring = parse_polygon_text(ACROSS_BORDER)
    drawn = {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]}
    est = estimate_campaign(engine, CampaignRequest(
        authority_id="23003", area_geojson=drawn, channels=["cap"],
        texts={"nl": "Blijf binnen"}))
    [cut] = [w for w in est["warnings"] if w.get("code") == "area_cut"]
    assert [w["message"] for w in draft["warnings"] if w["element"] == "area"] == \
        [cut["message"]]


def test_draft_from_nis_geocode(engine: Engine) -> None:
    nis_only = area_xml("Eupen", polygons=(), geocodes=(("NIS", "63023"),))
    doc = cap_xml(info_xml("de-BE", areas=(nis_only,)))
    campaign_id = save_draft(engine, "63023", import_cap(doc, now=NOW), "eupen")
    draft = get_draft(engine, campaign_id, "63023")
    assert draft["area_nis"] == "63023" and draft["area_name"] == "Eupen"


def test_draft_refused_outside_the_territory_nothing_saved(engine: Engine) -> None:
    before = (_count(engine, Campaign), _count(engine, AuditEntry))
    uk = import_cap((FIXTURES / "uk-samples/VALID_AREA_POLYGON.xml").read_bytes(), now=NOW)
    with pytest.raises(CampaignInputError) as caught:
        save_draft(engine, "23003", uk, "beersel")
    assert caught.value.field == "area" and "outside the territory" in caught.value.reason
    eupen = import_cap(cap_xml(), now=NOW)  # a Beersel area
    with pytest.raises(CampaignInputError, match="outside the territory"):
        save_draft(engine, "63023", eupen, "eupen")
    with pytest.raises(CampaignInputError) as unknown:
        save_draft(engine, "99999", eupen, "x")
    assert unknown.value.field == "authority"
    assert (_count(engine, Campaign), _count(engine, AuditEntry)) == before


def test_draft_sms_respects_the_authority_maximum(engine: Engine) -> None:
    with transaction(engine) as s:
        s.get(Authority, "23003").sms_max_segments = 1  # type: ignore[union-attr]
    sentences = " ".join(f"Phrase {i} : restez calmes et suivez les consignes." for i in range(30))
    imported = import_cap(cap_xml(info_xml(instruction=sentences)), now=NOW)
    campaign_id = save_draft(engine, "23003", imported, "beersel")
    draft = get_draft(engine, campaign_id, "23003")
    assert analyse(draft["texts"]["fr"]).segments == 1
    assert draft["content"]["fr"]["sms"] == draft["texts"]["fr"]


def test_draft_on_every_database(any_engine: Engine) -> None:
    campaign_id = save_draft(any_engine, "23003", import_cap(trilingual(), now=NOW), "beersel")
    draft = get_draft(any_engine, campaign_id, "23003")
    assert draft["status"] == "draft" and list(draft["texts"]) == ["fr", "nl", "de"]
    assert json.dumps(draft)  # JSON-ready as returned


# --- the command line -------------------------------------------------------------------


def test_cli_import(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tocsin.cli import app
    from tocsin.core.db import get_engine

    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    get_engine.cache_clear()
    runner = CliRunner()
    alert = tmp_path / "alert.xml"
    alert.write_bytes(trilingual())
    ok = runner.invoke(app, ["cap", "import", str(alert), "--authority", "23003", "--json"])
    assert ok.exit_code == 0, ok.output
    draft = json.loads(ok.stdout)
    assert draft["status"] == "draft" and "was not closed" in ok.stderr
    assert get_draft(engine, draft["campaign_id"], "23003")["texts"] == draft["texts"]
    before = _count(engine, Campaign)
    bad = tmp_path / "bad.xml"
    bad.write_bytes((FIXTURES / "uk-samples/INVALID_AREA_WITH_INTERSECTIONS.xml").read_bytes())
    refused = runner.invoke(app, ["cap", "import", str(bad), "--authority", "23003"])
    assert refused.exit_code == 1
    assert "info[1]/area[1]/polygon[1]" in refused.output and "intersect" in refused.output
    outside = runner.invoke(app, ["cap", "import", str(FIXTURES / "uk-samples/WAINFLEET.xml"),
                                  "--authority", "23003"])
    assert outside.exit_code == 1 and "error: area: lies outside" in outside.output
    missing = runner.invoke(app, ["cap", "import", str(tmp_path / "no.xml"),
                                  "--authority", "23003"])
    assert missing.exit_code == 2
    assert _count(engine, Campaign) == before
    for result in (ok, refused, outside, missing):
        assert "Traceback" not in result.output


# --- fix round: extreme times, circles, outside the territory, JSON on every outcome ------


def _cli(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    from tocsin.core.db import get_engine

    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    get_engine.cache_clear()
    return CliRunner()


@pytest.mark.parametrize("expires", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_expiry_beyond_utc_range_is_dropped_with_a_warning(engine: Engine, expires: str) -> None:
    imported = import_cap(cap_xml(info_xml(expires=expires)), now=NOW)
    assert imported.expires is None
    warning = {w.element: w.message for w in imported.warnings}["info[1]/expires"]
    assert "UTC" in warning and "no expiry" in warning
    draft = get_draft(engine, save_draft(engine, "23003", imported, "beersel"), "23003")
    assert draft["expires_at"] is None


def test_extreme_times_through_the_cli_and_the_upload(engine: Engine, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from tocsin.authorities.services import create_user
    from tocsin.web.app import create_app
    from weblogin import session_csrf

    doc = cap_xml(info_xml(expires="9999-12-31T23:59:59-14:00"),
                  sent="0001-01-01T00:00:00+14:00")
    path = tmp_path / "extreme.xml"
    path.write_bytes(doc)
    runner = _cli(engine, monkeypatch)
    result = runner.invoke(app_(), ["cap", "import", str(path), "--authority", "23003", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["expires_at"] is None and "Traceback" not in result.output
    create_user(engine, "beersel", "correct horse battery staple", "23003")
    client = TestClient(create_app(engine, start_worker=False))
    token = session_csrf(client, "beersel", "correct horse battery staple")
    r = client.post("/campaigns/import-cap", data={"csrf_token": token},
                    files={"file": ("extreme.xml", doc, "application/xml")},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


def app_():  # type: ignore[no-untyped-def]
    from tocsin.cli import app

    return app


def test_point_circle_is_named_as_a_point() -> None:
    point = area_xml("Epicentre", polygons=(), circles=("50.75,4.30 0",))
    with pytest.raises(CapImportError) as caught:
        import_cap(cap_xml(info_xml(areas=(point,))), now=NOW)
    assert caught.value.element == "info[1]/area[1]/circle[1]"
    reason = caught.value.reason
    assert "a point" in reason and "radius 0 km" in reason and "50.75,4.3" in reason
    assert "composer" in reason and "needs a polygon" not in reason
    adot3 = (FIXTURES / "examples/v1dot2_appendix_adot3.xml").read_bytes()
    with pytest.raises(CapImportError) as caught:
        import_cap(adot3, now=NOW, country=None)
    assert "a point" in caught.value.reason and "needs a polygon" not in caught.value.reason
    # Beside a real shape, a point is left out with a warning saying what it is.
    both = area_xml("Beersel", circles=("50.75,4.30 0",))
    imported = import_cap(cap_xml(info_xml(areas=(both,))), now=NOW)
    assert "a point" in {w.element: w.message for w in imported.warnings}[
        "info[1]/area[1]/circle[1]"]


def test_circle_radius_limits_on_import(engine: Engine) -> None:
    world = area_xml("Monde", polygons=(), circles=("50.8,4.3 30000",))
    with pytest.raises(CapImportError) as caught:
        import_cap(cap_xml(info_xml(areas=(world,))), now=NOW)
    assert caught.value.element == "info[1]/area[1]/circle[1]"
    assert "20,000 km" in caught.value.reason
    wide = area_xml("Large", polygons=(), circles=("50.75,4.30 1500",))
    imported = import_cap(cap_xml(info_xml(areas=(wide,))), now=NOW)
    assert "larger than Belgium" in {w.element: w.message for w in imported.warnings}[
        "info[1]/area[1]/circle[1]"]
    # Across the antimeridian: far from Belgium, never a band round the globe.
    pacific = area_xml("Pacific", polygons=(), circles=("50.8,180 100",))
    far = import_cap(cap_xml(info_xml(areas=(pacific,))), now=NOW)
    with pytest.raises(CampaignInputError) as refused:
        save_draft(engine, "23003", far, "beersel")
    assert "outside Belgium" in refused.value.reason


def test_outside_the_territory_says_where_and_what_to_do(engine: Engine) -> None:
    uk = import_cap((FIXTURES / "uk-samples/VALID_AREA_POLYGON.xml").read_bytes(), now=NOW)
    with pytest.raises(CampaignInputError) as caught:
        save_draft(engine, "23003", uk, "beersel")
    reason = caught.value.reason
    assert reason.startswith("lies outside the territory of Beersel")
    assert "outside Belgium" in reason and "51.4" in reason and "(lat,lon)" in reason
    assert "draw the area" in reason and "composer" in reason
    assert "Belgique" not in reason
    national = import_cap((FIXTURES / "uk-samples/VALID_AREA_POLYGON.xml").read_bytes(),
                          now=NOW)
    with pytest.raises(CampaignInputError) as caught:
        save_draft(engine, "BE", national, "crisis")
    assert "Belgique" not in caught.value.reason  # the English UI names it in English
    assert "of Belgium" in caught.value.reason


def test_cli_import_json_on_every_outcome(engine: Engine, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _cli(engine, monkeypatch)
    alert = tmp_path / "alert.xml"
    alert.write_bytes(trilingual())

    def run(*args: str) -> tuple[int, dict[str, object]]:
        result = runner.invoke(app_(), ["cap", "import", *args, "--json"])
        assert "Traceback" not in result.output
        return result.exit_code, json.loads(result.stdout)

    code, out = run(str(tmp_path / "nope.xml"), "--authority", "23003")
    assert code == 2 and out["imported"] is False
    assert out["errors"][0]["element"] == "file"  # type: ignore[index]
    code, out = run(str(alert))
    assert code == 2 and out["errors"][0]["element"] == "authority"  # type: ignore[index]
    bad = tmp_path / "bad.xml"
    bad.write_bytes((FIXTURES / "uk-samples/INVALID_AREA_WITH_INTERSECTIONS.xml").read_bytes())
    code, out = run(str(bad), "--authority", "23003")
    assert code == 1 and out["errors"][0]["element"] == "info[1]/area[1]/polygon[1]"  # type: ignore[index]
    code, out = run(str(FIXTURES / "uk-samples/WAINFLEET.xml"), "--authority", "23003")
    assert code == 1 and out["errors"][0]["element"] == "area"  # type: ignore[index]
    code, out = run(str(alert), "--authority", "23003")
    assert code == 0 and out["imported"] is True and out["status"] == "draft"
    helped = runner.invoke(app_(), ["cap", "import", "--help"])
    assert "Exit" in helped.output


# --- issue 7, point 8: invalid CAP is refused or blocked, never imported without a word --


def _no_scope(doc: bytes) -> bytes:
    return doc.replace(b"<scope>Public</scope>", b"")


def test_alert_level_problems_refuse_the_import_listing_every_one() -> None:
    """An identifier with a comma and no scope: both listed, nothing imported."""
    doc = _no_scope(cap_xml(identifier="BE,TEST-1", sender="crisis centre@example.be"))
    with pytest.raises(CapImportError) as exc:
        import_cap(doc, now=NOW)
    elements = [p.element for p in exc.value.problems]
    assert elements == ["scope", "identifier", "sender"]
    assert "comma" in exc.value.problems[1].message
    with pytest.raises(CapImportError, match="not for the public"):
        import_cap(cap_xml().replace(b"<scope>Public</scope>", b"<scope>Private</scope>"),
                   now=NOW)


def test_missing_cap_values_and_an_expired_alert_make_a_blocked_draft(engine: Engine) -> None:
    """Imported with every problem listed; the launch is refused until each is fixed."""
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    doc = cap_xml(info_xml(urgency="Soon")).replace(b"<certainty>Observed</certainty>", b"")
    imported = import_cap(doc, now=NOW + dt.timedelta(days=1))
    assert set(imported.blocking) == {"urgency", "certainty", "expires"}
    draft_id = save_draft(engine, "23003", imported, "op")
    draft = get_draft(engine, draft_id, "23003")
    assert {b["element"] for b in draft["blocking"]} == {"cap.urgency", "cap.certainty",
                                                        "expires_at"}
    assert "urgency" not in draft["cap"] and "certainty" not in draft["cap"]

    def launch(cap: dict[str, str], expires: dt.datetime | None) -> str:
        return launch_campaign(engine, CampaignRequest(
            authority_id="23003", texts=draft["texts"], channels=["cap"],
            area_geojson=json.dumps(draft["area"]).encode(), kind=draft["kind"],
            cap=cap, expires_at=expires, draft_id=draft_id))

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    for cap, expires, field in (({}, later, "cap.urgency"),
                                ({"urgency": "Immediate"}, later, "cap.certainty"),
                                ({"urgency": "Immediate", "certainty": "Observed"}, None,
                                 "expires_at")):
        with pytest.raises(CampaignInputError) as exc:
            launch(cap, expires)
        assert exc.value.field == field
    assert get_draft(engine, draft_id, "23003")["status"] == "draft"
    cid = launch({"urgency": "Immediate", "certainty": "Observed"}, later)
    with transaction(engine) as s:
        assert s.get(Campaign, draft_id) is None and s.get(Campaign, cid) is not None


def test_cli_import_lists_every_refusal_and_every_blocker(engine: Engine, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _cli(engine, monkeypatch)
    before = _count(engine, Campaign)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(_no_scope(cap_xml(identifier="BE,TEST-1")))
    result = runner.invoke(app_(), ["cap", "import", str(bad), "--authority", "23003"])
    assert result.exit_code == 1
    assert "error: scope: missing" in result.stderr and "error: identifier:" in result.stderr
    result = runner.invoke(app_(), ["cap", "import", str(bad), "--authority", "23003", "--json"])
    assert [e["element"] for e in json.loads(result.stdout)["errors"]] == ["scope",
                                                                           "identifier"]
    assert _count(engine, Campaign) == before
    blocked = tmp_path / "blocked.xml"
    blocked.write_bytes(cap_xml(info_xml(urgency="Soon", expires="2099-01-01T00:00:00Z")))
    result = runner.invoke(app_(), ["cap", "import", str(blocked), "--authority", "23003"])
    assert result.exit_code == 0, result.output
    assert "blocked: cap.urgency: 'Soon' is not a CAP 1.2 urgency" in result.stderr


def test_drafts_can_be_deleted_from_the_cli_and_nothing_else(engine: Engine, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    runner = _cli(engine, monkeypatch)
    draft_id = save_draft(engine, "23003", import_cap(trilingual(), now=NOW), "op")
    sent = launch_campaign(engine, CampaignRequest(
        authority_id="23003", texts={"fr": "Exercice.", "nl": "Oefening."}, channels=["cap"],
        municipality_nis="23003", kind="exercise"))
    refused = runner.invoke(app_(), ["campaign", "delete-draft", sent])
    assert refused.exit_code == 1 and "not a draft" in refused.stderr
    other = runner.invoke(app_(), ["campaign", "delete-draft", draft_id, "--authority", "21004"])
    assert other.exit_code == 1
    ok = runner.invoke(app_(), ["campaign", "delete-draft", draft_id, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["campaign_id"] == draft_id
    with transaction(engine) as s:
        assert s.get(Campaign, draft_id) is None and s.get(Campaign, sent) is not None
        assert s.scalar(sa.select(AuditEntry.action).where(AuditEntry.target == draft_id)
                        .order_by(AuditEntry.id.desc()).limit(1)) == "campaign.draft_delete"
    again = runner.invoke(app_(), ["campaign", "delete-draft", draft_id])
    assert again.exit_code == 1 and "no campaign" in again.stderr


def test_web_lists_every_refusal_and_deletes_a_draft_after_confirmation(
        engine: Engine, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tocsin.authorities.services import create_user
    from tocsin.web.app import create_app
    from weblogin import session_csrf

    create_user(engine, "beersel", "correct horse battery staple", "23003")
    client = TestClient(create_app(engine, start_worker=False))
    token = session_csrf(client, "beersel", "correct horse battery staple")
    r = client.post("/campaigns/import-cap", data={"csrf_token": token},
                    files={"file": ("bad.xml", _no_scope(cap_xml(identifier="A,B")))})
    assert r.status_code == 422
    assert "scope: missing" in r.text and "identifier: " in r.text and "comma" in r.text
    draft_id = save_draft(engine, "23003", import_cap(trilingual(), now=NOW), "beersel")
    for page in (f"/campaigns/{draft_id}", f"/campaigns/new?draft={draft_id}"):
        text = client.get(page).text
        assert f'action="/campaigns/{draft_id}/delete-draft"' in text, page
        assert "Yes, delete the draft" in text  # the confirmation step
    r = client.post(f"/campaigns/{draft_id}/delete-draft", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    with transaction(engine) as s:
        assert s.get(Campaign, draft_id) is None
    assert client.post(f"/campaigns/{draft_id}/delete-draft",
                       data={"csrf_token": token}).status_code == 422
