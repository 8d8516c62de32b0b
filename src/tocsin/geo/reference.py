"""Load the Belgian reference authorities (federal, provinces, municipalities) (SPEC F1).

The boundaries ship inside the package (``tocsin/geo/data``, see its
PROVENANCE.md): 581 municipalities (REFNIS 2019) and the 10 provinces plus the
Brussels-Capital Region, WGS84 lon/lat. Province territories are the union
of their municipalities (the provinces file gives codes and names). The
Brussels-Capital Region has no province; it is loaded as authority ``04000``
(its region NIS code) and acts as the province of its 19 municipalities.
The federal authority ``BE`` covers the union of all municipalities.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.orm import Session

from tocsin.authorities.models import Authority
from tocsin.authorities.reference_rules import (
    BRUSSELS_REGION_NIS,
    FEDERAL_ID,
    FLEMISH_REGION_NIS,
    LIEGE_PROVINCE_NIS,
    official_languages,
)
from tocsin.geo.naming import Place, arrondissement_place

MUNICIPALITIES_FILE = "belgium-municipalities.geojson"
PROVINCES_FILE = "belgium-provinces.geojson"

# German names: BeST municipality list (Fedict), only the German-speaking region
# and the authorities above it, since only those communicate in German.
_NAMES_DE: dict[str, str] = {
    "63001": "Amel",
    "63012": "Büllingen",
    "63013": "Bütgenbach",
    "63023": "Eupen",
    "63040": "Kelmis",
    "63048": "Lontzen",
    "63061": "Raeren",
    "63067": "Sankt Vith",
    "63087": "Burg-Reuland",
    LIEGE_PROVINCE_NIS: "Provinz Lüttich",
    BRUSSELS_REGION_NIS: "Region Brüssel-Hauptstadt",
    FEDERAL_ID: "Belgien",
}


Repair = tuple[str, str, str]  # (authority id, name, explain_validity reason)


@dataclass(frozen=True)
class ReferenceAuthority:
    """One authority as described by the shipped reference data.

    ``territory`` is a valid shapely Polygon or MultiPolygon in WGS84 lon/lat.
    """

    id: str
    kind: str  # federal | province | municipality
    name_fr: str
    name_nl: str
    name_de: str | None
    parent_id: str | None
    languages: list[str]
    population: int | None
    territory: BaseGeometry


@dataclass
class LoadReport:
    """What :func:`load_authorities` did.

    ``repaired`` lists ``(id, name, reason)`` for every territory whose rings
    were invalid and were repaired with ``shapely.make_valid``; ``reason`` is
    shapely's ``explain_validity`` (e.g. ``"Self-intersection[4.356421 51.360938]"``).
    ``seconds`` is the wall-clock duration.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: list[Repair] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


def polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon:
    """The polygonal parts of ``geom`` (lines and points dropped), as one (Multi)Polygon.

    Returns an empty Polygon when ``geom`` has no polygonal part.
    """
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [
        p for p in shapely.get_parts(geom)
        if isinstance(p, Polygon | MultiPolygon) and not p.is_empty
    ]
    if not parts:
        return Polygon()
    if len(parts) == 1:
        return parts[0]
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, Polygon | MultiPolygon) else polygonal(merged)


def repair(geom: BaseGeometry) -> tuple[Polygon | MultiPolygon, str | None]:
    """``(valid polygonal geometry, reason or None)``: ``geom`` repaired if invalid.

    Invalid geometries go through ``shapely.make_valid`` and keep only their
    polygonal parts; ``reason`` is ``explain_validity`` of the input.
    """
    if geom.is_valid:
        return polygonal(geom), None
    reason = explain_validity(geom)
    return polygonal(shapely.make_valid(geom)), reason


def _read_features(filename: str) -> list[dict[str, Any]]:
    text = (resources.files("tocsin.geo") / "data" / filename).read_text(encoding="utf-8")
    features: list[dict[str, Any]] = json.loads(text)["features"]
    return features


