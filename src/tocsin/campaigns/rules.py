"""Campaign rules: kinds, priorities, languages, CAP mapping, e-mail mode. Pure, no I/O.

Message kinds (SPEC F12) and how each maps to CAP 1.2 (OASIS, §3.2.1 and §3.2.2):

============  ==========================  =======  ========  ======================
kind          ``status`` (live)           msgType  scope     info defaults
============  ==========================  =======  ========  ======================
alert         Actual                      Alert    Public    Safety/Immediate/Severe/Observed
warning       Actual                      Alert    Public    Safety/Expected/Moderate/Likely
information   Actual                      Alert    Public    Other/Future/Minor/Likely
test          Test                        Alert    Public    Other/Unknown/Unknown/Unknown
exercise      Exercise                    Alert    Public    Safety/Immediate/Severe/Observed
group         Actual                      Alert    Private   Other/Expected/Moderate/Likely
============  ==========================  =======  ========  ======================

Every simulation campaign is ``Exercise`` whatever its kind. An update is
``msgType`` Update, a cancellation Cancel (``cap_msg_type``). An exercise
carries the values of the alert it rehearses; ``status`` marks it. A test
checks the chain, not a hazard: ``Unknown`` urgency/severity/certainty so no
panel ranks it as a danger. ``information`` (road works, opening hours) is
planned and harmless: Future/Minor/Likely. A ``group`` message goes to a group
of contacts, not the public: CAP scope Private, never in a public feed, and
Tocsin publishes no CAP for it (the ``cap`` channel is refused).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

KINDS = ("alert", "warning", "information", "test", "exercise", "group")
CHANNELS = ("sms", "email", "cap", "voice")
#: Location-based channels (SPEC F18, F31): estimated before launch (reach and bleed,
#: ``tocsin.geo.reach``); sending them needs an operator adapter (not configured yet).
LOCATION_CHANNELS = ("lbsms", "cb")
LANGUAGES = ("fr", "nl", "de", "en")
ENVIRONMENTS = ("simulation", "live")

# ARCHITECTURE "Priority": alert > warning > information > test/exercise (lower is first).
# A group message (e.g. calling in volunteers) is operational: served like a warning.
PRIORITY = {"alert": 0, "warning": 1, "group": 1, "information": 2, "test": 3, "exercise": 3}

# CAP 1.2 §3.2.1 <info> language tags for Belgium's official languages.
CAP_LANGUAGE = {"fr": "fr-BE", "nl": "nl-BE", "de": "de-BE", "en": "en"}

#: The alert's CAP info values; kept for callers that predate ``cap_defaults``.
CAP_DEFAULTS = {"category": "Safety", "urgency": "Immediate", "severity": "Severe",
                "certainty": "Observed"}

# CAP 1.2 §3.2.2 category / urgency / severity / certainty per kind (see module docstring).
_CAP_INFO = {
    "alert": CAP_DEFAULTS,
    "warning": {"category": "Safety", "urgency": "Expected", "severity": "Moderate",
                "certainty": "Likely"},
    "information": {"category": "Other", "urgency": "Future", "severity": "Minor",
                    "certainty": "Likely"},
    "test": {"category": "Other", "urgency": "Unknown", "severity": "Unknown",
             "certainty": "Unknown"},
    "exercise": CAP_DEFAULTS,
    "group": {"category": "Other", "urgency": "Expected", "severity": "Moderate",
              "certainty": "Likely"},
}

_SUBJECT = {
    "alert": {"fr": "ALERTE", "nl": "ALARM", "de": "WARNUNG", "en": "ALERT"},
    "warning": {"fr": "Avertissement", "nl": "Waarschuwing", "de": "Vorwarnung", "en": "Warning"},
    "information": {"fr": "Information", "nl": "Informatie", "de": "Information",
                    "en": "Information"},
    "test": {"fr": "TEST", "nl": "TEST", "de": "TEST", "en": "TEST"},
    "exercise": {"fr": "EXERCICE", "nl": "OEFENING", "de": "ÜBUNG", "en": "EXERCISE"},
    "group": {"fr": "Message", "nl": "Bericht", "de": "Mitteilung", "en": "Message"},
}

#: Prefix of an update's and an all-clear's e-mail subject, per language.
_UPDATE_LABEL = {"fr": "MISE À JOUR", "nl": "UPDATE", "de": "AKTUALISIERUNG", "en": "UPDATE"}
_ALL_CLEAR_LABEL = {"fr": "FIN D'ALERTE", "nl": "EINDE ALARM", "de": "ENTWARNUNG",
                    "en": "ALL CLEAR"}
_CANCEL_LABEL = {"fr": "ANNULATION", "nl": "ANNULERING", "de": "AUFHEBUNG", "en": "CANCELLED"}

#: Default text of an all-clear, per language (``{area_name}`` is filled in).
ALL_CLEAR_TEXT = {
    "fr": "Fin de l'alerte pour {area_name}. Le danger est écarté, vous pouvez reprendre "
          "vos activités normales.",
    "nl": "Einde van het alarm voor {area_name}. Het gevaar is geweken, u kunt uw normale "
          "activiteiten hervatten.",
    "de": "Entwarnung für {area_name}. Die Gefahr ist vorüber, Sie können Ihre normalen "
          "Tätigkeiten wieder aufnehmen.",
    "en": "All clear for {area_name}. The danger is over, you may resume normal activities.",
}

#: The order in which every language is tried last (SPEC F13).
DEFAULT_FALLBACK = LANGUAGES

EmailMode = Literal["batch", "per_recipient"]

#: How long a message stays current when the operator gives no ``expires`` (CAP 1.2
#: §3.2.2 ``expires``; the active CAP feed drops it then). An alert or warning is
#: about a danger of the coming hours: a day, then the operator updates or sends
#: it again; a group call-out likewise. Information (road works, a water cut) is
#: planned and lasts: a week. A test or exercise checks the chain and must not
#: linger on panels: an hour. An update keeps its alert's expiry while more than
#: ``UPDATE_KEEPS_EXPIRY`` of it is left; an all-clear gets its own default.
DEFAULT_VALIDITY = {
    "alert": dt.timedelta(hours=24),
    "warning": dt.timedelta(hours=24),
    "group": dt.timedelta(hours=24),
    "information": dt.timedelta(days=7),
    "test": dt.timedelta(hours=1),
    "exercise": dt.timedelta(hours=1),
}
UPDATE_KEEPS_EXPIRY = dt.timedelta(hours=1)
#: The furthest ahead a campaign may be scheduled (``scheduled_for`` after now).
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)
#: The longest a message may stay current (``expires_at`` after its sending time).
#: Both bounds turn a typo (year 9999, 0001) into an error naming the field.
MAX_VALIDITY = dt.timedelta(days=366)

#: SPEC F33: times are shown and scheduled in Belgian local time, stored in UTC.
BRUSSELS = ZoneInfo("Europe/Brussels")
_LOCAL_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$")


def cap_status(kind: str, environment: str) -> str:
    """CAP 1.2 §3.2.1 ``status`` of a campaign.

    live alert, warning, information, group -> Actual; live test -> Test; live
    exercise -> Exercise; anything in simulation -> Exercise (a simulated alert
    must never be mistaken for a real one by a panel that reads it).
    """
    if environment != "live":
        return "Exercise"
    return {"test": "Test", "exercise": "Exercise"}.get(kind, "Actual")


def cap_msg_type(action: str = "alert") -> str:
    """CAP 1.2 §3.2.1 ``msgType``: ``Update`` for an update or an all-clear, ``Cancel``
    for a cancellation, ``Alert`` otherwise. ``action``: alert | update | all_clear | cancel."""
    return {"update": "Update", "all_clear": "Update", "cancel": "Cancel"}.get(action, "Alert")


def cap_scope(kind: str) -> str:
    """CAP 1.2 §3.2.1 ``scope``: ``Private`` for a group message (not for the public, never
    in a public feed), ``Public`` for every other kind."""
    return "Private" if kind == "group" else "Public"


def cap_info_defaults(kind: str) -> dict[str, str]:
    """CAP 1.2 §3.2.2 ``category``, ``urgency``, ``severity``, ``certainty`` of ``kind``
    (a copy; the operator's CAP values override them). Unknown kinds get the alert's."""
    return dict(_CAP_INFO.get(kind, CAP_DEFAULTS))


def email_mode(kind: str) -> EmailMode:
    """How e-mails of ``kind`` are sent (SPEC F12, F23).

    ``"per_recipient"`` for ``information`` (one message per recipient, with a
    signed unsubscribe link and RFC 8058 one-click ``List-Unsubscribe``);
    ``"batch"`` for every other kind (many recipients per SMTP transaction,
    ``To: undisclosed-recipients:;``, no per-recipient content).
    """
    return "per_recipient" if kind == "information" else "batch"


def kind_label(kind: str, language: str) -> str:
    """The kind's name in ``language`` as shown to recipients (``ALERTE``, ``Waarschuwing``…)."""
    return _SUBJECT.get(kind, _SUBJECT["alert"]).get(language, _SUBJECT["alert"]["en"])


def email_subject(kind: str, area_name: str, language: str, action: str = "alert") -> str:
    """The e-mail subject of a campaign: its kind in ``language`` and the area's name.

    ``action`` update / all_clear / cancel prefixes the subject (``MISE À JOUR – ALERTE –
    Beersel``; an all-clear is ``FIN D'ALERTE – Beersel``).
    """
    label = kind_label(kind, language)
    if action == "all_clear":
        return f"{_ALL_CLEAR_LABEL.get(language, _ALL_CLEAR_LABEL['en'])} – {area_name}"
    if action == "update":
        label = f"{_UPDATE_LABEL.get(language, _UPDATE_LABEL['en'])} – {label}"
    elif action == "cancel":
        label = f"{_CANCEL_LABEL.get(language, _CANCEL_LABEL['en'])} – {label}"
    return f"{label} – {area_name}"


def fallback_order(language_fallback: str | None, authority_languages: Sequence[str]) -> list[str]:
    """An authority's language fallback order (SPEC F13).

    ``language_fallback`` (e.g. ``"fr,nl,de,en"``) when set; else the
    authority's official languages, then the others in fr, nl, de, en order.
    Unknown codes are dropped; every language appears once.
    """
    given = [x.strip() for x in (language_fallback or "").split(",") if x.strip()]
    if not given:
        given = list(authority_languages)
    order = [x for x in dict.fromkeys(given) if x in LANGUAGES]
    return order + [x for x in DEFAULT_FALLBACK if x not in order]


def choose_language(subscriber_language: str | None, authority_languages: Sequence[str],
                    texts: Sequence[str]) -> str:
    """The language a recipient gets (SPEC F13).

    Their own language if a text exists in it; else the first language of
    ``authority_languages`` (the authority's fallback order, see
    ``fallback_order``) that has a text; else the first text given. Nobody is
    skipped for want of a translation. Raises ``ValueError`` when ``texts`` is empty.
    """
    if not texts:
        raise ValueError("texts: at least one text is required")
    if subscriber_language in texts:
        return subscriber_language  # type: ignore[return-value]
    for lang in authority_languages:
        if lang in texts:
            return lang
    return texts[0]


def default_expires(kind: str, sent: dt.datetime) -> dt.datetime:
    """The CAP ``expires`` of a message of ``kind`` sent at ``sent`` (aware) when the
    operator gives none: ``sent`` + ``DEFAULT_VALIDITY[kind]`` (a day for unknown kinds)."""
    return sent + DEFAULT_VALIDITY.get(kind, dt.timedelta(hours=24))


class TimeInputError(InputError):
    """A time that cannot be read (:func:`parse_local_time`): a ``ValueError`` whose
    ``str`` is the English reason alone (the caller names its field), with ``template``
    and ``params`` for the web layer to translate (docs/decisions/0018)."""

    def __init__(self, template: str, **params: object) -> None:
        super().__init__("time", template, code="time", **params)

    def __str__(self) -> str:
        return self.reason


_NOT_A_TIME = N_("%(text)s is not a time like 2026-12-01 08:00 (Europe/Brussels)")


def parse_local_time(text: str) -> dt.datetime:
    """A time written in Europe/Brussels local time, as an aware UTC datetime (SPEC F33).

    Accepts ``YYYY-MM-DD HH:MM[:SS]`` (or with ``T``), read as Belgian local time
    with its daylight-saving offset (+01:00 winter, +02:00 summer), or an
    RFC 3339 time with an explicit offset (``2026-10-25T02:30+02:00``, ``…Z``).
    Raises ``TimeInputError`` (a ``ValueError``: a reason, for the caller to name its
    field) for an
    unreadable text, a local time skipped by the spring change (02:00–03:00 on
    the last Sunday of March), one that happens twice in autumn (give the offset)
    or one outside what a UTC datetime can hold (``9999-12-31T23:59-14:00``).
    How far ahead a time may be is the caller's rule (``MAX_SCHEDULE_AHEAD``,
    ``MAX_VALIDITY``).
    """
    try:
        return _parse_local_time(text)
    except OverflowError:
        raise TimeInputError(N_("%(text)s is out of range; write a time like "
                                "2026-12-01 08:00 (Europe/Brussels)"),
                             text=repr((text or "").strip())) from None


def _parse_local_time(text: str) -> dt.datetime:
    text = (text or "").strip()
    m = _LOCAL_TIME.match(text)
    if m is None:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise TimeInputError(_NOT_A_TIME, text=repr(text)) from None
        if parsed.tzinfo is None:
            raise TimeInputError(_NOT_A_TIME, text=repr(text))
        return parsed.astimezone(dt.UTC)
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups(default="0"))
        naive = dt.datetime(y, mo, d, h, mi, sec)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    first = naive.replace(tzinfo=BRUSSELS, fold=0)
    second = naive.replace(tzinfo=BRUSSELS, fold=1)
    if first.astimezone(dt.UTC).astimezone(BRUSSELS).replace(tzinfo=None) != naive:
        raise TimeInputError(N_("%(text)s does not exist in Belgium (clocks go forward an hour "
                                "that night); choose another time"), text=text)
    if first.utcoffset() != second.utcoffset():
        raise TimeInputError(N_("%(text)s happens twice in Belgium (clocks go back that "
                                "night); write it with its offset, e.g. %(summer)s or "
                                "%(winter)s"), text=text,
                             summer=f"{naive:%Y-%m-%dT%H:%M}+02:00",
                             winter=f"{naive:%Y-%m-%dT%H:%M}+01:00")
    return first.astimezone(dt.UTC)


