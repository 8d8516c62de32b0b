"""Pure rules of the citizen portal (issue 10 points 1–3): the cost guard, the form's
challenge, code hashing and the profile form. No database, milliseconds."""

from __future__ import annotations

import datetime as dt

import pytest

from tocsin.core.errors import InputError
from tocsin.subscribers import challenge
from tocsin.subscribers.pumping import (
    Counts,
    Limits,
    backoff_seconds,
    decide,
    number_prefix,
    phone_class,
)
from tocsin.subscribers.registration import ProfileErrors, parse_profile
from tocsin.subscribers.verification import (
    code_hash,
    code_matches,
    new_code,
    parse_contact,
)

NOW = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)


# --- cost guard ---------------------------------------------------------------------

def test_backoff_doubles_from_one_to_32_minutes() -> None:
    assert [backoff_seconds(n) // 60 for n in range(0, 9)] == [0, 1, 2, 4, 8, 16, 32, 32, 32]


@pytest.mark.parametrize(("counts", "country", "rule"), [
    (Counts(), "BE", ""),
    (Counts(number_10min=3, number_day=3), "BE", "number_10min"),
    (Counts(number_day=10), "BE", "number_day"),
    (Counts(number_day=1, number_last_at=NOW - dt.timedelta(seconds=30)), "BE", "backoff"),
    (Counts(number_day=1, number_last_at=NOW - dt.timedelta(seconds=61)), "BE", ""),
    (Counts(number_day=5, number_last_at=NOW - dt.timedelta(minutes=15)), "BE", "backoff"),
    (Counts(ip_hour=10), "BE", "ip"),
    (Counts(ip_day=30), "", "ip"),
    (Counts(prefix_hour=10), "BE", "prefix"),
    (Counts(prefix_day=20), "BE", "prefix"),
    (Counts(prefix_day=20), "", ""),  # e-mail: no prefix
    (Counts(country_day=300), "NL", "country"),
    (Counts(country_day=20), "US", "country"),
    (Counts(global_day=30_000), "", "budget"),
    (Counts(global_day=30_000, number_day=0), "BE", "budget"),
])
def test_decide(counts: Counts, country: str, rule: str) -> None:
    decision = decide(counts, NOW, country)
    assert decision.allowed == (rule == "")
    assert decision.rule == rule
    if rule:
        assert decision.retry_after > 0


def test_backoff_says_how_long_to_wait() -> None:
    d = decide(Counts(number_day=2, number_last_at=NOW - dt.timedelta(seconds=20)), NOW, "BE")
    assert (d.rule, d.retry_after) == ("backoff", 100)


def test_limits_are_parameters() -> None:
    assert not decide(Counts(ip_hour=2), NOW, "BE", Limits(per_ip_hour=2)).allowed


def test_number_prefix() -> None:
    assert number_prefix("+32470123456") == "+3247012"


@pytest.mark.parametrize(("text", "code"), [
    ("0900 12 345", "special_number"),     # Belgian premium rate
    ("078 15 17 89", "special_number"),    # Belgian shared cost (078)
    ("0800 12 345", "special_number"),     # toll-free
    ("+1 202 555 0143", "country"),
    ("+39 312 345 6789", "country"),
    ("0470 12 34", "invalid_number"),
])
def test_phone_class_refuses(text: str, code: str) -> None:
    with pytest.raises(InputError) as exc:
        phone_class(text)
    assert (exc.value.field, exc.value.code) == ("contact", code)


@pytest.mark.parametrize("text", ["070 24 52 45", "+32 70 24 52 45", "070 12 34 56"])
def test_phone_class_calls_070_a_shared_cost_number_in_every_language(text: str) -> None:
    """libphonenumber files Belgian 070 under premium rate: the citizen is told it is a
    shared-cost number, in their language (issue 10 trial)."""
    from tocsin.core.i18n import gettext

    with pytest.raises(InputError) as exc:
        phone_class(text)
    assert exc.value.params["kind"] == "shared-cost"
    assert "070" in exc.value.template and "shared-cost" in exc.value.template
    for lang in ("fr", "nl", "de"):
        said = gettext(lang, exc.value.template)
        assert said != exc.value.template and "070" in said, lang


def test_phone_class_accepts_home_countries_and_foreign_after_an_email() -> None:
    assert phone_class("0470 12 34 56").e164 == "+32470123456"
    assert phone_class("0470 12 34 56").kind == "mobile"
    assert phone_class("+31 6 12345678").country == "NL"
    assert phone_class("+352 621 123 456").country == "LU"
    assert phone_class("02 555 12 34").kind == "landline"
    assert phone_class("+39 312 345 6789", email_verified=True).country == "IT"


# --- contact parsing: hostile input --------------------------------------------------

@pytest.mark.parametrize(("text", "code"), [
    ("", "missing"),
    ("a@b\r\nBcc: x@y.org", "control_characters"),
    ("0470\n123456", "control_characters"),
    ("x" * 400 + "@example.org", "too_long"),
    ("not an address", "not_contact"),
    ("alice@", "invalid_email"),
])
def test_parse_contact_refuses_with_the_field(text: str, code: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_contact(text)
    assert (exc.value.field, exc.value.code) == ("contact", code)


def test_parse_contact() -> None:
    assert parse_contact(" Alice@Example.ORG ") == ("email", "Alice@example.org", "")
    assert parse_contact("+32 470 12 34 56") == ("mobile", "+32470123456", "BE")


# --- challenge ----------------------------------------------------------------------

def test_challenge_solved_or_waited() -> None:
    token = challenge.issue("k", NOW)
    solution = challenge.solve(token, 8)
    nonce = challenge.check("k", token, solution, NOW, difficulty=8)
    assert len(nonce) == 16
    with pytest.raises(InputError) as exc:  # no script, too fast
        challenge.check("k", token, "", NOW + dt.timedelta(seconds=2), difficulty=8)
    assert exc.value.code == "challenge_wait" and exc.value.params["seconds"] == 6
    assert challenge.check("k", token, "", NOW + dt.timedelta(seconds=9), difficulty=8) == nonce


@pytest.mark.parametrize("bad", ["", "v1.1.2", "v1.x.abc.def", "é" * 300])
def test_challenge_forged_or_missing(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        challenge.check("k", bad, "1", NOW)
    assert exc.value.field == "challenge"


def test_challenge_of_another_key_or_too_old() -> None:
    token = challenge.issue("other", NOW)
    with pytest.raises(InputError):
        challenge.check("k", token, challenge.solve(token, 4), NOW, difficulty=4)
    token = challenge.issue("k", NOW - dt.timedelta(hours=1))
    with pytest.raises(InputError) as exc:
        challenge.check("k", token, challenge.solve(token, 4), NOW, difficulty=4)
    assert exc.value.code == "challenge_expired"


def test_leading_zero_bits() -> None:
    assert challenge.leading_zero_bits(bytes([0, 0x0F, 0xFF])) == 12
    assert challenge.leading_zero_bits(bytes([0x80])) == 0


# --- codes --------------------------------------------------------------------------

def test_codes_are_six_digits_hashed_and_bound_to_the_session() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    stored = code_hash("k", "session-a", "012345")
    assert "012345" not in stored
    assert code_matches(stored, "k", "session-a", "012345")
    assert not code_matches(stored, "k", "session-b", "012345")
    assert not code_matches(stored, "k", "session-a", "012346")
    assert not code_matches(stored, "k", "session-a", "ü" * 6)


# --- profile form -------------------------------------------------------------------

def _form(**extra: str) -> dict[str, str]:
    form = {"language": "fr", "channels": "sms", "accessibility": "none",
            "addr-0-kind": "home", "addr-0-municipality": "Beersel",
            "addr-0-street": "Rue de la Gare", "addr-0-number": "12",
            "consent_alerts": "yes"}
    form.update(extra)
    return form


def test_profile_form() -> None:
    p = parse_profile(_form(**{"addr-1-kind": "work", "addr-1-municipality": "Halle",
                               "addr-1-street": "Markt", "addr-1-number": "1",
                               "primary": "1", "consent_info": "yes"}))
    assert [a.municipality for a in p.addresses] == ["Halle", "Beersel"]
    assert p.consent_info and p.consent_alerts and p.channels == ("sms",)


def test_profile_form_blind_prefers_voice() -> None:
    assert parse_profile(_form(accessibility="blind")).channels == ("sms", "voice")


def _errors(form: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ProfileErrors) as exc:
        parse_profile(form)
    return {e.field: e.code for e in exc.value.errors}


def test_profile_form_errors_name_every_field() -> None:
    errors = _errors(_form(language="xx", channels="voice", accessibility="deaf",
                           consent_alerts="", **{"addr-0-street": "",
                                                 "addr-1-municipality": "Halle\r\nX",
                                                 "addr-2-number": "9" * 50}))
    assert errors == {"language": "language", "channels": "deaf_voice",
                      "consent_alerts": "consent_required", "addr-0-street": "missing",
                      "addr-1-municipality": "control_characters", "addr-1-street": "missing",
                      "addr-2-number": "too_long", "addr-2-municipality": "missing",
                      "addr-2-street": "missing"}


def test_profile_form_at_most_five_addresses() -> None:
    assert _errors(_form(**{"addr-5-municipality": "Halle", "addr-5-street": "X"})) == {
        "addresses": "too_many"}
    assert _errors({"language": "fr", "channels": "sms", "consent_alerts": "yes"}) == {
        "addr-0-municipality": "no_address"}
