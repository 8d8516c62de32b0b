"""Setting a database up: ``tocsin db init`` and ``tocsin demo`` (F1).

The only code that creates a database (with ``tocsin db upgrade``, which only
migrates): every other command opens an initialised one with
``tocsin.core.migrate.open_database`` and is refused, naming the file, otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.core.db import transaction
from tocsin.core.migrate import create_database, database_location
from tocsin.geo.reference import LoadReport, load_authorities


@dataclass
class InitReport:
    """What :func:`initialise_database` did: ``location`` is the SQLite file or the URL
    (password hidden); ``demo`` the demo population's report (``DemoReport.to_json()``)
    when one was generated, else None."""

    engine: Engine
    location: str
    authorities: LoadReport
    demo: dict[str, Any] | None = None


def initialise_database(demo_subscribers: int = 0, seed: int | None = None,
                        url: str | None = None) -> InitReport:
    """Create or upgrade the schema of ``url`` (default: the settings' database) and load
    (or refresh) the Belgian authorities; then, if ``demo_subscribers`` > 0, generate that
    many reproducible demo subscribers. Safe to run again.

    Raises ValueError when demo subscribers already exist (the authorities are loaded).
    """
    from tocsin.subscribers.demo import DEFAULT_SEED, generate_demo_population

    engine = create_database(url)
    with transaction(engine) as s:
        loaded = load_authorities(s)
    report = InitReport(engine, database_location(url), loaded)
    if demo_subscribers:
        report.demo = generate_demo_population(
            engine, demo_subscribers, seed=DEFAULT_SEED if seed is None else seed).to_json()
    return report


@dataclass
class DemoSetup:
    """What :func:`prepare_demo` did: ``generated`` demo subscribers (0 when the database
    already had subscribers), ``templates`` demo templates added, ``opted_in`` of the
    generated subscribers opted in to general-interest information; ``register``:
    addresses of the packaged BeST sample imported into the address register (0 when it
    already had addresses) and ``register_refused`` its rows refused."""

    engine: Engine
    location: str
    authorities: LoadReport
    generated: int
    templates: int
    opted_in: int = 0
    register: int = 0
    register_refused: int = 0


def prepare_demo(subscribers: int, accounts: Iterable[tuple[str, str, str, str]],
                 url: str | None = None,
                 agreements: dict[str, int] | None = None) -> DemoSetup:
    """Initialise the database for ``tocsin demo``: schema, authorities, ``subscribers``
    demo subscribers when it has none yet, the demo ``accounts`` (username, password,
    authority id, role; passwords reset each run), their demo templates, and the
    demo ``agreements`` (authority id -> type, set as the federal operator would), and
    the packaged BeST sample (Brussels 1130, Halle, Malmedy) into the address register
    when it is empty, so that the portal's address autocomplete has something to offer.

    Raises LookupError / ValueError (from ``create_user``) on a bad account.
    """
    from tocsin.authorities.services import create_user
    from tocsin.messages.templates import seed_demo_templates
    from tocsin.subscribers.demo import generate_demo_population
    from tocsin.subscribers.models import Subscriber

    init = initialise_database(url=url)
    with transaction(init.engine) as s:
        have = s.scalar(sa.select(sa.func.count()).select_from(Subscriber))
    generated = opted_in = 0
    if not have and subscribers:
        report = generate_demo_population(init.engine, subscribers)
        generated, opted_in = report.subscribers, report.info_opt_ins
    accounts = list(accounts)
    for username, password, authority, role in accounts:
        create_user(init.engine, username, password, authority, role=role)
    made = seed_demo_templates(init.engine, dict.fromkeys(a for _, _, a, _ in accounts))
    if agreements:
        from tocsin.authorities.access import command_line_actor
        from tocsin.authorities.governance import set_agreement

        federal = command_line_actor(init.engine, "BE")
        for authority_id, agreement in agreements.items():
            set_agreement(init.engine, federal, authority_id, agreement, source="demo")
    register = refused = 0
    from tocsin.geo.addresses import has_register, import_addresses

    if not has_register(init.engine):
        sample = resources.files("tocsin.subscribers").joinpath("data",
                                                                "best-address-sample.csv")
        lines = sample.read_text(encoding="utf-8").splitlines(keepends=True)
        imported = import_addresses(init.engine, lines, "best-address-sample.csv")
        register, refused = imported.imported, imported.refused
    return DemoSetup(init.engine, init.location, init.authorities, generated, made, opted_in,
                     register, refused)
