"""Browser test of the operator platform (issue item 8) with Debian's Chromium.

Logs in (simulation), draws a polygon with Leaflet-Geoman, writes the text,
launches, waits for the final report; then checks the LIVE confirmation step
(F34) without sending. Screenshots go to ``screenshots/`` (gitignored).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
PASSWORD = "correct horse battery staple"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) "
                                                     "is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _square(lon0: float, lat0: float, lon1: float, lat1: float) -> dict:
    return {"type": "Polygon",
            "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1],
                             [lon0, lat0]]]}


def _seed(engine) -> None:  # type: ignore[no-untyped-def]
    from tocsin.authorities import services as authorities
    from tocsin.authorities.models import Authority
    from tocsin.core.db import transaction
    from tocsin.subscribers.importer import import_subscribers

    def authority(id_: str, kind: str, name: str, parent: str | None, g: dict) -> Authority:
        ring = g["coordinates"][0]
        return Authority(
            id=id_, kind=kind, name_fr=name, name_nl=name, parent_id=parent, languages="fr",
            agreement_type=1, population=1000, territory=json.dumps(g),
            min_lon=min(p[0] for p in ring), min_lat=min(p[1] for p in ring),
            max_lon=max(p[0] for p in ring), max_lat=max(p[1] for p in ring))

    with transaction(engine) as s:
        s.add(authority("25000", "province", "Brabant wallon", None,
                        _square(4.5, 50.6, 4.7, 50.8)))
        s.flush()
        s.add(authority("25112", "municipality", "Wavre", "25000", _square(4.5, 50.6, 4.6, 50.8)))
        s.add(authority("25084", "municipality", "Ottignies-Louvain-la-Neuve", "25000",
                        _square(4.6, 50.6, 4.7, 50.8)))
    authorities.create_user(engine, "op", PASSWORD, "25000", display_name="Olivia Operator")
    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    for i in range(40):
        lang = "fr" if i % 4 else "nl"
        lon = 4.52 + (i % 8) * 0.01  # inside Wavre, around the middle of the square
        lat = 50.66 + (i // 8) * 0.015
        lines.append(f"S{i:03d},{lang},+324701234{i:02d},person{i}@example.org,{lat},{lon}")
    report = import_subscribers(engine, ("\n".join(lines) + "\n").encode())
    assert report.ok, report.errors
    _seed_templates(engine)


def _seed_templates(engine) -> None:  # type: ignore[no-untyped-def]
    from tocsin.messages.templates import TemplateInput, create_template

    for data in (
        TemplateInput(name="Incendie industriel – confinement", kind="alert",
                      channels=["sms", "email", "cap"], area_nis="25112",
                      description="Fumées toxiques : la population reste à l'intérieur.",
                      texts={"fr": "ALERTE {area_name} {time}: incendie industriel, fumées. "
                                   "Restez à l'intérieur, fermez portes et fenêtres."}),
        TemplateInput(name="Coupure d'eau", kind="information", channels=["sms", "email"],
                      fields=["street"],
                      texts={"fr": "INFO {area_name}: l’eau sera coupée {street} demain « de "
                                   "8h à 12h » pour travaux. Prévoyez une réserve d’eau."}),
    ):
        create_template(engine, "25000", data, actor="op", role="operator")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    from tocsin.core.db import make_engine
    from tocsin.core.migrate import upgrade
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    engine = make_engine(f"sqlite:///{tmp_path / 'ui.db'}")
    upgrade(engine)
    _seed(engine)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(var_dir=tmp_path / "var", public_base_url=base,
                        database_url=str(engine.url))
    app = create_app(engine, start_worker=True, settings=settings)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield base
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def page(server: str) -> Iterator:  # type: ignore[type-arg]
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"


def _login(page, environment: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.get_by_label("Username").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator(f'input[name="environment"][value="{environment}"]').check()
    page.screenshot(path=str(SCREENSHOTS / f"00-login-{environment}.png"))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def _open_composer(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("link", name="New alert").first.click()
    page.wait_for_url("**/campaigns/new")
    # the map layers are loaded when the municipalities fill the select
    _expect(page.locator("#municipality option")).to_have_count(3)


def test_draw_launch_and_follow_a_simulation(page) -> None:  # type: ignore[no-untyped-def]
    _login(page, "simulation")
    assert page.locator(".env-banner-simulation").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "01-dashboard.png"), full_page=True)

    _open_composer(page)
    page.screenshot(path=str(SCREENSHOTS / "02-composer-empty.png"), full_page=True)

    # Draw a polygon inside the western municipality with Geoman: click the vertices,
    # then the first vertex again to close it.
    page.locator(".leaflet-pm-icon-polygon").click()
    box = page.locator("#map").bounding_box()
    assert box is not None
    pts = [(0.32, 0.30), (0.47, 0.30), (0.47, 0.72), (0.32, 0.72), (0.32, 0.30)]
    for fx, fy in pts:
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_timeout(150)
    _expect(page.locator("#area-label")).to_have_text("drawn area")

    page.get_by_label("Text in French").fill(
        "EXERCICE Tocsin: incendie simulé à Wavre. Restez à l'intérieur, fermez portes et "
        "fenêtres.")
    page.get_by_label("Type of message").select_option("exercise")
    page.wait_for_selector(".estimate-table")
    sms_count = int(page.locator(".estimate-table tbody tr").first
                    .locator("td.num").inner_text().replace(",", ""))
    assert sms_count > 0
    page.screenshot(path=str(SCREENSHOTS / "03-composer-estimate.png"), full_page=True)

    page.get_by_role("button", name="Launch simulation…").click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    page.screenshot(path=str(SCREENSHOTS / "04-confirm-simulation.png"))
    dialog.get_by_role("button", name="Launch simulation").click()

    page.wait_for_url("**/campaigns/*")
    try:
        page.wait_for_selector("#h-final", timeout=60_000)
    finally:
        page.screenshot(path=str(SCREENSHOTS / "05-campaign-report.png"), full_page=True)
    assert page.locator("#campaign-status").text_content() == "finished"
    page.screenshot(path=str(SCREENSHOTS / "05-campaign-report.png"), full_page=True)
    assert page.get_by_role("link", name="Download report (JSON)").is_visible()

    page.get_by_role("link", name="Campaigns", exact=True).click()
    page.wait_for_url("**/")
    assert page.locator("table.data tbody tr").count() == 1


def test_live_launch_needs_the_typed_area_name(page) -> None:  # type: ignore[no-untyped-def]
    _login(page, "live")
    assert page.locator(".env-banner-simulation").count() == 0
    _open_composer(page)
    page.get_by_label("Whole municipality").select_option("25112")
    for name in ("SMS", "E-mail"):
        page.get_by_label(name, exact=True).uncheck()
    page.get_by_label("Text in French").fill("ALERTE: incendie à Wavre.")
    page.wait_for_selector("text=CAP feed only: no SMS or e-mail recipients.")
    page.get_by_role("button", name="Review LIVE launch…").click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    go = dialog.get_by_role("button", name="Send LIVE alert now")
    assert go.is_disabled()
    dialog.get_by_label("To confirm, type the area name").fill("Ottignies")
    assert go.is_disabled()
    dialog.get_by_label("To confirm, type the area name").fill("wavre")
    assert go.is_enabled()
    page.screenshot(path=str(SCREENSHOTS / "06-confirm-live.png"))
    dialog.get_by_role("button", name="Cancel").click()
    assert not dialog.is_visible()


def test_launch_a_template_in_three_steps(page) -> None:  # type: ignore[no-untyped-def]
    """F15: from the dashboard, pick (Use), check (the estimate comes by itself), launch
    (confirm): three user actions to a sent campaign, in simulation."""
    _login(page, "simulation")
    page.screenshot(path=str(SCREENSHOTS / "10-dashboard-templates.png"), full_page=True)
    actions = 0

    def act(locator) -> None:  # type: ignore[no-untyped-def]
        nonlocal actions
        actions += 1
        locator.click()

    card = page.locator(".template-card", has_text="Incendie industriel")
    act(card.get_by_role("link", name="Use"))                                   # 1. pick
    page.wait_for_url("**/campaigns/new?template=*")
    _expect(page.locator("#area-label")).to_have_text("Wavre")
    _expect(page.locator("#kind-sentence")).to_contain_text("This is an ALERT")
    page.wait_for_selector(".estimate-table")  # the check: estimate shown without a click
    _expect(page.locator("#count-fr")).to_contain_text("SMS segments")  # ê forces UCS-2
    _expect(page.locator("#who-fr")).to_contain_text("Gets the French text")
    page.screenshot(path=str(SCREENSHOTS / "11-template-check.png"), full_page=True)
    act(page.get_by_role("button", name="Launch simulation…"))                  # 2. launch
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    _expect(dialog.locator(".confirm-kind")).to_contain_text("This is an ALERT")
    page.screenshot(path=str(SCREENSHOTS / "12-template-confirm.png"))
    act(dialog.get_by_role("button", name="Launch simulation"))                 # 3. confirm
    page.wait_for_url("**/campaigns/*")
    page.wait_for_selector("#h-final", timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "13-template-report.png"), full_page=True)
    assert actions <= 3
    assert page.locator("#campaign-status").text_content() == "finished"
    processed = page.locator('.progress-row[data-channel="sms"] [data-role="text"]').inner_text()
    assert processed.startswith("40 / 40"), processed  # every SMS subscriber in Wavre
    assert "ALERTE Wavre" in page.locator("dl.texts").inner_text()  # placeholders filled


def test_composer_sms_preview_rewrite_and_fields(page) -> None:  # type: ignore[no-untyped-def]
    """F13/F14: the UCS-2 characters are shown, one click rewrites them in GSM-7; free
    fields get an input; the template list and a phone-width composer render."""
    _login(page, "simulation")
    page.get_by_role("link", name="Templates", exact=True).click()
    page.wait_for_url("**/templates")
    page.screenshot(path=str(SCREENSHOTS / "20-template-list.png"), full_page=True)
    page.locator(".template-card", has_text="Coupure d'eau").get_by_role("link", name="Use").click()
    page.wait_for_url("**/campaigns/new?template=*")
    _expect(page.locator("#kind-sentence")).to_contain_text("opted in")
    preview = page.locator("#preview-fr")
    _expect(preview.locator(".char-count")).to_contain_text("UCS-2")
    _expect(preview.locator(".sms-ucs2 mark")).to_have_count(3)  # ’ « »
    page.get_by_label("Street").fill("rue de Namur")
    _expect(page.locator("#municipality option")).to_have_count(3)
    page.get_by_label("Whole municipality").select_option("25112")
    page.wait_for_selector(".estimate-table")
    page.screenshot(path=str(SCREENSHOTS / "21-composer-sms-preview.png"), full_page=True)
    preview.get_by_role("button", name="Rewrite in GSM-7").click()
    _expect(preview.locator(".char-count")).to_contain_text("GSM-7")
    text = page.get_by_label("Text in French").input_value()
    assert "’" not in text and "«" not in text and "{street}" in text
    page.locator("#panel-fr details.advanced summary").click()
    _expect(page.locator("#voice-est-fr")).to_contain_text("per answered call")
    listen = page.get_by_role("button", name="Listen (FR)")
    listen.click()  # audio when espeak-ng is installed, else a note and a disabled button
    _expect(page.locator("#audio-fr:not([hidden]), #voice-note-fr:not([hidden])")).to_have_count(1)
    # a French text filed under Dutch is flagged on its tab
    page.get_by_role("tab", name="NL Dutch").click()
    page.get_by_label("Text in Dutch").fill(
        "INFO Wavre: l'eau sera coupée demain de 8h à 12h pour des travaux sur le réseau.")
    _expect(page.locator("#langwarn-nl")).to_be_visible()
    _expect(page.locator("#tab-state-nl")).to_contain_text("check language")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "22-composer-phone.png"), full_page=True)


def _expect(locator):  # type: ignore[no-untyped-def]
    # Locator assertions poll from Python: no string evaluated in the page, which the
    # app's Content-Security-Policy (no 'unsafe-eval') would refuse.
    from playwright.sync_api import expect

    return expect(locator)
