"""Cell broadcast through a Cell Broadcast Centre speaking osmo-cbc's ECBE REST API
(SPEC F31; research note ``location-based-channels.md`` §1.2, §2.3).

- ``POST /api/ecbe/v1/message`` with :func:`tocsin.channels.cell_broadcast.ecbe_message`:
  201 ``Created`` once the peers acknowledged (or after the CBC's 15 s timer); 400 with a
  plain-text reason; 409 ``Could not allocate`` while the ``message_id`` is active.
- ``DELETE /api/ecbe/v1/message/:message_id``: 200 ``OK``, 404 ``Unknown message ID``.

ECBE has one active message per ``message_id``: a level's local-language and
additional-language identifiers carry two languages at once; a third language shares
the additional message (:func:`plan_messages`). An update is a DELETE then a POST with
the update number + 1; an update or cancel is sent only after the previous request
for that CBC was answered (the UK rule), which :class:`EcbeClient` guarantees by
being synchronous per CBC. ECBE reports nothing per cell; osmo-cbc implements only
the PLMN-wide scope, so a non-national area is refused unless ``allow_plmn_wide``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tocsin.channels import cell_broadcast as cb

#: Languages joined into one message when there are more than the two identifiers.
JOINER = "\n"


class CbcError(ValueError):
    """The CBC refused or could not be reached: ``code`` (``rejected``,
    ``message_id_active``, ``unknown_message``, ``unreachable``, ``http_NNN``),
    ``reason`` (the CBC's words) and ``status``."""

    def __init__(self, code: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.status = code, reason, status


@dataclass(frozen=True)
class PlannedMessage:
    """One ECBE message of an alert: ``languages`` it carries, its ``body``."""

    languages: tuple[str, ...]
    body: dict[str, Any]

    @property
    def message_id(self) -> int:
        return int(self.body["smscb_message"]["message_id"])


def plan_messages(texts: dict[str, str], *, kind: str, msg_code: int, cbe_name: str,
                  severity: str = "Severe", urgency: str = "Immediate",
                  certainty: str = "Likely", update_nr: int = 0, national: bool = True,
                  allow_plmn_wide: bool = False, repetition_period: int = 60,
                  warning_period_sec: int | None = 3600) -> list[PlannedMessage]:
    """The ECBE messages of one alert: the first language of ``texts`` (ordered: the
    area's official languages first) on the local-language identifier, the others on
    the additional-language identifier (a third and fourth joined to the second), all
    with serial number (PLMN-wide, ``msg_code``, ``update_nr``).

    ``national``: the area is the whole country; otherwise ``allow_plmn_wide`` must be
    set, since ECBE broadcasts to the whole network. Raises CbcError("area", …) then,
    and ``cell_broadcast.CbError`` naming a bad value (text too long for 15 pages…).
    """
    if not national and not allow_plmn_wide:
        raise CbcError("area", "this CBC (ECBE) broadcasts to the whole network: a "
                               "regional area needs allow_plmn_wide")
    if not texts:
        raise cb.CbError("text", "no text")
    langs = list(texts)
    groups = [(langs[0],)] + ([tuple(langs[1:])] if len(langs) > 1 else [])
    serial = cb.serial_number("plmn_wide", msg_code, update_nr)
    out: list[PlannedMessage] = []
    for role, group in zip(cb.LANG_ROLES, groups, strict=False):
        text = JOINER.join(texts[lang] for lang in group)
        out.append(PlannedMessage(group, cb.ecbe_message(
            cbe_name=cbe_name, message_id=cb.message_id(kind, severity, urgency, certainty,
                                                         role),
            serial=serial, text=text, language=group[0],
            repetition_period=repetition_period, warning_period_sec=warning_period_sec)))
    return out


def next_update_plan(previous: list[PlannedMessage], texts: dict[str, str],
                     **kwargs: Any) -> list[PlannedMessage]:
    """The messages of an update of ``previous``: same message code, update number + 1
    (mod 16), new ``texts`` (``kwargs`` as :func:`plan_messages`)."""
    decoded = previous[0].body["smscb_message"]["serial_nr"]["serial_nr_decoded"]
    return plan_messages(texts, msg_code=decoded["msg_code"],
                         update_nr=(decoded["update_nr"] + 1) % 16, **kwargs)


class EcbeClient:
    """HTTP client of one CBC's ECBE API (``base_url`` up to ``/api/ecbe/v1``, no
    trailing slash). Requests are sequential: the next waits for the previous answer."""

    def __init__(self, base_url: str, *, timeout_s: float = 20.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        # 20 s: the CBC answers a POST after its peers' ACK/NACK or its own 15 s timer.
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_s, transport=transport,
                                  follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return self._http.request(method, self.base_url + path, json=body)
        except httpx.TransportError as exc:
            raise CbcError("unreachable", f"{self.base_url}: {exc}") from None

    def create(self, message: PlannedMessage) -> str:
        """POST one message; returns ``accepted``. Raises CbcError."""
        r = self._call("POST", "/message", message.body)
        if r.status_code == 201:
            return "accepted"
        code = {400: "rejected", 409: "message_id_active"}.get(r.status_code,
                                                             f"http_{r.status_code}")
        raise CbcError(code, r.text.strip()[:300], r.status_code)

    def delete(self, message_id: int) -> str:
        """DELETE a message; ``stopped``, or ``unknown`` when the CBC had none (404)."""
        r = self._call("DELETE", f"/message/{int(message_id)}")
        if r.status_code == 200:
            return "stopped"
        if r.status_code == 404:
            return "unknown"
        raise CbcError(f"http_{r.status_code}", r.text.strip()[:300], r.status_code)

    def send_alert(self, messages: list[PlannedMessage]) -> list[str]:
        """Create every message of an alert, in order; the states."""
        return [self.create(m) for m in messages]

    def update_alert(self, previous: list[PlannedMessage],
                     messages: list[PlannedMessage]) -> list[str]:
        """An update: delete the previous messages, then create the new ones."""
        for m in previous:
            self.delete(m.message_id)
        return self.send_alert(messages)

    def cancel_alert(self, previous: list[PlannedMessage]) -> list[str]:
        """A cancel: delete every message of the alert."""
        return [self.delete(m.message_id) for m in previous]


# ----------------------------------------------------------------------------- CAP backend

#: CAP ``info/language`` of each Tocsin language (RFC 3066 with the country).
CAP_LANGUAGES = {"fr": "fr-BE", "nl": "nl-BE", "de": "de-BE", "en": "en"}


def eu_alert_level(message_id: int) -> str:
    """The EU-Alert level of a message identifier (ETSI TS 102 900): ``1`` (4370),
    ``2`` (4371-4372: Extreme, Immediate), ``3`` (4373-4378), ``4`` (public safety,
    4396), ``amber``, ``test``, ``exercise``, ``operator``; additional-language ids map
    to their local one. Raises CbcError("message_id", …) outside the EU-Alert range."""
    base = message_id - 13 if 4383 <= message_id <= 4395 else message_id
    base = base - 1 if base in (cb.PUBLIC_SAFETY + 1, cb.STATE_LOCAL_TEST + 1) else base
    levels = {cb.PRESIDENTIAL: "1", cb.AMBER: "amber", cb.TEST: "test",
              cb.EXERCISE: "exercise", cb.OPERATOR_DEFINED: "operator",
              cb.PUBLIC_SAFETY: "4", cb.STATE_LOCAL_TEST: "test"}
    if base in levels:
        return levels[base]
    if 4371 <= base <= 4372:
        return "2"
    if 4373 <= base <= 4378:
        return "3"
    raise CbcError("message_id", f"{message_id} is not an EU-Alert message identifier")


def cap_for_cbc(*, identifier: str, sender: str, sent: Any, status: str, kind: str,
                texts: dict[str, str], area: Any, area_desc: str, event: str,
                severity: str = "Severe", urgency: str = "Immediate",
                certainty: str = "Likely", expires: Any = None, msg_type: str = "Alert",
                references: tuple[tuple[str, str, Any], ...] = (),
                repetition_period: int = 60) -> bytes:
    """The CAP 1.2 alert an operator's CBC takes (the UK/cbctest practice; research note
    §2.3 ``cap`` backend): one ``info`` per language (``fr-BE``…), the text as
    ``description``, parameters ``EU-Alert-level``, ``CB-message-id`` (local or
    additional by language order), ``repetition`` (seconds); one ``area`` whose
    polygons are the area fitted to cell broadcast's 250 points per ring, outward only
    (``tocsin.geo.shapes.channel_polygons(area, "cb")``). ``msg_type`` Update/Cancel
    need ``references`` ``(sender, identifier, sent)``.

    Each text is checked against the 15 cell-broadcast pages first. Raises
    ``cell_broadcast.CbError``, ``tocsin.geo.areas.AreaError`` or
    ``tocsin.cap.build.CapBuildError`` naming the field.
    """
    from tocsin.cap.build import CapAlert, CapArea, CapInfo, build_alert
    from tocsin.geo.shapes import channel_polygons

    if not texts:
        raise cb.CbError("text", "no text")
    for text in texts.values():
        cb.pages(text)
    polygons = channel_polygons(area, "cb")
    infos = []
    for i, (lang, text) in enumerate(texts.items()):
        mid = cb.message_id(kind, severity, urgency, certainty,
                            "local" if i == 0 else "additional")
        infos.append(CapInfo(
            language=CAP_LANGUAGES.get(lang, lang), category="Safety", event=event,
            urgency=urgency, severity=severity, certainty=certainty, description=text,
            expires=expires,
            parameters=(("EU-Alert-level", eu_alert_level(mid)), ("CB-message-id", str(mid)),
                        ("repetition", str(repetition_period))),
            areas=(CapArea(area_desc, polygons=polygons),)))
    return build_alert(CapAlert(identifier=identifier, sender=sender, sent=sent,
                                status=status, msg_type=msg_type, references=references,
                                infos=infos))


#: Content type of a CAP document POSTed to an operator's CBC.
CAP_CONTENT_TYPE = "application/cap+xml"


def cap_reference(xml: bytes) -> dict[str, str]:
    """``{"sender", "identifier", "sent"}`` of a CAP document Tocsin built (``sent`` as
    written), for the ``references`` of the next Update or Cancel (CAP 1.2 §3.2.1)."""
    from tocsin.cap.build import reference_of

    sender, identifier, sent = reference_of(xml)
    return {"sender": sender, "identifier": identifier, "sent": sent}


def cap_msg_type(xml: bytes) -> tuple[str, bool]:
    """``(msgType, has references)`` of a CAP document Tocsin built."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
    return (root.findtext("c:msgType", namespaces=ns) or "",
            bool((root.findtext("c:references", namespaces=ns) or "").strip()))


class CapCbcClient:
    """HTTP client of an operator CBC taking CAP 1.2 (research note §2.3, ``cap``
    backend; the UK/cbctest practice): each message is one ``POST`` of the CAP document
    (``Content-Type: application/cap+xml``) to ``url``, with HTTP basic auth
    (``username``/``password``) or a bearer ``token`` when given. Requests are
    sequential: an Update or Cancel goes only after the previous message was answered.

    Answers: 2xx = ``accepted``; 4xx = a final refusal, CbcError ``rejected`` (400) or
    ``http_NNN`` naming the status and the first line of the body; 5xx = CbcError
    ``http_5NN`` and a timeout or connection error = ``unreachable``, both to retry
    (as :class:`EcbeClient`)."""

    def __init__(self, url: str, *, username: str = "", password: str = "",
                 token: str = "", timeout_s: float = 20.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        auth = httpx.BasicAuth(username, password) if username else None
        headers = {"Content-Type": CAP_CONTENT_TYPE,
                   "Accept": "application/xml, text/plain, */*"}
        if token and not username:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(timeout=timeout_s, transport=transport, auth=auth,
                                  headers=headers, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def post(self, xml: bytes) -> str:
        """POST one CAP document; ``accepted`` on 2xx. Raises CbcError."""
        try:
            r = self._http.post(self.url, content=xml)
        except httpx.TransportError as exc:
            raise CbcError("unreachable", f"{self.url}: {exc}") from None
        if 200 <= r.status_code < 300:
            return "accepted"
        first = (r.text.strip().splitlines() or [""])[0][:300]
        code = "rejected" if r.status_code == 400 else f"http_{r.status_code}"
        raise CbcError(code, f"HTTP {r.status_code}: {first}", r.status_code)

    def _checked(self, xml: bytes, msg_type: str) -> str:
        got, refs = cap_msg_type(xml)
        if got != msg_type:
            raise ValueError(f"expected a CAP {msg_type}, got {got!r}")
        if msg_type != "Alert" and not refs:
            raise ValueError(f"a CAP {msg_type} needs references")
        return self.post(xml)

    def send_alert(self, xml: bytes) -> str:
        """Send a CAP ``Alert``. Raises CbcError (ValueError for another msgType)."""
        return self._checked(xml, "Alert")

    def update_alert(self, xml: bytes) -> str:
        """Send a CAP ``Update`` (with ``references`` to the messages it updates)."""
        return self._checked(xml, "Update")

    def cancel_alert(self, xml: bytes) -> str:
        """Send a CAP ``Cancel`` (with ``references`` to the messages it cancels)."""
        return self._checked(xml, "Cancel")
