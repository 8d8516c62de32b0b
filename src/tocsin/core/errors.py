"""Errors the services raise for bad input, written once per language
(docs/decisions/0018-translated-service-errors.md).

An :class:`InputError` names the input ``field`` and carries a stable ``code``, the
English ``template`` of its message (a msgid of the interface's catalogues, marked
with ``N_`` where it is raised so that ``make messages`` extracts it) and its
``params``. ``reason`` is the English text (the template filled in): the CLI, the JSON
API and the logs keep it; the web layer shows ``template`` translated into the
reader's language and filled in with the same ``params``
(``tocsin.web.i18n.error_text``).
"""

from __future__ import annotations

from typing import Any


class Phrase(str):
    """An English phrase passed as a param of another message ("the outline crosses
    itself", "Belgium", a swap hint), translated with it where it is shown.

    It *is* the English text (a ``str``: compared, joined and serialised as such);
    ``template`` (a msgid, marked with ``N_`` where written) and ``params`` let the web
    layer translate it (``tocsin.web.i18n.error_text`` translates every ``Phrase``
    param, and the ``{"template", "params"}`` dicts of :func:`params_json`).
    """

    template: str
    params: dict[str, Any]


def phrase(template: str, **params: Any) -> Phrase:
    """The :class:`Phrase` ``template % params`` (``template`` alone without params)."""
    out = Phrase(template % params if params else template)
    out.template, out.params = template, params
    return out


def params_json(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` ready for JSON storage: each :class:`Phrase` as ``{"template",
    "params"}`` (recursively), other values as they are."""
    return {k: {"template": v.template, "params": params_json(v.params)}
            if isinstance(v, Phrase) else v for k, v in params.items()}


class _Coded(Exception):
    """What :class:`InputError` and :class:`NotFound` share: ``field``, ``code``
    (default: the field), the English ``template`` and its ``params``, and ``reason``
    (the template filled in); ``str()`` is ``field: reason``."""

    def __init__(self, field: str, reason: str, *, code: str | None = None,
                 **params: Any) -> None:
        self.field = field
        self.template = reason
        self.params = params
        self.code = code or field
        self.reason = reason % params if params else reason
        super().__init__(f"{field}: {self.reason}")


class InputError(_Coded, ValueError):
    """Bad input: ``field`` names what is wrong, ``reason`` says why (English).

    ``reason`` is a template with ``%(name)s`` placeholders when ``params`` are given
    (``InputError("ends_at", N_("%(date)s is in the past"), code="date_past",
    date="2026-01-01")``); ``code`` (default: the field) is stable for programs and
    tests.
    """


class NotFound(_Coded, LookupError):
    """Something named by the input is unknown (or no longer usable): the same shape as
    :class:`InputError` (``field``, ``code``, English ``template`` and ``params``,
    ``reason``), raised where callers catch ``LookupError``."""


class Warning(dict[str, Any]):  # noqa: A001 - a service warning, not the builtin category
    """A warning's JSON object (``{"code", "field", …, "message"}``, compared and
    serialised as the plain dict) that also carries its English ``template`` and
    ``params`` for translation where it is shown."""

    template: str = ""
    params: dict[str, Any]


def warning(code: str, field: str, template: str, *, extra: dict[str, Any] | None = None,
            **params: Any) -> Warning:
    """A warning that never blocks (an estimate's, a launch's), written once per language.

    The dict ``{"code", "field", **extra, "message"}`` (``message``: English, the
    template filled in) with the attributes ``template`` (its msgid, marked with ``N_``
    where written) and ``params``; the web layer replaces ``message`` with the template
    translated into the reader's language (``tocsin.web.i18n.warning_text``), the CLI
    and the logs keep the English one.
    """
    out = Warning(code=code, field=field, **(extra or {}),
                  message=template % params if params else template)
    out.template, out.params = template, params
    return out
