"""Browser test of group answers (issue 10 point 8) in headless Chromium: the composer's
list picker and answer options launch a group message; its response board updates by
server-sent events within 2 s of an answer arriving. Reuses the platform server of
tests/test_ui_playwright.py (``op`` is an operator of Brabant wallon, 25000)."""

from __future__ import annotations

import time
from pathlib import Path

from test_ui_playwright import (  # noqa: F401
    SCREENSHOTS,
    _expect,
    _login,
    page,
    pytestmark,
    server,
)


def test_compose_to_a_list_with_answers_and_watch_the_board(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from tocsin.campaigns.answer_service import record_inbound
    from tocsin.core.db import make_engine
    from tocsin.subscribers.contacts import import_contacts

    engine = make_engine(f"sqlite:///{tmp_path / 'ui.db'}")   # the server's database
    import_contacts(engine, b"nom,gsm,e-mail\nAline,0470 00 00 01,aline@example.org\n"
                    b"Bruno,0470 00 00 02,\nChloe,0470 00 00 03,\n", "25000", "Benevoles")
    _login(page, "simulation")
    page.goto("/campaigns/new?lang=en")
    page.get_by_label("Benevoles (3 contacts)").check()
    page.locator("details.compose-answers summary").click()
    page.get_by_label("Answer options, one per line (2 to 9)").fill("Oui\nNon")
    page.get_by_label("Text in French").fill("Qui peut aider à remplir des sacs de sable ce soir ?")
    page.get_by_label("Type of message").select_option("group")
    page.get_by_label("CAP feed (alert maps, panels)").uncheck()   # a group message: no CAP
    page.wait_for_selector(".estimate-table")
    page.screenshot(path=str(SCREENSHOTS / "answers-01-composer.png"), full_page=True)
    page.get_by_role("button", name="Launch simulation…").click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    # Who it goes to, exactly: the list and its size, the answers; no area, no km², no
    # "everyone registered in the area" (issue 10 trial).
    who = page.locator("#confirm-who")
    _expect(who).to_contain_text("List “Benevoles”: 3 contacts")
    _expect(page.locator("#confirm-answers")).to_have_text("Answers collected: Oui / Non")
    assert "km²" not in dialog.inner_text() and "everyone registered" not in dialog.inner_text()
    assert "km²" not in page.locator(".estimate-area").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "answers-01b-confirm.png"), full_page=True)
    dialog.get_by_role("button", name="Launch simulation").click()
    page.wait_for_url("**/campaigns/*")
    page.locator("#open-answers").click()
    page.wait_for_url("**/answers")
    summary = page.locator("#board-summary")
    _expect(summary).to_have_text("0 of 3 people answered; 3 without an answer yet.")
    assert summary.get_attribute("aria-live") == "polite"
    page.wait_for_timeout(1500)                 # the event stream is open
    started = time.monotonic()
    record_inbound(engine, "+32470000002", "oui", via="webhook")
    # Within 2 s of the answer being stored (events every second).
    _expect(page.locator('[data-count="1"]')).to_have_text("1", timeout=2000)
    print(f"board updated {time.monotonic() - started:.2f} s after the answer")
    _expect(summary).to_have_text("1 of 3 people answered; 2 without an answer yet.")
    page.screenshot(path=str(SCREENSHOTS / "answers-02-board.png"), full_page=True)
    # The follow-up button keeps its distance from the text above it and from the next
    # heading ("Latest answers", which it touched), wide and narrow.
    button = page.get_by_role("button", name="Send the follow-up")
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        above = page.locator("#followup-title ~ form p").bounding_box()
        box = button.bounding_box()
        below = page.locator("#latest-title").bounding_box()
        assert above and box and below, width
        assert box["y"] - (above["y"] + above["height"]) >= 8, (width, above, box)
        assert below["y"] - (box["y"] + box["height"]) >= 16, (width, box, below)
    page.set_viewport_size({"width": 1280, "height": 900})
    # A campaign page seen while sending loses pause/stop when the polling reports the end.
    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import transaction

    cid = page.url.split("/campaigns/")[1].split("/")[0]
    with transaction(engine) as s:
        s.get(Campaign, cid).status = "sending"
    page.goto(f"/campaigns/{cid}?lang=en")
    _expect(page.locator("#control-stop")).to_be_visible()
    with transaction(engine) as s:
        s.get(Campaign, cid).status = "finished"
    _expect(page.locator("#control-stop")).to_have_count(0, timeout=6000)
    _expect(page.locator("#control-ended")).to_contain_text("Sending is over")
    _expect(page.locator("#live-note")).to_contain_text("Sending is over")
    engine.dispose()
