"""Cell model for location-based channels: a SYNTHETIC model, or an imported real one
(SPEC F17, F18, F31; research note ``location-based-channels.md`` §2.5).

The synthetic model is **not operator data**. It is generated deterministically from
the municipalities' population density (``tocsin/geo/data``, Statbel 2020) so that
reach and bleed can be estimated and simulated before any operator supplies its
antennas. Everything it produces says so (``SYNTHETIC_LABEL``), and its cell ids use
MCC 001, the ITU-T E.212 test network, so they can never be mistaken for a Belgian
(MCC 206) cell.

How it is built, per synthetic operator (:data:`SYNTHETIC_OPERATORS`, three, with
market shares), in Belgian Lambert 2008 (EPSG:3812, metres):

1. each municipality is urban (>= 1,500 inhabitants/km², Eurostat urban centre),
   suburban (>= 300/km²) or rural, with the 3GPP TR 38.901 inter-site distances
   (ISD) 500 m, 1,299 m and 1,732 m (:data:`ISD_M`);
2. sites lie on a hexagonal lattice of that ISD, offset per operator, jittered by up
   to 15 % of the ISD, kept inside the municipality (at least one site each);
3. each site's best-server area is its Voronoi cell (clipped to Belgium + 5 km),
   cut into three 120° sectors (azimuths 30°, 150°, 270° plus a per-site rotation);
4. a sector's coverage ("a phone may camp here") is its best-server area grown by a
   quarter of the ISD: coverage is slightly larger than best-server.

Sites and Voronoi cells are generated once per process (a second or two); sector
shapes are computed only for the sites an estimate needs.

An imported model (operator CSV: cell id, lat, lon, azimuth, beamwidth, range,
technology; ``tocsin cells import``) replaces one operator's synthetic cells: best
server = Voronoi cell of its site ∩ the sector's wedge of its range; coverage = that
grown by a fifth of the range.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPoint
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from numpy.typing import NDArray

#: Shown on every screen, estimate and report that uses the synthetic model.
SYNTHETIC_LABEL = "synthetic cell model"
#: The longer disclaimer, carried by exports of the model.
SYNTHETIC_DISCLAIMER = ("SYNTHETIC - generated from population, not operator antenna data; "
                        "cell ids use MCC 001 (ITU-T E.212 test network)")
GENERATOR = "tocsin.geo.cellmodel/1"
MODEL_VERSION = "1"
DEFAULT_SEED = 42
#: ITU-T E.212 test network country code: never a real cell.
TEST_MCC = "001"

#: Inter-site distance in metres by density class (3GPP TR 38.901 §7.2: UMa 500 m,
#: SMa 1,299 m, RMa 1,732 m).
ISD_M = {"urban": 500.0, "suburban": 1299.0, "rural": 1732.0}
#: Density thresholds, inhabitants per km²: urban from 1,500 (Eurostat urban centre),
#: suburban from 300 (an assumption, research note §2.5).
URBAN_DENSITY, SUBURBAN_DENSITY = 1500.0, 300.0
#: Coverage = best-server area grown by this share of the ISD.
COVERAGE_MARGIN_ISD = 0.25
#: Imported cells: coverage = best-server grown by this share of the stated range.
COVERAGE_MARGIN_RANGE = 0.2
#: Sites are moved at random by up to this share of the ISD.
JITTER_ISD = 0.15
#: Best-server areas reach this far beyond Belgium's outline (metres): border cells.
BORDER_M = 5000.0
#: Sector azimuths of a synthetic site before its rotation, degrees from north.
SECTOR_AZIMUTHS = (30.0, 150.0, 270.0)


@dataclass(frozen=True)
class OperatorSpec:
    """A mobile operator in the model: ``key`` (``op1``), display ``name``, ``mcc``,
    ``mnc``, and ``share`` of the phones (0..1)."""

    key: str
    name: str
    mcc: str
    mnc: str
    share: float


#: The three synthetic operators and their market shares (sum 1.0; the Belgian
#: market has three network operators of roughly these sizes).
SYNTHETIC_OPERATORS = (
    OperatorSpec("op1", "Synthetic operator 1", TEST_MCC, "01", 0.42),
    OperatorSpec("op2", "Synthetic operator 2", TEST_MCC, "02", 0.33),
    OperatorSpec("op3", "Synthetic operator 3", TEST_MCC, "03", 0.25),
)


@lru_cache(maxsize=1)
def to_lambert() -> Transformer:
    """WGS84 lon/lat -> EPSG:3812 metres."""
    return Transformer.from_crs("EPSG:4326", "EPSG:3812", always_xy=True)


@lru_cache(maxsize=1)
def to_wgs84() -> Transformer:
    """EPSG:3812 metres -> WGS84 lon/lat."""
    return Transformer.from_crs("EPSG:3812", "EPSG:4326", always_xy=True)


def project(geom: BaseGeometry, transformer: Transformer | None = None) -> BaseGeometry:
    """``geom`` through ``transformer`` (default WGS84 -> EPSG:3812)."""
    t = transformer or to_lambert()

    def _t(x: NDArray[Any], y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        return t.transform(x, y)  # type: ignore[no-any-return]

    return shapely.transform(geom, _t, interleaved=False)


def density_class(population: float, km2: float) -> str:
    """``urban`` | ``suburban`` | ``rural`` for ``population`` on ``km2`` km²."""
    density = population / km2 if km2 > 0 else 0.0
    if density >= URBAN_DENSITY:
        return "urban"
    return "suburban" if density >= SUBURBAN_DENSITY else "rural"


@dataclass
class Municipalities:
    """The population layer, EPSG:3812: NIS codes, shapes, populations, areas (m²)."""

    nis: list[str]
    geoms: NDArray[Any]
    population: NDArray[Any]
    area_m2: NDArray[Any]
    tree: shapely.STRtree
    belgium: BaseGeometry


@lru_cache(maxsize=1)
def municipalities() -> Municipalities:
    """The 581 municipalities of ``tocsin/geo/data`` projected to EPSG:3812, cached."""
    from tocsin.geo.reference import reference_authorities

    authorities, _ = reference_authorities()
    ms = [a for a in authorities if a.kind == "municipality"]
    geoms = np.array([project(m.territory) for m in ms], dtype=object)
    shapely.prepare(geoms)
    belgium = project(next(a.territory for a in authorities if a.kind == "federal"))
    shapely.prepare(belgium)
    return Municipalities(
        nis=[m.id for m in ms], geoms=geoms,
        population=np.array([float(m.population or 0) for m in ms]),
        area_m2=shapely.area(geoms), tree=shapely.STRtree(geoms), belgium=belgium)


def phones_in(region: BaseGeometry, phones_per_capita: float = 1.0) -> float:
    """Phones in ``region`` (EPSG:3812): Σ over municipalities of the share of each
    municipality's surface inside ``region`` × its population × ``phones_per_capita``
    (the UK Emergency Alerts ward method, research note §1.4). Nothing is counted
    outside Belgium (no population layer there)."""
    if region.is_empty:
        return 0.0
    m = municipalities()
    idx = m.tree.query(region, predicate="intersects")
    if len(idx) == 0:
        return 0.0
    prepared = shapely.from_wkb(shapely.to_wkb(region))
    shapely.prepare(prepared)
    inside = shapely.contains(prepared, m.geoms[idx])
    share = np.ones(len(idx))
    partial = idx[~inside]
    if len(partial):
        share[~inside] = shapely.area(shapely.intersection(m.geoms[partial], region)) \
            / m.area_m2[partial]
    return float(np.sum(share * m.population[idx]) * phones_per_capita)


@lru_cache(maxsize=1)
def belgium_margin() -> BaseGeometry:
    """Belgium grown by :data:`BORDER_M` (EPSG:3812, outline simplified to 100 m)."""
    grown = municipalities().belgium.simplify(100).buffer(BORDER_M, quad_segs=4)
    shapely.prepare(grown)
    return grown


def phones_per_region(regions: NDArray[Any], phones_per_capita: float = 1.0
                      ) -> NDArray[Any]:
    """:func:`phones_in` of each of ``regions`` (EPSG:3812), vectorised (one index query
    for all of them)."""
    out = np.zeros(len(regions))
    if len(regions) == 0:
        return out
    m = municipalities()
    r_idx, m_idx = m.tree.query(regions, predicate="intersects")
    if len(r_idx) == 0:
        return out
    pieces = shapely.area(shapely.intersection(regions[r_idx], m.geoms[m_idx]))
    np.add.at(out, r_idx, pieces / m.area_m2[m_idx] * m.population[m_idx])
    return out * phones_per_capita


def _rng(seed: int, *key: str) -> np.random.Generator:
    digest = hashlib.sha256("/".join((str(seed), *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _lattice(geom: BaseGeometry, isd: float, offset: tuple[float, float],
             rng: np.random.Generator) -> NDArray[Any]:
    """Sites (n, 2) of a hexagonal lattice of spacing ``isd`` inside ``geom``."""
    minx, miny, maxx, maxy = geom.bounds
    dy = isd * math.sqrt(3) / 2
    row0 = math.floor((miny - offset[1]) / dy) - 1
    rows = np.arange(row0, math.ceil((maxy - offset[1]) / dy) + 2)
    col0 = math.floor((minx - offset[0]) / isd) - 1
    cols = np.arange(col0, math.ceil((maxx - offset[0]) / isd) + 2)
    cc, rr = np.meshgrid(cols, rows)
    x = offset[0] + cc * isd + (rr % 2) * isd / 2
    y = offset[1] + rr * dy
    xy = np.column_stack([x.ravel(), y.ravel()])
    xy = xy + rng.uniform(-JITTER_ISD * isd, JITTER_ISD * isd, xy.shape)
    keep = shapely.contains_xy(geom, xy[:, 0], xy[:, 1])
    xy = xy[keep]
    if len(xy) == 0:
        p = geom.representative_point()
        xy = np.array([[p.x, p.y]])
    return xy


@dataclass
class OperatorCells:
    """One operator's cells, EPSG:3812.

    Per site ``i``: ``site_xy[i]`` (metres), ``site_area[i]`` (Voronoi best-server area
    of the site), ``site_margin[i]`` (coverage growth, metres). Per sector ``j``:
    ``sector_site[j]``, ``sector_azimuth[j]`` / ``sector_beamwidth[j]`` (degrees),
    ``sector_reach[j]`` (metres; 0 = the whole site area), ``cell_ids[j]``, ``tech[j]``.
    """

    operator: OperatorSpec
    synthetic: bool
    site_xy: NDArray[Any]
    site_area: NDArray[Any]
    site_margin: NDArray[Any]
    sector_site: NDArray[Any]
    sector_azimuth: NDArray[Any]
    sector_beamwidth: NDArray[Any]
    sector_reach: NDArray[Any]
    cell_ids: list[str]
    tech: list[str]
    source: str = SYNTHETIC_LABEL
    tree: shapely.STRtree = field(init=False)
    site_sectors: list[NDArray[Any]] = field(init=False)

    def __post_init__(self) -> None:
        shapely.prepare(self.site_area)
        self.tree = shapely.STRtree(self.site_area)
        order = np.argsort(self.sector_site, kind="stable")
        bounds = np.searchsorted(self.sector_site[order], np.arange(len(self.site_xy) + 1))
        self.site_sectors = [order[bounds[i]:bounds[i + 1]] for i in range(len(self.site_xy))]

    @property
    def cells(self) -> int:
        """Number of cells (sectors)."""
        return len(self.cell_ids)

    def sectors(self, sector_idx: NDArray[Any]) -> NDArray[Any]:
        """Best-server areas of sectors ``sector_idx`` (site area ∩ sector wedge)."""
        if len(sector_idx) == 0:
            return np.array([], dtype=object)
        sites = self.sector_site[sector_idx]
        reach = self.sector_reach[sector_idx]
        areas = self.site_area[sites]
        xy = self.site_xy[sites]
        # A wedge must reach past the site's area: twice its bounding box's far corner.
        b = shapely.bounds(areas)
        far = np.max(np.abs(b - np.hstack([xy, xy])), axis=1) * 1.5
        radius = np.where(reach > 0, reach, 2 * far + 1.0)
        wedges = wedges_of(xy, self.sector_azimuth[sector_idx],
                           self.sector_beamwidth[sector_idx], radius)
        return shapely.intersection(areas, wedges)

    def coverage(self, sector_idx: NDArray[Any], best: NDArray[Any]) -> NDArray[Any]:
        """Coverage of sectors ``sector_idx`` whose best-server areas are ``best``."""
        margins = self.site_margin[self.sector_site[sector_idx]]
        return shapely.buffer(best, margins, quad_segs=2)


def wedges_of(xy: NDArray[Any], azimuth: NDArray[Any], beamwidth: NDArray[Any],
              radius: NDArray[Any]) -> NDArray[Any]:
    """Sectors of ``beamwidth`` degrees around ``azimuth`` (from north, clockwise),
    ``radius`` metres, from sites ``xy`` (n, 2); a full disc from 360°. Vectorised:
    every wedge has the same number of vertices (8 arc steps)."""
    steps = 8
    bw = np.minimum(beamwidth, 359.999)
    # The arc's chords must stay outside ``radius``: push the vertices out.
    r = radius / np.cos(np.radians(bw / steps / 2))
    k = np.arange(steps + 1)
    angles = np.radians(azimuth[:, None] - bw[:, None] / 2 + k[None, :] * bw[:, None] / steps)
    ax = xy[:, 0:1] + r[:, None] * np.sin(angles)
    ay = xy[:, 1:2] + r[:, None] * np.cos(angles)
    coords = np.empty((len(xy), steps + 3, 2))
    coords[:, 0] = xy
    coords[:, 1:steps + 2, 0], coords[:, 1:steps + 2, 1] = ax, ay
    coords[:, -1] = xy
    wedges = shapely.polygons(coords)
    full = beamwidth >= 360
    if full.any():
        wedges[full] = shapely.buffer(shapely.points(xy[full]), radius[full], quad_segs=8)
    return wedges


def _voronoi(sites: NDArray[Any], clip: BaseGeometry) -> NDArray[Any]:
    """Voronoi cells of ``sites`` (n, 2), in site order, clipped to ``clip``."""
    if len(sites) == 1:
        cells = np.array([clip], dtype=object)
    else:
        env = shapely.box(*clip.bounds).buffer(50_000)
        diagram = shapely.voronoi_polygons(MultiPoint(sites), extend_to=env, ordered=True)
        cells = np.array(shapely.get_parts(diagram), dtype=object)
    shapely.prepare(clip)
    within = shapely.contains(clip, cells)
    out = cells.copy()
    border = ~within
    if border.any():
        out[border] = shapely.intersection(cells[border], clip)
    return out


@dataclass
class CellModel:
    """Cells of every operator, and what the model is (``synthetic``, ``info``)."""

    operators: list[OperatorCells]
    info: dict[str, Any]

    @property
    def synthetic(self) -> bool:
        return all(o.synthetic for o in self.operators)

    @property
    def kind(self) -> str:
        """``synthetic`` | ``imported`` | ``mixed``."""
        kinds = {o.synthetic for o in self.operators}
        return "mixed" if len(kinds) > 1 else ("synthetic" if True in kinds else "imported")

    @property
    def label(self) -> str:
        """What to show beside anything that uses the model."""
        if self.kind == "synthetic":
            return SYNTHETIC_LABEL
        if self.kind == "mixed":
            synthetic = ", ".join(o.operator.name for o in self.operators if o.synthetic)
            return f"imported cell model ({SYNTHETIC_LABEL} for {synthetic})"
        return "imported cell model"


def _municipality_sites(seed: int, op_index: int, op: OperatorSpec
                        ) -> tuple[NDArray[Any], NDArray[Any], list[int]]:
    m = municipalities()
    xys, isds, tacs = [], [], []
    for k, (nis, geom, pop, area) in enumerate(zip(m.nis, m.geoms, m.population, m.area_m2,
                                                   strict=True)):
        isd = ISD_M[density_class(float(pop), float(area) / 1e6)]
        offset = (isd * op_index / 3.0, isd * op_index / 3.0 / math.sqrt(3))
        xy = _lattice(geom, isd, offset, _rng(seed, op.key, nis))
        xys.append(xy)
        isds.append(np.full(len(xy), isd))
        tacs.extend([k + 1] * len(xy))
    return np.vstack(xys), np.concatenate(isds), tacs


def _synthetic_operator(seed: int, op_index: int, op: OperatorSpec) -> OperatorCells:
    sites, isd, tacs = _municipality_sites(seed, op_index, op)
    clip = belgium_margin()
    areas = _voronoi(sites, clip)
    rotation = _rng(seed, op.key, "rotation").uniform(0, 120, len(sites))
    n = len(sites)
    sector_site = np.repeat(np.arange(n), 3)
    azimuth = (np.tile(np.array(SECTOR_AZIMUTHS), n) + np.repeat(rotation, 3)) % 360
    cell_ids = [f"{op.mcc}-{op.mnc}-{tacs[s]}-{s * 4 + k + 1}" for s in range(n)
                for k in range(3)]
    tech = ["4G"] * (3 * n)
    return OperatorCells(op, True, sites, areas, COVERAGE_MARGIN_ISD * isd, sector_site,
                         azimuth, np.full(3 * n, 120.0), np.zeros(3 * n), cell_ids, tech)


def _data_sha256() -> str:
    from importlib import resources

    from tocsin.geo.reference import MUNICIPALITIES_FILE

    data = (resources.files("tocsin.geo") / "data" / MUNICIPALITIES_FILE).read_bytes()
    return hashlib.sha256(data).hexdigest()


def synthetic_info(seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The label every export and estimate of the synthetic model carries."""
    from tocsin.geo.reference import MUNICIPALITIES_FILE

    return {"synthetic": True, "label": SYNTHETIC_LABEL, "generator": GENERATOR,
            "version": MODEL_VERSION, "seed": seed,
            "inputs": [{"path": f"tocsin/geo/data/{MUNICIPALITIES_FILE}",
                        "sha256": _data_sha256()}],
            "params": {"isd_m": ISD_M, "urban_density": URBAN_DENSITY,
                       "suburban_density": SUBURBAN_DENSITY,
                       "coverage_margin_isd": COVERAGE_MARGIN_ISD, "jitter_isd": JITTER_ISD,
                       "sector_azimuths": list(SECTOR_AZIMUTHS), "border_m": BORDER_M,
                       "operators": [{"key": o.key, "name": o.name, "mcc": o.mcc,
                                      "mnc": o.mnc, "share": o.share}
                                     for o in SYNTHETIC_OPERATORS]},
            "disclaimer": SYNTHETIC_DISCLAIMER}


