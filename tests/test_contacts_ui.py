"""Browser test of the contact-list import and the groups page, keyboard only
(issue 10 points 6-7), in headless Chromium. Reuses the platform server of
tests/test_ui_playwright.py (its seed: ``ada`` is an admin of Brabant wallon)."""

from __future__ import annotations

from pathlib import Path

from test_ui_playwright import PASSWORD, SCREENSHOTS, page, pytestmark, server  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"


def _login_keyboard(pg, username: str) -> None:  # type: ignore[no-untyped-def]
    pg.goto("/login?lang=fr")
    pg.get_by_label("Nom d’utilisateur").focus()
    pg.keyboard.type(username)
    pg.keyboard.press("Tab")
    pg.keyboard.type(PASSWORD)
    pg.locator('input[name="environment"][value="simulation"]').focus()
    pg.keyboard.press("Space")
    pg.keyboard.press("Enter")
    pg.wait_for_url("**/")


def test_import_a_list_and_make_a_group_with_the_keyboard(page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _login_keyboard(page, "ada")
    page.goto("/contacts?lang=fr")
    assert (page.locator("html").get_attribute("lang") or "").startswith("fr")
    page.get_by_label("Nom de la liste").focus()
    page.keyboard.type("Bénévoles")
    page.get_by_label("Fichier").set_input_files(str(FIXTURES / "err_unknown_column.csv"))
    page.get_by_role("button", name="Envoyer et prévisualiser").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#import-errors")
    page.screenshot(path=str(SCREENSHOTS / "contacts-01-mapping.png"))
    select = page.get_by_label("Functie")
    select.focus()
    page.keyboard.press("End")                       # the last choice: ignore the column
    assert select.input_value() == "ignore"
    page.get_by_role("button", name="Vérifier à nouveau").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#import-preview")
    assert "1 contacts : 1 nouveaux, 0 modifiés, 0 supprimés." in page.locator(
        "#import-preview").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "contacts-02-preview.png"))
    page.get_by_role("button", name="Importer", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#import-result")
    page.goto("/groups")
    page.get_by_label("Nom du groupe").focus()
    page.keyboard.type("Pompiers")
    page.keyboard.press("Enter")
    page.wait_for_selector("#groups-done")
    page.get_by_role("button", name="Appliquer").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#groups-done")
    assert page.locator("#groups tbody tr td").nth(3).inner_text() == "1"
    page.screenshot(path=str(SCREENSHOTS / "contacts-03-groups.png"))
