"""The composer without the map (issue 9.2): an area by municipality name, a circle from
coordinates or a municipality and a radius, pasted GeoJSON; and the composer of a
type-2 authority (groups only) saying so instead of offering a map."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape
from sqlalchemy.engine import Engine

from tocsin.authorities.services import create_user
from tocsin.geo import places
from tocsin.geo.areas import AreaError
from tocsin.web.app import create_app
from weblogin import session_csrf

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    create_user(engine, "op.halle", PASSWORD, "23027", role="operator")
    create_user(engine, "federal", PASSWORD, "BE", role="federal_operator")
    create_user(engine, "op.lennik", PASSWORD, "23104", role="operator")
    with TestClient(create_app(engine, start_worker=False)) as c:
        yield c


# ----------------------------------------------------------------------------- service


def test_circle_from_coordinates(any_engine: Engine) -> None:
    c = places.circle_area(any_engine, "50.73, 4.24", "2")
    disc = shape(c.geometry)
    assert c.geometry["type"] == "Polygon" and (c.lat, c.lon, c.place) == (50.73, 4.24, None)
    assert disc.contains(Point(4.24, 50.73)) and not disc.contains(Point(4.24, 50.76))
    assert places.circle_area(any_engine, "50,73; 4,24", "2,5").radius_km == 2.5


def test_circle_around_a_municipality_in_any_of_its_languages(any_engine: Engine) -> None:
    halle = places.circle_area(any_engine, "halle", 1)
    assert (halle.nis, halle.place) == ("23027", "Halle")
    assert places.circle_area(any_engine, "Hal", 1).nis == "23027"  # its French name
    assert places.circle_area(any_engine, "sint pieters leeuw", 1).nis == "23077"


@pytest.mark.parametrize(("center", "radius", "field", "words"), [
    ("50.73, 4.24", "x", "circle.radius_km", "kilometres"),
    ("50.73, 4.24", "0", "circle.radius_km", "between 0.1 and 300"),
    ("50.73, 4.24", "nan", "circle.radius_km", "between"),
    ("4.24, 50.73", "1", "circle.center", "latitude first: 50.73, 4.24"),
    ("48.85, 2.35", "1", "circle.center", "outside Belgium"),
    ("95, 4", "1", "circle.center", "latitude"),
    ("Rue de la Loi 16, Bruxelles", "1", "circle.center", "street addresses are not searched"),
    ("", "1", "circle.center", "coordinates"),
])
def test_circle_errors_name_the_field(engine: Engine, center: str, radius: str, field: str,
                                      words: str) -> None:
    with pytest.raises(AreaError) as err:
        places.circle_area(engine, center, radius)
    assert err.value.field == field and words in err.value.reason


def test_pasted_geojson_is_checked() -> None:
    square = ('{"type": "Polygon", "coordinates": [[[4.2, 50.7], [4.3, 50.7], [4.3, 50.8],'
              ' [4.2, 50.8], [4.2, 50.7]]]}')
    assert places.checked_geojson(square)["type"] == "Polygon"
    with pytest.raises(AreaError) as err:
        places.checked_geojson('{"type": "Point", "coordinates": [4.2, 50.7]}')
    assert err.value.field == "geojson"
    with pytest.raises(AreaError, match="paste"):
        places.checked_geojson("  ")


# ----------------------------------------------------------------------------- web


def test_circle_and_geojson_api_then_estimate_clips(client: TestClient) -> None:
    token = session_csrf(client, "op.halle", PASSWORD, page="/")
    h = {"X-CSRF-Token": token}
    r = client.post("/api/areas/circle", json={"center": "Halle", "radius_km": 8}, headers=h)
    assert r.status_code == 200, r.text
    circle = r.json()
    assert circle["nis"] == "23027" and circle["place"] == "Halle"
    # The composer posts the circle as area_geojson: the estimate cuts it to Halle.
    r = client.post("/api/campaigns/estimate", headers=h, json={
        "texts": {"nl": "Oefening"}, "channels": ["cap"], "kind": "exercise",
        "area_geojson": circle["geometry"]})
    assert r.status_code == 200, r.text
    assert any(w["code"] == "area_cut" for w in r.json()["warnings"])
    r = client.post("/api/areas/circle", json={"center": "4.24, 50.73", "radius_km": 1},
                    headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "circle.center"
    r = client.post("/api/areas/geojson", headers=h, json={"geojson": "{not json"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "geojson"
    r = client.post("/api/areas/geojson", headers=h, json={"geojson": (
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates":'
        ' [[[4.2, 50.7], [4.3, 50.7], [4.3, 50.8], [4.2, 50.8], [4.2, 50.7]]]}}')})
    assert r.status_code == 200 and r.json()["geometry"]["type"] == "Polygon"
    assert client.post("/api/areas/circle", json={"center": "Halle", "radius_km": 1}
                       ).status_code == 403  # no CSRF header


def test_municipality_names_in_every_language(client: TestClient) -> None:
    session_csrf(client, "federal", PASSWORD, page="/")
    fc = client.get("/api/authority/municipalities.geojson").json()
    halle = next(f for f in fc["features"] if f["properties"]["nis"] == "23027")
    assert set(halle["properties"]["names"]) == {"Hal", "Halle"}


def test_composer_of_a_type2_authority_says_what_applies(client: TestClient,
                                                         engine: Engine) -> None:
    from tocsin.authorities.access import command_line_actor
    from tocsin.authorities.governance import set_agreement

    be = command_line_actor(engine, "BE")
    set_agreement(engine, be, "23104", 2, "test")
    session_csrf(client, "op.lennik", PASSWORD, page="/")
    r = client.get("/campaigns/new?lang=nl")
    assert r.status_code == 403
    assert 'id="map"' not in r.text and "rood" not in r.text
    assert "type 2" in r.text
    assert "groepen" in r.text and "Lennik" in r.text
    # The federal operator acting for Lennik (which agreed type 1 when the request came,
    # type 2 since) is told the same, not shown a map.
    set_agreement(engine, be, "23104", 1, "test")
    with TestClient(create_app(engine, start_worker=False)) as fed:
        token = session_csrf(fed, "federal", PASSWORD, page="/admin/governance")
        r = fed.post("/admin/acting", data={"authority_id": "23104", "requested_by": "Mayor",
                                            "channel": "phone", "csrf_token": token},
                     follow_redirects=False)
        assert r.status_code == 303
        set_agreement(engine, be, "23104", 2, "test")
        r = fed.get("/campaigns/new?lang=en")
    assert r.status_code == 403 and 'id="map"' not in r.text
    assert "type-2 agreement" in r.text and "groups" in r.text
