"""Location-based SMS through a mobile operator: the HTTPS/JSON adapter (SPEC F18;
research note ``location-based-channels.md`` §2.2).

One adapter instance per mobile operator. No phone number ever reaches Tocsin: the
operator resolves the area to cells and the cells to the phones it has located there,
sends, and reports counts (per cell) in callbacks.

Operator API (Tocsin's proposed contract; ``channels/simulators/lbsms_operator.py``
implements it):

- ``POST /lbsms/v1/estimates`` ``{"area": GeoJSON}`` -> ``{"cells": [{"cell_id", "tech",
  "phones"}], "phones_total", "model", "generated_at"}``;
- ``POST /lbsms/v1/broadcasts`` (header ``Idempotency-Key``) with :func:`broadcast_body`
  -> 202 ``{"operator_ref", "state": "accepted"}``; 400 ``{"error": {"code",
  "message"}}``; 409 the same key with another body; 429/503 with ``Retry-After``;
- ``GET /lbsms/v1/broadcasts/{operator_ref}`` -> the latest aggregate;
- ``DELETE /lbsms/v1/broadcasts/{operator_ref}`` -> 202, unsent messages dropped;
- callbacks ``POST callback.url``, signed like Tocsin's webhooks
  (``X-Tocsin-Timestamp``, ``X-Tocsin-Signature: sha256=HMAC(secret, ts + "." + body)``,
  ``tocsin.channels.webhook.sign``), ordered by ``seq`` and retried: events
  ``accepted`` -> ``resolved`` -> ``progress``* -> ``completed`` | ``stopped`` |
  ``failed``. :class:`CallbackLedger` applies them idempotently and in order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tocsin.channels.webhook import verify_signature

#: The Belgian short code operators send location-based alerts from (BE-Alert: 1789).
SENDER = "1789"
ENVIRONMENTS = ("live", "simulation", "test")
PRIORITIES = ("alert", "warning", "test")
TERMINAL_EVENTS = frozenset({"completed", "stopped", "failed"})
EVENTS = ("accepted", "resolved", "progress", *sorted(TERMINAL_EVENTS))
#: Most characters of one location-based text (every official language in one message:
#: 10 concatenated GSM-7 segments of 153 characters; operators cap long texts).
MAX_TEXT = 1530
MAX_JUSTIFICATION = 500


class LbsmsError(ValueError):
    """A request the operator API would refuse, or an operator error: ``code`` (the
    API's error code, or the field), ``reason``; ``status`` the HTTP status when
    the operator answered."""

    def __init__(self, code: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.status = code, reason, status


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise LbsmsError("not_after", "needs a time zone")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def broadcast_body(*, reference: str, environment: str, area: dict[str, Any] | None,
                   text: str, not_after: dt.datetime, justification: str,
                   callback_url: str, key_id: str, cell_ids: list[str] | None = None,
                   priority: str = "alert", follow_up_of: str | None = None,
                   sender: str = SENDER) -> dict[str, Any]:
    """The body of ``POST /lbsms/v1/broadcasts``.

    ``area``: GeoJSON (Multi)Polygon, WGS84, or ``cell_ids`` (exactly one of them);
    ``text``: every official language of the area in one message (F18), at most
    :data:`MAX_TEXT` characters; ``not_after``: aware datetime after which nothing is
    sent (RFC 3339 UTC in the body); ``justification``: the imminent danger, as the
    operator must record it (Royal Decree 2017); ``follow_up_of``: an earlier
    ``operator_ref`` whose recipients also get this one (all-clear, update).

    Raises LbsmsError naming the field.
    """
    if environment not in ENVIRONMENTS:
        raise LbsmsError("environment", f"{environment!r} is not live, simulation or test")
    if priority not in PRIORITIES:
        raise LbsmsError("priority", f"{priority!r} is not one of {', '.join(PRIORITIES)}")
    if (area is None) == (cell_ids is None):
        raise LbsmsError("area", "give exactly one of an area or a list of cells")
    if area is not None and area.get("type") not in ("Polygon", "MultiPolygon"):
        raise LbsmsError("area", "must be a GeoJSON Polygon or MultiPolygon")
    if cell_ids is not None and not cell_ids:
        raise LbsmsError("cell_ids", "is empty")
    if not text.strip():
        raise LbsmsError("text", "is empty")
    if len(text) > MAX_TEXT:
        raise LbsmsError("text", f"has {len(text):,} characters; at most {MAX_TEXT:,}")
    if not justification.strip():
        raise LbsmsError("justification", "state the imminent danger (required by the "
                                          "operators' legal basis)")
    if len(justification) > MAX_JUSTIFICATION:
        raise LbsmsError("justification", f"at most {MAX_JUSTIFICATION} characters")
    if not reference.strip() or not callback_url.startswith(("https://", "http://")):
        raise LbsmsError("reference" if not reference.strip() else "callback",
                         "is empty" if not reference.strip() else "needs an http(s) URL")
    return {"reference": reference, "environment": environment, "area": area,
            "cell_ids": cell_ids, "text": text, "sender": sender, "priority": priority,
            "not_after": _iso(not_after), "follow_up_of": follow_up_of,
            "justification": justification,
            "callback": {"url": callback_url, "key_id": key_id}}


def idempotency_key(body: dict[str, Any]) -> str:
    """A stable ``Idempotency-Key`` for ``body``: its reference and a digest of it, so
    a retried request is recognised and a changed one is not taken for it."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return f"{body.get('reference', '')}:{digest}"


@dataclass
class CallbackLedger:
    """Applies an operator's callbacks for one ``operator_ref`` exactly once and in
    ``seq`` order (they may arrive twice or out of order).

    ``state``: the last applied event's name; ``counts``/``per_cell``: the latest
    aggregate; ``applied``: the seqs applied, in order.
    """

    operator_ref: str
    next_seq: int = 1
    state: str = "pending"
    counts: dict[str, int] = field(default_factory=dict)
    per_cell: dict[str, dict[str, int]] = field(default_factory=dict)
    phones_targeted: int = 0
    applied: list[int] = field(default_factory=list)
    duplicates: int = 0
    _waiting: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_EVENTS

    def receive(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Take one callback body; returns the events applied now (none for a
        duplicate or for one that waits for an earlier seq). Raises LbsmsError for
        another broadcast's callback or a bad seq/event."""
        if event.get("operator_ref") != self.operator_ref:
            raise LbsmsError("operator_ref", f"callback for {event.get('operator_ref')!r}, "
                                             f"not {self.operator_ref!r}")
        seq = event.get("seq")
        if not isinstance(seq, int) or seq < 1:
            raise LbsmsError("seq", f"{seq!r} is not a positive integer")
        if event.get("event") not in EVENTS:
            raise LbsmsError("event", f"{event.get('event')!r} is not one of "
                                      f"{', '.join(EVENTS)}")
        if seq < self.next_seq or seq in self._waiting:
            self.duplicates += 1
            return []
        self._waiting[seq] = event
        applied: list[dict[str, Any]] = []
        while self.next_seq in self._waiting and not self.done:
            e = self._waiting.pop(self.next_seq)
            self._apply(e)
            applied.append(e)
            self.next_seq += 1
        return applied

    def _apply(self, e: dict[str, Any]) -> None:
        self.state = e["event"]
        self.applied.append(e["seq"])
        if "counts" in e:
            self.counts = dict(e["counts"])
        if "phones_targeted" in e:
            self.phones_targeted = int(e["phones_targeted"])
        for cell in e.get("per_cell") or []:
            self.per_cell[cell["cell_id"]] = {k: v for k, v in cell.items() if k != "cell_id"}


def verify_callback(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether a callback's ``X-Tocsin-Signature`` and ``X-Tocsin-Timestamp`` are valid
    for ``body`` (``tocsin.channels.webhook.verify_signature``, 5-minute window)."""
    lower = {k.lower(): v for k, v in headers.items()}
    return verify_signature(secret, lower.get("x-tocsin-timestamp", ""),
                            lower.get("x-tocsin-signature", ""), body)


class LbsmsOperatorClient:
    """The HTTP client of one operator's API (``base_url``: ``https://…``, no trailing
    slash). ``retries``: how many times a 429/503 or a connection failure is retried,
    waiting ``Retry-After`` seconds (at most ``max_wait_s``) or a doubling back-off."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0, retries: int = 3,
                 max_wait_s: float = 30.0, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries, self.max_wait_s = retries, max_wait_s
        self._http = httpx.Client(timeout=timeout_s, transport=transport,
                                  follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> httpx.Response:
        wait = 0.5
        for attempt in range(self.retries + 1):
            try:
                r = self._http.request(method, self.base_url + path, json=body,
                                       headers=headers)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise LbsmsError("unreachable", f"{self.base_url}: {exc}") from None
            else:
                if r.status_code not in (429, 503) or attempt == self.retries:
                    return r
                after = r.headers.get("Retry-After", "")
                wait = float(after) if after.replace(".", "", 1).isdigit() else wait
            time.sleep(min(wait, self.max_wait_s))
            wait *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _answer(r: httpx.Response, ok: tuple[int, ...]) -> dict[str, Any]:
        if r.status_code in ok:
            data: dict[str, Any] = r.json()
            return data
        try:
            err = r.json().get("error", {})
        except ValueError:
            err = {}
        raise LbsmsError(err.get("code") or f"http_{r.status_code}",
                         err.get("message") or r.text[:200], status=r.status_code)

    def estimate(self, area: dict[str, Any]) -> dict[str, Any]:
        """The operator's own count of phones per cell in ``area`` (GeoJSON)."""
        return self._answer(self._call("POST", "/lbsms/v1/estimates", {"area": area}), (200,))

    def send(self, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        """Submit a broadcast (:func:`broadcast_body`); ``{"operator_ref", "state"}``.
        The same ``key`` (default :func:`idempotency_key`) on a retry never sends twice."""
        headers = {"Idempotency-Key": key or idempotency_key(body)}
        return self._answer(self._call("POST", "/lbsms/v1/broadcasts", body, headers),
                            (200, 202))

    def status(self, operator_ref: str) -> dict[str, Any]:
        """The latest aggregate of a broadcast."""
        return self._answer(self._call("GET", f"/lbsms/v1/broadcasts/{operator_ref}"),
                            (200,))

    def stop(self, operator_ref: str) -> dict[str, Any]:
        """Stop a broadcast; messages not yet sent are dropped."""
        return self._answer(self._call("DELETE", f"/lbsms/v1/broadcasts/{operator_ref}"),
                            (200, 202))
