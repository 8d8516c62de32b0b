"""Interface languages (issue 9.1): gettext catalogues, the language of a request, and
locale-aware formatting of dates and amounts.

The catalogues are ``src/tocsin/locale/<lang>/LC_MESSAGES/messages.po`` (Babel/gettext
PO files, the only committed form). They are compiled in memory the first time a
language is used (docs/decisions/0011), so no ``.mo`` file is built, shipped or stale.

The language of a request (:func:`choose_language`), first match wins:

1. ``?lang=fr|nl|de|en`` in the URL of this request (also remembered in the session);
2. the logged-in user's setting (``app_user.language``);
3. the language remembered in the session cookie (an earlier ``?lang=``);
4. the browser's ``Accept-Language`` (RFC 9110 §12.5.4, q-values honoured);
5. English.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from babel.core import Locale
from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal

from tocsin.core.i18n import (  # noqa: F401 - re-exported: the web layer's one i18n module
    DEFAULT_LANGUAGE,
    DOMAIN,
    LANGUAGES,
    LOCALE_DIR,
    N_,
    NP_,
    gettext,
    pgettext,
    po_path,
    translations,
)

#: Each language's own name, for the language switch.
LANGUAGE_NAMES = {"fr": "Français", "nl": "Nederlands", "de": "Deutsch", "en": "English"}
#: The session key that remembers an explicit ``?lang=`` choice.
SESSION_LANG_KEY = "lang"
BRUSSELS = ZoneInfo("Europe/Brussels")
#: The Belgian variant of each language, for dates and numbers (e.g. 1.234,5 in nl_BE).
_FORMAT_LOCALES = {"fr": "fr_BE", "nl": "nl_BE", "de": "de_BE", "en": "en_GB"}


def accepted_language(header: str | None) -> str | None:
    """The best interface language for an ``Accept-Language`` header, or None.

    Ranges are taken by q-value (ties in header order); ``nl-BE`` matches ``nl``;
    ``q=0`` excludes; ``*`` is ignored (it names no language).
    """
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if q > 0 and primary in LANGUAGES:
            ranked.append((-q, index, primary))
    return min(ranked)[2] if ranked else None


def choose_language(query_lang: str | None, user_setting: str | None,
                    session_lang: str | None, accept_language: str | None) -> str:
    """The language of a request from its four sources, in the order of the module doc."""
    for candidate in (query_lang, user_setting, session_lang):
        if candidate in LANGUAGES:
            return candidate  # type: ignore[return-value]
    return accepted_language(accept_language) or DEFAULT_LANGUAGE


def _aware(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


#: strftime formats used by the templates → CLDR patterns (the locale orders the words).
_PATTERNS = {
    "%H:%M": "HH:mm",
    "%H:%M:%S": "HH:mm:ss",
    "%Y-%m-%d %H:%M": "short",
    "%Y-%m-%d %H:%M:%S %Z": "medium",
    "%A %d %B %Y at %H:%M": "full",
}


def format_brussels(value: Any, language: str, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """An aware datetime (or ISO 8601 string) in Europe/Brussels time for ``language``.

    English keeps ``fmt`` (a strftime format); other languages use Babel's CLDR
    pattern for the Belgian locale that matches ``fmt`` (e.g. ``03/12/2026 10:25``
    in French). ``None`` or ``""`` give ``""``; an unparsable string is returned as is.
    """
    if value is None or value == "":
        return ""
    moment = _aware(value)
    if moment is None:
        return str(value)
    local = moment.astimezone(BRUSSELS)
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return local.strftime(fmt)
    pattern = _PATTERNS.get(fmt, "medium")
    locale = Locale.parse(_FORMAT_LOCALES[language])
    if pattern == "full":
        return format_datetime(local, "EEEE d MMMM y HH:mm", tzinfo=BRUSSELS, locale=locale)
    if pattern == "medium":
        # the zone's abbreviation in the locale's words (MEZ/MESZ in German) where CLDR
        # has one, else the usual CET/CEST (CLDR gives only "+0100" in French)
        zone = format_datetime(local, "z", tzinfo=BRUSSELS, locale=locale)
        if not any(ch.isalpha() for ch in zone):
            zone = local.strftime("%Z")
        return format_datetime(local, "short", tzinfo=BRUSSELS, locale=locale) + " " + zone
    return format_datetime(local, pattern, tzinfo=BRUSSELS, locale=locale)


def format_eur(value: Any, language: str) -> str:
    """An amount in EUR with 3 decimals (SMS segments cost fractions of a cent).

    English keeps ``1,234.500 €``; other languages use the Belgian locale's
    separators (``1.234,500 €`` in nl_BE). ``None``/``""`` give ``—``.
    """
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except (ArithmeticError, InvalidOperation):
        return str(value)
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return f"{amount:,.3f} €"
    return format_currency(amount, "EUR", format="#,##0.000\u00a0¤",
                           locale=_FORMAT_LOCALES[language], currency_digits=False)


def format_number(value: Any, language: str, digits: int | None = None) -> str:
    """A count or measure for ``language``: English keeps ``1,234`` (``digits`` decimals:
    ``12.5``); other languages use the Belgian locale (``1.234``, ``12,5`` in de_BE).
    ``None``/``""`` give ``—``; what is not a number is returned as text."""
    if value is None or value == "":
        return "—"
    try:
        number = Decimal(str(value))
    except (ArithmeticError, InvalidOperation):
        return str(value)
    if digits is not None:
        number = round(number, digits)
    if language not in LANGUAGES or language == DEFAULT_LANGUAGE:
        return f"{number:,.{digits}f}" if digits is not None else f"{number:,}"
    pattern = "#,##0" + ("." + "0" * digits if digits else "") if digits is not None else None
    return str(format_decimal(number, format=pattern, locale=_FORMAT_LOCALES[language]))


#: The words the pages show for the services' codes (statuses, states, channels, kinds,
#: message types), as msgids; ``label(kind, code, language)`` translates them.
LABELS: dict[str, dict[str, str]] = {
    "status": {"draft": N_("draft"), "scheduled": N_("scheduled"),
               "pending_approval": N_("awaiting approval"), "sending": N_("sending"),
               "finished": N_("finished"), "cancelled": N_("cancelled"),
               "rejected": N_("rejected"), "paused": N_("paused"), "stopped": N_("stopped")},
    "state": {"queued": N_("Queued"), "in_flight": N_("In flight"), "sent": N_("Sent"),
              "delivered": N_("Delivered"), "failed": N_("Failed"), "expired": N_("Expired"),
              "stopped": N_("Stopped")},
    "channel": {"sms": "SMS", "email": N_("E-mail"), "cap": "CAP", "voice": N_("Voice"),
                "lbsms": N_("Location SMS"), "cb": N_("Cell broadcast")},
    "kind": {"alert": N_("alert"), "warning": N_("warning"), "information": N_("information"),
             "test": N_("test"), "exercise": N_("exercise"), "group": N_("group message")},
    "label": {"Alert": N_("Alert"), "New": N_("New"), "Update": N_("Update"),
              "All clear": N_("All clear"), "Cancel": N_("Cancel")},
    "language": {"fr": N_("French"), "nl": N_("Dutch"), "de": N_("German"),
                 "en": N_("English")},
    "environment": {"simulation": N_("simulation"), "live": "LIVE"},
    "role": {"viewer": N_("viewer"), "operator": N_("operator"), "admin": N_("admin"),
             "federal_operator": N_("federal operator")},
}


def label(kind: str, code: Any, language: str) -> str:
    """The word for the service code ``code`` of ``kind`` (a key of :data:`LABELS`) in
    ``language``; an unknown code is shown as it is (underscores as spaces)."""
    english = LABELS.get(kind, {}).get(str(code))
    if english is None:
        return str(code or "").replace("_", " ")
    return gettext(language, english)


#: Params that hold an English language name (``French``), translated like the template,
#: in their running-text form (msgctxt "in a sentence": "néerlandais" in French).
_LANGUAGE_NAME_PARAMS = ("lang_name", "instead_name", "detected_name")
_IN_A_SENTENCE = (NP_("in a sentence", "French"), NP_("in a sentence", "Dutch"),
                  NP_("in a sentence", "German"), NP_("in a sentence", "English"))


def warning_text(warning: dict[str, Any], language: str) -> dict[str, Any]:
    """A service warning (``tocsin.core.errors.warning``) for ``language``: a copy with
    ``message`` translated (a warning without a template keeps its English one)."""
    out = dict(warning)
    if getattr(warning, "template", ""):
        out["message"] = error_text(SimpleNamespace(
            template=warning.template, params=warning.params,  # type: ignore[attr-defined]
            reason=warning.get("message", "")), language)
    return out


def error_text(error: Any, language: str) -> str:
    """The message of a service error in ``language`` (docs/decisions/0018).

    ``error`` carries ``template`` (its English msgid) and ``params`` (an
    ``InputError``, ``access.Denied``, a policy ``Decision``, or a stored warning dict
    ``{"template", "params", "message"}``); the template is translated and filled in
    with the params (``role``, ``status``, ``environment`` translated too, and every
    ``core.errors.Phrase`` param or ``{"template", "params"}`` dict param, recursively).
    An error without a template gives its ``reason`` (or ``str(error)``) as it is.
    """
    if isinstance(error, dict):  # a stored warning: {"template", "params", "message"}
        error = SimpleNamespace(template=error.get("template") or "",
                                params=error.get("params") or {},
                                reason=error.get("message") or error.get("reason") or "")
    template = getattr(error, "template", "") or ""
    params = dict(getattr(error, "params", None) or {})
    if not template:
        return str(getattr(error, "reason", None) or error)
    for kind in ("role", "status", "environment"):  # service codes among the params
        if kind in params:
            params[kind] = label(kind, params[kind], language)
    for key in _LANGUAGE_NAME_PARAMS:  # English language names ("Dutch")
        if key in params:
            params[key] = translations(language).upgettext("in a sentence", str(params[key]))
    for key, value in params.items():  # English phrases (core.errors.Phrase), stored or not
        if getattr(value, "template", None) is not None or (
                isinstance(value, dict) and "template" in value):
            params[key] = error_text(value, language)
    try:
        return gettext(language, template) % params if params else gettext(language, template)
    except (KeyError, TypeError, ValueError):  # a translation that lost a placeholder
        return str(getattr(error, "reason", template))
