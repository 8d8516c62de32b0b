"""CAP validation (OASIS XSD + the rules it cannot express) and the hardened parser.

The public vectors are the copies in tests/fixtures/cap (see PROVENANCE.md).
Hostile documents are refused with a clear error, in bounded time and memory,
without any network request (a real local HTTP server counts them).
"""

from __future__ import annotations

import http.server
import json
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tocsin.cap.validate import (
    CB_MAX_CHARS,
    circle_geometry,
    element_path,
    parse_circle_text,
    parse_polygon_text,
    references_problems,
    validate_cap,
)
from tocsin.cap.xml import CAP11_NS, CAP_NS, CapParseError, cap_version, parse_cap
from tocsin.cli import app
from tocsin.geo.areas import area_km2

FIXTURES = Path(__file__).parent / "fixtures" / "cap"
ALL_FIXTURES = sorted(FIXTURES.glob("*/*.xml"))
REJECTED = {"INVALID_AREA_WITH_INTERSECTIONS.xml", "VALID_AREA_POLYGON.xml"}

# A square of about 2.2 x 1.4 km inside Beersel (NIS 23003), CAP order lat,lon.
BEERSEL = "50.7413,4.2943 50.7413,4.3143 50.7613,4.3143 50.7613,4.2943 50.7413,4.2943"


def area_xml(desc: str = "Beersel", *, polygons: tuple[str, ...] = (BEERSEL,),
             circles: tuple[str, ...] = (), geocodes: tuple[tuple[str, str], ...] = ()) -> str:
    parts = [f"<areaDesc>{desc}</areaDesc>"]
    parts += [f"<polygon>{p}</polygon>" for p in polygons]
    parts += [f"<circle>{c}</circle>" for c in circles]
    parts += [f"<geocode><valueName>{n}</valueName><value>{v}</value></geocode>"
              for n, v in geocodes]
    return "<area>" + "".join(parts) + "</area>"


def info_xml(language: str = "fr-BE", *, areas: tuple[str, ...] | None = None,
             headline: str = "Incendie à Beersel",
             description: str = "Un incendie dégage une fumée épaisse.",
             instruction: str = "Restez à l'intérieur, fermez portes et fenêtres.",
             event: str = "Incendie", urgency: str = "Immediate", severity: str = "Severe",
             expires: str | None = "2026-11-29T18:00:00+01:00", extra: str = "") -> str:
    areas = (area_xml(),) if areas is None else areas
    return (
        f"<info><language>{language}</language><category>Fire</category>"
        f"<event>{event}</event><urgency>{urgency}</urgency><severity>{severity}</severity>"
        f"<certainty>Observed</certainty>"
        + (f"<expires>{expires}</expires>" if expires else "")
        + (f"<headline>{headline}</headline>" if headline else "")
        + (f"<description>{description}</description>" if description else "")
        + (f"<instruction>{instruction}</instruction>" if instruction else "")
        + extra + "".join(areas) + "</info>"
    )


def cap_xml(*infos: str, identifier: str = "BE-TEST-1", sender: str = "alert@example.be",
            sent: str = "2026-11-29T10:00:00+01:00", status: str = "Actual",
            msg_type: str = "Alert", references: str | None = None, ns: str = CAP_NS,
            encoding: str = "UTF-8") -> bytes:
    infos = infos or (info_xml(),)
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<alert xmlns="{ns}"><identifier>{identifier}</identifier><sender>{sender}</sender>'
        f"<sent>{sent}</sent><status>{status}</status><msgType>{msg_type}</msgType>"
        f"<scope>Public</scope>"
        + (f"<references>{references}</references>" if references is not None else "")
        + "".join(infos) + "</alert>"
    )
    return text.encode(encoding)


def errors_of(data: bytes, **kwargs: object) -> dict[str, str]:
    report = validate_cap(data, **kwargs)  # type: ignore[arg-type]
    return {i.element: i.message for i in report.errors}


