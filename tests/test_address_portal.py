"""The address register in the citizen portal (issue 10 point 4): the autocomplete's JSON
endpoints, and the profile form without JavaScript — an address found in the register
takes its point, a missing one is refused with the nearest values and can be placed on
the map (a pin, flagged), a municipality the register lacks keeps the municipality
centre."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from test_portal_web import _ask, _code, _hidden, _verify
from tocsin.core.settings import Settings
from tocsin.dispatch.transactional import MemoryOutbox
from tocsin.geo.addresses import import_addresses
from tocsin.subscribers.models import Address
from tocsin.subscribers.portal_models import AddressDetail
from tocsin.subscribers.pumping import Limits
from tocsin.subscribers.verification import PortalConfig
from tocsin.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src" / "tocsin" / "subscribers" / "data" / "best-address-sample.csv"


def _client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    import_addresses(engine, SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True),
                     "sample.csv")
    settings = Settings(var_dir=tmp_path / "var", public_base_url="http://testserver")
    app = create_app(engine, start_worker=False, settings=settings)
    app.state.code_sender = MemoryOutbox()
    app.state.portal_config = PortalConfig(difficulty=4, limits=Limits(backoff_first_s=0))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(engine, tmp_path)


@pytest.fixture
def any_client(any_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(any_engine, tmp_path)


FORM = {"language": "fr", "channels": ["sms"], "accessibility": "none",
        "addr-0-kind": "home", "addr-0-municipality": "bruxelles",
        "addr-0-street": "chaussee de haecht", "addr-0-number": "1840",
        "addr-0-box": "bte 7", "addr-1-kind": "work", "addr-1-municipality": "Beersel",
        "addr-1-street": "Rue de la Gare", "addr-1-number": "12", "primary": "0",
        "consent_alerts": "yes"}


def _profile_page(c: TestClient) -> str:
    _ask(c, "0470 12 34 56")
    _verify(c, _code(c, "+32470123456"))
    return c.get("/register/profile").text


def _details(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(AddressDetail.geocoded, AddressDetail.best_id, Address.lat, Address.lon,
                      Address.label).join(Address, Address.id == AddressDetail.address_id)
            .order_by(Address.position))]


# --- endpoints ----------------------------------------------------------------------


def test_autocomplete_endpoints(any_client: TestClient) -> None:
    c = any_client
    r = c.get("/register/addresses/municipalities", params={"q": "brux", "lang": "fr"})
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    first = r.json()["items"][0]
    assert (first["nis"], first["name"], first["addresses"]) == ("21004", "Bruxelles", True)
    nl = c.get("/register/addresses/municipalities", params={"q": "brus", "lang": "nl"})
    assert nl.json()["items"][0]["name"] == "Brussel"
    streets = c.get("/register/addresses/streets",
                    params={"municipality": "Bruxelles", "q": "chaussée de h", "lang": "fr"})
    assert streets.json()["items"][0]["name"] == "Chaussée de Haecht"
    by_nis = c.get("/register/addresses/streets", params={"nis": "21004", "q": "haachts"})
    assert by_nis.json()["items"][0]["names"]["nl"] == "Haachtsesteenweg"
    numbers = c.get("/register/addresses/numbers",
                    params={"nis": "21004", "street": "Haachtsesteenweg", "q": "18",
                            "limit": 20}).json()["items"]
    assert "1840" in numbers and len(numbers) <= 20
    boxes = c.get("/register/addresses/boxes", params={
        "municipality": "1130", "street": "Chaussée de Haecht", "number": "1840"})
    assert "b007" in boxes.json()["items"]
    many = c.get("/register/addresses/streets", params={"nis": "23027", "limit": 20})
    assert len(many.json()["items"]) == 20
    unknown = c.get("/register/addresses/streets", params={"municipality": "Atlantis"})
    assert unknown.status_code == 200 and unknown.json() == {"items": []}


@pytest.mark.parametrize(("path", "params", "field"), [
    ("municipalities", {"q": "a", "limit": "21"}, "limit"),
    ("municipalities", {"q": "a", "limit": "x"}, "limit"),
    ("municipalities", {"q": "a" * 101}, "q"),
    ("streets", {"nis": "2100", "q": "a"}, "nis"),
    ("streets", {"q": "a"}, "municipality"),
    ("numbers", {"nis": "21004"}, "street"),
    ("boxes", {"nis": "21004", "street": "x"}, "number"),
])
def test_bad_parameters_are_422_naming_the_field(client: TestClient, path: str,
                                                 params: dict, field: str) -> None:
    r = client.get(f"/register/addresses/{path}", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field


# --- the profile form ---------------------------------------------------------------


def test_an_address_in_the_register_takes_its_point(any_client: TestClient,
                                                    any_engine: Engine) -> None:
    c = any_client
    html = _profile_page(c)
    assert 'id="addr-0-box"' in html and 'id="portal-config"' in html
    r = c.post("/register/profile", data={**FORM, "csrf_token": _hidden(html, "csrf_token")},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    (geo0, best0, lat0, lon0, label0), (geo1, best1, *_rest) = _details(any_engine)
    assert (geo0, best0) == ("register", "BA/1002057/1")
    assert (round(lat0, 5), round(lon0, 5)) == (50.88881, 4.42524)
    assert label0 == "Chaussée de Haecht 1840 bte b007, 1130 Bruxelles"
    assert (geo1, best1) == ("municipality", None)  # Beersel: not in the register
    me = c.get("/me").text
    assert "Chaussée de Haecht 1840 bte b007, 1130 Bruxelles" in me
    assert "official address register" in me
    data = json.loads(c.get("/me/export.json").text)
    assert data["addresses"][0]["geocoded"] == "register"
    edit = c.get("/me/edit").text
    assert 'value="Chaussée de Haecht"' in edit and 'value="b007"' in edit
    assert 'value="1130 Bruxelles"' in edit
    r = c.post("/me/edit", data={**{k: v for k, v in FORM.items() if not k.startswith("addr-0")},
                                  "addr-0-municipality": "1130 Bruxelles",
                                  "addr-0-street": "Chaussée de Haecht", "addr-0-number": "1840",
                                  "addr-0-box": "b007", "csrf_token": _hidden(edit, "csrf_token")},
               follow_redirects=False)
    assert r.status_code == 303 and _details(any_engine)[0][:2] == ("register", "BA/1002057/1")


def test_a_missing_number_is_refused_with_the_nearest_and_can_be_pinned(
        client: TestClient, engine: Engine) -> None:
    c = client
    html = _profile_page(c)
    form = {**FORM, "addr-0-number": "1841", "addr-0-box": "",
            "csrf_token": _hidden(html, "csrf_token")}
    r = c.post("/register/profile", data=form)
    assert r.status_code == 422
    assert 'id="addr-0-number-error"' in r.text
    assert "no house number 1841 in this street" in r.text and "1840" in r.text
    assert 'id="addr-0-pin"' in r.text and 'id="addr-0-lat"' in r.text
    assert 'id="addr-1-pin"' not in r.text
    bad = c.post("/register/profile", data={**form, "addr-0-lat": "48.85",
                                            "addr-0-lon": "2.35"})
    assert bad.status_code == 422 and 'id="addr-0-lat-error"' in bad.text
    r = c.post("/register/profile", data={**form, "addr-0-lat": "50,889",
                                          "addr-0-lon": "4.4253"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    geocoded, best_id, lat, lon, _ = _details(engine)[0]
    assert (geocoded, best_id, lat, lon) == ("pin", None, 50.889, 4.4253)
    me = c.get("/me").text
    assert "placed by you on the map" in me
    edit = c.get("/me/edit").text
    assert 'id="addr-0-pin"' in edit and 'value="50.889"' in edit


def test_a_missing_street_suggests_close_names(client: TestClient) -> None:
    html = _profile_page(client)
    r = client.post("/register/profile", data={
        **FORM, "addr-0-street": "Chaussée de Haect", "csrf_token": _hidden(html, "csrf_token")})
    assert r.status_code == 422 and 'id="addr-0-street-error"' in r.text
    assert "did you mean" in r.text and "Chaussée de Haecht" in r.text


def test_the_register_error_is_translated(client: TestClient) -> None:
    html = _profile_page(client)
    r = client.post("/register/profile?lang=nl", data={
        **FORM, "addr-0-number": "1841", "csrf_token": _hidden(html, "csrf_token")})
    assert r.status_code == 422
    assert "no house number" not in r.text and "1840" in r.text


def test_targeting_uses_the_register_point(any_client: TestClient, any_engine: Engine) -> None:
    """A 150 m circle around the register's point reaches the citizen; the same circle
    around the municipality's point does not (the address is no longer at the centre)."""
    from shapely.geometry import Point

    from tocsin.core.db import read_transaction
    from tocsin.geo.places import find_municipality
    from tocsin.geo.spatial import subscribers_in_area

    c = any_client
    html = _profile_page(c)
    c.post("/register/profile", data={**FORM, "csrf_token": _hidden(html, "csrf_token")})
    _, _, lat, lon, _ = _details(any_engine)[0]
    _, _, centre_lat, centre_lon = find_municipality(any_engine, "Bruxelles")
    near = Point(lon, lat).buffer(0.002)
    centre = Point(centre_lon, centre_lat).buffer(0.002)
    with read_transaction(any_engine) as s:
        assert len(subscribers_in_area(s, near)) == 1
        assert subscribers_in_area(s, centre) == []