@lru_cache(maxsize=2)
def synthetic_model(seed: int = DEFAULT_SEED) -> CellModel:
    """The synthetic cell model for ``seed``: the same seed gives the same cells, in
    every process (site jitter and sector rotations come from SHA-256 of the seed,
    the operator and the NIS code). Generated once per process (about 1-2 s)."""
    ops = [_synthetic_operator(seed, i, op) for i, op in enumerate(SYNTHETIC_OPERATORS)]
    return CellModel(ops, synthetic_info(seed))


def model_fingerprint(model: CellModel) -> str:
    """SHA-256 of the model's sites, sector azimuths and cell ids (determinism check)."""
    h = hashlib.sha256()
    for o in model.operators:
        h.update(np.ascontiguousarray(np.round(o.site_xy, 3)).tobytes())
        h.update(np.ascontiguousarray(np.round(o.sector_azimuth, 6)).tobytes())
        h.update("\n".join(o.cell_ids).encode())
        h.update(shapely.to_wkb(shapely.GeometryCollection(list(o.site_area))))
    return h.hexdigest()


# ----------------------------------------------------------------------------- import

#: Columns of an operator cell CSV (header row required; ``range`` may be ``range_m``,
#: ``technology`` may be ``tech``).
CSV_COLUMNS = ("cell_id", "lat", "lon", "azimuth", "beamwidth", "range", "technology")
TECHNOLOGIES = ("2G", "3G", "4G", "5G")
MAX_CSV_ROWS = 500_000