@lru_cache(maxsize=1)
def reference_authorities() -> tuple[tuple[ReferenceAuthority, ...], tuple[Repair, ...]]:
    """All reference authorities, parents first, and the repairs made.

    Returns ``(authorities, repaired)``: authorities in the order federal,
    provinces (including ``04000``), municipalities; ``repaired`` as in
    :class:`LoadReport`. Cached: the files are parsed once per process.

    Raises ValueError when the shipped data is inconsistent (a municipality
    names a province that is not in the provinces file).
    """
    repaired: list[Repair] = []
    municipalities: list[ReferenceAuthority] = []
    population_by_parent: dict[str, int] = {}
    for feature in _read_features(MUNICIPALITIES_FILE):
        props = feature["properties"]
        nis = props["nis"]
        territory, reason = repair(shape(feature["geometry"]))
        if reason is not None:
            repaired.append((nis, props["name_fr"], reason))
        # Brussels municipalities have no province: the region plays that part.
        parent = props.get("prov_nis") or BRUSSELS_REGION_NIS
        population = props.get("population")
        population_by_parent[parent] = population_by_parent.get(parent, 0) + (population or 0)
        municipalities.append(
            ReferenceAuthority(
                id=nis,
                kind="municipality",
                name_fr=props["name_fr"],
                name_nl=props["name_nl"],
                name_de=_NAMES_DE.get(nis),
                parent_id=parent,
                languages=official_languages(nis, props["reg_nis"], props.get("prov_nis")),
                population=population,
                territory=territory,
            )
        )

    provinces: list[ReferenceAuthority] = []
    for feature in _read_features(PROVINCES_FILE):
        props = feature["properties"]
        nis = props.get("nis") or (
            BRUSSELS_REGION_NIS if props["reg_nis"] == BRUSSELS_REGION_NIS else None
        )
        if nis is None:
            raise ValueError(f"{PROVINCES_FILE}: a province feature has no 'nis': {props}")
        name_fr = props.get("name_fr") or props["reg_fr"]
        # The provinces file was simplified separately: its borders stray up to
        # ~40 m (2 km on the coast) from the municipalities'. The union of the
        # municipalities keeps every child inside its parent, so clipping an
        # area to a province never drops a strip of one of its municipalities.
        children = [m.territory for m in municipalities if m.parent_id == nis]
        if not children:
            raise ValueError(f"{PROVINCES_FILE}: province {nis} has no municipality")
        territory = polygonal(shapely.union_all(children))
        provinces.append(
            ReferenceAuthority(
                id=nis,
                kind="province",
                name_fr=name_fr,
                name_nl=props.get("name_nl") or props["reg_nl"],
                name_de=_NAMES_DE.get(nis),
                parent_id=FEDERAL_ID,
                languages=official_languages(nis, props["reg_nis"]),
                population=population_by_parent.get(nis),
                territory=territory,
            )
        )
    known = {p.id for p in provinces}
    unknown = sorted({str(m.parent_id) for m in municipalities if m.parent_id not in known})
    if unknown:
        raise ValueError(f"{MUNICIPALITIES_FILE}: prov_nis {unknown} not in {PROVINCES_FILE}")

    federal = ReferenceAuthority(
        id=FEDERAL_ID,
        kind="federal",
        name_fr="Belgique",
        name_nl="België",
        name_de=_NAMES_DE[FEDERAL_ID],
        parent_id=None,
        languages=official_languages(FEDERAL_ID),
        population=sum(m.population or 0 for m in municipalities),
        territory=polygonal(shapely.union_all([m.territory for m in municipalities])),
    )
    return (federal, *provinces, *municipalities), tuple(repaired)


@lru_cache(maxsize=1)
def arrondissements() -> dict[str, Place | None]:
    """Municipality NIS code -> its administrative arrondissement, from the shipped data.

    ``None`` for the 19 Brussels municipalities: their arrondissement is the
    Brussels-Capital Region itself (authority ``04000``). Names as in the data
    (``arr_fr``, ``arr_nl``, REFNIS 2019); see :func:`tocsin.geo.naming.arrondissement_place`.
    Cached: the file is read once per process.
    """
    rows = [f["properties"] for f in _read_features(MUNICIPALITIES_FILE)]
    towns: dict[str, set[str]] = {}
    for props in rows:
        towns.setdefault(props["arr_nis"], set()).update((props["name_fr"], props["name_nl"]))
    places: dict[str, Place] = {}
    out: dict[str, Place | None] = {}
    for props in rows:
        arr = props["arr_nis"]
        if not props.get("prov_nis"):
            out[props["nis"]] = None
            continue
        if arr not in places:
            short_fr = props["arr_fr"].removeprefix("Arrondissement ").removeprefix(
                "de ").removeprefix("d'")
            short_nl = props["arr_nl"].removeprefix("Arrondissement ")
            places[arr] = arrondissement_place(
                arr, props["arr_fr"], props["arr_nl"], dutch=props["reg_nis"] == FLEMISH_REGION_NIS,
                named_after_town=bool({short_fr, short_nl} & towns[arr]))
        out[props["nis"]] = places[arr]
    return out


def _row_values(ref: ReferenceAuthority) -> dict[str, Any]:
    min_lon, min_lat, max_lon, max_lat = ref.territory.bounds
    return {
        "kind": ref.kind,
        "name_fr": ref.name_fr,
        "name_nl": ref.name_nl,
        "name_de": ref.name_de,
        "parent_id": ref.parent_id,
        "languages": ",".join(ref.languages),
        "population": ref.population,
        "territory": shapely.to_geojson(ref.territory),
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
    }


def load_authorities(session: Session) -> LoadReport:
    """Create or refresh the 593 reference authorities in ``session`` (idempotent).

    Federal ``BE``, the 10 provinces, the Brussels-Capital Region ``04000`` and
    the 581 municipalities. New rows get ``agreement_type=1`` (all are legally
    bound to warn, SPEC F2); existing rows get their reference fields (names,
    parent, languages, population, territory, bbox) refreshed and keep their
    agreement type. Flushes but does not commit: run it inside
    ``tocsin.core.db.transaction``. Takes about a second.

    Returns a :class:`LoadReport`; three municipalities (Stabroek, Asse,
    Koksijde) are reported as repaired with the shipped data.
    """
    started = time.perf_counter()
    refs, repaired = reference_authorities()
    report = LoadReport(repaired=list(repaired))
    existing = {a.id: a for a in session.scalars(sa.select(Authority))}
    # Parents before children: SQLite checks foreign keys on each insert.
    for kind in ("federal", "province", "municipality"):
        for ref in refs:
            if ref.kind != kind:
                continue
            values = _row_values(ref)
            row = existing.get(ref.id)
            if row is None:
                session.add(Authority(id=ref.id, agreement_type=1, **values))
                report.created += 1
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                report.updated += 1
            else:
                report.unchanged += 1
        session.flush()
    report.seconds = time.perf_counter() - started
    return report
