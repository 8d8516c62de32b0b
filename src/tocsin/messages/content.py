"""Per-language, per-channel content of a campaign (SPEC F13). Pure functions, no I/O.

A campaign has one base text per language (the SMS text, ``texts``) and, at
launch, a COMPLETE content per language: every field of ``CONTENT_FIELDS``
filled, either from the operator's override or from a default derived from
the base text, the kind and the area's name:

==================  ==============================================================
field               default
==================  ==============================================================
sms                 the base text
voice               the base text (the script read by text-to-speech)
email_subject       ``rules.email_subject`` (kind and area name in the language)
email_text          the base text (the plain-text body)
email_html          ``email_text`` HTML-escaped in paragraphs + a footer naming the
                    authority (an override is plain text too: operators never
                    write raw HTML into an alert)
cap_event           the operator's CAP ``event``, else the kind's name
cap_headline        the e-mail subject, at most ``CAP_HEADLINE_MAX`` characters
cap_description     the base text
cap_instruction     empty unless given
==================  ==============================================================

Placeholders ``{area_name}`` (the area's name in that language), ``{time}``
(Europe/Brussels ``HH:MM``) and free fields ``{name}`` (values in ``fields``)
are substituted in texts, overrides and the operator's CAP ``event``; one left
unfilled, or a brace that opens no placeholder, is a ``ContentError`` naming
``text.<lang>``, ``content.<lang>.<field>`` or ``cap.event``.

Limits (characters, checked before and after placeholders are filled, so a
10 MB text is refused before any work): the base text and ``sms``/``voice``
5,000 (an SMS is further bounded by the authority's segment maximum);
``email_subject`` 200; ``email_text``/``email_html`` 50,000; ``cap_event`` 200
(as the CAP ``event`` parameter); ``cap_headline`` 160 (CAP 1.2 §3.2.2 wants it
brief, under 160); ``cap_description``/``cap_instruction`` 10,000; a free field
value 1,000. With four languages the CAP alert stays far below the 1 MiB that
``tocsin cap validate`` accepts. ``email_subject``, ``cap_event`` and
``cap_headline`` are single lines: a line break there would break the e-mail
header or the panel's headline. No text may hold a C0 control other than tab,
line feed and carriage return, DEL or a C1 control (U+007F–U+009F), nor U+FFFE/U+FFFF.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from tocsin.authorities.reference_rules import BRUSSELS_REGION_NIS, GERMAN_SPEAKING_NIS
from tocsin.campaigns import rules
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.core.text import forbidden_char

CONTENT_FIELDS = ("sms", "voice", "email_subject", "email_text", "email_html",
                  "cap_event", "cap_headline", "cap_description", "cap_instruction")

BRUSSELS = ZoneInfo("Europe/Brussels")

#: CAP 1.2 §3.2.2 says a headline SHOULD be brief; 160 characters fit one SMS.
CAP_HEADLINE_MAX = 160
#: The longest base text (``texts[lang]``), in characters.
TEXT_MAX = 5_000
#: The longest value of each content field, in characters (see the module docstring).
FIELD_MAX = {
    "sms": 5_000, "voice": 5_000, "email_subject": 200, "email_text": 50_000,
    "email_html": 50_000, "cap_event": 200, "cap_headline": CAP_HEADLINE_MAX,
    "cap_description": 10_000, "cap_instruction": 10_000,
}
#: The longest free-field value (``fields[name]``) and the most free fields.
FIELD_VALUE_MAX = 1_000
MAX_FREE_FIELDS = 50
#: Fields that are one line: an e-mail header, the CAP event and headline.
SINGLE_LINE_FIELDS = ("email_subject", "cap_event", "cap_headline")
#: Characters that break a line (Unicode line boundaries) or a header.
_LINE_BREAKS = "\r\n\t\v\f\x1c\x1d\x1e\x85\u2028\u2029"
#: Built-in placeholders; free fields may not reuse their names.
BUILTIN_PLACEHOLDERS = ("area_name", "time")

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_LANGUAGE_NAMES = {"fr": "French", "nl": "Dutch", "de": "German", "en": "English"}


def language_name(language: str) -> str:
    """The English name of a language code (``nl`` -> ``Dutch``); the code if unknown."""
    return _LANGUAGE_NAMES.get(language, language)


def text_label(language: str) -> str:
    """How messages name a base text: ``the Dutch text (text.nl)``."""
    return f"the {language_name(language)} text (text.{language})"

_FOOTER = {
    "fr": "Message officiel de {authority}, envoyé par Tocsin. Ne répondez pas à ce message.",
    "nl": "Officieel bericht van {authority}, verzonden via Tocsin. Antwoord niet op dit "
          "bericht.",
    "de": "Offizielle Mitteilung von {authority}, gesendet über Tocsin. Bitte antworten Sie "
          "nicht auf diese Nachricht.",
    "en": "Official message from {authority}, sent by Tocsin. Do not reply to this message.",
}


class ContentError(InputError):
    """Bad content: ``field`` names it (``text.fr``, ``content.nl.email_subject``,
    ``fields.street``…) and ``reason`` says why (an ``N_`` template and its params,
    docs/decisions/0018)."""


def local_time(when: dt.datetime) -> str:
    """``HH:MM`` of the aware datetime ``when`` in Europe/Brussels (CET/CEST).

    Raises ``ContentError`` (``time``) for a naive datetime.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ContentError("time", N_("%(value)s has no time zone"), value=when.isoformat())
    return when.astimezone(BRUSSELS).strftime("%H:%M")


