"""The address register in the portal, in headless Chromium, keyboard only (issue 10
point 4): the fields suggest municipality, street, number and box from the register
(native ``<datalist>``, filled by ``static/portal.js``); a number the register lacks is
refused with the nearest ones, and the row then offers the pin fields, which save the
address as "placed by you on the map"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from test_portal_playwright import (  # noqa: F401 - the fixture is used by name
    CHROMIUM,
    NUMBER,
    _enter_code,
    _tab_to,
    _tick,
    _type_into,
    needs_chromium,
    portal,
)

SAMPLE = Path(__file__).resolve().parent.parent / "src/tocsin/subscribers/data" \
    / "best-address-sample.csv"


def _offers(page: Any, field: str, value: str) -> None:
    page.wait_for_selector(f'#{field}-options option[value="{value}"]', state="attached",
                           timeout=10_000)


@pytest.mark.browser
@needs_chromium
@pytest.mark.timeout(300)
def test_autocomplete_and_pin_with_the_keyboard(portal: tuple[str, Any, Any]  # noqa: F811
                                                ) -> None:
    from playwright.sync_api import sync_playwright

    from tocsin.geo.addresses import import_addresses

    base, engine, outbox = portal
    import_addresses(engine, SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True),
                     SAMPLE.name)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_context(viewport={"width": 390, "height": 844},
                                   locale="fr-BE").new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/register")
        _type_into(page, "#contact", "0470 12 34 56")
        page.keyboard.press("Enter")
        _enter_code(page, outbox, NUMBER)
        page.wait_for_url("**/register/profile**")
        _tick(page, "#channels-sms")
        _type_into(page, "#addr-0-municipality", "brux")
        _offers(page, "addr-0-municipality", "Bruxelles")
        _type_into(page, "#addr-0-municipality", "Bruxelles")
        _type_into(page, "#addr-0-street", "chaussée de hae")
        _offers(page, "addr-0-street", "Chaussée de Haecht")
        _type_into(page, "#addr-0-street", "Chaussée de Haecht")
        _type_into(page, "#addr-0-number", "184")
        _offers(page, "addr-0-number", "1840")
        _type_into(page, "#addr-0-number", "1841")
        _tab_to(page, "#addr-0-box")
        _tick(page, "#consent_alerts")
        page.keyboard.press("Enter")
        page.wait_for_selector("#addr-0-number-error")
        assert "1840" in page.inner_text("#addr-0-number-error")
        _type_into(page, "#addr-0-number", "1840")
        _tab_to(page, "#addr-0-box")
        _offers(page, "addr-0-box", "b007")
        _type_into(page, "#addr-0-number", "1841")
        _type_into(page, "#addr-0-lat", "50.8889")
        _type_into(page, "#addr-0-lon", "4.4253")
        page.keyboard.press("Enter")
        page.wait_for_url("**/me?saved=1**")
        assert "placée par vous sur la carte" in page.inner_text("main")
        assert errors == []
        browser.close()
