"""The interface's gettext catalogues, for every layer (docs/decisions/0011, 0018).

``src/tocsin/locale/<lang>/LC_MESSAGES/messages.po`` (fr, nl, de, en) are compiled in
memory the first time a language is used. The web layer (``tocsin.web.i18n``), the
report export (``tocsin.campaigns.report_export``) and the e-mails the platform writes
itself translate through :func:`gettext`; services mark their words with :func:`N_`
(extracted by ``make messages``, translated where they are shown).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

#: The interface languages: Belgium's three official languages and English.
LANGUAGES = ("fr", "nl", "de", "en")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name for a marker
    """Mark ``message`` for extraction without translating it (translated where shown)."""
    return message


def po_path(language: str) -> Path:
    """The PO catalogue of ``language`` (``LOCALE_DIR/<lang>/LC_MESSAGES/messages.po``)."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The gettext translations of ``language``, compiled in memory from its PO file.

    English (the source language) and unknown languages give ``NullTranslations``
    (the msgid itself). Fuzzy and empty entries are not used (gettext's rule).
    """
    path = po_path(language)
    if language == DEFAULT_LANGUAGE or language not in LANGUAGES or not path.is_file():
        return NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def gettext(language: str, message: str, **params: Any) -> str:
    """``message`` translated into ``language``, with ``%(name)s`` params filled in."""
    text = translations(language).ugettext(message)
    return text % params if params else text


def ngettext(language: str, singular: str, plural: str, count: int, **params: Any) -> str:
    """The form of ``singular``/``plural`` for ``count`` in ``language`` (its plural rule:
    French has three forms), with ``%(name)s`` params filled in."""
    text = translations(language).ungettext(singular, plural, count)
    return text % params if params else text


def pgettext(language: str, context: str, message: str, **params: Any) -> str:
    """``message`` in ``context`` (gettext ``msgctxt``) translated into ``language``: for
    an English word with two meanings (a delivery state and a campaign status)."""
    text = translations(language).upgettext(context, message)
    return text % params if params else text


def NP_(context: str, message: str) -> str:  # noqa: N802 - like N_, with a msgctxt
    """Mark ``message`` in ``context`` for extraction without translating it."""
    return message