def warnings_of(data: bytes, **kwargs: object) -> dict[str, str]:
    report = validate_cap(data, **kwargs)  # type: ignore[arg-type]
    return {i.element: i.message for i in report.warnings}


# --- the public vectors --------------------------------------------------------------


def test_fixtures_present() -> None:
    names = {p.name for p in ALL_FIXTURES}
    assert len(names) == 10 and REJECTED <= names and "LONG_GSM7.xml" in names


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: p.name)
def test_public_vectors(path: Path) -> None:
    report = validate_cap(path.read_bytes())
    assert report.cap_version == "1.2"
    assert report.valid is (path.name not in REJECTED), report.errors


def test_self_intersection_names_area_and_crossing_point() -> None:
    report = validate_cap((FIXTURES / "uk-samples/INVALID_AREA_WITH_INTERSECTIONS.xml")
                          .read_bytes())
    [error] = report.errors
    assert error.element == "info[1]/area[1]/polygon[1]"
    assert "intersect" in error.message and "'area-1'" in error.message
    # The crossing point, in the document's lat,lon order.
    assert "-0.537929,53.238548" in error.message


def test_unclosed_polygon_rejected_on_its_text() -> None:
    report = validate_cap((FIXTURES / "uk-samples/VALID_AREA_POLYGON.xml").read_bytes())
    [error] = report.errors
    assert error.element == "info[1]/area[1]/polygon[1]"
    assert "not closed" in error.message and "-0.53822,53.24553" in error.message


def test_long_description_warns_about_cell_broadcast_limit() -> None:
    report = validate_cap((FIXTURES / "uk-samples/LONG_GSM7.xml").read_bytes())
    assert report.valid
    warning = {w.element: w.message for w in report.warnings}["info[1]/description"]
    assert "1,396 GSM-7" in warning and "1,395" in warning


def test_cell_broadcast_limits_per_encoding() -> None:
    assert CB_MAX_CHARS == {"GSM-7": 1395, "UCS-2": 615}
    exact = cap_xml(info_xml(description="a" * 1395, instruction="b" * 1395))
    assert not any("cell-broadcast" in m for m in warnings_of(exact).values())
    ucs2 = cap_xml(info_xml(description="l’" + "a" * 614, instruction="l’" + "a" * 613))
    warnings = warnings_of(ucs2)
    assert "616 UCS-2" in warnings["info[1]/description"]
    assert "615 UCS-2" in warnings["info[1]/description"]
    assert "info[1]/instruction" not in warnings


def test_belgian_alert_is_valid_without_warnings() -> None:
    report = validate_cap(cap_xml(info_xml(), info_xml("nl-BE", headline="Brand in Beersel")))
    assert report.valid and report.warnings == [], (report.errors, report.warnings)
    assert report.to_json() == {"valid": True, "cap_version": "1.2", "errors": [],
                                "warnings": []}


# --- rules the XSD cannot express -------------------------------------------------------


def test_polygon_needs_four_points_and_valid_ranges() -> None:
    three = "50.74,4.29 50.75,4.31 50.74,4.29"
    errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(three,)),))))
    assert "at least 4" in errors["info[1]/area[1]/polygon[1]"]
    bad_lat = "95.0,4.29 50.75,4.31 50.76,4.30 95.0,4.29"
    errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(bad_lat,)),))))
    assert "latitude 95 is outside -90..90" in errors["info[1]/area[1]/polygon[1]"]
    bad_lon = "50.74,190 50.75,4.31 50.76,4.30 50.74,190"
    errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(bad_lon,)),))))
    assert "longitude 190 is outside -180..180" in errors["info[1]/area[1]/polygon[1]"]
    garbage = "50.74;4.29 50.75,4.31 50.76,4.30 50.74,4.29"
    errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(garbage,)),))))
    assert "point 1" in errors["info[1]/area[1]/polygon[1]"]


