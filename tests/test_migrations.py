"""Migrations: the models and the migrated schema agree, and upgrades keep the rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

import tocsin.models
from tocsin.core.db import make_engine
from tocsin.core.migrate import upgrade


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tocsin.models.Base.metadata)
    # The SQLite R*Tree index and the PostGIS columns/tables are made by hand in 0001
    # (no model describes them); everything else must match.
    hand_made = ("address_rtree", "spatial_ref_sys", "geom", "ix_address_geom")
    return [d for d in diff if not any(name in repr(d) for name in hand_made)]


def test_sqlite_schema_matches_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    assert _differences(engine) == []
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:Did not recognize type 'geometry'")
def test_postgres_schema_matches_models(pg_empty_engine):
    assert _differences(pg_empty_engine) == []


def test_upgrade_from_0001_keeps_campaigns_and_deliveries(tmp_path):
    # SQLite cascades a DROP TABLE to child rows when foreign keys are on, so a
    # migration that rebuilt the campaign table would silently empty the queue.
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine, "0001")
    with engine.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO authority (id, kind, name_fr, name_nl, languages, agreement_type, "
            "territory, min_lon, min_lat, max_lon, max_lat) VALUES "
            "('21004', 'municipality', 'Bruxelles', 'Brussel', 'fr,nl', 1, '{}', 0, 0, 1, 1)")
        c.exec_driver_sql(
            "INSERT INTO campaign (id, authority_id, kind, environment, status, priority, "
            "channels, texts, area, area_name, cap_params, cap_identifier, sms_source, "
            "mail_from, created_by, created_at) VALUES ('c1', '21004', 'alert', 'simulation', "
            "'sending', 0, 'sms', '{\"fr\": \"x\"}', '{}', 'Bruxelles', '{}', 'BE-1', '1789', "
            "'a@b.c', 'test', '2026-11-29 10:00:00')")
        c.exec_driver_sql(
            "INSERT INTO delivery (campaign_id, channel, address, language, state, priority, "
            "environment, segments, cost_eur, attempts) VALUES "
            "('c1', 'sms', '+32470000001', 'fr', 'queued', 0, 'simulation', 1, 0.055, 0)")
    upgrade(engine)
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM delivery")) == 1
        row = c.execute(sa.text("SELECT msg_type, scope, content FROM campaign")).one()
    assert (row.msg_type, row.scope) == ("Alert", "Public")
    engine.dispose()