@dataclass(frozen=True)
class ChainMessage:
    """What the follow-up rule needs of one message of an alert chain (CAP 1.2 §3.2.1):
    its campaign ``id``, ``status`` (draft | scheduled | sending | finished |
    cancelled), ``msg_type`` (Alert | Update | Cancel) and ``response_type``
    (``AllClear`` for an all-clear, else ``None``)."""

    id: str
    status: str
    msg_type: str = "Alert"
    response_type: str | None = None


#: A follow-up refused on a closed chain, per action: cancelled by the target itself, by
#: another message of the chain; the all-clear sent (the target is it, another is).
_CANCELLED_SELF = {
    "update": N_("campaign %(id)s is cancelled (it was cancelled): a cancelled alert is "
                 "closed and cannot be updated; send a new alert instead"),
    "all_clear": N_("campaign %(id)s is cancelled (it was cancelled): a cancelled alert is "
                    "closed and cannot be given an all-clear; send a new alert instead"),
    "cancel": N_("campaign %(id)s is cancelled (it was cancelled): a cancelled alert is "
                 "closed and cannot be cancelled; send a new alert instead"),
}
_CANCELLED_OTHER = {
    "update": N_("campaign %(id)s is cancelled (campaign %(other)s of the same alert was "
                 "cancelled): a cancelled alert is closed and cannot be updated; send a new "
                 "alert instead"),
    "all_clear": N_("campaign %(id)s is cancelled (campaign %(other)s of the same alert was "
                    "cancelled): a cancelled alert is closed and cannot be given an "
                    "all-clear; send a new alert instead"),
    "cancel": N_("campaign %(id)s is cancelled (campaign %(other)s of the same alert was "
                 "cancelled): a cancelled alert is closed and cannot be cancelled; send a "
                 "new alert instead"),
}
_ALL_CLEAR_SELF = {
    "update": N_("the all-clear of this alert was sent (it is the all-clear): the alert is "
                 "over and cannot be updated; if the danger is back, send a new alert"),
    "all_clear": N_("the all-clear of this alert was sent (it is the all-clear): the alert "
                    "is over and cannot be given an all-clear; if the danger is back, send "
                    "a new alert"),
    "cancel": N_("the all-clear of this alert was sent (it is the all-clear): the alert is "
                 "over and cannot be cancelled (an all-clear cannot be taken back, and a CAP "
                 "Cancel would tell alert maps and panels to disregard it too); if the "
                 "danger is back, send a new alert"),
}
_ALL_CLEAR_OTHER = {
    "update": N_("the all-clear of this alert was sent (campaign %(other)s is its "
                 "all-clear): the alert is over and cannot be updated; if the danger is "
                 "back, send a new alert"),
    "all_clear": N_("the all-clear of this alert was sent (campaign %(other)s is its "
                    "all-clear): the alert is over and cannot be given an all-clear; if the "
                    "danger is back, send a new alert"),
    "cancel": N_("the all-clear of this alert was sent (campaign %(other)s is its "
                 "all-clear): the alert is over and cannot be cancelled (an all-clear "
                 "cannot be taken back, and a CAP Cancel would tell alert maps and panels "
                 "to disregard it too); if the danger is back, send a new alert"),
}


