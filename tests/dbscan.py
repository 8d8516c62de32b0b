"""A scan of the whole database for personal data (GDPR erasure and retention tests)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def tables_holding(engine: Any, needles: list[str]) -> list[str]:
    """Every ``table.column`` whose text holds one of ``needles``, sorted, each once."""
    found = set()
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as c:
        for table in meta.sorted_tables:
            for row in c.execute(sa.select(table)):
                for col, value in row._mapping.items():
                    if value is not None and any(n in str(value) for n in needles):
                        found.add(f"{table.name}.{col}")
    return sorted(found)
