"""Cost guard against SMS pumping (SPEC F36; issue 10 point 3): pure rules, no I/O.

SMS pumping (artificially inflated traffic) is a fraudster asking a public form to send
codes to premium or colluding number ranges and collecting a share of the termination
fee. The guard decides, from counts read in the database (``subscribers.verification``
counts them in one locked transaction, so every web process shares them), whether one
more code may leave:

- per number: 3 per 10 minutes, 10 per day, and a back-off between two codes that doubles
  from 1 minute to 32 minutes;
- per client IP address, per number prefix (the number without its last 4 digits: a
  pumping run walks one operator range), per country per day;
- only BE, NL, FR, DE and LU numbers, unless the session verified an e-mail first;
- premium-rate, shared-cost and other special numbers refused (libphonenumber
  ``number_type``), see :func:`phone_class`;
- a global daily budget of codes: a hard stop for every number and e-mail (a code said
  in a voice call counts its cost, :func:`voice_code_weight`);
- a challenge on the form (:mod:`tocsin.subscribers.challenge`), checked before.

The rules are functions of values (:func:`decide`), tested in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

import phonenumbers

from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.subscribers.rules import refused_line_type

#: Countries whose numbers get a code without an e-mail verified first (ISO 3166-1).
HOME_COUNTRIES = frozenset({"BE", "NL", "FR", "DE", "LU"})

_MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE,
                           phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


@dataclass(frozen=True)
class Limits:
    """The cost guard's limits (counts of codes that left; times in seconds)."""

    per_number_10min: int = 3
    per_number_day: int = 10
    backoff_first_s: int = 60
    backoff_max_s: int = 32 * 60
    per_ip_hour: int = 10
    per_ip_day: int = 30
    per_prefix_hour: int = 10
    per_prefix_day: int = 20
    #: codes per country per day; countries not listed: ``per_other_country_day``
    per_country_day: dict[str, int] = field(default_factory=lambda: {
        "BE": 20_000, "NL": 300, "FR": 300, "DE": 300, "LU": 100})
    per_other_country_day: int = 20
    #: the global daily budget, in codes by SMS or e-mail; a code by voice counts
    #: ``voice_weight`` (its cost in SMS codes: :func:`voice_code_weight`)
    global_day: int = 30_000
    voice_weight: int = 2


@dataclass(frozen=True)
class Counts:
    """What the database says about codes that left (``sent``), in each window up to now.

    ``number_last_at``: when the last code to this number left (None: never today).
    E-mail requests have ``country`` "" and ``prefix`` "" (their prefix counts are 0).
    Every count is of codes, whatever their channel, except ``global_day``: the budget
    used today, a voice code counting ``Limits.voice_weight``.
    """

    number_10min: int = 0
    number_day: int = 0
    number_last_at: dt.datetime | None = None
    ip_hour: int = 0
    ip_day: int = 0
    prefix_hour: int = 0
    prefix_day: int = 0
    country_day: int = 0
    global_day: int = 0


@dataclass(frozen=True)
class Decision:
    """``allowed``, else ``rule`` (stable code: ``number_10min``, ``number_day``,
    ``backoff``, ``ip``, ``prefix``, ``country``, ``budget``) and ``retry_after`` (s)."""

    allowed: bool
    rule: str = ""
    retry_after: int = 0


def backoff_seconds(sent_today: int, limits: Limits = Limits()) -> int:
    """The wait before the next code to a number that got ``sent_today`` codes today:
    0 for none, then 1, 2, 4, 8, 16, 32, 32… minutes (in seconds)."""
    if sent_today <= 0:
        return 0
    return int(min(limits.backoff_first_s * 2 ** (sent_today - 1), limits.backoff_max_s))