def follow_up_refusal(action: str, target: ChainMessage,
                      chain: Sequence[ChainMessage]) -> str | None:
    """Why ``action`` (update | all_clear | cancel) may not act on ``target``, or ``None``
    (English; :func:`follow_up_refusal_template` gives the template and its params)."""
    found = follow_up_refusal_template(action, target, chain)
    return None if found is None else found[0] % found[1]


def follow_up_refusal_template(action: str, target: ChainMessage,
                               chain: Sequence[ChainMessage]
                               ) -> tuple[str, dict[str, str]] | None:
    """Why ``action`` (update | all_clear | cancel) may not act on ``target``, as
    ``(English template, params)`` (docs/decisions/0018), or ``None``.

    ``chain``: every message of ``target``'s chain (the alert, its updates,
    all-clears and cancellation). SPEC F19, CAP 1.2 §3.2.1 (msgType Update /
    Cancel, responseType AllClear). A chain ends once:

    - it is cancelled (any message ``cancelled``, or a CAP Cancel in it): nothing
      more, not even a second cancel;
    - its all-clear was sent: the danger is over. No update (it would put the
      alert back on alert maps and panels while the operator was told it is over),
      no second all-clear, and no cancel either: an all-clear cannot be taken
      back, and a CAP Cancel of a chain that has ended would tell panels to
      disregard the all-clear as well. If the danger is back, a new alert is a
      new message.

    A draft is never followed up (launch it first); a scheduled campaign can only
    be cancelled (nothing was sent yet).
    """
    act = action if action in _CANCELLED_SELF else "update"
    if target.status == "draft":
        return N_("campaign %(id)s is a draft: launch it first"), {"id": target.id}
    closed = next((m for m in chain if m.status == "cancelled" or m.msg_type == "Cancel"), None)
    if closed is not None:
        if closed.id == target.id:
            return _CANCELLED_SELF[act], {"id": target.id}
        return _CANCELLED_OTHER[act], {"id": target.id, "other": closed.id}
    ended = next((m for m in chain if m.response_type == "AllClear"), None)
    if ended is not None:
        if ended.id == target.id:
            return _ALL_CLEAR_SELF[act], {}
        return _ALL_CLEAR_OTHER[act], {"other": ended.id}
    if target.status == "scheduled" and action != "cancel":
        return (N_("campaign %(id)s has not been sent yet (scheduled): cancel it and "
                   "schedule again"), {"id": target.id})
    return None