def test_errors_name_the_element_path() -> None:
    crossing = "50.74,4.29 50.76,4.31 50.74,4.31 50.76,4.29 50.74,4.29"  # a bow tie
    doc = cap_xml(info_xml(), info_xml("nl-BE", areas=(
        area_xml("Beersel"), area_xml("Vlinder", polygons=(BEERSEL, crossing)))))
    errors = errors_of(doc)
    assert list(errors) == ["info[2]/area[2]/polygon[2]"]
    message = errors["info[2]/area[2]/polygon[2]"]
    assert "intersect" in message and "'Vlinder'" in message and "50.75,4.3" in message


def test_circles() -> None:
    assert parse_circle_text(" 50.75,4.30  5 ") == (50.75, 4.30, 5.0)
    for text, reason in [("50.75,4.30 -1", "negative"), ("50.75,4.30 abc", "kilometres"),
                         ("50.75,4.30", "lat,lon radius"), ("50.75 4.30 5", "lat,lon")]:
        with pytest.raises(ValueError, match=reason):
            parse_circle_text(text)
        errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(), circles=(text,)),))))
        assert "info[1]/area[1]/circle[1]" in errors
    errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(), circles=("91,4 1",)),))))
    assert "latitude 91" in errors["info[1]/area[1]/circle[1]"]
    ok = cap_xml(info_xml(areas=(area_xml(polygons=(), circles=("50.75,4.30 0",
                                                                 "50.75,4.30 2.5")),)))
    assert validate_cap(ok).valid and not validate_cap(ok).warnings


def test_circle_geometry_is_drawn_in_metres() -> None:
    disc = circle_geometry(50.75, 4.30, 5.0)  # Lambert 2008 (EPSG:3812)
    assert area_km2(disc) == pytest.approx(3.14159 * 25, rel=0.01)
    far = circle_geometry(-33.9, 151.2, 5.0)  # Sydney: local azimuthal equidistant
    assert far.centroid.x == pytest.approx(151.2, abs=0.01)
    assert circle_geometry(50.75, 4.30, 0).geom_type == "Point"


def test_expires_not_before_sent() -> None:
    doc = cap_xml(info_xml(expires="2026-11-29T08:59:59+00:00"),
                  sent="2026-11-29T10:00:00+01:00")
    assert "before the alert's sent time" in errors_of(doc)["info[1]/expires"]
    same = cap_xml(info_xml(expires="2026-11-29T09:00:00+00:00"),
                   sent="2026-11-29T10:00:00+01:00")
    assert validate_cap(same).valid


@pytest.mark.parametrize("msg_type", ["Update", "Cancel"])
def test_references_required_and_well_formed(msg_type: str) -> None:
    missing = errors_of(cap_xml(msg_type=msg_type))
    assert f"msgType {msg_type} must name the earlier" in missing["references"]
    good = ("alert@example.be,BE-TEST-0,2026-11-29T09:00:00+01:00 "
            "other@x.be,X-1,2026-11-29T09:30:00-00:00")
    assert validate_cap(cap_xml(msg_type=msg_type, references=good)).valid
    for bad, reason in [("alert@example.be,BE-TEST-0", "not a 'sender,identifier,sent'"),
                        ("alert@example.be,,2026-11-29T09:00:00+01:00", "empty"),
                        ("a,b,2026-11-29T09:00:00Z", "not a CAP date-time"),
                        ("a,b,c,d", "not a 'sender,identifier,sent'")]:
        assert reason in errors_of(cap_xml(msg_type=msg_type, references=bad))["references"]
    assert references_problems("  ") != []


@pytest.mark.parametrize(("field", "value", "what"), [
    ("identifier", "BE TEST 1", "a space"), ("identifier", "BE,TEST", "a comma"),
    ("sender", "alert example.be", "a space"), ("identifier", "BE&amp;1", "'&'"),
])
def test_identifier_and_sender_without_spaces_or_commas(field: str, value: str,
                                                        what: str) -> None:
    errors = errors_of(cap_xml(**{field: value}))  # type: ignore[arg-type]
    assert what in errors[field] and "CAP 1.2 §3.2.1" in errors[field]