def test_a_register_municipality_is_not_flagged_when_another_field_is_wrong(
        client: TestClient) -> None:
    """Issue 10 trial: "1130 Bruxelles" (the form pre-fills register addresses so) was
    reported as an unknown municipality whenever another field had an error."""
    html = _profile_page(client)
    r = client.post("/register/profile", data={
        **FORM, "addr-0-municipality": "1130 Bruxelles", "addr-1-municipality": "1502 Halle",
        "accessibility": "deaf", "channels": ["sms", "voice"],
        "csrf_token": _hidden(html, "csrf_token")})
    assert r.status_code == 422
    assert 'id="channels-error"' in r.text
    assert 'id="addr-0-municipality-error"' not in r.text
    assert 'id="addr-1-municipality-error"' not in r.text
    unknown = client.post("/register/profile", data={
        **FORM, "addr-0-municipality": "Atlantis", "accessibility": "deaf",
        "channels": ["sms", "voice"], "csrf_token": _hidden(html, "csrf_token")})
    assert 'id="addr-0-municipality-error"' in unknown.text


def test_a_pin_outside_the_typed_municipality_is_refused(client: TestClient,
                                                         engine: Engine) -> None:
    """Issue 10 trial: "Chaussée de Haecht 1841, Bruxelles" pinned in Antwerp (40 km away)
    was saved; the citizen would have had Antwerp's alerts."""
    html = _profile_page(client)
    form = {**FORM, "addr-0-number": "1841", "addr-0-box": "", "addr-0-lat": "51.2",
            "addr-0-lon": "4.4", "csrf_token": _hidden(html, "csrf_token")}
    r = client.post("/register/profile", data=form)
    assert r.status_code == 422 and 'id="addr-0-lat-error"' in r.text
    assert "this point is not in “bruxelles”" in r.text
    nl = client.post("/register/profile?lang=nl", data=form)
    assert nl.status_code == 422 and "this point is not in" not in nl.text
    assert _details(engine) == []