class CellImportError(ValueError):
    """A bad cell CSV: ``line`` (1 = header), ``field`` (column) and ``reason``."""

    def __init__(self, line: int, field: str, reason: str) -> None:
        super().__init__(f"line {line}: {field}: {reason}")
        self.line, self.field, self.reason = line, field, reason


@dataclass(frozen=True)
class ImportedCell:
    """One row of an operator CSV: degrees, metres, ``tech`` one of :data:`TECHNOLOGIES`."""

    cell_id: str
    lat: float
    lon: float
    azimuth: float
    beamwidth: float
    range_m: float
    tech: str


def parse_cells_csv(data: bytes | str) -> list[ImportedCell]:
    """Rows of an operator cell CSV (UTF-8, comma or semicolon separated).

    Columns (header, any order): ``cell_id``, ``lat``, ``lon`` (WGS84 degrees, the site
    in or within 10 km of Belgium), ``azimuth`` (0..360 degrees from north),
    ``beamwidth`` (1..360 degrees; 360 = omnidirectional), ``range`` or ``range_m``
    (metres, 50..100,000), ``technology`` or ``tech`` (2G, 3G, 4G, 5G). Cell ids are
    unique. Raises CellImportError naming the line and column of the first problem;
    nothing is half-read.
    """
    from tocsin.cap.validate import near_country

    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    first = text.splitlines()[0] if text.strip() else ""
    dialect = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    aliases = {"range": ("range", "range_m"), "technology": ("technology", "tech")}
    columns: dict[str, str] = {}
    for col in CSV_COLUMNS:
        found = next((a for a in aliases.get(col, (col,)) if a in header), None)
        if found is None:
            raise CellImportError(1, col, f"missing column (the header needs "
                                          f"{', '.join(CSV_COLUMNS)})")
        columns[col] = found
    cells: list[ImportedCell] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        if len(cells) >= MAX_CSV_ROWS:
            raise CellImportError(line, "cell_id", f"more than {MAX_CSV_ROWS:,} cells")

        def number(col: str, lo: float, hi: float, line: int = line,
                   row: dict[str, Any] = row) -> float:
            raw = (row.get(columns[col]) or "").strip()
            try:
                value = float(raw)
            except ValueError:
                raise CellImportError(line, col, f"{raw!r} is not a number") from None
            if not (math.isfinite(value) and lo <= value <= hi):
                raise CellImportError(line, col, f"{raw} is not between {lo:g} and {hi:g}")
            return value

        cell_id = (row.get(columns["cell_id"]) or "").strip()
        if not cell_id:
            raise CellImportError(line, "cell_id", "empty")
        if cell_id in seen:
            raise CellImportError(line, "cell_id", f"{cell_id!r} appears twice")
        seen.add(cell_id)
        lat, lon = number("lat", -90, 90), number("lon", -180, 180)
        if not near_country(shapely.Point(lon, lat).buffer(0.1), "BE"):
            hint = (" (lat and lon look swapped)"
                    if near_country(shapely.Point(lat, lon), "BE") else "")
            raise CellImportError(line, "lat", f"the site {lat},{lon} is not in or near "
                                               f"Belgium{hint}")
        tech = (row.get(columns["technology"]) or "").strip().upper()
        if tech not in TECHNOLOGIES:
            raise CellImportError(line, "technology", f"{tech!r} is not one of "
                                                      f"{', '.join(TECHNOLOGIES)}")
        cells.append(ImportedCell(cell_id, lat, lon, number("azimuth", 0, 360),
                                  number("beamwidth", 1, 360), number("range", 50, 100_000),
                                  tech))
    if not cells:
        raise CellImportError(2, "cell_id", "the file has no cells")
    return cells


