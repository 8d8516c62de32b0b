"""Per-language, per-channel content (SPEC F12, F13, F33): complete content, placeholders,
fallback order, the language rules of Brussels and the German-speaking municipalities, kinds
mapped to CAP, Belgian local time."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from shapely.geometry import mapping

from tocsin.campaigns import rules
from tocsin.messages.content import (
    CAP_HEADLINE_MAX,
    CONTENT_FIELDS,
    ContentError,
    check_required_languages,
    complete_content,
    content_of,
    fill,
    required_languages,
)

WINTER = dt.datetime(2026, 12, 1, 7, 5, tzinfo=dt.UTC)   # 08:05 in Brussels (CET)
SUMMER = dt.datetime(2026, 7, 1, 7, 5, tzinfo=dt.UTC)    # 09:05 in Brussels (CEST)


def test_every_field_filled_from_the_base_text():
    out = complete_content({"fr": "Restez à l'intérieur à {area_name}.", "nl": "Blijf binnen."},
                           {}, "alert", "Beersel", WINTER,
                           authority_name={"fr": "Beersel", "nl": "Beersel"})
    assert list(out) == ["fr", "nl"]
    for lang, entry in out.items():
        assert tuple(entry) == CONTENT_FIELDS, lang
    fr = out["fr"]
    assert fr["sms"] == fr["voice"] == fr["email_text"] == fr["cap_description"] \
        == "Restez à l'intérieur à Beersel."
    assert fr["email_subject"] == "ALERTE – Beersel"
    assert fr["cap_headline"] == "ALERTE – Beersel"
    assert fr["cap_event"] == "Alerte"
    assert fr["cap_instruction"] == ""
    assert "Restez à l&#x27;intérieur à Beersel.</p>" in fr["email_html"]
    assert "Message officiel de Beersel" in fr["email_html"]
    assert out["nl"]["email_subject"] == "ALARM – Beersel"
    assert out["nl"]["cap_event"] == "Alarm"


def test_overrides_win_and_are_filled_too():
    out = complete_content(
        {"fr": "Coupure d'eau rue {street}."},
        {"fr": {"email_subject": "Eau: {street} à {time}", "cap_instruction": "Faites bouillir",
                "voice": "", "cap_event": "Coupure d'eau"}},
        "information", "Wavre", SUMMER, {"street": "Rue Haute"}, cap_event="Ignored")
    fr = out["fr"]
    assert fr["sms"] == "Coupure d'eau rue Rue Haute."
    assert fr["voice"] == fr["sms"]  # an empty override means the default
    assert fr["email_subject"] == "Eau: Rue Haute à 09:05"
    assert fr["cap_instruction"] == "Faites bouillir"
    assert fr["cap_event"] == "Coupure d'eau"
    assert complete_content({"fr": "x"}, {}, "alert", "A", WINTER,
                            cap_event="Inondation")["fr"]["cap_event"] == "Inondation"


def test_time_placeholder_is_brussels_local_time():
    assert fill("à {time}", {"time": "08:05"}, "f") == "à 08:05"
    assert complete_content({"fr": "{time}"}, {}, "alert", "A", WINTER)["fr"]["sms"] == "08:05"
    assert complete_content({"fr": "{time}"}, {}, "alert", "A", SUMMER)["fr"]["sms"] == "09:05"


@pytest.mark.parametrize("texts, overrides, fields, field, needle", [
    ({"fr": "Rue {street}"}, {}, {}, "text.fr", "{street}"),
    ({"fr": "ok", "nl": "Straat {straat}"}, {}, {"street": "x"}, "text.nl", "{straat}"),
    ({"fr": "ok"}, {"fr": {"email_subject": "{oops}"}}, {}, "content.fr.email_subject", "{oops}"),
    ({"fr": "Rue {street}"}, {}, {"street": "  "}, "text.fr", "{street}"),
    ({"fr": "accolade { seule"}, {}, {}, "text.fr", "stray '{'"),
    ({"fr": "ok"}, {"fr": {"sms": "fin }"}}, {}, "content.fr.sms", "stray '}'"),
    ({"fr": "{ area_name }"}, {}, {}, "text.fr", "stray '{'"),
    ({"fr": "ok"}, {"fr": {"fax": "x"}}, {}, "content.fr.fax", "unknown field"),
    ({"fr": "ok"}, {"nl": {"sms": "x"}}, {}, "content.nl", "no text.nl"),
    ({"fr": "ok"}, {}, {"time": "09:00"}, "fields.time", "filled in by Tocsin"),
    ({"fr": "ok"}, {}, {"bad name": "x"}, "fields.bad name", "letters, digits"),
])
def test_unfilled_placeholders_and_stray_braces_name_the_field(texts, overrides, fields, field,
                                                               needle):
    with pytest.raises(ContentError) as exc:
        complete_content(texts, overrides, "alert", "Beersel", WINTER, fields)
    assert exc.value.field == field
    assert needle in exc.value.reason


def test_values_are_not_rescanned_and_html_is_escaped():
    out = complete_content({"fr": "Zone {area_name}"}, {}, "alert", "<b>{x}</b> & co", WINTER)
    assert out["fr"]["sms"] == "Zone <b>{x}</b> & co"
    html = out["fr"]["email_html"]
    assert "<b>" not in html.split("<body>")[1] and "&lt;b&gt;{x}&lt;/b&gt; &amp; co" in html
    # An operator's HTML override is text too: no raw markup reaches an alert e-mail.
    out = complete_content({"fr": "x"}, {"fr": {"email_html": "<a href='http://evil'>ici</a>"}},
                           "alert", "A", WINTER)
    assert "<a href" not in out["fr"]["email_html"]
    assert "&lt;a href=" in out["fr"]["email_html"]


def test_paragraphs_and_headline_length():
    out = complete_content({"fr": "Ligne 1\nLigne 2\n\nParagraphe 2"}, {}, "warning",
                           "Z" * 300, WINTER)
    html = out["fr"]["email_html"]
    assert "<p>Ligne 1<br>\nLigne 2</p>\n<p>Paragraphe 2</p>" in html
    assert len(out["fr"]["cap_headline"]) == CAP_HEADLINE_MAX
    assert out["fr"]["cap_headline"].endswith("…")
    with pytest.raises(ContentError) as exc:
        complete_content({"fr": "x"}, {"fr": {"cap_headline": "h" * 161}}, "alert", "A", WINTER)
    assert exc.value.field == "content.fr.cap_headline"


def test_action_prefixes_the_subject():
    assert complete_content({"nl": "x"}, {}, "alert", "Beersel", WINTER, action="update")[
        "nl"]["email_subject"] == "UPDATE – ALARM – Beersel"
    assert complete_content({"fr": "x"}, {}, "alert", "Beersel", WINTER, action="all_clear")[
        "fr"]["email_subject"] == "FIN D'ALERTE – Beersel"


def test_content_of_falls_back_to_texts_for_old_rows():
    assert content_of({}, {"fr": "a", "nl": "b"}, "nl", "email_text") == "b"
    assert content_of({}, {"fr": "a"}, "de", "sms") == "a"
    assert content_of({"fr": {"sms": "s"}}, {"fr": "a"}, "fr", "sms") == "s"


# ----------------------------------------------------------------------------- fallback order


def test_fallback_order():
    assert rules.fallback_order("", ["nl"]) == ["nl", "fr", "de", "en"]
    assert rules.fallback_order(None, ["de", "fr"]) == ["de", "fr", "nl", "en"]
    assert rules.fallback_order("en, nl,xx", ["fr"]) == ["en", "nl", "fr", "de"]


@pytest.mark.parametrize("own, order, texts, expected", [
    ("de", ["nl", "fr", "de", "en"], ["fr", "nl"], "nl"),
    ("de", ["fr", "nl", "de", "en"], ["fr", "nl"], "fr"),
    ("en", ["de", "fr", "nl", "en"], ["nl", "fr"], "fr"),
    ("nl", ["fr", "nl", "de", "en"], ["fr", "nl"], "nl"),
    (None, ["de", "fr", "nl", "en"], ["en"], "en"),
])
def test_choose_language_follows_the_fallback_order(own, order, texts, expected):
    assert rules.choose_language(own, order, texts) == expected


# ----------------------------------------------------------------------------- regional rules


def test_required_languages_follow_the_reference_data(engine):
    from tocsin.authorities.models import Authority
    from tocsin.authorities.reference_rules import GERMAN_SPEAKING_NIS
    from tocsin.core.db import transaction

    with transaction(engine) as s:
        brussels = s.get(Authority, "21004")
        eupen = s.get(Authority, "63023")
        beersel = s.get(Authority, "23003")
        region = s.get(Authority, "04000")
        german = [s.get(Authority, nis) for nis in sorted(GERMAN_SPEAKING_NIS)]
        names = {a.name_de for a in german if a is not None}
    assert brussels is not None and eupen is not None and beersel is not None
    assert region is not None
    assert required_languages(brussels.id, brussels.parent_id) == ("fr", "nl")
    assert required_languages(region.id, region.parent_id) == ("fr", "nl")
    assert required_languages(eupen.id, eupen.parent_id) == ("de", "fr")
    assert required_languages(beersel.id, beersel.parent_id) == ()
    assert len(german) == 9 and {"Eupen", "Amel", "Kelmis", "Raeren"} <= names


def test_regional_rule_errors_name_the_missing_text():
    with pytest.raises(ContentError) as exc:
        check_required_languages("21004", "04000", ["fr"])
    assert exc.value.field == "text.nl"
    assert "Brussels authorities must send in French and Dutch" in exc.value.reason
    with pytest.raises(ContentError) as exc:
        check_required_languages("63023", "63000", ["fr"])
    assert exc.value.field == "text.de"
    check_required_languages("21004", "04000", ["nl", "fr", "en"])
    check_required_languages("23003", "23000", ["en"])


def test_brussels_launch_refused_without_dutch(engine):
    from tocsin.campaigns.services import (
        CampaignInputError,
        CampaignRequest,
        estimate_campaign,
    )

    req = CampaignRequest(authority_id="21004", municipality_nis="21004",
                          texts={"fr": "Alerte"}, channels=["cap"], environment="live")
    with pytest.raises(CampaignInputError) as exc:
        estimate_campaign(engine, req)
    assert exc.value.field == "text.nl"
    req.texts = {"fr": "Alerte", "nl": "Alarm"}
    assert estimate_campaign(engine, req)["content"]["nl"]["cap_headline"].startswith("ALARM")


def test_authority_sms_maximum_overrides_the_deployment(engine):
    from tocsin.authorities.models import Authority
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, estimate_campaign
    from tocsin.core.db import transaction

    text = "x" * 200  # 2 segments
    req = CampaignRequest(authority_id="23003", municipality_nis="23003", texts={"nl": "ok"},
                          channels=["sms"], content={"nl": {"sms": text}})
    assert estimate_campaign(engine, req)["sms"]["segments"] == 2
    with transaction(engine) as s:
        a = s.get(Authority, "23003")
        assert a is not None
        a.sms_max_segments = 1
    with pytest.raises(CampaignInputError) as exc:
        estimate_campaign(engine, req)
    assert exc.value.field == "content.nl.sms" and "at most 1" in exc.value.reason


# ----------------------------------------------------------------------------- kinds


@pytest.mark.parametrize("kind, scope, mode", [
    ("alert", "Public", "batch"), ("warning", "Public", "batch"),
    ("information", "Public", "per_recipient"), ("test", "Public", "batch"),
    ("exercise", "Public", "batch"), ("group", "Private", "batch"),
])
def test_kinds_map_to_cap_and_email_mode(kind, scope, mode):
    from tocsin.cap.build import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES

    assert rules.cap_scope(kind) == scope
    assert rules.email_mode(kind) == mode
    d = rules.cap_info_defaults(kind)
    assert d["category"] in CATEGORIES and d["urgency"] in URGENCIES
    assert d["severity"] in SEVERITIES and d["certainty"] in CERTAINTIES
    assert rules.cap_status(kind, "simulation") == "Exercise"
    assert kind in rules.PRIORITY


def test_msg_types():
    assert rules.cap_msg_type() == "Alert"
    assert rules.cap_msg_type("update") == rules.cap_msg_type("all_clear") == "Update"
    assert rules.cap_msg_type("cancel") == "Cancel"


def test_group_message_has_no_cap(engine):
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, estimate_campaign

    with pytest.raises(CampaignInputError) as exc:
        estimate_campaign(engine, CampaignRequest(
            authority_id="23003", municipality_nis="23003", texts={"nl": "Kom naar de kazerne"},
            channels=["sms", "cap"], kind="group"))
    assert exc.value.field == "channels"


# ----------------------------------------------------------------------------- local time


@pytest.mark.parametrize("text, utc", [
    ("2026-12-01 08:00", "2026-12-01T07:00:00+00:00"),        # CET, +01:00
    ("2026-07-01 08:00", "2026-07-01T06:00:00+00:00"),        # CEST, +02:00
    ("2026-03-29 03:30", "2026-03-29T01:30:00+00:00"),        # just after the spring change
    ("2026-10-25T01:59", "2026-10-24T23:59:00+00:00"),
    ("2026-10-25T02:30+01:00", "2026-10-25T01:30:00+00:00"),  # the second 02:30
    ("2026-12-01T08:00:00Z", "2026-12-01T08:00:00+00:00"),
])
def test_parse_local_time(text, utc):
    parsed = rules.parse_local_time(text)
    assert parsed.tzinfo is not None
    assert parsed.isoformat() == utc


@pytest.mark.parametrize("text, needle", [
    ("2026-03-29 02:30", "does not exist"),
    ("2026-10-25 02:30", "happens twice"),
    ("tomorrow", "not a time"),
    ("2026-13-01 08:00", "2026-13-01"),
    ("2026-12-01T08:00", ""),
])
def test_parse_local_time_refuses(text, needle):
    if not needle:
        assert rules.parse_local_time(text).hour == 7
        return
    with pytest.raises(ValueError) as exc:
        rules.parse_local_time(text)
    assert needle in str(exc.value)


# ----------------------------------------------------------------------------- fix round


@pytest.mark.parametrize("field", ["email_subject", "cap_headline", "cap_event"])
@pytest.mark.parametrize("brk", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\t"])
def test_single_line_fields_refuse_line_breaks(field, brk):
    with pytest.raises(ContentError) as exc:
        complete_content({"fr": "Restez chez vous."}, {"fr": {field: f"Alerte{brk}Bcc: x"}},
                         "alert", "Beersel", WINTER)
    assert exc.value.field == f"content.fr.{field}"
    assert "one line" in exc.value.reason or "control character" in exc.value.reason


def test_line_break_from_a_field_value_is_refused_in_a_subject():
    with pytest.raises(ContentError) as exc:
        complete_content({"fr": "Rue {street}"}, {"fr": {"email_subject": "Rue {street}"}},
                         "alert", "Beersel", WINTER, {"street": "Haute\nBcc: x@example.org"})
    assert exc.value.field == "content.fr.email_subject"
    # Multi-line texts keep their line breaks.
    out = complete_content({"fr": "Ligne 1\nLigne 2"}, {}, "alert", "Beersel", WINTER)
    assert out["fr"]["sms"] == "Ligne 1\nLigne 2"


@pytest.mark.parametrize("char", ["\x85", "\x9b", "\x80", "\x9f"])
def test_c1_controls_are_refused_in_every_text(engine, char):
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, estimate_campaign

    for texts, content, field in (({"nl": f"Blijf{char} binnen"}, {}, "text.nl"),
                                  ({"nl": "ok"}, {"nl": {"email_text": f"a{char}b"}},
                                   "content.nl.email_text")):
        with pytest.raises(CampaignInputError) as exc:
            estimate_campaign(engine, CampaignRequest(
                authority_id="23003", municipality_nis="23003", texts=texts, content=content,
                channels=["email"]))
        assert exc.value.field == field and f"U+{ord(char):04X}" in exc.value.reason


@pytest.mark.parametrize("where, field, limit", [
    ("text", "text.fr", 5_000),
    ("sms", "content.fr.sms", 5_000),
    ("voice", "content.fr.voice", 5_000),
    ("email_subject", "content.fr.email_subject", 200),
    ("email_text", "content.fr.email_text", 50_000),
    ("email_html", "content.fr.email_html", 50_000),
    ("cap_event", "content.fr.cap_event", 200),
    ("cap_headline", "content.fr.cap_headline", 160),
    ("cap_description", "content.fr.cap_description", 10_000),
    ("cap_instruction", "content.fr.cap_instruction", 10_000),
])
def test_every_text_has_a_size_limit(where, field, limit):
    def run(n: int) -> dict:
        text = "x" * n
        if where == "text":
            return complete_content({"fr": text}, {}, "alert", "Beersel", WINTER)
        return complete_content({"fr": "ok"}, {"fr": {where: text}}, "alert", "Beersel", WINTER)

    assert run(limit)["fr"][where if where != "text" else "sms"]
    with pytest.raises(ContentError) as exc:
        run(limit + 1)
    assert exc.value.field == field
    assert f"at most {limit:,}" in exc.value.reason


def test_ten_megabytes_are_refused_fast(engine):
    import time

    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, estimate_campaign

    started = time.monotonic()
    for texts, content, field in (
            ({"fr": "x" * 10_000_000}, {}, "text.fr"),
            ({"fr": "ok"}, {"fr": {"cap_description": "é" * 10_000_000}},
             "content.fr.cap_description")):
        with pytest.raises(CampaignInputError) as exc:
            estimate_campaign(engine, CampaignRequest(
                authority_id="23003", municipality_nis="23003", texts=texts, content=content,
                channels=["cap"]))
        assert exc.value.field == field
    assert time.monotonic() - started < 5


def test_largest_content_keeps_the_cap_well_under_1_mib(engine):
    from tocsin.campaigns.models import Campaign
    from tocsin.campaigns.services import CampaignRequest, launch_campaign
    from tocsin.cap.validate import validate_cap
    from tocsin.core.db import transaction
    from tocsin.messages.content import FIELD_MAX

    big = {lang: {name: "€" * FIELD_MAX[name] for name in
                  ("email_subject", "cap_event", "cap_headline", "cap_description",
                   "cap_instruction")} for lang in rules.LANGUAGES}
    cid = launch_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004", channels=["cap"],
        texts={lang: "€" * FIELD_MAX["sms"] for lang in rules.LANGUAGES}, content=big,
        cap={"event": "€" * 200}))
    with transaction(engine) as s:
        c = s.get(Campaign, cid)
        assert c is not None and c.cap_xml is not None
        xml = c.cap_xml.encode()
    assert len(xml) < 512 * 1024
    assert validate_cap(xml).errors == []


def test_cap_event_parameter_follows_the_placeholder_rules(engine):
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, estimate_campaign

    def est(event: str, fields: dict[str, str] | None = None) -> dict:
        return estimate_campaign(engine, CampaignRequest(
            authority_id="23003", municipality_nis="23003", texts={"nl": "Blijf binnen"},
            channels=["cap"], cap={"event": event}, fields=fields or {}))

    for event in ("{foo}", "Brand {", "Brand\nStraat"):
        with pytest.raises(CampaignInputError) as exc:
            est(event)
        assert exc.value.field == "cap.event", event
    assert est("Brand {street}", {"street": "Lotsestraat"})["content"]["nl"]["cap_event"] == \
        "Brand Lotsestraat"


def test_area_name_in_each_language(engine):
    from shapely.geometry import mapping

    from tocsin.authorities.models import Authority
    from tocsin.campaigns.services import CampaignRequest, estimate_campaign
    from tocsin.core.db import transaction
    from tocsin.geo.areas import territory_of

    est = estimate_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004", channels=["email", "cap"],
        texts={"fr": "Alerte à {area_name}", "nl": "Alarm in {area_name}"}))
    assert est["area_name"] == "Bruxelles"
    assert est["content"]["fr"]["email_subject"] == "ALERTE – Bruxelles"
    assert est["content"]["nl"]["email_subject"] == "ALARM – Brussel"
    assert est["content"]["nl"]["sms"] == "Alarm in Brussel"
    assert est["area_names"] == {"fr": "Bruxelles", "nl": "Brussel"}
    # A drawn area of the region: the municipalities it covers, named in each language.
    with transaction(engine) as s:
        ixelles = s.get(Authority, "21009")
        assert ixelles is not None
        spot = territory_of(ixelles).representative_point().buffer(0.001)
    est = estimate_campaign(engine, CampaignRequest(
        authority_id="04000", area_geojson=json.dumps({"type": "Feature", "properties": {},
                                                       "geometry": mapping(spot)}),
        channels=["email"], texts={"fr": "Alerte à {area_name}", "nl": "Alarm in {area_name}"}))
    assert "Ixelles" in est["content"]["fr"]["sms"] and "Elsene" not in est["content"]["fr"]["sms"]
    assert "Elsene" in est["content"]["nl"]["sms"] and "Ixelles" not in est["content"]["nl"]["sms"]
    assert est["area_name"] == est["area_names"]["fr"]


def test_estimate_warns_about_an_official_language_without_text(engine):
    from tocsin.campaigns.services import CampaignRequest, estimate_campaign
    from tocsin.subscribers.importer import import_subscribers

    import_subscribers(engine, b"subscriber_id,language,mobile,email,lat,lon\n"
                               b"S1,nl,+32470000001,,50.7480,4.3000\n"
                               b"S2,nl,+32470000002,s2@example.org,50.7500,4.3050\n"
                               b"S3,en,+32470000003,,50.7490,4.3010\n")
    req = CampaignRequest(authority_id="23003", municipality_nis="23003",
                          texts={"en": "Stay inside"}, channels=["sms", "email"])
    est = estimate_campaign(engine, req)
    assert est["warnings"] == [{
        "code": "missing_language", "field": "text.nl",
        "message": "No Dutch text: the 2 Dutch-speaking recipients will get English"}]
    req.texts = {"en": "Stay inside", "nl": "Blijf binnen"}
    assert estimate_campaign(engine, req)["warnings"] == []


def test_messages_name_the_text_for_humans():
    with pytest.raises(ContentError) as exc:
        check_required_languages("21004", "04000", ["fr"])
    assert "SPEC" not in exc.value.reason and "F13" not in exc.value.reason
    assert "the Dutch text (text.nl)" in exc.value.reason
    with pytest.raises(ContentError) as exc:
        complete_content({"fr": "x"}, {"nl": {"sms": "y"}}, "alert", "Beersel", WINTER)
    assert "the Dutch text (text.nl)" in exc.value.reason


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:30+14:00",
                                  "0001-01-01 00:05", "9999-12-31 23:59"])
def test_parse_local_time_never_overflows(text):
    try:
        parsed = rules.parse_local_time(text)
    except ValueError as exc:
        assert text in str(exc)
    else:  # readable, but far away: the services refuse it by their bounds
        assert parsed.tzinfo is not None


@pytest.mark.parametrize("kind, hours", [("alert", 24), ("warning", 24), ("group", 24),
                                         ("information", 24 * 7), ("test", 1),
                                         ("exercise", 1)])
def test_default_expiry_by_kind(kind, hours):
    assert rules.default_expires(kind, WINTER) == WINTER + dt.timedelta(hours=hours)


def test_a_national_area_is_named_after_the_country(engine):
    """Issue 7.10: not "Aalter, Aarschot, Aartselaar +578" in {area_name} and the CAP areaDesc."""
    from lxml import etree

    from tocsin.authorities.models import Authority
    from tocsin.campaigns.models import Campaign
    from tocsin.campaigns.services import CampaignRequest, estimate_campaign, launch_campaign
    from tocsin.core.db import transaction
    from tocsin.geo.areas import territory_of

    with transaction(engine) as s:
        be = s.get(Authority, "BE")
        assert be is not None
        country = json.loads(json.dumps(mapping(territory_of(be))))
    texts = {"fr": "Alerte {area_name}", "nl": "Alarm {area_name}", "de": "Warnung {area_name}",
             "en": "Alert {area_name}"}
    req = CampaignRequest(authority_id="BE", area_geojson=country, channels=["cap"],
                          texts=texts)
    est = estimate_campaign(engine, req)
    assert est["area_names"] == {"fr": "Belgique", "nl": "België", "de": "Belgien",
                                 "en": "Belgium"}
    assert {lang: e["sms"] for lang, e in est["content"].items()} == {
        "fr": "Alerte Belgique", "nl": "Alarm België", "de": "Warnung Belgien",
        "en": "Alert Belgium"}
    campaign_id = launch_campaign(engine, req)
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None and c.area_name == "Belgique"
        doc = etree.fromstring(c.cap_xml.encode())
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    assert {e.text for e in doc.iterfind("cap:info/cap:area/cap:areaDesc", ns)} == {"Belgique"}


def test_a_drawn_area_of_a_municipality_has_no_zone_suffix(engine):
    """Issue 7.11: "(zone)" never appears in a public text; the area is in Beersel."""
    from shapely.geometry import box

    from tocsin.campaigns.services import CampaignRequest, estimate_campaign

    est = estimate_campaign(engine, CampaignRequest(
        authority_id="23003", area_geojson=json.dumps(mapping(box(4.295, 50.7445, 4.311, 50.754))),
        channels=["email", "cap"], texts={"nl": "Alarm {area_name}: blijf binnen."}))
    assert est["area_name"] == "Beersel"
    assert "(zone)" not in json.dumps(est["content"], ensure_ascii=False)
    assert est["content"]["nl"]["sms"] == "Alarm Beersel: blijf binnen."
