"""CAP 1.2 build, hardened parse, XSD validation, area polygons and Atom feed."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest
import shapely
from lxml import etree
from shapely.geometry import Polygon, shape

from tocsin.cap.build import (
    CapAlert,
    CapArea,
    CapBuildError,
    CapCircle,
    CapInfo,
    brussels_time,
    build_alert,
)
from tocsin.cap.feed import ATOM_NS, FeedBuildError, FeedEntry, build_atom_feed
from tocsin.cap.polygons import AreaConversionError, area_to_cap_polygons, cap_polygons_union
from tocsin.cap.xml import CAP_NS, CapParseError, parse_cap, parse_xml, validate_xsd

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GEO = Path(str(resources.files("tocsin.geo") / "data"))  # the packaged boundaries
CAP_EXAMPLES = FIXTURES / "cap" / "examples"
NS = {"cap": CAP_NS}
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def _features(name: str) -> list[dict]:
    path = GEO / f"belgium-{name}.geojson"
    if not path.exists():
        pytest.fail(f"reference data missing: {path}")
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def _municipality(nis: str) -> dict:
    return next(f for f in _features("municipalities") if f["properties"]["nis"] == nis)


def _check_rings(rings: list[list[tuple[float, float]]], original) -> None:
    assert rings
    for ring in rings:
        assert 4 <= len(ring) <= 500
        assert ring[0] == ring[-1]
        for lat, lon in ring:
            assert round(lat, 6) == lat and round(lon, 6) == lon
            assert 49 < lat < 52 and 2 < lon < 7  # Belgium, lat/lon order
        polygon = Polygon([(lon, lat) for lat, lon in ring])
        assert polygon.is_valid and not polygon.interiors
    assert cap_polygons_union(rings).covers(original)


def _alert(**overrides) -> CapAlert:
    beersel = _municipality("23003")
    rings = area_to_cap_polygons(shape(beersel["geometry"]))
    area = CapArea(
        area_desc="Beersel",
        polygons=rings,
        circles=[CapCircle(50.766, 4.305, 2.5)],
        geocodes=[("NIS", "23003")],
    )
    common = dict(
        category="Safety",
        event="Chemical leak",
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
        sender_name="Gemeente Beersel / Commune de Beersel",
        web="https://beersel.example/alert",
        areas=[area],
    )
    infos = [
        CapInfo(
            language="fr-BE",
            headline="Fuite chimique à Beersel",
            description="Un nuage toxique se déplace vers le nord.",
            instruction="Restez à l'intérieur, fermez portes & fenêtres <maintenant>.",
            **common,
        ),
        CapInfo(
            language="nl-BE",
            headline="Chemisch lek in Beersel",
            description="Een giftige wolk drijft naar het noorden.",
            instruction="Blijf binnen, sluit deuren en ramen.",
            **common,
        ),
    ]
    fields = dict(
        identifier="BE-23003-2024-0001",
        sender="tocsin@crisis.example.be",
        sent=datetime(2024, 7, 1, 12, 30, 15, 123456, tzinfo=UTC),
        status="Actual",
        msg_type="Alert",
        scope="Public",
        infos=infos,
        expires=datetime(2024, 7, 1, 18, 0, tzinfo=UTC),
    )
    fields.update(overrides)
    return CapAlert(**fields)


# --- times -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2024, 7, 1, 10, 0, 0, 999999, tzinfo=UTC), "2024-07-01T12:00:00+02:00"),
        (datetime(2024, 1, 15, 10, 0, tzinfo=UTC), "2024-01-15T11:00:00+01:00"),
        # Around the spring-forward change (31 March 2024, 01:00 UTC).
        (datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC), "2024-03-31T01:59:59+01:00"),
        (datetime(2024, 3, 31, 1, 0, 0, tzinfo=UTC), "2024-03-31T03:00:00+02:00"),
        # Around the fall-back change (27 October 2024, 01:00 UTC).
        (datetime(2024, 10, 27, 0, 30, tzinfo=UTC), "2024-10-27T02:30:00+02:00"),
        (datetime(2024, 10, 27, 1, 30, tzinfo=UTC), "2024-10-27T02:30:00+01:00"),
        (
            datetime(2024, 7, 1, 5, 0, tzinfo=timezone(timedelta(hours=-7))),
            "2024-07-01T14:00:00+02:00",
        ),
    ],
)
def test_brussels_time_across_dst(moment: datetime, expected: str) -> None:
    text = brussels_time(moment)
    assert text == expected
    assert CAP_TIME.match(text)


def test_brussels_time_rejects_naive() -> None:
    with pytest.raises(CapBuildError, match="naive"):
        brussels_time(datetime(2024, 7, 1, 12, 0))


# --- build -----------------------------------------------------------------


def test_build_bilingual_alert_validates_and_round_trips() -> None:
    data = build_alert(_alert())
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert validate_xsd(data) == []

    root = parse_cap(data)
    assert root.tag == f"{{{CAP_NS}}}alert"
    assert root.findtext("cap:identifier", namespaces=NS) == "BE-23003-2024-0001"
    assert root.findtext("cap:sent", namespaces=NS) == "2024-07-01T14:30:15+02:00"
    infos = root.findall("cap:info", NS)
    assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["fr-BE", "nl-BE"]
    assert infos[0].findtext("cap:instruction", namespaces=NS).endswith("& fenêtres <maintenant>.")
    assert infos[0].findtext("cap:expires", namespaces=NS) == "2024-07-01T20:00:00+02:00"
    for element in root.iter(f"{{{CAP_NS}}}sent", f"{{{CAP_NS}}}expires"):
        assert CAP_TIME.match(element.text)

    area = infos[1].find("cap:area", NS)
    assert area.findtext("cap:geocode/cap:valueName", namespaces=NS) == "NIS"
    assert area.findtext("cap:geocode/cap:value", namespaces=NS) == "23003"
    assert area.findtext("cap:circle", namespaces=NS) == "50.766,4.305 2.5"
    polygons = [p.text for p in area.findall("cap:polygon", NS)]
    assert polygons
    original = shape(_municipality("23003")["geometry"])
    rings = []
    for text in polygons:
        pairs = [tuple(map(float, point.split(","))) for point in text.split(" ")]
        assert pairs[0] == pairs[-1] and len(pairs) >= 4
        rings.append(pairs)
    assert cap_polygons_union(rings).covers(original)


def test_build_element_order_follows_xsd() -> None:
    root = parse_cap(build_alert(_alert()))
    names = [etree.QName(child).localname for child in root]
    assert names == ["identifier", "sender", "sent", "status", "msgType", "scope", "info", "info"]
    info = [etree.QName(c).localname for c in root.find("cap:info", NS)]
    assert info == [
        "language",
        "category",
        "event",
        "urgency",
        "severity",
        "certainty",
        "expires",
        "senderName",
        "headline",
        "description",
        "instruction",
        "web",
        "area",
    ]


def test_build_update_with_references() -> None:
    original_sent = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    data = build_alert(
        _alert(
            identifier="BE-23003-2024-0002",
            msg_type="Update",
            references=[("tocsin@crisis.example.be", "BE-23003-2024-0001", original_sent)],
        )
    )
    assert validate_xsd(data) == []
    assert parse_cap(data).findtext("cap:references", namespaces=NS) == (
        "tocsin@crisis.example.be,BE-23003-2024-0001,2024-01-15T11:00:00+01:00"
    )


@pytest.mark.parametrize("identifier", ["BE 0001", "BE,0001", "BE<1", "BE&1", "", "BE\t1"])
def test_bad_identifier_rejected(identifier: str) -> None:
    with pytest.raises(CapBuildError, match="^identifier: "):
        build_alert(_alert(identifier=identifier))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"status": "Real"}, "^status: 'Real' is not one of"),
        ({"msg_type": "Cancel"}, "^references: required for msgType Cancel"),
        ({"sent": datetime(2024, 7, 1, 12, 0)}, "^sent: .* naive"),
        ({"scope": "Restricted"}, "^restriction: required"),
    ],
)
def test_bad_alert_fields_rejected(overrides: dict, message: str) -> None:
    with pytest.raises(CapBuildError, match=message):
        build_alert(_alert(**overrides))


def _info_with_area(area: CapArea, **overrides) -> CapInfo:
    fields = dict(
        language="fr-BE",
        category="Met",
        event="Storm",
        urgency="Expected",
        severity="Moderate",
        certainty="Likely",
        areas=[area],
    )
    fields.update(overrides)
    return CapInfo(**fields)


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (
            _info_with_area(CapArea("x", polygons=[[(50.0, 4.0), (50.1, 4.0), (50.0, 4.0)]])),
            r"^infos\[0\]\.areas\[0\]\.polygons\[0\]: 3 points",
        ),
        (
            _info_with_area(
                CapArea("x", polygons=[[(50.0, 4.0), (50.1, 4.0), (50.1, 4.1), (50.0, 4.1)]])
            ),
            r"^infos\[0\]\.areas\[0\]\.polygons\[0\]: not closed",
        ),
        (
            _info_with_area(CapArea("x", polygons=[[(95.0, 4.0)] * 4])),
            r"latitude 95.0 outside",
        ),
        (_info_with_area(CapArea("x"), urgency="Now"), r"^infos\[0\]\.urgency: 'Now'"),
        (_info_with_area(CapArea("x"), language="fr BE"), r"^infos\[0\]\.language: "),
        (_info_with_area(CapArea("x"), headline="bell\x07"), r"^infos\[0\]\.headline: .*U\+0007"),
        (_info_with_area(CapArea("")), r"^infos\[0\]\.areas\[0\]\.area_desc: required"),
    ],
)
def test_bad_info_fields_rejected(info: CapInfo, message: str) -> None:
    with pytest.raises(CapBuildError, match=message):
        build_alert(_alert(infos=[info]))


# --- parse and validate ----------------------------------------------------


@pytest.mark.parametrize("name", [f"v1dot2_appendix_adot{i}.xml" for i in range(1, 5)])
def test_oasis_examples_validate(name: str) -> None:
    path = CAP_EXAMPLES / name
    if not path.exists():
        pytest.fail(f"reference data missing: {path}")
    data = path.read_bytes()
    assert validate_xsd(data) == []
    assert parse_cap(data).tag == f"{{{CAP_NS}}}alert"


def test_validate_reports_line_numbers() -> None:
    data = build_alert(_alert()).replace(b"<status>Actual</status>", b"<status>Real</status>")
    errors = validate_xsd(data)
    assert errors and errors[0].startswith("line 6: ")  # line 1 is the declaration
    assert "status" in errors[0]
    assert validate_xsd(b"<alert>\n<unclosed>\n</alert>")[0].startswith("line ")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_hostile_documents_rejected_quickly(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(CapParseError, match="DOCTYPE"):
        parse_cap(data)
    errors = validate_xsd(data)
    assert errors and "DOCTYPE" in errors[0]
    assert time.perf_counter() - started < 0.5


def test_hostile_utf16_document_rejected_after_parse() -> None:
    # The byte pre-scan cannot see ASCII markers in UTF-16; the docinfo check must.
    data = XXE.replace(b'version="1.0"?>', b'version="1.0" encoding="UTF-16"?>').decode()
    with pytest.raises(CapParseError, match="DOCTYPE"):
        parse_cap(data.encode("utf-16"))


def test_parse_limits_and_errors() -> None:
    big = b"<alert xmlns='" + CAP_NS.encode() + b"'>" + b" " * (1024 * 1024) + b"</alert>"
    with pytest.raises(CapParseError, match="exceeds the limit of 1048576 bytes"):
        parse_cap(big)
    assert parse_cap(big, max_bytes=2 * 1024 * 1024).tag == f"{{{CAP_NS}}}alert"
    with pytest.raises(CapParseError, match="not well-formed XML at line 2"):
        parse_cap(b"<alert>\n<x></alert>")
    with pytest.raises(CapParseError, match="root element"):
        parse_cap(b"<alert/>")
    with pytest.raises(CapParseError, match="expected bytes, got str"):
        parse_cap("<alert/>")  # type: ignore[arg-type]
    with pytest.raises(CapParseError, match="empty"):
        parse_cap(b"  ")


# --- polygons --------------------------------------------------------------


def test_flemish_brabant_split_without_holes() -> None:
    feature = next(f for f in _features("provinces") if f["properties"].get("nis") == "20001")
    geom = shape(feature["geometry"])
    assert any(p.interiors for p in getattr(geom, "geoms", [geom]))  # the Brussels hole
    rings = area_to_cap_polygons(geom)
    assert len(rings) >= 2
    _check_rings(rings, geom)
    # Outward only, but not absurdly: Brussels itself stays (almost) outside.
    brussels = shape(
        next(f for f in _features("provinces") if "nis" not in f["properties"])["geometry"]
    )
    covered = cap_polygons_union(rings).intersection(brussels).area
    assert covered < 0.02 * brussels.area


def test_every_province_converts() -> None:
    for feature in _features("provinces"):
        geom = shape(feature["geometry"])
        _check_rings(area_to_cap_polygons(geom), geom)


def test_largest_and_invalid_municipalities_convert() -> None:
    features = _features("municipalities")
    largest = sorted(features, key=lambda f: shape(f["geometry"]).area, reverse=True)[:25]
    broken = ("Stabroek", "Asse", "Koksijde")  # self-intersecting rings in the source data
    invalid = [f for f in features if f["properties"]["name_nl"] in broken]
    assert len(invalid) == 3
    for feature in largest + invalid:
        geom = shape(feature["geometry"])
        _check_rings(area_to_cap_polygons(geom), shapely.make_valid(geom))


def test_polygon_conversion_errors() -> None:
    with pytest.raises(AreaConversionError, match="no polygonal part"):
        area_to_cap_polygons(shapely.Point(4.3, 50.8))
    with pytest.raises(AreaConversionError, match="not WGS84"):
        area_to_cap_polygons(Polygon([(150000, 170000), (150100, 170000), (150100, 170100)]))


# --- feed ------------------------------------------------------------------


def test_atom_feed() -> None:
    updated = datetime(2024, 7, 1, 12, 30, tzinfo=UTC)
    entries = [
        FeedEntry(
            identifier="BE-23003-2024-0001",
            title="Fuite chimique à Beersel & environs",
            updated=updated,
            summary="Restez à l'intérieur <maintenant>.",
            cap_url="https://tocsin.example.be/cap/BE-23003-2024-0001.xml",
            sender="tocsin@crisis.example.be",
        ),
        FeedEntry(
            identifier="urn:oid:2.49.0.1.56.0.2024.2",
            title="Test",
            updated=updated - timedelta(days=200),
            summary="",
            cap_url="https://tocsin.example.be/cap/2.xml",
            sender="tocsin@crisis.example.be",
        ),
    ]
    data = build_atom_feed(
        "urn:uuid:5a1c0d1e-7a52-4f5f-9d6e-2b7a1b9e0c11",
        "Tocsin — alertes publiques",
        "https://tocsin.example.be/cap/feed.atom",
        updated,
        entries,
    )
    root = parse_xml(data)
    ns = {"a": ATOM_NS}
    assert root.tag == f"{{{ATOM_NS}}}feed"
    assert root.findtext("a:updated", namespaces=ns) == "2024-07-01T14:30:00+02:00"
    assert root.find("a:link[@rel='self']", ns).get("href").endswith("feed.atom")
    items = root.findall("a:entry", ns)
    assert len(items) == 2
    assert items[0].findtext("a:id", namespaces=ns) == entries[0].cap_url
    assert items[1].findtext("a:id", namespaces=ns) == "urn:oid:2.49.0.1.56.0.2024.2"
    assert items[1].findtext("a:updated", namespaces=ns) == "2023-12-14T13:30:00+01:00"
    assert items[0].findtext("a:title", namespaces=ns).endswith("& environs")
    link = items[0].find("a:link", ns)
    assert (link.get("rel"), link.get("type"), link.get("href")) == (
        "alternate",
        "application/cap+xml",
        entries[0].cap_url,
    )
    assert items[0].findtext("a:author/a:name", namespaces=ns) == "tocsin@crisis.example.be"


def test_atom_feed_rejects_bad_fields() -> None:
    now = datetime(2024, 7, 1, tzinfo=UTC)
    with pytest.raises(FeedBuildError, match="^feed_id: .*absolute IRI"):
        build_atom_feed("feed-1", "t", "https://x.example/feed", now, [])
    with pytest.raises(FeedBuildError, match="^updated: .*naive"):
        build_atom_feed("urn:x:1", "t", "https://x.example/feed", datetime(2024, 7, 1), [])
    entry = FeedEntry("id1", "t", now, "s", "/relative.xml", "sender")
    with pytest.raises(FeedBuildError, match=r"^entries\[0\]\.cap_url: "):
        build_atom_feed("urn:x:1", "t", "https://x.example/feed", now, [entry])
