"""A reproducible, realistic population of demo subscribers for the demo and the benchmarks.

Municipalities are drawn in proportion to their population (Statbel, 1 Jan
2020), then each address is a uniform random point inside the municipality's
territory, so that any area over an inhabited place reaches someone. Where the
packaged BeST sample has addresses (parts of Brussels, Halle and Malmedy), a
point that falls in the part the sample covers moves to the nearest real
official address. Languages follow the region; about 30 % opt in to
general-interest information. See ``data/PROVENANCE.md``.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.engine import Engine

from tocsin.core.db import transaction, utcnow
from tocsin.subscribers.importer import write_subscribers
from tocsin.subscribers.models import Subscriber
from tocsin.subscribers.rules import (
    CSV_COLUMNS,
    OPTIONAL_CSV_COLUMNS,
    AddressRecord,
    SubscriberRecord,
    in_belgium,
)

DEMO_PREFIX = "DEMO-"
DEFAULT_SEED = 1789

# Statbel REFNIS region codes.
FLANDERS, WALLONIA, BRUSSELS = "02000", "03000", "04000"
# The nine municipalities of the German-speaking Community (Statbel REFNIS 2019).
GERMAN_SPEAKING_NIS = frozenset(
    {"63001", "63012", "63013", "63023", "63040", "63048", "63061", "63067", "63087"}
)
BRUSSELS_FR_SHARE = 0.70  # fr/nl 70/30 in Brussels-Capital, per the demo brief

MOBILE_SHARE = 0.85
EMAIL_SHARE = 0.70
SECOND_ADDRESS_SHARE = 0.20
SECOND_ADDRESS_SAME_MUNICIPALITY = 0.5  # otherwise in a neighbouring municipality
FAMILY_PHONE_SHARE = 0.02  # shares the previous subscriber's home and mobile
# Share opted in to general-interest information (SPEC F12). An assumption for the
# demo, near the uptake of opt-in municipal alert services; the demo needs some.
INFO_OPT_IN_SHARE = 0.30
#: Voice (SPEC F22): subscribers who also gave a landline, and whose mobile takes calls.
#: Drawn from a stream of their own so the other draws stay those of earlier versions.
LANDLINE_SHARE = 0.15
MOBILE_VOICE_SHARE = 0.10
EMAIL_DOMAINS = ("example.org", "example.net", "example.com")  # RFC 2606 reserved

_FIRST_NAMES = {
    "nl": ("jan", "lotte", "wout", "emma", "lucas", "marie", "noah", "elise", "tom", "fien"),
    "fr": ("louis", "camille", "hugo", "chloe", "arthur", "lea", "jules", "manon", "adam", "ines"),
    "de": ("lukas", "anna", "jonas", "lena", "felix", "mia", "paul", "sophie", "leon", "hanna"),
}
_LAST_NAMES = {
    "nl": ("peeters", "janssens", "maes", "jacobs", "mertens", "willems", "claes", "wouters"),
    "fr": ("dubois", "lambert", "dupont", "martin", "simon", "laurent", "leroy", "renard"),
    "de": ("schmitz", "kohnen", "mreyen", "heinen", "cremer", "lentz", "margraff", "jost"),
}

_GEOJSON = "belgium-municipalities.geojson"
_BEST_SAMPLE = "best-address-sample.csv"


@dataclass(frozen=True)
class Municipality:
    """A municipality: NIS code, region NIS code, names, population and WGS84 polygon."""

    nis: str
    reg_nis: str
    name_fr: str
    name_nl: str
    population: int
    geometry: Any  # shapely Polygon | MultiPolygon


@dataclass
class DemoReport:
    """What :func:`generate_demo_population` wrote.

    ``best_addresses``: addresses placed on real BeST addresses;
    ``random_addresses``: random points inside a municipality;
    ``skipped_zero_coordinates``: BeST rows skipped for their (0,0) coordinates;
    ``info_opt_ins``: subscribers opted in to general-interest information;
    ``shared_mobiles``: subscribers whose mobile is also another's (family phone),
    counting every holder of a shared number.
    """

    subscribers: int = 0
    addresses: int = 0
    best_addresses: int = 0
    random_addresses: int = 0
    skipped_zero_coordinates: int = 0
    mobiles: int = 0
    emails: int = 0
    shared_mobiles: int = 0
    info_opt_ins: int = 0
    landlines: int = 0
    voice_mobiles: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return dict(self.__dict__)


def _geojson_path() -> Path:
    packaged = resources.files("tocsin.geo").joinpath("data", _GEOJSON)
    if packaged.is_file():
        return Path(str(packaged))
    raise FileNotFoundError(f"tocsin/geo/data/{_GEOJSON} is missing from the package")


@lru_cache(maxsize=1)
def load_municipalities() -> tuple[Municipality, ...]:
    """The 581 Belgian municipalities (2019 borders) from the packaged GeoJSON.

    Self-intersecting rings (Stabroek, Asse, Koksijde) are repaired with
    shapely.make_valid. Raises FileNotFoundError if the file is not packaged.
    """
    with _geojson_path().open(encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    out = []
    for feature in features:
        props = feature["properties"]
        geometry = shapely.make_valid(shape(feature["geometry"]))
        out.append(Municipality(
            nis=str(props["nis"]), reg_nis=str(props["reg_nis"]),
            name_fr=props.get("name_fr") or props.get("name_nl") or "",
            name_nl=props.get("name_nl") or props.get("name_fr") or "",
            population=int(props.get("population") or 0), geometry=geometry,
        ))
    return tuple(out)


@dataclass(frozen=True)
class BestAddress:
    """One official BeST address of the packaged sample (WGS84 degrees, names by language)."""

    nis: str
    lat: float
    lon: float
    labels: Mapping[str, str]  # language -> "street number[ box], postcode municipality"


@lru_cache(maxsize=1)
def load_best_addresses() -> tuple[dict[str, list[BestAddress]], int]:
    """Current BeST sample addresses by NIS code, and the number of (0,0) rows skipped.

    Rows whose Lambert 72 or WGS84 coordinates are 0,0 (a known defect of 47
    Malmedy rows; their WGS84 is Lambert (0,0) converted, in France) are skipped
    and counted. Addresses outside their municipality's (simplified) territory
    are left out without being counted: a demo address must be inside the
    territory that would warn it.
    """
    by_nis: dict[str, list[BestAddress]] = {}
    skipped = 0
    text = resources.files("tocsin.subscribers").joinpath("data", _BEST_SAMPLE).read_text(
        encoding="utf-8"
    )
    for row in csv.DictReader(text.splitlines()):
        if row["status"] != "current":
            continue
        x, y = float(row["x_lambert72"] or 0), float(row["y_lambert72"] or 0)
        lat, lon = float(row["lat_wgs84"] or 0), float(row["lon_wgs84"] or 0)
        if (x == 0 and y == 0) or (lat == 0 and lon == 0) or not in_belgium(lat, lon):
            skipped += 1
            continue
        labels = {}
        for lang in ("fr", "nl", "de"):
            street = row[f"street_{lang}"] or row["street_fr"] or row["street_nl"]
            town = row[f"municipality_{lang}"] or row["municipality_fr"] or row["municipality_nl"]
            number = row["housenumber"] + (f" bte {row['boxnumber']}" if row["boxnumber"] else "")
            labels[lang] = f"{street} {number}, {row['postcode']} {town}"
        labels["en"] = labels["fr"]
        by_nis.setdefault(row["nis"], []).append(BestAddress(row["nis"], lat, lon, labels))
    territory = {m.nis: m.geometry for m in load_municipalities()}
    for nis, rows in list(by_nis.items()):
        inside = shapely.contains_xy(territory[nis], [a.lon for a in rows],
                                     [a.lat for a in rows])
        by_nis[nis] = [a for a, keep in zip(rows, inside.tolist(), strict=True) if keep]
    return by_nis, skipped


@lru_cache(maxsize=1)
def _neighbours() -> tuple[tuple[int, ...], ...]:
    municipalities = load_municipalities()
    geoms = np.array([m.geometry for m in municipalities])
    tree = shapely.STRtree(geoms)
    pairs = tree.query(geoms, predicate="intersects")
    result: list[list[int]] = [[] for _ in municipalities]
    for a, b in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        if a != b:
            result[a].append(b)
    return tuple(tuple(sorted(r)) for r in result)


def random_points_in(geometry: Any, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` uniform random points inside ``geometry``, as an array of (lon, lat) rows.

    Rejection sampling in the bounding box, vectorised with shapely.contains_xy.
    """
    return random_points_in_each([geometry], [count], rng)[0]