def test_a_pin_may_be_just_across_the_border() -> None:
    """A pin up to :data:`PIN_TOLERANCE_M` outside the municipality's boundary is taken
    (an address on the border street); farther, it is not."""
    from pyproj import Geod
    from shapely.geometry import Point

    from tocsin.geo.addresses import PIN_TOLERANCE_M, near_territory
    from tocsin.geo.reference import reference_authorities

    territory = next(a.territory for a in reference_authorities()[0] if a.id == "21004")
    lon, lat = territory.exterior.coords[0] if territory.geom_type == "Polygon" else \
        territory.geoms[0].exterior.coords[0]
    geod = Geod(ellps="WGS84")
    outside = []
    for azimuth in range(0, 360, 30):
        for metres in (PIN_TOLERANCE_M / 2, PIN_TOLERANCE_M * 5):
            x, y, _ = geod.fwd(lon, lat, azimuth, metres)
            if not territory.contains(Point(x, y)):
                outside.append((metres, near_territory(territory, y, x)))
    assert (PIN_TOLERANCE_M / 2, True) in outside
    assert (PIN_TOLERANCE_M * 5, False) in outside
    assert all(ok for metres, ok in outside if metres < PIN_TOLERANCE_M)
    assert not near_territory(territory, 51.2, 4.4)