def cancel_summary(was_sent: bool, stopped: int, cap_cancel: bool = False) -> str:
    """What a cancellation did, in one sentence for the operator (SPEC F19).

    ``was_sent``: the message had gone out (it was not still scheduled);
    ``stopped``: deliveries that were still queued and will not be sent;
    ``cap_cancel``: a CAP Cancel was published. A scheduled message cancelled
    before it was due never sent anything, and says so rather than "stopped".
    """
    if not was_sent:
        text = "The scheduled message will not be sent; nothing had been sent."
    elif stopped:
        text = (f"{stopped:,} message{'s' if stopped != 1 else ''} not yet sent "
                f"{'were' if stopped != 1 else 'was'} stopped; those already sent cannot "
                "be recalled.")
    else:
        text = ("Nothing was left to stop: every message had already been sent, and sent "
                "messages cannot be recalled.")
    if cap_cancel:
        text += " A CAP Cancel was published: alert maps and display panels withdraw it."
    return text


def live_confirmation_problems(area_name: str, recipients: int, typed_name: str | None,
                               typed_count: int | str | None) -> list[tuple[str, str]]:
    """What is wrong with the operator's confirmation of a live launch (SPEC F34): they
    type the area name (case and surrounding spaces ignored) and the number of
    deliveries shown (``recipients``; thousands separators and spaces ignored).
    Returns ``[(field, reason)]``, empty when both match; the reason repeats the
    expected value, so that a count that changed since the estimate is shown again."""
    problems: list[tuple[str, str]] = []
    for name, template, params in live_confirmation_templates(area_name, recipients,
                                                             typed_name, typed_count):
        problems.append((name, template % params))
    return problems