def random_points_in_each(geometries: Sequence[Any], counts: Sequence[int],
                          rng: np.random.Generator) -> list[np.ndarray]:
    """``counts[i]`` uniform random points inside ``geometries[i]``, for every i at once.

    Returns one array of (lon, lat) rows (WGS84 degrees) per geometry.
    Rejection sampling in each bounding box, all geometries tested in one
    vectorised ``shapely.contains_xy`` call per round; each round draws
    enough candidates for the geometry's share of its box, so one or two
    rounds suffice. Uniform in degrees, which over a municipality (< 20 km)
    differs from uniform in area by well under 1 %. Same ``rng`` state, same
    points. Raises ValueError if a geometry with a positive count is empty.
    """
    geoms = np.array(geometries, dtype=object)
    need = np.asarray(counts, dtype=np.int64)
    if ((need > 0) & shapely.is_empty(geoms)).any():
        raise ValueError("cannot place points in an empty geometry")
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    box_area = (bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])
    fill = np.divide(shapely.area(geoms), box_area, out=np.ones(len(geoms)),
                     where=box_area > 0)
    found: list[list[np.ndarray]] = [[] for _ in geometries]
    have = np.zeros(len(geoms), dtype=np.int64)
    while (pending := np.flatnonzero(have < need)).size:
        missing = need[pending] - have[pending]
        batch = np.ceil(missing / np.maximum(fill[pending], 0.01) * 1.25).astype(np.int64) + 8
        owner = np.repeat(pending, batch)
        xs = rng.uniform(bounds[owner, 0], bounds[owner, 2])
        ys = rng.uniform(bounds[owner, 1], bounds[owner, 3])
        inside = shapely.contains_xy(geoms[owner], xs, ys)
        owner, xs, ys = owner[inside], xs[inside], ys[inside]
        order = np.argsort(owner, kind="stable")
        owner, xs, ys = owner[order], xs[order], ys[order]
        starts = np.searchsorted(owner, pending)
        ends = np.searchsorted(owner, pending, side="right")
        for index, start, end in zip(pending.tolist(), starts.tolist(), ends.tolist(),
                                     strict=True):
            take = min(end - start, int(need[index] - have[index]))
            found[index].append(np.column_stack((xs[start:start + take],
                                                 ys[start:start + take])))
            have[index] += take
    return [np.concatenate(parts) if parts else np.empty((0, 2)) for parts in found]