def imported_operator(op: OperatorSpec, cells: list[ImportedCell], source: str
                      ) -> OperatorCells:
    """An operator's cells from imported rows: sites are the distinct positions, each
    site's area its Voronoi cell limited to its longest range."""
    to = to_lambert()
    xy = np.array([to.transform(c.lon, c.lat) for c in cells])
    keys = [f"{x:.1f},{y:.1f}" for x, y in xy]
    site_of: dict[str, int] = {}
    sector_site = np.array([site_of.setdefault(k, len(site_of)) for k in keys])
    sites = np.zeros((len(site_of), 2))
    reach = np.zeros(len(site_of))
    for j, s in enumerate(sector_site):
        sites[s] = xy[j]
        reach[s] = max(reach[s], cells[j].range_m)
    clip = belgium_margin()
    areas = _voronoi(sites, shapely.box(*shapely.union_all(
        [clip, shapely.MultiPoint(sites).buffer(1)]).bounds).buffer(100_000))
    discs = shapely.buffer(shapely.points(sites), reach, quad_segs=8)
    areas = shapely.intersection(areas, discs)
    ranges = np.array([c.range_m for c in cells])
    margin = np.zeros(len(sites))
    for j, s in enumerate(sector_site):
        margin[s] = max(margin[s], COVERAGE_MARGIN_RANGE * ranges[j])
    return OperatorCells(op, False, sites, areas, margin, sector_site,
                         np.array([c.azimuth for c in cells]),
                         np.array([c.beamwidth for c in cells]), ranges,
                         [c.cell_id for c in cells], [c.tech for c in cells], source=source)


