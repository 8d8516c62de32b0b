"""The ``tocsin`` command: database, subscribers, campaigns, CAP, audit, worker, web server.

One module per area; each defines its commands on its own Typer group, which this
package mounts. Commands parse input, call one service and render its result.
Input errors exit 1 with a message naming the field and the reason, and never a
traceback.
"""

from __future__ import annotations

from tocsin.cli import db, email, messages, processes, subscribers, users  # noqa: F401
from tocsin.cli.addresses import addresses_app
from tocsin.cli.app import app
from tocsin.cli.audit import audit_app
from tocsin.cli.authorities import authorities_app
from tocsin.cli.campaigns import campaign_app
from tocsin.cli.cap import cap_app
from tocsin.cli.cells import cells_app
from tocsin.cli.contacts import contacts_app, groups_app
from tocsin.cli.db import db_app
from tocsin.cli.email import email_app
from tocsin.cli.messages import message_app
from tocsin.cli.retention import retention_app
from tocsin.cli.simulators import simulate_app
from tocsin.cli.subscribers import subscribers_app
from tocsin.cli.users import users_app

app.add_typer(db_app, name="db")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(campaign_app, name="campaign")
app.add_typer(cap_app, name="cap")
app.add_typer(message_app, name="message")
app.add_typer(email_app, name="email")
app.add_typer(authorities_app, name="authorities")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(cells_app, name="cells")
app.add_typer(simulate_app, name="simulate")
app.add_typer(contacts_app, name="contacts")
app.add_typer(groups_app, name="groups")
app.add_typer(retention_app, name="retention")
app.add_typer(addresses_app, name="addresses")

__all__ = ["app"]