def _snap_to_best(points: np.ndarray, best: Sequence[BestAddress]) -> np.ndarray:
    """For each (lon, lat) row, the index of the nearest BeST address if the point lies
    in the convex hull of the sample (the part of the municipality it covers), else -1."""
    coords = np.array([(a.lon, a.lat) for a in best])
    hull = shapely.convex_hull(shapely.multipoints(coords))
    picked = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or hull.area == 0:
        return picked
    inside = np.flatnonzero(shapely.contains_xy(hull, points[:, 0], points[:, 1]))
    if inside.size:
        # Equirectangular distance: fine at street scale; lon shrinks by cos(latitude).
        scale = np.cos(np.radians(coords[:, 1].mean()))
        dx = (points[inside, 0, None] - coords[None, :, 0]) * scale
        dy = points[inside, 1, None] - coords[None, :, 1]
        picked[inside] = np.argmin(dx * dx + dy * dy, axis=1)
    return picked


def _language(municipality: Municipality, draw: float) -> str:
    if municipality.nis in GERMAN_SPEAKING_NIS:
        return "de"
    if municipality.reg_nis == FLANDERS:
        return "nl"
    if municipality.reg_nis == BRUSSELS:
        return "fr" if draw < BRUSSELS_FR_SHARE else "nl"
    return "fr"


