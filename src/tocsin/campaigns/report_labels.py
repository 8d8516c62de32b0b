"""The words of the printed and CSV campaign report (SPEC F26, F13).

The English words are msgids of the interface's catalogues (context ``report``, so
that a report word keeps its own translation: ``Alert`` is the kind ``Alarm`` in a
German report), translated by ``tocsin.core.i18n`` like every other interface text.
``LABELS[lang][key]`` gives the word for ``key`` in ``lang``; keys with a dot name a
value of the report (``state.failed``, ``kind.alert``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from tocsin.core.i18n import LANGUAGES, NP_, pgettext

REPORT_LANGUAGES = LANGUAGES
CONTEXT = "report"

#: key → English word (the msgid, in context ``report``).
ENGLISH: dict[str, str] = {
    "title": NP_("report", "Campaign report"),
    "authority": NP_("report", "Authority"),
    "kind": NP_("report", "Kind"),
    "area": NP_("report", "Area"),
    "environment": NP_("report", "Environment"),
    "status": NP_("report", "Status"),
    "message": NP_("report", "Message"),
    "identifier": NP_("report", "CAP identifier"),
    "timings": NP_("report", "Timings"),
    "launched": NP_("report", "Launched"),
    "first_sent": NP_("report", "First sent"),
    "last_sent": NP_("report", "Last sent"),
    "duration": NP_("report", "Duration"),
    "throughput": NP_("report", "Throughput"),
    "per_second": NP_("report", "per second"),
    "people": NP_("report", "People"),
    "created_by": NP_("report", "Prepared and launched by"),
    "approved_by": NP_("report", "Approved by"),
    "on_behalf": NP_("report", "Acting on behalf of this authority"),
    "requested_by": NP_("report", "at the request of"),
    "none": NP_("report", "none"),
    "deliveries": NP_("report", "Deliveries by channel and status"),
    "channel": NP_("report", "Channel"),
    "state": NP_("report", "State"),
    "reason": NP_("report", "Reason"),
    "count": NP_("report", "Count"),
    "recipient": NP_("report", "Recipient"),
    "target": NP_("report", "List or group"),
    "address": NP_("report", "Number or address"),
    "attempts": NP_("report", "Attempts"),
    "sent_at": NP_("report", "Sent at (UTC)"),
    "final_at": NP_("report", "Final at (UTC)"),
    "recipients": NP_("report", "Recipients"),
    "failures": NP_("report", "Failures by reason"),
    "no_failures": NP_("report", "No failures."),
    "by_language": NP_("report", "By language"),
    "costs": NP_("report", "Costs"),
    "cost": NP_("report", "Cost"),
    "billed": NP_("report", "Billed"),
    "segments": NP_("report", "SMS segments"),
    "total": NP_("report", "Total"),
    "chart": NP_("report", "Deliveries sent over time"),
    "no_chart": NP_("report", "Nothing sent yet."),
    "area_map": NP_("report", "Map of the area"),
    "generated": NP_("report", "Generated on"),
    "times_note": NP_("report", "Times are Brussels time."),
    "cap_feed": NP_("report", "CAP feed"),
    "published": NP_("report", "published"),
    "not_published": NP_("report", "not published"),
    "language": NP_("report", "Language"),
    "per_bar": NP_("report", "One bar"),
    "state.queued": NP_("report", "Queued"),
    "state.in_flight": NP_("report", "Sending"),
    "state.sent": NP_("report", "Sent"),
    "state.delivered": NP_("report", "Delivered"),
    "state.failed": NP_("report", "Failed"),
    "state.expired": NP_("report", "Expired"),
    "state.stopped": NP_("report", "Stopped"),
    "status.scheduled": NP_("report", "Scheduled"),
    "status.sending": NP_("report", "Sending"),
    "status.finished": NP_("report", "Finished"),
    "status.cancelled": NP_("report", "Cancelled"),
    "status.draft": NP_("report", "Draft"),
    "kind.alert": NP_("report", "Alert"),
    "kind.warning": NP_("report", "Warning"),
    "kind.information": NP_("report", "Information"),
    "kind.test": NP_("report", "Test"),
    "kind.exercise": NP_("report", "Exercise"),
    "kind.group": NP_("report", "Group message"),
    "env.simulation": NP_("report", "Simulation"),
    "env.live": NP_("report", "Live"),
    "channel.sms": NP_("report", "SMS"),
    "channel.email": NP_("report", "E-mail"),
    "channel.voice": NP_("report", "Voice call"),
    "channel.cap": NP_("report", "CAP"),
    "label.Alert": NP_("report", "Alert"),
    "label.Update": NP_("report", "Update"),
    "label.All clear": NP_("report", "All clear"),
    "label.Cancel": NP_("report", "Cancel"),
    "lang.fr": NP_("report", "French"),
    "lang.nl": NP_("report", "Dutch"),
    "lang.de": NP_("report", "German"),
    "lang.en": NP_("report", "English"),}


def label(lang: str, key: str) -> str:
    """The word for ``key`` in ``lang`` (from the catalogue of ``lang``); for an unknown
    key, the part after the dot (``state.bounced`` → ``bounced``) or the key itself."""
    english = ENGLISH.get(key)
    if english is None:
        return key.partition(".")[2] or key
    return pgettext(lang, CONTEXT, english)


class _Language(Mapping[str, str]):
    """The report's words in one language, read from its catalogue."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getitem__(self, key: str) -> str:
        if key not in ENGLISH:
            raise KeyError(key)
        return label(self.lang, key)

    def __iter__(self) -> Iterator[str]:
        return iter(ENGLISH)

    def __len__(self) -> int:
        return len(ENGLISH)


#: ``LABELS[lang][key]``: the report's words per language (a view of the catalogues).
LABELS: dict[str, Mapping[str, str]] = {lang: _Language(lang) for lang in REPORT_LANGUAGES}