def test_schema_errors_name_the_element() -> None:
    errors = errors_of(cap_xml(status="Real"))
    assert "Real" in errors["status"] and "OASIS CAP 1.2 schema" in errors["status"]
    errors = errors_of(cap_xml(info_xml(urgency="Soon")))
    assert "info[1]/urgency" in errors
    assert "urn:oasis" not in errors["info[1]/urgency"]


# --- warnings for the deployment's country ------------------------------------------------


def test_swapped_coordinates_warn() -> None:
    lon_lat = " ".join(",".join(reversed(p.split(","))) for p in BEERSEL.split())
    report = validate_cap(cap_xml(info_xml(areas=(area_xml(polygons=(lon_lat,)),))))
    assert report.valid
    [warning] = report.warnings
    assert warning.element == "info[1]/area[1]/polygon[1]"
    assert "swapped" in warning.message and "lon,lat" in warning.message
    assert validate_cap(cap_xml(info_xml(areas=(area_xml(polygons=(lon_lat,)),))),
                        country=None).warnings == []


def test_area_outside_country_warns() -> None:
    paris = "48.85,2.34 48.86,2.36 48.87,2.34 48.85,2.34"
    warnings = warnings_of(cap_xml(info_xml(areas=(area_xml("Paris", polygons=(paris,)),
                                                   area_xml()))))
    assert "'Paris' lies outside Belgium" in warnings["info[1]/area[1]"]
    assert "info[1]/area[2]" not in warnings
    # Just across the border (Lille) is "near" within the margin of the outline only
    # if it touches; Lille centre is ~10 km away.
    lille = "50.62,3.05 50.64,3.07 50.65,3.05 50.62,3.05"
    assert "info[1]/area[1]" in warnings_of(cap_xml(info_xml(areas=(
        area_xml("Lille", polygons=(lille,)),))))


def test_unknown_country_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="country"):
        validate_cap(cap_xml(), country="XX")


# --- CAP 1.1 is read-only -------------------------------------------------------------


def test_cap11_is_validated_with_a_warning() -> None:
    resource_without_mime = ("<resource><resourceDesc>map</resourceDesc>"
                             "<uri>https://example.be/map.png</uri></resource>")
    doc = cap_xml(info_xml(extra=resource_without_mime), ns=CAP11_NS)
    report = validate_cap(doc)
    assert report.cap_version == "1.1" and report.valid, report.errors
    assert report.warnings[0].element == "alert" and "CAP 1.1" in report.warnings[0].message
    unclosed = "50.74,4.29 50.75,4.31 50.76,4.30 50.77,4.29"
    report = validate_cap(cap_xml(info_xml(areas=(area_xml(polygons=(unclosed,)),)),
                                  ns=CAP11_NS))
    assert not report.valid and "not closed" in report.errors[0].message
    report = validate_cap(cap_xml(status="Bogus", ns=CAP11_NS))
    assert not report.valid and report.errors[0].element == "status"


def test_cap_version_and_root() -> None:
    assert cap_version(parse_cap(cap_xml(ns=CAP11_NS), accept_cap11=True)) == "1.1"
    with pytest.raises(CapParseError, match="root element"):
        parse_cap(cap_xml(ns=CAP11_NS))
    other = validate_cap(b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.0'/>")
    assert other.cap_version is None and other.errors[0].element == "alert"


# --- grammar helpers ------------------------------------------------------------------


def test_polygon_text_and_paths() -> None:
    assert parse_polygon_text(" 1,2\n 3,4\t") == [(1.0, 2.0), (3.0, 4.0)]
    for bad in ("", "1,2 nan,4", "1,2,3", "1,2 inf,1"):
        with pytest.raises(ValueError):
            parse_polygon_text(bad)
    root = parse_cap(cap_xml(info_xml(), info_xml("nl-BE", areas=(area_xml(), area_xml()))))
    polygon = root.findall(f"{{{CAP_NS}}}info")[1].findall(f"{{{CAP_NS}}}area")[1][1]
    assert element_path(polygon) == "info[2]/area[2]/polygon[1]"
    assert element_path(root) == "alert"
    assert element_path(root[0]) == "identifier"


# --- hardened parsing -------------------------------------------------------------------

LAUGHS = """<?xml version="1.0" encoding="{enc}"?>
<!DOCTYPE alert [
 <!ENTITY a "lollollollollollollollollollol">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&g;</identifier></alert>
"""


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).hits.append(self.path)
        body = b'<!ENTITY leak "from-the-network">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""
    _CountingHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _CountingHandler.hits
    finally:
        server.shutdown()
        server.server_close()