def _unique_mobiles(count: int, rng: np.random.Generator) -> list[str]:
    # +32 4[5-9] xxxxxxx: the Belgian mobile ranges (BIPT numbering plan).
    numbers: np.ndarray = np.empty(0, dtype=np.int64)
    while len(numbers) < count:
        draw = rng.integers(450_000_000, 500_000_000, size=count - len(numbers) + 16)
        merged = np.concatenate((numbers, draw))
        _, first = np.unique(merged, return_index=True)
        numbers = merged[np.sort(first)]
    return [f"+32{n}" for n in numbers[:count].tolist()]


def build_demo_population(
    n: int, seed: int = DEFAULT_SEED
) -> tuple[list[SubscriberRecord], DemoReport]:
    """The records of :func:`generate_demo_population`, without writing them (pure given the data).

    Same ``n`` and ``seed`` give the same records. Raises ValueError if n < 0.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    municipalities = load_municipalities()
    neighbours = _neighbours()
    best_by_nis, skipped = load_best_addresses()
    report = DemoReport(subscribers=n, skipped_zero_coordinates=skipped)

    population = np.array([m.population for m in municipalities], dtype=float)
    home = rng.choice(len(municipalities), size=n, p=population / population.sum())
    family = rng.random(n) < FAMILY_PHONE_SHARE
    family[0:1] = False
    for i in np.flatnonzero(family).tolist():
        home[i] = home[i - 1]
    language_draw = rng.random(n)
    has_mobile = rng.random(n) < MOBILE_SHARE
    has_email = rng.random(n) < EMAIL_SHARE
    has_work = rng.random(n) < SECOND_ADDRESS_SHARE
    work_same = rng.random(n) < SECOND_ADDRESS_SAME_MUNICIPALITY
    neighbour_draw = rng.random(n)
    work = home.copy()
    for i in np.flatnonzero(has_work & ~work_same).tolist():
        near = neighbours[home[i]]
        if near:
            work[i] = near[int(neighbour_draw[i] * len(near))]

    # Points: uniform in each municipality, all municipalities in one vectorised pass;
    # those in the part a BeST sample covers move to the nearest real address.
    wanted = Counter(home.tolist()) + Counter(work[has_work].tolist())
    indices = sorted(wanted)
    drawn = random_points_in_each([municipalities[i].geometry for i in indices],
                                  [wanted[i] for i in indices], rng)
    random_points = dict(zip(indices, drawn, strict=True))
    best_picks = {i: _snap_to_best(random_points[i], best_by_nis[municipalities[i].nis])
                  for i in indices if best_by_nis.get(municipalities[i].nis)}
    cursor: Counter[int] = Counter()
    on_best: set[int] = set()  # id() of the AddressRecords placed on a BeST address

    def address(index: int, language: str) -> AddressRecord:
        k = cursor[index]
        cursor[index] += 1
        municipality = municipalities[index]
        if index in best_picks and best_picks[index][k] >= 0:
            picked = best_by_nis[municipality.nis][int(best_picks[index][k])]
            record = AddressRecord(picked.lat, picked.lon, picked.labels[language],
                                   municipality.nis)
            on_best.add(id(record))
            return record
        lon, lat = random_points[index][k]
        name = municipality.name_nl if language == "nl" else municipality.name_fr
        return AddressRecord(round(float(lat), 7), round(float(lon), 7), name, municipality.nis)

    mobiles = iter(_unique_mobiles(int(has_mobile.sum()), rng))
    first_pick = rng.integers(0, 10, size=n)
    last_pick = rng.integers(0, 8, size=n)
    domain_pick = rng.integers(0, len(EMAIL_DOMAINS), size=n)
    info_opt_in = rng.random(n) < INFO_OPT_IN_SHARE
    voice_rng = np.random.default_rng([seed, 22])
    has_landline = voice_rng.random(n) < LANDLINE_SHARE
    mobile_voice = voice_rng.random(n) < MOBILE_VOICE_SHARE
    # +32 2 xxx xx xx: Brussels-zone fixed numbers (BIPT numbering plan), unique.
    landline_numbers = iter(f"+322{n_}" for n_ in voice_rng.permutation(
        np.arange(2_000_000, 2_000_000 + max(2 * n, 1), dtype=np.int64))[:n].tolist())
    records: list[SubscriberRecord] = []
    languages: Counter[str] = Counter()
    for i in range(n):
        municipality = municipalities[home[i]]
        previous = records[-1] if family[i] else None
        language = previous.language if previous else _language(municipality, language_draw[i])
        mobile = next(mobiles) if has_mobile[i] else None
        if previous and previous.mobile:
            mobile = previous.mobile  # the family phone
        email = None
        if has_email[i]:
            names = "de" if language == "de" else ("nl" if language == "nl" else "fr")
            first = _FIRST_NAMES[names][first_pick[i]]
            last = _LAST_NAMES[names][last_pick[i]]
            email = f"{first}.{last}.{i + 1}@{EMAIL_DOMAINS[domain_pick[i]]}"
        if mobile is None and email is None:
            email = f"subscriber.{i + 1}@{EMAIL_DOMAINS[domain_pick[i]]}"
        if previous:
            addresses = [AddressRecord(**previous.addresses[0].__dict__)]
            if id(previous.addresses[0]) in on_best:
                on_best.add(id(addresses[0]))
            cursor[home[i]] += 1  # keep the other draws aligned
        else:
            addresses = [address(int(home[i]), language)]
        if has_work[i]:
            addresses.append(address(int(work[i]), language))
        landline = next(landline_numbers)
        records.append(SubscriberRecord(
            external_id=f"{DEMO_PREFIX}{i + 1:06d}", language=language,
            mobile=mobile, email=email, addresses=addresses, line=0,
            info_opt_in=bool(info_opt_in[i]),
            landline=landline if has_landline[i] else None,
            voice=bool(mobile_voice[i]) and mobile is not None,
        ))
        report.landlines += bool(has_landline[i])
        report.voice_mobiles += bool(mobile_voice[i]) and mobile is not None
        languages[language] += 1
        report.mobiles += mobile is not None
        report.emails += email is not None
        report.info_opt_ins += bool(info_opt_in[i])
        report.addresses += len(addresses)
    report.best_addresses = len(on_best)
    report.random_addresses = report.addresses - report.best_addresses
    mobile_users = Counter(r.mobile for r in records if r.mobile)
    report.shared_mobiles = sum(c for c in mobile_users.values() if c > 1)
    report.languages = dict(sorted(languages.items()))
    return records, report


def generate_demo_population(engine: Engine, n: int, seed: int = DEFAULT_SEED) -> DemoReport:
    """Create ``n`` reproducible demo subscribers ``DEMO-000001``… in one transaction.

    Addresses: municipalities drawn by population, then a uniform random point
    in the municipality's territory, moved to the nearest real BeST address
    where the point falls in the part the packaged sample covers;
    language by region (nl Flanders, fr Wallonia, fr/nl 70/30 Brussels, de in
    the nine German-speaking municipalities); ~85 % have a unique Belgian
    mobile (+32 4[5-9]…), ~70 % an e-mail on RFC 2606 reserved domains, ~20 %
    a second address in the same or a neighbouring municipality, ~2 % share
    the previous subscriber's home and mobile (a family phone), ~30 % opted
    in to general-interest information, ~15 % a landline (+32 2…) and ~10 % take voice
    calls on their mobile (SPEC F22). All contact points are verified.
    Raises ValueError if demo subscribers already exist.
    """
    start = utcnow()
    records, report = build_demo_population(n, seed)
    with transaction(engine) as session:
        existing = session.scalar(
            sa.select(sa.func.count()).select_from(Subscriber).where(
                Subscriber.external_id.like(f"{DEMO_PREFIX}%")
            )
        )
        if existing:
            raise ValueError(f"{existing} demo subscribers already exist; not adding more")
        write_subscribers(session, records, verified_at=utcnow())
    report.seconds = round((utcnow() - start).total_seconds(), 3)
    return report


def write_subscriber_csv(rows: Iterable[Mapping[str, Any]], path: str | Path,
                         delimiter: str = ",", bom: bool = False) -> Path:
    """Write ``rows`` (dicts keyed by the import columns; missing keys = blank) as an import CSV.

    The header is ``subscriber_id,language,mobile,email,lat,lon,general_interest``;
    a boolean ``general_interest`` is written ``yes`` / ``no``. UTF-8, with a
    BOM when ``bom``. Returns the path. Raises OSError if it cannot write.
    """
    columns = CSV_COLUMNS + OPTIONAL_CSV_COLUMNS
    target = Path(path)

    def cell(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value

    with target.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
    return target