def model_with_imports(imports: dict[str, tuple[list[ImportedCell], str]],
                       seed: int = DEFAULT_SEED) -> CellModel:
    """The synthetic model with the operators in ``imports`` (operator key -> (cells,
    source)) replaced by their imported cells. Cached by the imports' content."""
    if not imports:
        return synthetic_model(seed)
    key = tuple(sorted((k, source, zlib.crc32(repr(cells).encode()))
                       for k, (cells, source) in imports.items()))
    return _cached_imports(key, seed, imports)


_IMPORT_CACHE: dict[tuple[Any, ...], CellModel] = {}


def _cached_imports(key: tuple[Any, ...], seed: int,
                    imports: dict[str, tuple[list[ImportedCell], str]]) -> CellModel:
    if key in _IMPORT_CACHE:
        return _IMPORT_CACHE[key]
    base = synthetic_model(seed)
    ops = [imported_operator(o.operator, *imports[o.operator.key])
           if o.operator.key in imports else o for o in base.operators]
    info = {**base.info, "synthetic": all(o.synthetic for o in ops),
            "imported": {k: {"source": src, "cells": len(c)}
                         for k, (c, src) in imports.items()}}
    model = CellModel(ops, info)
    _IMPORT_CACHE.clear()  # one imported model at a time is enough
    _IMPORT_CACHE[key] = model
    return model
