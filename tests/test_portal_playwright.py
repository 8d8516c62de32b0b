"""The citizen portal in headless Chromium, keyboard only (issue 10 "Done when"): register
with a mobile number in French, read the code from the test's outbox, fill in two
addresses, add an e-mail address, edit, export (JSON and CSV) and delete the profile;
afterwards no table of the database holds the number, the e-mail address or the
streets, and ``tocsin audit verify`` passes.

Every field is reached with Tab (:func:`_tab_to` presses Tab until the element has the
focus, proving it is reachable in the page's order) and filled by typing; boxes are
ticked with Space and forms sent with Enter. The form's proof of work runs in the page.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbscan import tables_holding

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed")

NUMBER = "+32470123456"
EMAIL = "camille.dupont@example.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
    """The platform on a free port with its reference data; one-time codes go to an
    in-memory outbox the test reads (no dispatch worker)."""
    import uvicorn

    from tocsin.core.db import make_engine, transaction
    from tocsin.core.migrate import upgrade
    from tocsin.core.settings import Settings
    from tocsin.dispatch.transactional import MemoryOutbox
    from tocsin.geo.reference import load_authorities
    from tocsin.web.app import create_app

    engine = make_engine(f"sqlite:///{tmp_path / 'portal.db'}")
    upgrade(engine)
    with transaction(engine) as s:
        load_authorities(s)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(var_dir=tmp_path / "var", public_base_url=base,
                        database_url=str(engine.url))
    app = create_app(engine, start_worker=False, settings=settings)
    outbox = MemoryOutbox()
    app.state.code_sender = outbox
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield base, engine, outbox
    srv.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


def _tab_to(page: Any, selector: str, limit: int = 120) -> None:
    """Press Tab until ``selector`` has the focus (fails after ``limit`` presses)."""
    target = page.locator(selector).first
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never took the focus with Tab")


def _type_into(page: Any, selector: str, text: str) -> None:
    _tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def _tick(page: Any, selector: str, on: bool = True) -> None:
    _tab_to(page, selector)
    if page.locator(selector).is_checked() != on:
        page.keyboard.press("Space")
    assert page.locator(selector).is_checked() == on


def _code(outbox: Any, address: str) -> str:
    message = outbox.last_to(address)
    assert message is not None, f"no code sent to {address}"
    return re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]


def _enter_code(page: Any, outbox: Any, address: str) -> None:
    page.wait_for_url("**/register/verify**")
    assert "Entrez votre code" in page.inner_text("h1")
    _type_into(page, "#code", _code(outbox, address))
    page.keyboard.press("Enter")




@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(300)
def test_register_edit_export_delete_with_the_keyboard(portal: tuple[str, Any, Any],
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    from playwright.sync_api import sync_playwright
    from typer.testing import CliRunner

    from tocsin.cli import app as cli

    base, engine, outbox = portal
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-BE",
                                      accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # 1. The number, in French (Accept-Language), then the code.
        page.goto(f"{base}/register")
        assert page.locator("html").get_attribute("lang") == "fr"
        assert "inscrire aux alertes" in page.inner_text("h1")
        _type_into(page, "#contact", "0470 12 34 56")
        page.keyboard.press("Enter")  # the script solves the proof of work, then sends
        _enter_code(page, outbox, NUMBER)

        # 2. The profile: two addresses, SMS (e-mail comes with an e-mail address, in
        # step 3), consent to alerts.
        page.wait_for_url("**/register/profile**")
        _tick(page, "#channels-sms")
        _type_into(page, "#addr-0-municipality", "Beersel")
        _type_into(page, "#addr-0-street", "Rue de la Gare")
        _type_into(page, "#addr-0-number", "12")
        _tab_to(page, "#addr-1-kind")
        page.keyboard.press("Home")  # the first choice, then down to "school" (3rd)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        _type_into(page, "#addr-1-municipality", "Halle")
        _type_into(page, "#addr-1-street", "Grote Markt")
        _type_into(page, "#addr-1-number", "1")
        _tick(page, "#consent_alerts")
        assert not page.locator("#consent_info").is_checked()  # unticked by default
        _tab_to(page, "form[action='/register/profile'] button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url("**/me?saved=1**")
        text = page.inner_text("main")
        assert "Rue de la Gare 12, Beersel" in text and "Grote Markt 1, Halle" in text
        assert "École" in text and NUMBER in text

        # 3. Add an e-mail address (a code to it), then edit the profile.
        _type_into(page, "#contact", EMAIL)
        page.keyboard.press("Enter")
        _enter_code(page, outbox, EMAIL)
        page.wait_for_url("**/me**")
        assert EMAIL in page.inner_text("main")
        _tab_to(page, "a[href='/me/edit']")
        page.keyboard.press("Enter")
        page.wait_for_url("**/me/edit**")
        _type_into(page, "#addr-1-street", "Basiliekstraat")
        _tick(page, "#channels-email")
        _tick(page, "#consent_info")
        _tab_to(page, "form[action='/me/edit'] button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url("**/me?saved=1**")
        assert "Basiliekstraat 1, Halle" in page.inner_text("main")

        # 4. Export, JSON and CSV.
        _tab_to(page, "a[href='/me/export.json']")
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert {c["value"] for c in data["contacts"]} == {NUMBER, EMAIL}
        assert [a["street"] for a in data["addresses"]] == ["Rue de la Gare", "Basiliekstraat"]
        assert data["general_interest_information"] is True
        assert [c["kind"] for c in data["consents"]] == ["alerts", "info", "info"]
        _tab_to(page, "a[href='/me/export.csv']")
        with page.expect_download() as download:
            page.keyboard.press("Enter")
        csv_text = Path(download.value.path()).read_text(encoding="utf-8")
        assert "Basiliekstraat 1, Halle" in csv_text and EMAIL in csv_text

        # 5. Delete at once.
        _tick(page, "#confirm")
        _tab_to(page, "form[action='/me/delete'] button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Profil supprimé")
        assert not [c for c in context.cookies() if c["name"] == "tocsin_citizen"]
        browser.close()
    assert not errors, errors

    # 6. Nothing personal left anywhere; the audit chain holds.
    needles = [NUMBER, "470123456", EMAIL, "Rue de la Gare", "Basiliekstraat", "Grote Markt"]
    assert tables_holding(engine, needles) == []
    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    from tocsin.core.db import get_engine
    from tocsin.core.settings import get_settings

    get_settings.cache_clear()
    get_engine.cache_clear()
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "chain intact" in result.stdout
