"""Cell-broadcast rules (issue 11, point 5): pages, message identifiers, serial numbers,
the ECBE body (3GPP TS 23.041 §9.4.1.2; osmo-cbc ``cbc.schema.json``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tocsin.channels import cell_broadcast as cb


def test_page_sizes():
    assert cb.pages("a" * 93).units == [93]
    assert cb.pages("a" * 94).units == [93, 1]
    assert cb.pages("é" * 93).encoding == "GSM-7"  # é is in the GSM-7 alphabet
    ucs = cb.pages("ł" * 42)
    assert ucs.encoding == "UCS-2" and ucs.units == [41, 1]


def test_fifteen_pages_fit_sixteen_do_not():
    assert cb.pages("a" * 1395).count == 15
    with pytest.raises(cb.CbError) as err:
        cb.pages("a" * 1396)
    assert err.value.field == "text" and "shorten it by 1" in err.value.reason
    assert cb.pages("ł" * 615).count == 15
    with pytest.raises(cb.CbError, match="at most 15 pages of 41 UCS-2"):
        cb.pages("ł" * 616)


def test_escape_pairs_and_surrogates_are_never_split():
    text = "a" * 92 + "€" + "b"  # € is an escape pair (2 septets)
    p = cb.pages(text)
    assert p.pages[0] == "a" * 92 and p.pages[1].startswith("€") and p.units == [92, 3]
    emoji = "ł" * 40 + "🙂"  # a surrogate pair: 2 UTF-16 units
    q = cb.pages(emoji)
    assert q.pages == ["ł" * 40, "🙂"] and q.units == [40, 2]


@given(st.text(min_size=1, max_size=700))
def test_pages_rebuild_the_text_within_their_size(text):
    try:
        p = cb.pages(text)
    except cb.CbError:
        return
    assert "".join(p.pages) == text
    assert all(0 < u <= cb.CB_PAGE_CHARS[p.encoding] for u in p.units)
    assert p.count <= 15


def test_empty_text_is_refused():
    with pytest.raises(cb.CbError, match="empty"):
        cb.pages("")


@pytest.mark.parametrize("args, expected", [
    (("alert", "Extreme", "Immediate", "Observed"), 4371),
    (("alert", "Extreme", "Immediate", "Likely"), 4372),
    (("alert", "Severe", "Expected", "Likely"), 4378),
    (("warning", "Moderate", "Future", "Possible"), 4396),
    (("information",), 4396),
    (("test",), 4380),
    (("exercise",), 4381),
])
def test_message_ids(args, expected):
    assert cb.message_id(*args) == expected


def test_additional_language_ids():
    assert cb.message_id("alert", "Extreme", "Immediate", "Observed", "additional") == 4384
    assert cb.message_id("test", lang_role="additional") == 4393
    assert cb.message_id("exercise", lang_role="additional") == 4394
    assert cb.message_id("information", lang_role="additional") == 4397
    assert cb.message_id("test", eu_test=True) == 4398
    assert cb.message_id("test", eu_test=True, lang_role="additional") == 4399
    assert cb.message_id("alert", presidential=True) == 4370
    assert cb.message_id("alert", presidential=True, lang_role="additional") == 4383


def test_unknown_kind_and_role_are_named():
    with pytest.raises(cb.CbError) as err:
        cb.message_id("group")
    assert err.value.field == "kind"
    with pytest.raises(cb.CbError) as err:
        cb.message_id("alert", lang_role="third")
    assert err.value.field == "lang_role"


def test_serial_number_layout():
    assert cb.serial_number("plmn_wide", 17, 0) == (1 << 14) | (17 << 4)
    assert cb.serial_number("cell_wide", 1023, 15) == 0xFFFF
    assert cb.decode_serial_number(cb.serial_number("lac_sac_tac_wide", 5, 3)) == {
        "geo_scope": "lac_sac_tac_wide", "msg_code": 5, "update_nr": 3}


@pytest.mark.parametrize("args, field", [
    (("world", 1, 0), "geo_scope"), (("plmn_wide", 1024, 0), "msg_code"),
    (("plmn_wide", -1, 0), "msg_code"), (("plmn_wide", 1, 16), "update_nr"),
])
def test_serial_number_ranges(args, field):
    with pytest.raises(cb.CbError) as err:
        cb.serial_number(*args)
    assert err.value.field == field


def test_update_number_wraps_and_keeps_code():
    s = cb.serial_number("plmn_wide", 300, 14)
    assert cb.decode_serial_number(cb.next_update(s))["update_nr"] == 15
    wrapped = cb.decode_serial_number(cb.next_update(cb.next_update(s)))
    assert wrapped == {"geo_scope": "plmn_wide", "msg_code": 300, "update_nr": 0}


def test_message_codes_are_not_reused_while_active():
    assert cb.allocate_msg_code(set()) == 0
    assert cb.allocate_msg_code({0, 1, 2}) == 3
    assert cb.allocate_msg_code({5}, after=4) == 6
    assert cb.allocate_msg_code({1023, 0}, after=1022) == 1
    with pytest.raises(cb.CbError, match="all 1,024"):
        cb.allocate_msg_code(set(range(1024)))


def test_ecbe_body_follows_the_osmo_cbc_schema():
    body = cb.ecbe_message(cbe_name="tocsin-nccn", message_id=4371,
                           serial=cb.serial_number("plmn_wide", 17, 0),
                           text="Restez à l'intérieur.", language="fr",
                           warning_period_sec=3600)
    assert body == {
        "cbe_name": "tocsin-nccn", "category": "high_priority", "repetition_period": 60,
        "num_of_bcast": 0, "scope": {"scope_plmn": {}}, "warning_period_sec": 3600,
        "smscb_message": {
            "message_id": 4371,
            "serial_nr": {"serial_nr_decoded": {"geo_scope": "plmn_wide", "msg_code": 17,
                                                "update_nr": 0}},
            "payload": {"payload_decoded": {"character_set": "gsm", "language": "fr",
                                            "data_utf8": "Restez à l'intérieur."}}}}
    ucs = cb.ecbe_message(cbe_name="x", message_id=4371, serial=0, text="Łódź", language="en")
    assert ucs["smscb_message"]["payload"]["payload_decoded"]["character_set"] == "ucs2"
    assert "warning_period_sec" not in ucs


@pytest.mark.parametrize("change, field", [
    ({"repetition_period": 0}, "repetition_period"),
    ({"repetition_period": 4096}, "repetition_period"),
    ({"num_of_bcast": 65536}, "num_of_bcast"),
    ({"warning_period_sec": 3601}, "warning_period_sec"),
    ({"message_id": 70000}, "message_id"),
    ({"language": "fra"}, "language"),
    ({"category": "urgent"}, "category"),
    ({"cbe_name": " "}, "cbe_name"),
    ({"text": "a" * 1396}, "text"),
])
def test_ecbe_body_refuses_bad_values(change, field):
    args = {"cbe_name": "tocsin", "message_id": 4371, "serial": 0, "text": "x",
            "language": "fr", **change}
    with pytest.raises(cb.CbError) as err:
        cb.ecbe_message(**args)
    assert err.value.field == field