def live_confirmation_templates(area_name: str, recipients: int, typed_name: str | None,
                                typed_count: int | str | None
                                ) -> list[tuple[str, str, dict[str, str]]]:
    """:func:`live_confirmation_problems` as ``[(field, English template, params)]``
    (docs/decisions/0018)."""
    problems: list[tuple[str, str, dict[str, str]]] = []
    if (typed_name or "").strip().casefold() != area_name.strip().casefold():
        problems.append(("confirm_area_name", N_("type the area name exactly: %(area)s"),
                         {"area": area_name}))
    digits = "".join(ch for ch in str(typed_count if typed_count is not None else "")
                     if ch.isdigit())
    if not digits or int(digits) != recipients:
        problems.append(("confirm_recipients", N_("type the number of deliveries: %(count)s"),
                         {"count": f"{recipients:,}".replace(",", " ")}))
    return problems


def expected_reach(channels: dict[str, dict[str, Any]]) -> int | None:
    """The phones a location-based campaign is expected to reach, inside and outside
    the area (what the operator types to confirm a live one, SPEC F34): from the
    estimate's ``channels`` (``targeting.channel_estimates``), ``lbsms`` when chosen,
    else ``cb``: ``phones_inside_expected + phones_outside_expected``. ``None`` without a
    location-based channel."""
    for channel in LOCATION_CHANNELS:
        est = channels.get(channel)
        if est and "phones_inside_expected" in est:
            return int(est["phones_inside_expected"]) + int(est["phones_outside_expected"])
    return None


def live_location_confirmation_templates(area_name: str, reach: int, typed_name: str | None,
                                         typed_count: int | str | None
                                         ) -> list[tuple[str, str, dict[str, str]]]:
    """What is wrong with a live location-based launch's typed confirmation (SPEC F34:
    its own screen, unlike the simulation's): the area name and the expected reach
    (:func:`expected_reach`), as ``[(field, English template, params)]``."""
    problems = [p for p in live_confirmation_templates(area_name, reach, typed_name,
                                                       typed_count)
                if p[0] == "confirm_area_name"]
    digits = "".join(ch for ch in str(typed_count if typed_count is not None else "")
                     if ch.isdigit())
    if not digits or int(digits) != reach:
        problems.append(("confirm_recipients", N_(
            "type the expected reach, in phones inside and outside the area: %(count)s"),
            {"count": f"{reach:,}".replace(",", " ")}))
    return problems