def fill(template: str, values: Mapping[str, str], field: str) -> str:
    """Substitute ``{name}`` placeholders of ``template`` with ``values`` in one pass.

    Values are not scanned again (a value containing braces stays as it is).
    Raises ``ContentError(field, …)`` naming the first placeholder without a
    value, or a lone ``{`` / ``}`` that is no placeholder.
    """
    out: list[str] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        out.append(_literal(template[pos:m.start()], field))
        name = m.group(1)
        value = values.get(name)
        if value is None or not str(value).strip():
            raise ContentError(field, N_(
                          "placeholder {%(name)s} is not filled in (give a value for %(name2)s "
                          "or remove it)"), name=name, name2=f"{name!r}")
        out.append(str(value))
        pos = m.end()
    out.append(_literal(template[pos:], field))
    return "".join(out)


def _literal(text: str, field: str) -> str:
    for ch in "{}":
        at = text.find(ch)
        if at >= 0:
            snippet = text[max(0, at - 10):at + 11]
            raise ContentError(field, N_(
                          "stray %(ch)s in …%(snippet)s…: placeholders are written {name} "
                          "(letters, digits, _)"), ch=f"{ch!r}", snippet=snippet)
    return text


def check_text(field: str, text: str, limit: int, *, single_line: bool = False) -> None:
    """Refuse a text longer than ``limit`` characters, holding a forbidden character
    (``forbidden_char``) or, when ``single_line``, any line break or tab.

    Raises ``ContentError(field, …)``; the length is checked first (cheap on 10 MB).
    """
    if len(text) > limit:
        raise ContentError(field, N_("%(value)s characters; at most %(limit)s"),
                value=f"{len(text):,}", limit=f"{limit:,}")
    bad = next((ch for ch in text if forbidden_char(ch)
                or (single_line and ch in _LINE_BREAKS)), None)
    if bad is None:
        return
    if single_line and bad in _LINE_BREAKS:
        raise ContentError(field,
                N_("must be one line: it contains a line break or tab (U+%(value)s)"),
                value=f"{ord(bad):04X}")
    raise ContentError(field,
            N_("contains the control character U+%(value)s, which cannot be sent"),
            value=f"{ord(bad):04X}")


def placeholders(text: str) -> list[str]:
    """The placeholder names used in ``text``, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


def html_paragraphs(text: str, language: str, title: str, footer: str = "") -> str:
    """A minimal HTML e-mail body: ``text`` HTML-escaped, blank-line separated paragraphs,
    single newlines as ``<br>``; ``footer`` (plain text) in a smaller last paragraph."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
                  if p.strip()]
    body = "\n".join("<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n"))
                     + "</p>" for p in paragraphs)
    if footer:
        body += (f'\n<hr>\n<p style="font-size:smaller;color:#555">{html.escape(footer)}'
                 "</p>")
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(language)}">\n<head>'
            f'<meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
            f"<body>\n{body}\n</body>\n</html>\n")