def _bounded(fn: object, data: bytes) -> tuple[object, float, int]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = fn(data)  # type: ignore[operator]
    return (result, time.perf_counter() - started,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16"])
def test_entity_bomb_refused_in_bounded_time_and_memory(encoding: str) -> None:
    # 20^6 x 30 bytes = 1.9 GB if expanded; UTF-16 hides the DOCTYPE from the byte scan.
    data = LAUGHS.format(enc=encoding).encode(encoding.lower().replace("-", ""))
    report, seconds, grown_kib = _bounded(validate_cap, data)
    assert not report.valid  # type: ignore[attr-defined]
    [error] = report.errors  # type: ignore[attr-defined]
    assert error.element == "document"
    assert "DOCTYPE" in error.message or "entity expansion" in error.message
    assert seconds < 1.0 and grown_kib < 50 * 1024


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16"])
def test_external_entities_and_dtds_never_touch_the_network(
        encoding: str, http_server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, hits = http_server
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    documents = [
        f'<!DOCTYPE alert SYSTEM "{url}/cap.dtd">',
        f'<!DOCTYPE alert [<!ENTITY % remote SYSTEM "{url}/remote.dtd"> %remote;]>',
        f'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>',
    ]
    for doctype in documents:
        text = (f'<?xml version="1.0" encoding="{encoding}"?>\n{doctype}\n'
                f'<alert xmlns="{CAP_NS}"><identifier>&xxe;</identifier></alert>')
        data = text.encode(encoding.lower().replace("-", ""))
        with pytest.raises(CapParseError) as caught:
            parse_cap(data)
        assert "TOP-SECRET" not in str(caught.value)
        report = validate_cap(data)
        assert report.errors[0].element == "document"
    # XInclude and schemaLocation are not followed either.
    include = (f'<alert xmlns="{CAP_NS}" xmlns:xi="http://www.w3.org/2001/XInclude" '
               f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
               f'xsi:schemaLocation="{CAP_NS} {url}/cap.xsd">'
               f'<xi:include href="{url}/inc.xml"/></alert>').encode()
    assert not validate_cap(include).valid
    assert hits == []


def test_size_limit_is_named() -> None:
    padding = b" " * (1024 * 1024)
    data = cap_xml().replace(b"</alert>", padding + b"</alert>")
    report, seconds, _ = _bounded(validate_cap, data)
    [error] = report.errors  # type: ignore[attr-defined]
    assert error.element == "document"
    assert "1048576 bytes" in error.message and "1 MiB" in error.message
    assert seconds < 0.5


def test_deep_nesting_refused() -> None:
    deep = (f"<alert xmlns='{CAP_NS}'>".encode() + b"<a>" * 100_000 + b"</a>" * 100_000
            + b"</alert>")
    report, seconds, _ = _bounded(validate_cap, deep)
    assert "depth" in report.errors[0].message.lower()  # type: ignore[attr-defined]
    assert seconds < 0.5


def test_encoding_from_the_xml_declaration() -> None:
    latin1 = cap_xml(info_xml(headline="Fumée à Beersel, fenêtres fermées"),
                     encoding="ISO-8859-1")
    assert "é".encode("latin-1") in latin1 and "é".encode() not in latin1
    root = parse_cap(latin1)
    assert root.findtext(f".//{{{CAP_NS}}}headline") == "Fumée à Beersel, fenêtres fermées"
    assert validate_cap(latin1).valid
    utf16 = cap_xml(info_xml(headline="Überflutung in Eupen"), encoding="UTF-16")
    assert parse_cap(utf16).findtext(f".//{{{CAP_NS}}}headline") == "Überflutung in Eupen"
    # Latin-1 bytes declared as UTF-8: a clear error, not mojibake.
    lying = latin1.replace(b'encoding="ISO-8859-1"', b'encoding="UTF-8"')
    report = validate_cap(lying)
    assert report.errors[0].element == "document"
    assert "not well-formed" in report.errors[0].message
    unknown = cap_xml().replace(b'encoding="UTF-8"', b'encoding="X-NOPE"')
    assert not validate_cap(unknown).valid


# --- the command line -------------------------------------------------------------------


def test_cli_validate_exit_codes_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["cap", "validate", str(FIXTURES / "uk-samples/LONG_GSM7.xml")])
    assert ok.exit_code == 0 and "1,395" in ok.output
    bad = runner.invoke(app, ["cap", "validate", "--json",
                              str(FIXTURES / "uk-samples/INVALID_AREA_WITH_INTERSECTIONS.xml")])
    assert bad.exit_code == 1
    out = json.loads(bad.stdout)
    assert out["valid"] is False and set(out) >= {"valid", "errors", "warnings"}
    assert out["errors"][0]["element"] == "info[1]/area[1]/polygon[1]"
    assert "intersect" in out["errors"][0]["message"]
    missing = runner.invoke(app, ["cap", "validate", str(tmp_path / "nope.xml")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    directory = runner.invoke(app, ["cap", "validate", str(tmp_path)])
    assert directory.exit_code == 2
    hostile = tmp_path / "bomb.xml"
    hostile.write_bytes(LAUGHS.format(enc="UTF-8").encode())
    refused = runner.invoke(app, ["cap", "validate", str(hostile)])
    assert refused.exit_code == 1 and "DOCTYPE" in refused.output
    huge = tmp_path / "huge.xml"
    huge.write_bytes(b"<alert>" + b" " * (3 * 1024 * 1024) + b"</alert>")
    too_big = runner.invoke(app, ["cap", "validate", str(huge)])
    assert too_big.exit_code == 1 and "1 MiB" in too_big.output
    assert f"{3 * 1024 * 1024 + 15} bytes exceeds" in too_big.output
    for result in (ok, bad, missing, directory, refused, too_big):
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


# --- fix round: extreme times, references, circles, JSON on every outcome -----------------


@pytest.mark.parametrize(("sent", "expires", "element"), [
    ("2026-11-29T10:00:00+01:00", "9999-12-31T23:59:59-14:00", "info[1]/expires"),
    ("0001-01-01T00:00:00+14:00", "2026-11-29T18:00:00+01:00", "sent"),
])
def test_times_beyond_utc_range_are_named_errors(tmp_path: Path, sent: str, expires: str,
                                                 element: str) -> None:
    doc = cap_xml(info_xml(expires=expires), sent=sent)
    errors = errors_of(doc)
    assert "UTC" in errors[element] and "year" in errors[element], errors
    path = tmp_path / "extreme.xml"
    path.write_bytes(doc)
    result = CliRunner().invoke(app, ["cap", "validate", "--json", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert json.loads(result.stdout)["errors"][0]["element"] == element


def test_references_dated_after_the_alert_are_an_error() -> None:
    later = "alert@example.be,BE-TEST-0,2026-11-29T11:00:00+01:00"
    errors = errors_of(cap_xml(msg_type="Update", references=later))
    assert "after this alert's sent time" in errors["references"]
    assert "earlier" in errors["references"]
    same = "alert@example.be,BE-TEST-0,2026-11-29T09:00:00+00:00"  # = sent, other offset
    assert validate_cap(cap_xml(msg_type="Update", references=same)).valid
    # Another sender's clock may be off: a warning, not an error.
    other = "other@x.be,X-1,2026-11-29T11:00:00+01:00"
    report = validate_cap(cap_xml(msg_type="Update", references=other))
    assert report.valid
    assert "clock" in {i.element: i.message for i in report.warnings}["references"]


def test_circle_radius_limits_and_large_radius_warning() -> None:
    errors = errors_of(cap_xml(info_xml(areas=(area_xml(polygons=(),
                                                        circles=("50.8,4.3 30000",)),))))
    assert "20,000 km" in errors["info[1]/area[1]/circle[1]"]
    with pytest.raises(ValueError, match="20,000 km"):
        circle_geometry(50.8, 4.3, 30000)
    warnings = warnings_of(cap_xml(info_xml(areas=(area_xml(polygons=(),
                                                            circles=("50.8,4.3 1500",)),))))
    assert "larger than Belgium" in warnings["info[1]/area[1]/circle[1]"]
    assert "kilometres" in warnings["info[1]/area[1]/circle[1]"]


def test_circles_crossing_the_antimeridian_or_a_pole() -> None:
    from shapely.geometry import Point

    belgium = Point(4.35, 50.85)
    east = circle_geometry(50.8, 180, 100)
    assert east.geom_type == "MultiPolygon" and not east.covers(belgium)
    assert east.covers(Point(179.9, 50.8)) and east.covers(Point(-179.9, 50.8))
    assert not east.covers(Point(0, 50.8))
    assert area_km2(east) > 0 and east.bounds[0] >= -180 and east.bounds[2] <= 180
    west = circle_geometry(-16.5, -179.5, 200)  # Fiji, across the antimeridian
    assert west.covers(Point(179.5, -16.5)) and not west.covers(Point(0, -16.5))
    arctic = circle_geometry(89.0, 0.0, 500)  # holds the North Pole
    assert arctic.covers(Point(180, 89.9)) and arctic.covers(Point(-90, 89.5))
    assert not arctic.covers(belgium) and not arctic.covers(Point(0, 80))
    huge = circle_geometry(0.0, 0.0, 15_000)  # holds both poles, not the antipode
    assert huge.covers(belgium) and huge.covers(Point(0, 89.9)) and huge.covers(Point(0, -89.9))
    assert not huge.covers(Point(180, 0)) and not huge.covers(Point(-179.9, 0))
    report = validate_cap(cap_xml(info_xml(areas=(area_xml("Pacific", polygons=(),
                                                           circles=("50.8,180 100",)),))))
    assert report.valid
    assert "lies outside Belgium" in {i.element: i.message for i in report.warnings}[
        "info[1]/area[1]"]


def test_cli_validate_json_on_every_outcome(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["cap", "validate", "--json", str(tmp_path / "nope.xml")])
    assert missing.exit_code == 2
    out = json.loads(missing.stdout)
    assert out["valid"] is False and out["errors"][0]["element"] == "file"
    assert "cannot read" in out["errors"][0]["message"]
    no_file = runner.invoke(app, ["cap", "validate", "--json"])
    assert no_file.exit_code == 2
    assert json.loads(no_file.stdout)["errors"][0]["element"] == "file"
    huge = tmp_path / "huge.xml"
    huge.write_bytes(b"<alert>" + b" " * (2 * 1024 * 1024) + b"</alert>")
    too_big = runner.invoke(app, ["cap", "validate", "--json", str(huge)])
    assert too_big.exit_code == 1
    assert json.loads(too_big.stdout)["errors"][0]["element"] == "document"
    helped = runner.invoke(app, ["cap", "validate", "--help"])
    assert "Exit" in helped.output and "2" in helped.output


def test_cap_command_help_has_no_internal_references() -> None:
    import re

    runner = CliRunner()
    for args in (["cap"], ["cap", "validate"], ["cap", "import"], ["cap", "key"],
                 ["cap", "key", "create"], ["cap", "key", "list"], ["cap", "key", "revoke"]):
        text = runner.invoke(app, [*args, "--help"]).output
        assert not re.search(r"\bSPEC\b|\(F\d+", text), (args, text)
