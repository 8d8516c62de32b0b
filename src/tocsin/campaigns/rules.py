"""Campaign rules: kinds, priorities, languages, CAP status. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence

KINDS = ("alert", "warning", "information", "test", "exercise")
CHANNELS = ("sms", "email", "cap")
LANGUAGES = ("fr", "nl", "de", "en")
ENVIRONMENTS = ("simulation", "live")

# ARCHITECTURE "Priority": alert > warning > information > test/exercise (lower is first).
PRIORITY = {"alert": 0, "warning": 1, "information": 2, "test": 3, "exercise": 3}

# CAP 1.2 §3.2.1 <info> language tags for Belgium's official languages.
CAP_LANGUAGE = {"fr": "fr-BE", "nl": "nl-BE", "de": "de-BE", "en": "en"}

CAP_DEFAULTS = {"category": "Safety", "urgency": "Immediate", "severity": "Severe",
                "certainty": "Observed"}

_SUBJECT = {
    "alert": {"fr": "ALERTE", "nl": "ALARM", "de": "WARNUNG", "en": "ALERT"},
    "warning": {"fr": "Avertissement", "nl": "Waarschuwing", "de": "Vorwarnung", "en": "Warning"},
    "information": {"fr": "Information", "nl": "Informatie", "de": "Information",
                    "en": "Information"},
    "test": {"fr": "TEST", "nl": "TEST", "de": "TEST", "en": "TEST"},
    "exercise": {"fr": "EXERCICE", "nl": "OEFENING", "de": "ÜBUNG", "en": "EXERCISE"},
}


def cap_status(kind: str, environment: str) -> str:
    """CAP 1.2 §3.2.1 ``status`` of a campaign.

    live alert, warning, information -> Actual; live test -> Test; live exercise
    -> Exercise; anything in simulation -> Exercise (a simulated alert must never
    be mistaken for a real one by a panel that reads it).
    """
    if environment != "live":
        return "Exercise"
    return {"test": "Test", "exercise": "Exercise"}.get(kind, "Actual")


def choose_language(subscriber_language: str | None, authority_languages: Sequence[str],
                    texts: Sequence[str]) -> str:
    """The language a recipient gets (SPEC F13).

    Their own language if a text exists in it; else the first of the authority's
    languages, in order, that has a text; else the first text given. Nobody is
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


def email_subject(kind: str, area_name: str, language: str) -> str:
    """The e-mail subject of a campaign: its kind in ``language`` and the area's name."""
    label = _SUBJECT.get(kind, _SUBJECT["alert"]).get(language, _SUBJECT["alert"]["en"])
    return f"{label} – {area_name}"
