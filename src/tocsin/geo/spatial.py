"""Which registered subscribers have an address in an area (SPEC F11, F16, F18).

SQLite: the ``address_rtree`` R*Tree (kept by triggers) prefilters by bounding
box, then shapely tests the candidate points exactly, vectorised. PostgreSQL:
PostGIS ``ST_Intersects`` on the GiST-indexed ``address.geom``. Both count a
point on the boundary as inside (DE-9IM intersects, as GEOS and PostGIS do).
"""

from __future__ import annotations

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

# Above this many parts one bbox query for the whole area beats one per part.
_MAX_PART_QUERIES = 16
_FETCH_ROWS = 50_000

_RTREE_SQL = sa.text(
    "SELECT a.subscriber_id, a.lon, a.lat FROM address_rtree r JOIN address a ON a.id = r.id "
    "WHERE r.max_lon >= :minx AND r.min_lon <= :maxx "
    "AND r.max_lat >= :miny AND r.min_lat <= :maxy"
)
_POSTGIS_SQL = sa.text(
    "SELECT DISTINCT a.subscriber_id FROM address a "
    "WHERE ST_Intersects(a.geom, ST_GeomFromWKB(:wkb, 4326)) ORDER BY 1"
)


def subscribers_in_area(session: Session, area: BaseGeometry) -> list[int]:
    """Ids of subscribers with at least one address inside or on the boundary of ``area``.

    ``area`` is a shapely (Multi)Polygon in WGS84 lon/lat. Returns distinct ids,
    ascending. Works on SQLite (R*Tree + shapely) and PostgreSQL (PostGIS).

    Raises ValueError when ``area`` is not a shapely geometry or the database
    is neither SQLite nor PostgreSQL.
    """
    if not isinstance(area, BaseGeometry):
        raise ValueError(f"area: expected a shapely geometry, got {type(area).__name__}")
    if area.is_empty:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        rows = session.execute(_POSTGIS_SQL, {"wkb": shapely.to_wkb(area)})
        return [int(r[0]) for r in rows]
    if dialect != "sqlite":
        raise ValueError(f"database: unsupported dialect {dialect!r} (SQLite or PostgreSQL)")

    parts = list(shapely.get_parts(area))
    # A MultiPolygon of distant parts (e.g. Baarle-Hertog's enclaves) would drag
    # in everything between them with one overall bbox.
    pieces = parts if 1 < len(parts) <= _MAX_PART_QUERIES else [area]
    found: set[int] = set()
    for piece in pieces:
        shapely.prepare(piece)
        minx, miny, maxx, maxy = piece.bounds
        result = session.execute(
            _RTREE_SQL, {"minx": minx, "maxx": maxx, "miny": miny, "maxy": maxy}
        )
        while chunk := result.fetchmany(_FETCH_ROWS):
            ids = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk))
            lons = np.fromiter((r[1] for r in chunk), dtype=np.float64, count=len(chunk))
            lats = np.fromiter((r[2] for r in chunk), dtype=np.float64, count=len(chunk))
            inside = shapely.intersects_xy(piece, lons, lats)
            found.update(ids[inside].tolist())
    return sorted(found)