def decide(counts: Counts, now: dt.datetime, country: str = "",
           limits: Limits = Limits(), weight: int = 1) -> Decision:
    """May one more code leave? Checks, in order: global budget, country, prefix, IP,
    number (10 minutes, day, back-off). ``country``: the number's ISO code, "" for an
    e-mail (no country or prefix limit). ``now``: aware UTC. ``weight``: what this code
    costs of the global budget (1 for SMS and e-mail, ``limits.voice_weight`` for a
    call); every other limit counts it as one code."""
    if counts.global_day + weight > limits.global_day:
        return Decision(False, "budget", _seconds_to_midnight(now))
    if country:
        cap = limits.per_country_day.get(country, limits.per_other_country_day)
        if counts.country_day >= cap:
            return Decision(False, "country", _seconds_to_midnight(now))
        if counts.prefix_hour >= limits.per_prefix_hour:
            return Decision(False, "prefix", 3600)
        if counts.prefix_day >= limits.per_prefix_day:
            return Decision(False, "prefix", _seconds_to_midnight(now))
    if counts.ip_hour >= limits.per_ip_hour:
        return Decision(False, "ip", 3600)
    if counts.ip_day >= limits.per_ip_day:
        return Decision(False, "ip", _seconds_to_midnight(now))
    if counts.number_day >= limits.per_number_day:
        return Decision(False, "number_day", _seconds_to_midnight(now))
    if counts.number_10min >= limits.per_number_10min:
        return Decision(False, "number_10min", 600)
    if counts.number_last_at is not None:
        wait = backoff_seconds(counts.number_day, limits)
        ready = counts.number_last_at + dt.timedelta(seconds=wait)
        if ready > now:
            return Decision(False, "backoff", max(1, int((ready - now).total_seconds() + 0.999)))
    return Decision(True)


def _seconds_to_midnight(now: dt.datetime) -> int:
    tomorrow = (now.astimezone(dt.UTC) + dt.timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - now).total_seconds()))


def day_start(now: dt.datetime) -> dt.datetime:
    """00:00 UTC of ``now``'s day: the daily windows are UTC days."""
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


#: Started minutes a code call may last at most: three readings (the first and two
#: "press 1" repeats) of about 25 s each, with the key waits.
CODE_CALL_MINUTES = 2


def voice_code_weight(minute_price_eur: Decimal, sms_price_eur: Decimal,
                      minutes: int = CODE_CALL_MINUTES) -> int:
    """What a code call counts in the global budget, in SMS codes: the price of its
    longest call (``minutes`` started minutes at ``minute_price_eur``) over the price of
    one SMS segment, rounded up, at least 1 (F29 prices; a code SMS is one segment)."""
    if sms_price_eur <= 0:
        return max(1, minutes)
    return max(1, math.ceil(minute_price_eur * minutes / sms_price_eur))


def number_prefix(e164: str) -> str:
    """The number without its last 4 digits (``+32470123456`` -> ``+3247012``): the range
    a pumping run walks."""
    return e164[:-4] if len(e164) > 8 else e164


@dataclass(frozen=True)
class PhoneClass:
    """A number as the guard sees it: ``e164``, ``country`` (ISO alpha-2), ``kind``
    (``mobile`` gets SMS; ``landline`` gets a voice call)."""

    e164: str
    country: str
    kind: str


def phone_class(value: str, field_name: str = "contact",
                email_verified: bool = False) -> PhoneClass:
    """Read ``value`` (national numbers in Belgian form) and check that a code may go to it.

    Raises InputError(field_name) for a number that is not valid, a premium-rate,
    shared-cost, toll-free or other special number (code ``special_number``), or a
    number outside BE, NL, FR, DE and LU when no e-mail was verified first
    (code ``country``).
    """
    try:
        number = phonenumbers.parse(value, "BE")
    except phonenumbers.NumberParseException:
        raise InputError(field_name, N_("this is neither an e-mail address nor a phone "
                                        "number"), code="not_contact") from None
    # The line type first: an unallocated 070 number is still a shared-cost number.
    refused = refused_line_type(number)
    if refused is None and not phonenumbers.is_valid_number(number):
        raise InputError(field_name, N_("this phone number is not valid (too short, too long "
                                        "or unknown range)"), code="invalid_number")
    kind = phonenumbers.number_type(number)
    if refused is not None:
        reason = {
            "premium-rate": N_("premium-rate numbers cannot receive codes or alerts"),
            "shared-cost": N_("070 numbers and other shared-cost numbers cannot receive "
                              "codes or alerts"),
        }.get(refused, N_("special numbers (toll-free, pager, personal) cannot "
                          "receive codes or alerts"))
        raise InputError(field_name, reason, code="special_number", kind=refused)
    country = phonenumbers.region_code_for_number(number) or ""
    if country not in HOME_COUNTRIES and not email_verified:
        raise InputError(field_name, N_("codes go only to Belgian, Dutch, French, German and "
                                        "Luxembourg numbers; verify an e-mail address first "
                                        "to add another number"), code="country")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneClass(e164, country, "mobile" if kind in _MOBILE_TYPES else "landline")