def _shorten(text: str, limit: int) -> str:
    """``text`` on one line (whitespace runs as one space), cut to ``limit`` with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit - 1].rstrip() + "…"


def _headline(text: str) -> str:
    return _shorten(text, CAP_HEADLINE_MAX)


def check_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """Check free-field values: names are identifiers, not a built-in placeholder.

    Values are at most ``FIELD_VALUE_MAX`` characters without control characters;
    at most ``MAX_FREE_FIELDS`` fields. Returns the values stripped. Raises
    ``ContentError`` naming ``fields.<name>`` (``fields`` for too many).
    """
    out: dict[str, str] = {}
    if len(fields) > MAX_FREE_FIELDS:
        raise ContentError("fields", N_("%(value)s fields; at most %(MAX_FREE_FIELDS)s"),
                value=len(fields), MAX_FREE_FIELDS=MAX_FREE_FIELDS)
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            raise ContentError(f"fields.{name}",
                    N_("a field name is letters, digits and _ (e.g. street)"))
        if name in BUILTIN_PLACEHOLDERS:
            raise ContentError(f"fields.{name}",
                    N_("{%(name)s} is filled in by Tocsin; choose another field name"), name=name)
        if not isinstance(value, str):
            raise ContentError(f"fields.{name}", N_("the value must be text"))
        check_text(f"fields.{name}", value, FIELD_VALUE_MAX)
        out[name] = value.strip()
    return out


def complete_content(
    texts: Mapping[str, str],
    overrides: Mapping[str, Mapping[str, str]] | None,
    kind: str,
    area_name: str | Mapping[str, str],
    when: dt.datetime,
    fields: Mapping[str, str] | None = None,
    languages: Sequence[str] | None = None,
    *,
    authority_name: Mapping[str, str] | str = "",
    cap_event: str | None = None,
    action: str = "alert",
) -> dict[str, dict[str, str]]:
    """The complete content ``{lang: {field: text}}`` for every language of ``texts``.

    ``texts``: language -> base text (placeholders allowed). ``overrides``:
    language -> field -> text (empty strings = default). ``when``: aware
    datetime of sending, for ``{time}``. ``area_name``: the area's name, one for
    every language or per language (``{area_name}``, default subjects and
    headlines; a language missing from the mapping takes its first name).
    ``fields``: free placeholder values.
    ``languages``: the languages to produce, in order (default: those of
    ``texts``); each needs a base text. ``authority_name``: the sender's name
    (per language or one string) for the e-mail footer. ``cap_event``: the
    operator's CAP event (overrides the kind's name; placeholders filled, single
    line, at most 200 characters, errors name ``cap.event``). ``action``: alert |
    update | all_clear | cancel (e-mail subject prefix, ``rules.email_subject``).

    Raises ``ContentError`` naming ``text.<lang>``, ``content.<lang>``,
    ``content.<lang>.<field>``, ``cap.event`` or ``fields.<name>``.
    """
    overrides = overrides or {}
    free = check_fields(fields or {})
    names = (dict(area_name) if isinstance(area_name, Mapping)
             else dict.fromkeys(rules.LANGUAGES, area_name))
    first_name = next(iter(names.values()), "")
    langs = list(languages) if languages is not None else list(texts)
    for lang in overrides:
        if lang not in rules.LANGUAGES:
            raise ContentError(f"content.{lang}", N_("unknown language %(lang)s (use %(value)s)"),
                    lang=f"{lang!r}", value=', '.join(rules.LANGUAGES))
        if lang not in texts:
            raise ContentError(f"content.{lang}", N_(
                "no text.%(lang)s given: write the %(lang_name)s text (text.%(lang)s) first"),
                lang=lang, lang_name=language_name(lang))
    event_template = (cap_event or "").strip()
    if event_template:
        check_text("cap.event", event_template, FIELD_MAX["cap_event"], single_line=True)
    out: dict[str, dict[str, str]] = {}
    for lang in langs:
        area_here = names.get(lang) or first_name
        values = {**free, "area_name": area_here, "time": local_time(when)}
        base_template = texts.get(lang)
        if base_template is None or not base_template.strip():
            raise ContentError(f"text.{lang}", N_(
                "the %(lang_name)s text (text.%(lang)s) is empty"), lang=lang,
                lang_name=language_name(lang))
        check_text(f"text.{lang}", base_template.strip(), TEXT_MAX)
        base = fill(base_template.strip(), values, f"text.{lang}")
        check_text(f"text.{lang}", base, TEXT_MAX)
        given: dict[str, str] = {}
        for name, value in (overrides.get(lang) or {}).items():
            if name not in CONTENT_FIELDS:
                raise ContentError(f"content.{lang}.{name}", N_(
                    "unknown field (one of %(fields)s)"), fields=", ".join(CONTENT_FIELDS))
            if value is None:
                continue
            if not isinstance(value, str):
                raise ContentError(f"content.{lang}.{name}", N_("must be text"))
            if value.strip():
                label = f"content.{lang}.{name}"
                check_text(label, value.strip(), FIELD_MAX[name],
                           single_line=name in SINGLE_LINE_FIELDS)
                given[name] = fill(value.strip(), values, label)
        name_here = (authority_name.get(lang) or next(iter(authority_name.values()), "")
                     if isinstance(authority_name, Mapping) else authority_name)
        subject = given.get("email_subject") or _shorten(
            rules.email_subject(kind, area_here, lang, action), FIELD_MAX["email_subject"])
        email_text = given.get("email_text") or base
        footer = _FOOTER.get(lang, _FOOTER["en"]).format(authority=name_here) if name_here else ""
        headline = given.get("cap_headline")
        if event_template and "cap_event" not in given:
            event = fill(event_template, values, "cap.event")
            check_text("cap.event", event, FIELD_MAX["cap_event"], single_line=True)
        else:
            event = given.get("cap_event") or rules.kind_label(kind, lang).capitalize()
        html_source = given.get("email_html") or email_text
        check_text(f"content.{lang}.email_html", html_source, FIELD_MAX["email_html"])
        entry = {
            "sms": given.get("sms") or base,
            "voice": given.get("voice") or base,
            "email_subject": subject,
            "email_text": email_text,
            "email_html": html_paragraphs(html_source, lang, subject, footer),
            "cap_event": event,
            "cap_headline": headline or _headline(subject),
            "cap_description": given.get("cap_description") or base,
            "cap_instruction": given.get("cap_instruction", ""),
        }
        for name in CONTENT_FIELDS:
            if name != "email_html":  # generated from html_source, checked above
                check_text(f"content.{lang}.{name}", entry[name], FIELD_MAX[name],
                           single_line=name in SINGLE_LINE_FIELDS)
        out[lang] = entry
    return out


def content_of(content: Mapping[str, Mapping[str, str]] | None, texts: Mapping[str, str],
               language: str, field: str) -> str:
    """One field of a stored campaign: ``content[language][field]``, falling back to the
    base text for rows written before per-channel content existed (``content == {}``)."""
    entry = (content or {}).get(language) or {}
    if field in entry:
        return entry[field]
    return texts.get(language) or next(iter(texts.values()), "")


def required_languages(authority_id: str, parent_id: str | None) -> tuple[str, ...]:
    """Languages an authority must always send in (SPEC F13, laws on the use of languages).

    Authorities of the Brussels-Capital Region (the region ``04000`` and its
    municipalities 21xxx) send in French and Dutch; the nine municipalities of
    the German-speaking region send in German and French. Others: none imposed.
    """
    if authority_id == BRUSSELS_REGION_NIS or parent_id == BRUSSELS_REGION_NIS:
        return ("fr", "nl")
    if authority_id in GERMAN_SPEAKING_NIS:
        return ("de", "fr")
    return ()


def check_required_languages(authority_id: str, parent_id: str | None,
                             languages: Sequence[str]) -> None:
    """Raise ``ContentError("text.<lang>", …)`` for the first required language missing."""
    required = required_languages(authority_id, parent_id)
    for lang in required:
        if lang not in languages:
            if "nl" in required:  # ("fr", "nl")
                template = N_("Brussels authorities must send in French and Dutch: add the "
                              "%(lang_name)s text (text.%(lang)s)")
            else:  # ("de", "fr")
                template = N_("German-speaking municipalities must send in German and "
                              "French: add the %(lang_name)s text (text.%(lang)s)")
            raise ContentError(f"text.{lang}", template, lang=lang,
                               lang_name=language_name(lang))
