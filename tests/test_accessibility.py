"""Accessibility (issue 9 point 2, SPEC F32): axe-core finds no WCAG 2.1 A/AA violation on
any page an operator, an admin, the federal operator, a viewer or the public can reach, in
the four interface languages, with and without a running campaign; every page fits a
360 px phone screen without sideways scrolling.

The pages come from the application's routes: :func:`test_every_html_page_is_checked`
fails when a GET route is neither in :data:`PAGES` nor in :data:`NOT_PAGES` (with the
reason), so a new page cannot be forgotten.

One server (SQLite, no dispatch worker: a launched campaign stays ``sending``, which is
the deterministic "running campaign" state), one Chromium, one browser context per
account. ``TOCSIN_SCREENSHOT_DIR=/some/dir`` makes :func:`test_screenshots` save PNGs of
the main pages in French and German at 1280 px and in Dutch at 360 px.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LANGUAGES = ("fr", "nl", "de", "en")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"width": 360, "height": 740}
#: Read at import: the autouse fixture of conftest.py clears TOCSIN_* before each test.
SCREENSHOT_DIR = os.environ.get("TOCSIN_SCREENSHOT_DIR", "")

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed")

#: username, password, authority (NIS code), role: the demo's kinds of account.
ACCOUNTS = (
    ("beersel", "dike-watch-2041", "23003", "operator"),
    ("halle-admin", "senne-bridge-3150", "23027", "admin"),
    ("crisis", "federal-desk-1789", "BE", "federal_operator"),
    ("beersel-viewer", "quiet-reader-5521", "23003", "viewer"),
)
PASSWORDS = {a[0]: a[1] for a in ACCOUNTS}


@dataclass(frozen=True)
class Page:
    """One page to check: ``url`` (``{name}`` filled from :class:`Site.ids`), who opens it
    (``as_`` a context name of :data:`CONTEXTS`), ``ready``: a selector that is there once
    the page's scripts have done their first work; ``campaigns``: the page lists the
    running campaign (Beersel's, simulation), so it is checked again while it runs;
    ``running``: it exists only while a campaign runs; ``repeat``: rows made by one loop
    of the template, checked on the first ten only (axe takes half a minute on the 593
    authorities)."""

    route: str
    url: str
    as_: str
    ready: str = ""
    campaigns: bool = False
    running: bool = False
    status: int = 200
    repeat: str = ""


#: Browser contexts: name -> (username or "" for the public, environment).
CONTEXTS = {
    "public": ("", ""),
    "operator": ("beersel", "simulation"),
    "operator-live": ("beersel", "live"),
    "admin": ("halle-admin", "simulation"),
    "federal": ("crisis", "simulation"),
    "acting": ("crisis", "simulation"),
    "viewer": ("beersel-viewer", "simulation"),
    # citizens of the portal: a cookie made by _seed (no password)
    "citizen": ("", ""),
    "citizen-new": ("", ""),
    "citizen-pending": ("", ""),
}

COMPOSER_READY = "#municipality option:nth-child(2)"

PAGES: tuple[Page, ...] = (
    # The public.
    Page("/login", "/login", "public"),
    Page("/unsubscribe/{token}", "/unsubscribe/{unsubscribe}", "public"),
    Page("/unsubscribe/{token}", "/unsubscribe/not-a-token", "public", status=400),
    Page("/invitation/{token}", "/invitation/{invitation}", "public"),
    Page("/answer/{token}", "/answer/{answer_token}", "public"),
    Page("/answer/{token}", "/answer/not-a-token", "public", status=400),
    Page("(404)", "/no-such-page", "public", status=404),
    # A citizen on the public portal (issue 10): registering, the code, the profile.
    Page("/register", "/register", "public"),
    Page("/register/code/{code}", "/register/code/123456", "public"),
    Page("/register/verify", "/register/verify", "citizen-pending"),
    Page("/register/profile", "/register/profile", "citizen-new"),
    Page("/me", "/me", "citizen"),
    Page("/me/edit", "/me/edit", "citizen"),
    # An operator, simulation.
    Page("/", "/", "operator", campaigns=True),
    Page("/campaigns/new", "/campaigns/new", "operator", COMPOSER_READY),
    Page("/campaigns/new", "/campaigns/new?template={template}", "operator", COMPOSER_READY),
    Page("/campaigns/new", "/campaigns/new?update={finished}", "operator", COMPOSER_READY),
    Page("/campaigns/new", "/campaigns/new?draft={draft}", "operator", COMPOSER_READY),
    Page("/campaigns/{campaign_id}", "/campaigns/{finished}", "operator"),
    Page("/campaigns/{campaign_id}", "/campaigns/{draft}", "operator"),
    Page("/campaigns/{campaign_id}", "/campaigns/{running}", "operator", running=True),
    Page("/monitor", "/monitor", "operator", campaigns=True),
    Page("/monitor/{campaign_id}", "/monitor/{finished}", "operator"),
    Page("/campaigns/{campaign_id}/answers", "/campaigns/{answers}/answers", "operator"),
    Page("/monitor/{campaign_id}", "/monitor/{finished}?large=1", "operator"),
    Page("/monitor/{campaign_id}", "/monitor/{running}", "operator", running=True),
    Page("/monitor/{campaign_id}", "/monitor/{running}?large=1", "operator", running=True),
    Page("/templates", "/templates", "operator"),
    Page("/templates/new", "/templates/new", "operator"),
    Page("/templates/{template_id}/edit", "/templates/{template}/edit", "operator"),
    Page("/account", "/account", "operator"),
    Page("/account/totp", "/account/totp", "operator"),
    Page("(404)", "/campaigns/no-such-campaign", "operator", status=404),
    Page("(403)", "/admin/gateway", "operator", status=403),
    # An operator, live (the red frame and header; TOTP passed).
    Page("/", "/", "operator-live"),
    # An authority's admin.
    Page("/", "/", "admin"),
    Page("/admin/governance", "/admin/governance", "admin"),
    Page("/admin/users", "/admin/users", "admin"),
    Page("/contacts", "/contacts", "admin"),
    Page("/groups", "/groups", "admin"),
    Page("/account/totp", "/account/totp", "admin"),
    # The federal operator.
    Page("/", "/", "federal"),
    Page("/admin/governance", "/admin/governance", "federal",
         repeat="[aria-labelledby=authorities-title] tbody tr:nth-child(n+11)"),
    Page("/admin/users", "/admin/users", "federal"),
    Page("/admin/gateway", "/admin/gateway", "federal"),
    Page("/", "/", "acting", campaigns=True),
    # A viewer.
    Page("/", "/", "viewer", campaigns=True),
    Page("/campaigns/{campaign_id}", "/campaigns/{finished}", "viewer"),
    Page("/monitor", "/monitor", "viewer", campaigns=True),
    Page("/campaigns/{campaign_id}/answers", "/campaigns/{answers}/answers", "viewer"),
    Page("/campaigns/{campaign_id}", "/campaigns/{running}", "viewer", running=True),
    Page("(403)", "/campaigns/new", "viewer", status=403),
)

#: Pages reached by posting a form (:func:`_form_pages`), checked without a running campaign.
FORM_PAGES = ("login-error", "totp-step", "invitation-shown", "register-error",
              "profile-errors", "contacts-mapping", "contacts-errors", "contacts-preview",
              "contacts-result")

#: Contact files for the import steps (an admin of Halle): a column to map, bad rows, clean.
CONTACT_FILES = {
    "contacts-mapping": "name,mobile,Functie\nAn Peeters,0470 12 34 56,brandweer\n",
    "contacts-errors": ("naam,gsm,e-mail,taal\nAn Peeters,0470 12 34 56,an@example.be,nl\n"
                        "Bob Dubois,112,bob@example,fr\nCarla Schmidt,0800 12 345,,es\n"),
    "contacts-preview": ("nom,gsm,e-mail,langue\nAn Peeters,0470 12 34 56,an@example.be,nl\n"
                         "Bob Dubois,+32 471 23 45 67,bob@example.be,fr\n"),
}


def _contact_import_pages(b: Browsing, lang: str) -> Iterator[tuple[str, Any]]:
    """The contact-list import's steps as an admin sees them: the columns to map, the
    preview with the rows to correct, the clean preview, the result."""
    admin = b.page("admin")
    for name, text in CONTACT_FILES.items():
        admin.goto(b.site.url("/contacts", lang))
        admin.fill("#list", f"Axe {lang}")
        admin.set_input_files("#file", {"name": f"{name}.csv", "mimeType": "text/csv",
                                        "buffer": text.encode()})
        with admin.expect_navigation():
            admin.click("form[action='/contacts/import'] button[type=submit]")
        admin.wait_for_selector("#import-errors" if name != "contacts-preview"
                                else "#import-preview")
        yield name, admin
    with admin.expect_navigation():
        admin.click("button[formaction$='/confirm']")
    admin.wait_for_selector("#import-result")
    yield "contacts-result", admin

#: GET routes that are not HTML pages of their own, with the reason.
NOT_PAGES = {
    "/favicon.ico": "an icon",
    "/healthz": "a health probe (JSON)",
    "/readyz": "a readiness probe (JSON)",
    "/campaigns/{campaign_id}/final": "an HTML fragment the campaign page inserts (checked "
                                      "there, on the finished campaign)",
    "/campaigns/{campaign_id}/report.{fmt}": "a file download (PDF, CSV, JSON)",
    "/monitor/events": "server-sent events",
    "/metrics": "Prometheus metrics (text format)",
    "/contacts/import/{token}/errors.csv": "a file download (CSV)",
    "/monitor/{campaign_id}/events": "server-sent events",
    "/me/export.{fmt}": "a file download (JSON, CSV)",
    "/campaigns/{campaign_id}/answers/events": "server-sent events",
    "/campaigns/{campaign_id}/answers.csv": "a file download (CSV)",
    "/login/totp": "reached only by a login that needs the second factor: FORM_PAGES "
                   "'totp-step'",
    "/register/addresses/municipalities": "JSON for the address fields' autocomplete",
    "/register/addresses/streets": "JSON for the address fields' autocomplete",
    "/register/addresses/numbers": "JSON for the address fields' autocomplete",
    "/register/addresses/boxes": "JSON for the address fields' autocomplete",
}


def _html_get_routes(app: Any) -> set[str]:
    from fastapi.routing import APIRoute

    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            yield from walk(included.routes) if included is not None else [route]

    out = set()
    for route in walk(app.routes):
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        if route.path.startswith("/api/") or route.path.endswith((".xml", ".atom")):
            continue  # the JSON API, CAP messages and Atom feeds: read by machines
        out.add(route.path)
    return out


def test_every_html_page_is_checked(tmp_path: Path) -> None:
    from tocsin.core.db import make_engine
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    engine = make_engine(f"sqlite:///{tmp_path / 'routes.db'}")
    app = create_app(engine, start_worker=False, settings=Settings(var_dir=tmp_path / "var"))
    routes = _html_get_routes(app)
    checked = {p.route for p in PAGES}
    missing = sorted(routes - checked - set(NOT_PAGES))
    assert not missing, f"GET routes neither checked for accessibility nor excluded: {missing}"
    stale = sorted((checked | set(NOT_PAGES)) - routes - {"(404)", "(403)"})
    assert not stale, f"checked or excluded routes that no longer exist: {stale}"


# --- the site ---------------------------------------------------------------------


@dataclass
class Site:
    base: str
    engine: Any
    settings: Any
    ids: dict[str, str] = field(default_factory=dict)
    #: browser storage state (the session cookie) per logged-in context name
    states: dict[str, Any] = field(default_factory=dict)
    #: the last TOTP time step used by the operator's authenticator
    totp_step: int = 0

    def url(self, template: str, lang: str | None = None) -> str:
        path = template.format(**self.ids)
        if lang:
            path += ("&" if "?" in path else "?") + f"lang={lang}"
        return self.base + path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(engine: Any, settings: Any) -> dict[str, str]:
    """Demo-like data: the Belgian authorities, the four accounts, the demo templates,
    subscribers in Beersel and Halle, one finished campaign, one imported CAP draft, an
    open invitation; the operator has an authenticator (for the live login)."""
    import sqlalchemy as sa

    from tocsin.authorities import totp
    from tocsin.authorities.access import command_line_actor
    from tocsin.authorities.accounts import invite_user
    from tocsin.authorities.models import User
    from tocsin.authorities.services import create_user
    from tocsin.campaigns.checks import CampaignRequest
    from tocsin.campaigns.drafts import import_cap_draft
    from tocsin.core.db import transaction
    from tocsin.dispatch.services import run_campaign
    from tocsin.geo.reference import load_authorities
    from tocsin.messages.templates import list_templates, seed_demo_templates
    from tocsin.subscribers.importer import import_subscribers
    from tocsin.subscribers.optout import unsubscribe_secret, unsubscribe_token

    with transaction(engine) as s:
        load_authorities(s)
    for username, password, authority, role in ACCOUNTS:
        create_user(engine, username, password, authority, role=role,
                    display_name=username.replace("-", " ").title())
    seed_demo_templates(engine, ["23003", "23027"])
    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    for i in range(12):
        lines.append(f"B{i:03d},{'nl' if i % 3 else 'fr'},+324701230{i:02d},b{i}@example.org,"
                     f"{50.745 + (i % 4) * 0.002},{4.295 + (i // 4) * 0.004}")
    assert import_subscribers(engine, ("\n".join(lines) + "\n").encode()).ok
    ids: dict[str, str] = {}
    run = run_campaign(engine, "launch", CampaignRequest(
        authority_id="23003", municipality_nis="23003", channels=["sms", "email", "cap"],
        texts={"nl": "Oefening: blijf binnen, sluit ramen en deuren.",
               "fr": "Exercice : restez à l'intérieur, fermez portes et fenêtres."},
        kind="exercise"), settings=settings, receipt_timeout=5, send_timeout=30)
    ids["finished"] = run.campaign_id
    from test_cap_import import trilingual

    ids["draft"] = import_cap_draft(engine, "23003", trilingual(), "beersel")["campaign_id"]
    ids["template"] = list_templates(engine, "23003")[0].id
    invitation = invite_user(engine, command_line_actor(engine, "23027"), "new.colleague@halle.be",
                             "operator", "23027", "http://x/")
    ids["invitation"] = invitation.link.rsplit("/", 1)[1]
    ids["unsubscribe"] = unsubscribe_token(unsubscribe_secret(settings), "b1@example.org")
    # A group message that collects answers (issue 10): a list of Beersel, two answers.
    from tocsin.campaigns.answer_service import AnswerSetup, answer_token, record_inbound
    from tocsin.subscribers.contacts import import_contacts

    import_contacts(engine, b"naam,gsm,e-mail,taal\nAn,0470 00 00 01,an@example.org,nl\n"
                    b"Bert,0470 00 00 02,,fr\nCis,0470 00 00 03,cis@example.org,nl\n",
                    "23003", "Vrijwilligers")
    ids["answers"] = run_campaign(engine, "launch", CampaignRequest(
        authority_id="23003", lists=["Vrijwilligers"], channels=["sms", "email"],
        texts={"nl": "Wie kan vanavond helpen?", "fr": "Qui peut aider ce soir ?"},
        kind="group", answers=AnswerSetup(["Ja", "Nee"])), settings=settings,
        receipt_timeout=5, send_timeout=30).campaign_id
    record_inbound(engine, "+32470000001", "ja", via="webhook")
    record_inbound(engine, "+32470000002", "A2", via="webhook")
    ids["answer_token"] = answer_token(unsubscribe_secret(settings), ids["answers"],
                                       "cis@example.org")
    with transaction(engine) as s:
        user = s.scalar(sa.select(User).where(User.username == "beersel"))
        assert user is not None
        user.totp_secret = totp.new_secret()
        ids["totp_secret"] = user.totp_secret
    ids.update(_seed_citizens(engine, settings))
    return ids


def _seed_citizens(engine: Any, settings: Any) -> dict[str, str]:
    """Cookies of three citizens of the portal: one with a profile (``citizen``), one whose
    contact is verified and who has no profile yet (``citizen-new``), one waiting for its
    code (``citizen-pending``)."""
    import re

    from tocsin.core.db import utcnow
    from tocsin.dispatch.transactional import MemoryOutbox
    from tocsin.subscribers import challenge
    from tocsin.subscribers.registration import create_profile, parse_profile
    from tocsin.subscribers.verification import PortalConfig, confirm_code, request_code
    from tocsin.web.security import resolve_secret_key

    secret, outbox = resolve_secret_key(settings), MemoryOutbox()
    config = PortalConfig(difficulty=4, session_ttl_s=6 * 3600)

    def ask(contact: str) -> str:
        c = challenge.issue(secret, utcnow())
        return request_code(engine, outbox, secret, None, contact, "127.0.0.1", "fr", c,
                            challenge.solve(c, 4), config).token

    def confirm(token: str) -> str:
        code = re.search(r"\b(\d{6})\b", outbox.messages[-1].text).group(1)  # type: ignore[union-attr]
        return confirm_code(engine, secret, token, code, "127.0.0.1", config).token

    # The address register (issue 10 point 4): the packaged BeST sample, so that the
    # profile shows an address of the register, one placed on the map (a pin: the pin
    # fields on /me/edit) and one in a municipality the register lacks.
    from pathlib import Path

    from tocsin.geo.addresses import import_addresses

    sample = Path(__file__).resolve().parent.parent / "src/tocsin/subscribers/data"
    import_addresses(engine, (sample / "best-address-sample.csv").read_text(
        encoding="utf-8").splitlines(keepends=True), "best-address-sample.csv")
    tokens = {"citizen": confirm(ask("citizen@example.org"))}
    create_profile(engine, tokens["citizen"], parse_profile({
        "language": "fr", "channels": "sms", "accessibility": "deaf", "addr-0-kind": "home",
        "addr-0-municipality": "Beersel", "addr-0-street": "Rue de la Gare",
        "addr-0-number": "12", "addr-1-kind": "school", "addr-1-municipality": "Halle",
        "addr-1-street": "Grote Markt", "addr-1-number": "1", "addr-1-lat": "50.7346",
        "addr-1-lon": "4.2345", "addr-2-kind": "work", "addr-2-municipality": "Bruxelles",
        "addr-2-street": "Chaussée de Haecht", "addr-2-number": "1840", "addr-2-box": "b007",
        "consent_alerts": "yes"}), "127.0.0.1")
    tokens["citizen-new"] = confirm(ask("new.citizen@example.org"))
    tokens["citizen-pending"] = ask("0470 99 00 11")
    return {f"cookie:{k}": v for k, v in tokens.items()}


def _launch_running(site: Site) -> str:
    """A simulation campaign that stays ``sending``: no worker runs in this server."""
    from tocsin.campaigns.checks import CampaignRequest
    from tocsin.campaigns.services import launch

    launched = launch(site.engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", channels=["sms", "email", "cap"],
        texts={"nl": "Brand in Beersel: blijf binnen.", "fr": "Incendie à Beersel : restez "
                                                             "à l'intérieur."},
        kind="alert"), site.settings)
    return str(launched.campaign_id)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    import uvicorn

    from tocsin.core.db import make_engine
    from tocsin.core.migrate import upgrade
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    tmp = tmp_path_factory.mktemp("a11y")
    engine = make_engine(f"sqlite:///{tmp / 'a11y.db'}")
    upgrade(engine)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(var_dir=tmp / "var", public_base_url=base, database_url=str(engine.url))
    ids = _seed(engine, settings)
    app = create_app(engine, start_worker=False, settings=settings)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Site(base, engine, settings, ids)
    srv.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def _axe_script() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


def _log_in(page: Any, site: Site, username: str, environment: str) -> None:
    import pyotp

    page.goto(site.url("/login"))
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.check(f'input[name="environment"][value="{environment}"]')
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    if page.url.endswith("/login/totp"):
        # A step is accepted once: the next unused one, waiting if it is not valid yet.
        step = max(int(time.time() // 30) - 1, site.totp_step + 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(1)
        site.totp_step = step
        page.fill("#code", pyotp.TOTP(site.ids["totp_secret"]).at(step * 30))
        with page.expect_navigation():
            page.click("form[action='/login/totp'] button[type=submit]")
    assert page.url.rstrip("/") == site.base, (
        f"{username} ({environment}): {page.url}: {page.inner_text('main')[:300]}")


def _act_for_beersel(page: Any, site: Site) -> None:
    page.goto(site.url("/admin/governance"))
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(site.url("/admin/acting"), form={
        "authority_id": "23003", "requested_by": "Mayor of Beersel (phone)", "channel": "phone",
        "note": "", "csrf_token": token}, max_redirects=0)
    assert r.status == 303, r.text()


class Browsing:
    """One logged-in browser context (and page) per entry of :data:`CONTEXTS`."""

    def __init__(self, browser: Any, site: Site, viewport: dict[str, int],
                 axe: bool = False) -> None:
        self.browser, self.site, self.viewport = browser, site, viewport
        self.pages: dict[str, Any] = {}
        self.errors: list[str] = []
        self.script = _axe_script() if axe else ""

    def page(self, name: str) -> Any:
        if name not in self.pages:
            # Logged in once per module: the session cookie is reused by later contexts
            # (a second live login would need a fresh TOTP time step).
            context = self.browser.new_context(viewport=self.viewport, locale="en-GB",
                                               storage_state=self.site.states.get(name))
            if self.script:  # axe-core in every page it opens
                context.add_init_script(self.script)
            if f"cookie:{name}" in self.site.ids:  # a citizen of the portal
                context.add_cookies([{"name": "tocsin_citizen", "url": self.site.base,
                                      "value": self.site.ids[f"cookie:{name}"]}])
            page = context.new_page()
            page.on("pageerror", lambda e, n=name: self.errors.append(f"{n}: {e}"))
            username, environment = CONTEXTS[name]
            if username and name not in self.site.states:
                _log_in(page, self.site, username, environment)
                if name == "acting":
                    _act_for_beersel(page, self.site)
                self.site.states[name] = context.storage_state()
            self.pages[name] = page
        return self.pages[name]

    def open(self, spec: Page, lang: str) -> Any:
        page = self.page(spec.as_)
        response = page.goto(self.site.url(spec.url, lang))
        assert response is not None
        assert response.status == spec.status, f"{spec.url} as {spec.as_}: {response.status}"
        if spec.ready:
            page.wait_for_selector(spec.ready, state="attached", timeout=10_000)
        return page

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()


def _violations(page: Any, exclude: str = "") -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations of the page as it is now, one line per node;
    ``exclude``: a CSS selector of elements left out."""
    context = {"exclude": [[exclude]]} if exclude else {"exclude": []}
    result = page.evaluate(
        "([context, opts]) => axe.run(context, opts)",
        [context, {"runOnly": {"type": "tag", "values": WCAG_TAGS},
                   "resultTypes": ["violations"]}])
    out = []
    for v in result["violations"]:
        for node in v["nodes"]:
            out.append(f"{v['id']} ({v['impact']}): {' '.join(map(str, node['target']))} — "
                       f"{node.get('failureSummary', '').splitlines()[-1].strip()}")
    return out


def _form_pages(b: Browsing, lang: str) -> Iterator[tuple[str, Any]]:
    """The pages reached by posting a form (:data:`FORM_PAGES`): a failed login (error
    announced), the second step of a live login, an invitation just made, the steps of a
    contact-list import."""
    site = b.site
    page = b.page("public")
    page.goto(site.url("/login", lang))
    page.fill("#username", "beersel")
    page.fill("#password", "not the password")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_selector("[role=alert]")
    yield "login-error", page
    page.goto(site.url("/login", lang))
    page.fill("#username", "beersel")
    page.fill("#password", PASSWORDS["beersel"])
    page.check('input[name="environment"][value="live"]')
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/login/totp")
    yield "totp-step", page
    page.context.clear_cookies()
    admin = b.page("admin")
    admin.goto(site.url("/admin/users", lang))
    admin.fill("input[name=email]", f"someone.{lang}@halle.be")
    admin.click("form[action='/admin/users/invite'] button[type=submit]")
    admin.wait_for_load_state()
    yield "invitation-shown", admin
    page = b.page("public")
    page.goto(site.url("/register", lang))
    page.fill("#contact", "0900 12 345")  # a premium-rate number: refused, field named
    page.click("#code-form button[type=submit]")
    page.wait_for_selector("#contact-error")
    yield "register-error", page
    citizen = b.page("citizen")
    citizen.goto(site.url("/me/edit", lang))
    citizen.fill("#addr-0-street", "")
    citizen.fill("#addr-1-municipality", "Atlantis")
    citizen.uncheck("#consent_alerts")
    citizen.click("form[action='/me/edit'] button[type=submit]")
    citizen.wait_for_selector("#error-summary")
    yield "profile-errors", citizen
    yield from _contact_import_pages(b, lang)


def _pages(running: bool) -> list[Page]:
    """Every page without a running campaign; with one, the pages that show campaigns."""
    if running:
        return [p for p in PAGES if p.campaigns or p.running]
    return [p for p in PAGES if not p.running]


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(600)
# Every language without a running campaign first: the first "running" case launches one,
# which then runs until the end of the module.
@pytest.mark.parametrize(
    ("lang", "running"),
    [(lang, False) for lang in LANGUAGES] + [(lang, True) for lang in LANGUAGES],
    ids=[f"{lang}-idle" for lang in LANGUAGES] + [f"{lang}-running" for lang in LANGUAGES])
def test_no_wcag_violation(browser: Any, site: Site, lang: str, running: bool) -> None:
    """axe-core, WCAG 2.1 A and AA rules, on every page (:data:`PAGES`, and the pages
    a form leads to when idle) in ``lang``."""
    if running and "running" not in site.ids:
        site.ids["running"] = _launch_running(site)
    assert running == ("running" in site.ids), "the idle cases run first"
    b = Browsing(browser, site, {"width": 1280, "height": 900}, axe=True)
    failures: list[str] = []
    checked = 0
    started = time.monotonic()
    try:
        for spec in _pages(running):
            page = b.open(spec, lang)
            checked += 1
            failures += [f"{spec.url} as {spec.as_}: {v}"
                         for v in _violations(page, spec.repeat)]
        forms = []
        for name, page in () if running else _form_pages(b, lang):
            checked += 1
            forms.append(name)
            failures += [f"{name}: {v}" for v in _violations(page)]
        assert running or tuple(forms) == FORM_PAGES, forms
    finally:
        b.close()
    print(f"axe [{lang}, {'running' if running else 'idle'}]: {checked} pages in "
          f"{time.monotonic() - started:.1f} s")
    assert not failures, (f"[{lang}] {len(failures)} WCAG 2.1 A/AA violations:\n"
                          + "\n".join(failures))
    assert not b.errors, f"JavaScript errors: {b.errors}"


# --- keyboard focus ---------------------------------------------------------------

_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
  const ring = s.boxShadow && s.boxShadow !== 'none';
  const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '');
  return {name, visible: outline || ring, focusVisible: el.matches(':focus-visible')};
}"""


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(600)
def test_keyboard_focus_is_always_visible(browser: Any, site: Site) -> None:
    """Tabbing through each kind of page (WCAG 2.4.7): every element that takes the focus
    shows it, with an outline or a ring of at least 2 px."""
    b = Browsing(browser, site, {"width": 1280, "height": 900})
    failures: list[str] = []
    seen: set[tuple[str, str]] = set()
    try:
        for spec in PAGES:
            if spec.running or (spec.route, spec.as_) in seen:
                continue
            seen.add((spec.route, spec.as_))
            page = b.open(spec, "nl")
            for _ in range(40):
                page.keyboard.press("Tab")
                found = page.evaluate(_FOCUSED)
                if found is None:
                    break
                if not found["visible"]:
                    failures.append(f"{spec.url} as {spec.as_}: {found['name']} shows no focus")
    finally:
        b.close()
    assert not failures, "\n".join(sorted(set(failures)))


# --- phones -----------------------------------------------------------------------

_OVERFLOW = """() => {
  const width = document.scrollingElement.scrollWidth;
  const outside = [];
  for (const el of document.querySelectorAll(
      'main button, main a.button-primary, main a.button-secondary, main input, main select, '
      + 'main textarea, main h1, header a, header button')) {
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || el.closest('.table-scroll, .leaflet-container, dialog')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    if (r.left < -1 || r.right > window.innerWidth + 1)
      outside.push((el.id ? '#' + el.id : el.tagName.toLowerCase() + '.' + el.className)
                   + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  const wide = [];
  if (width > window.innerWidth)
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > window.innerWidth + 1 && !el.closest('.table-scroll'))
        wide.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                  + (typeof el.className === 'string' && el.className
                     ? '.' + el.className.split(' ').join('.') : '') + ' ' + Math.round(r.right));
    }
  return {width, outside, wide: wide.slice(-6)};
}"""


@pytest.mark.browser
@needs_chromium
def test_pages_fit_a_phone(browser: Any, site: Site) -> None:
    if "running" not in site.ids:
        site.ids["running"] = _launch_running(site)
    b = Browsing(browser, site, PHONE)
    failures = []
    try:
        for lang in ("de",):  # the longest words
            for spec in PAGES:
                page = b.open(spec, lang)
                if spec.ready:  # the composer's estimate and previews come a moment later
                    page.wait_for_load_state("networkidle")
                found = page.evaluate(_OVERFLOW)
                if found["width"] > PHONE["width"]:
                    failures.append(f"[{lang}] {spec.url} as {spec.as_}: page is "
                                    f"{found['width']} px wide: {found['wide']}")
                if found["outside"]:
                    failures.append(f"[{lang}] {spec.url} as {spec.as_}: off screen: "
                                    f"{found['outside'][:5]}")
                if not page.locator("main h1").first.is_visible():
                    failures.append(f"[{lang}] {spec.url} as {spec.as_}: no visible h1")
    finally:
        b.close()
    assert not failures, "\n".join(failures)



# --- screenshots for people -------------------------------------------------------

SCREENS: tuple[tuple[str, Page], ...] = (
    ("login", Page("/login", "/login", "public")),
    ("dashboard", Page("/", "/", "operator", campaigns=True)),
    ("compose", Page("/campaigns/new", "/campaigns/new?template={template}", "operator",
                     COMPOSER_READY)),
    ("monitor-list", Page("/monitor", "/monitor", "operator", campaigns=True)),
    ("monitor-large", Page("/monitor/{campaign_id}", "/monitor/{running}?large=1", "operator",
                           running=True)),
    ("report", Page("/campaigns/{campaign_id}", "/campaigns/{finished}", "operator")),
    ("contacts", Page("/contacts", "/contacts", "admin")),
    ("answers", Page("/campaigns/{campaign_id}/answers", "/campaigns/{answers}/answers",
                     "operator")),
    ("portal-verify", Page("/register/verify", "/register/verify", "citizen-pending")),
    ("portal-profile", Page("/register/profile", "/register/profile", "citizen-new")),
    ("portal-me", Page("/me", "/me", "citizen")),
    ("portal-edit", Page("/me/edit", "/me/edit", "citizen")),
)
#: (width, languages): French and German on a computer, Dutch on a phone.
SCREEN_SIZES = ((1280, ("fr", "de")), (360, ("nl",)))


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(600)
def test_screenshots(browser: Any, site: Site) -> None:
    """PNGs of the main pages (:data:`SCREENS`, and the contact import's rows to correct)
    in French and German 1280 px wide and in Dutch 360 px wide, into
    ``$TOCSIN_SCREENSHOT_DIR`` (skipped without it): ``<page>-<lang>-<width>.png``."""
    if not SCREENSHOT_DIR:
        pytest.skip("set TOCSIN_SCREENSHOT_DIR to save screenshots")
    out = Path(SCREENSHOT_DIR)
    out.mkdir(parents=True, exist_ok=True)
    if "running" not in site.ids:
        site.ids["running"] = _launch_running(site)
    for width, languages in SCREEN_SIZES:
        b = Browsing(browser, site, {"width": width, "height": 900 if width > 360 else 740})
        try:
            for lang in languages:
                for name, spec in SCREENS:
                    page = b.open(spec, lang)
                    if spec.ready:
                        page.wait_for_load_state("networkidle")
                    page.wait_for_timeout(600)  # maps and counters settle
                    page.screenshot(path=str(out / f"{name}-{lang}-{width}.png"), full_page=True)
                for name, page in _contact_import_pages(b, lang):
                    if name == "contacts-errors":
                        page.screenshot(path=str(out / f"contacts-import-{lang}-{width}.png"),
                                        full_page=True)
        finally:
            b.close()
