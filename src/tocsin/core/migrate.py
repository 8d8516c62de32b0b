"""Schema migrations (Alembic), run the same way on SQLite and PostgreSQL, and the
check that a database is ready before any command reads or writes it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url

from tocsin.core.db import READ_ONLY_OPTION, get_engine
from tocsin.core.settings import get_settings

INIT_HINT = "run `tocsin db init` to create it, or set TOCSIN_DATABASE_URL to the database you use"


class DatabaseNotReady(RuntimeError):
    """The database is missing, has no schema, an old schema or no authorities.

    ``location`` is the SQLite file or the URL (password hidden); ``reason`` says
    what is missing and the command that fixes it.
    """

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location, self.reason = location, reason


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` using the migrations shipped in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("tocsin") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database of ``engine`` to ``revision`` (default: the latest)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def database_location(url: str | None = None) -> str:
    """What an operator needs to find the database: the absolute SQLite file path, or
    the URL with its password hidden (default: the settings' database)."""
    url = url or get_settings().resolved_database_url()
    path = _sqlite_file(url)
    return str(path) if path else make_url(url).render_as_string(hide_password=True)


def create_database(url: str | None = None) -> Engine:
    """Create (or bring up to date) the schema of ``url`` (default: the settings'
    database), making the SQLite file's folder if needed. Used only by ``tocsin db
    init``, ``db upgrade`` and ``demo``; every other command uses ``open_database``."""
    url = url or get_settings().resolved_database_url()
    path = _sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = get_engine(url)
    upgrade(engine)
    return engine


def open_database(url: str | None = None) -> Engine:
    """The engine of an initialised database (default: the settings' database).

    Never creates anything: raises ``DatabaseNotReady`` naming the file (or URL) and
    the fix when the SQLite file does not exist, when there is no schema or an older
    one (``tocsin db upgrade``), or when no authority is loaded (``tocsin db init``).
    """
    url = url or get_settings().resolved_database_url()
    location = database_location(url)
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        raise DatabaseNotReady(location, f"no such database file; {INIT_HINT}")
    engine = get_engine(url)
    check_ready(engine, location)
    return engine


def check_ready(engine: Engine, location: str | None = None) -> None:
    """Raise ``DatabaseNotReady`` unless ``engine``'s schema is at the latest revision
    and at least one authority is loaded. Reads only (a deferred transaction on SQLite)."""
    location = location or database_location(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(
        alembic_config(engine.url.render_as_string(hide_password=False)))
    head = script.get_current_head()
    known = {rev.revision for rev in script.walk_revisions()}
    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None:
            raise DatabaseNotReady(location, f"not initialised (no schema); {INIT_HINT}")
        if current not in known:
            raise DatabaseNotReady(location, f"schema at revision {current}, newer than this "
                                             "version of Tocsin knows: upgrade Tocsin")
        if current != head:
            raise DatabaseNotReady(location, f"schema at revision {current}, this version of "
                                             f"Tocsin needs {head}: run `tocsin db upgrade`")
        if conn.execute(sa.text("SELECT 1 FROM authority LIMIT 1")).first() is None:
            raise DatabaseNotReady(location, "not initialised (no authorities loaded); run "
                                             "`tocsin db init`")
