"""A campaign's report as a file people keep: JSON, CSV or a printable PDF (SPEC F26).

Built from ``reports.campaign_report`` plus three readings it does not need for the
web page: the area's geometry (drawn as SVG), the authority's name, and deliveries
sent over time per channel (the chart). The PDF is HTML + print CSS rendered by
WeasyPrint; no network is used (no tiles, no fonts or images fetched).

The CSV adds, for a campaign sent to the authority's own contact lists and groups,
the per-recipient delivery list (``recipient_rows``): its contacts by name, number or
address; registered citizens reached through a geographic group appear only under a
pseudonym, and citizens reached through the area never appear one by one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.dates import format_datetime, format_timedelta
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine

from tocsin.authorities.models import Authority
from tocsin.campaigns.checks import CampaignInputError
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.report_labels import LABELS, REPORT_LANGUAGES, label
from tocsin.campaigns.reports import campaign_report
from tocsin.core.csvcell import csv_cell
from tocsin.core.db import read_transaction, table
from tocsin.core.settings import Settings
from tocsin.dispatch.models import Delivery

__all__ = ["FORMATS", "REPORT_LANGUAGES", "ReportFile", "csv_rows", "export_report",
           "report_timeline"]

FORMATS = ("pdf", "csv", "json")
BRUSSELS = ZoneInfo("Europe/Brussels")
TEMPLATES = Path(__file__).resolve().parent / "report_templates"
#: The chart has at most this many bars; finer buckets are merged.
MAX_BARS = 60
CHANNEL_COLOURS = {"sms": "#1f5fa8", "email": "#c2571a", "voice": "#2e7d32"}


class ReportFile:
    """A built report: ``content`` (bytes), ``media_type`` and a ``filename``."""

    def __init__(self, content: bytes, media_type: str, filename: str) -> None:
        self.content, self.media_type, self.filename = content, media_type, filename


def _check(fmt: str, lang: str) -> None:
    if fmt not in FORMATS:
        raise CampaignInputError("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    if lang not in REPORT_LANGUAGES:
        raise CampaignInputError("lang", f"{lang!r} is not one of {', '.join(REPORT_LANGUAGES)}")


def export_report(engine: Engine, campaign_id: str, fmt: str, *, lang: str = "en",
                  actor: Any = None, settings: Settings | None = None,
                  public_url: str | None = None) -> ReportFile:
    """The report of ``campaign_id`` as a file: ``fmt`` ``json`` (``campaign_report``'s
    dict, UTF-8), ``csv`` (``csv_rows``, UTF-8, header translated) or ``pdf`` (A4,
    labels in ``lang``: fr | nl | de | en, times in Europe/Brussels).

    ``actor`` as in ``campaign_report`` (``None``: the command line, reads every
    campaign). Raises ``CampaignInputError`` naming ``format`` or ``lang``, ``LookupError`` for
    an unknown campaign and ``access.Denied`` (hidden) for one the actor may not read.
    """
    _check(fmt, lang)
    report = campaign_report(engine, campaign_id, settings, public_url=public_url, actor=actor)
    stem = f"tocsin-report-{campaign_id}"
    if fmt == "json":
        return ReportFile((json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode(),
                          "application/json", f"{stem}.json")
    extra = _extras(engine, campaign_id, report)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([label(lang, k) for k in ("channel", "state", "reason", "count")])
        writer.writerows([csv_cell(v) for v in row] for row in csv_rows(report, extra["reasons"]))
        recipients = recipient_rows(engine, campaign_id, settings)
        if recipients:
            writer.writerow([])
            writer.writerow([label(lang, k) for k in RECIPIENT_COLUMNS])
            writer.writerows([csv_cell(v) for v in row] for row in recipients)
        return ReportFile(buf.getvalue().encode("utf-8"), "text/csv; charset=utf-8",
                          f"{stem}.csv")
    return ReportFile(_pdf(report, extra, lang), "application/pdf", f"{stem}.pdf")


def csv_rows(report: dict[str, Any],
             reasons: dict[str, dict[str, dict[str, int]]]) -> list[list[Any]]:
    """One ``[channel, state, reason, count]`` per channel × state × failure reason
    (reason ``""`` for states that are not failures), channels in the campaign's order,
    states sorted. ``reasons``: channel -> state -> reason -> count (``_extras``).
    Their sums per channel and state equal ``report["channels"][ch]["by_status"]``."""
    rows: list[list[Any]] = []
    for name in report["channel_list"]:
        entry = report["channels"].get(name) or {}
        for state, n in sorted((entry.get("by_status") or {}).items()):
            split = reasons.get(name, {}).get(state)
            if split:
                rows.extend([name, state, reason, k] for reason, k in sorted(split.items()))
            else:
                rows.append([name, state, "", n])
    return rows


#: The per-recipient list's columns (report labels, ``report_labels``).
RECIPIENT_COLUMNS = ("recipient", "target", "channel", "address", "state", "reason",
                     "attempts", "sent_at", "final_at")


def _pseudonym(address: str, secret: str) -> str:
    """A citizen's stable pseudonym in one installation: ``citizen-`` and 10 hex digits of
    HMAC-SHA-256(secret, address) — the same person twice in one report is recognisable,
    the number or address is not (GDPR art. 4(5))."""
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()
    return f"citizen-{digest[:10]}"


def recipient_rows(engine: Engine, campaign_id: str,
                   settings: Settings | None = None) -> list[list[Any]]:
    """The per-recipient deliveries of a campaign to the authority's contact lists and
    groups (SPEC F26): ``[recipient, target, channel, address, state, reason, attempts,
    sent_at, final_at]`` (times ISO 8601 UTC), contacts first by name. A contact of a
    list or static group is named with its number or address; a registered citizen
    reached through a geographic group gets a pseudonym (``_pseudonym``) and no
    address (with a geographic group, every delivery not to a named contact is listed
    so; without one, the area's subscribers are not listed); a delivery pseudonymised
    after the retention period is listed under its pseudonym. ``[]`` for a campaign
    without lists or groups."""
    from tocsin.subscribers.contact_models import Contact, ContactGroup, ContactGroupMember

    secret = (settings.secret_key if settings and settings.secret_key else campaign_id)
    d, ct, m = table(Delivery), table(Contact), table(ContactGroupMember)
    with read_transaction(engine) as s:
        targets = s.scalar(sa.select(Campaign.targets).where(Campaign.id == campaign_id))
        if not targets:
            return []
        named: dict[tuple[str, str], tuple[str, str]] = {}  # (channel, address) -> (name, target)
        contacts = [(t["name"], sa.select(ct.c.name, ct.c.mobile, ct.c.email)
                     .where(ct.c.list_id == t["id"])) for t in targets.get("lists", [])]
        geographic = False
        for g in targets.get("groups", []):
            if s.scalar(sa.select(ContactGroup.kind).where(ContactGroup.id == g["id"])) == \
                    "geographic":
                geographic = True
                continue
            contacts.append((g["name"], sa.select(ct.c.name, ct.c.mobile, ct.c.email)
                             .join(m, m.c.contact_id == ct.c.id).where(m.c.group_id == g["id"])))
        for target, query in contacts:
            for name, mobile, email in s.execute(query):
                for channel, address in (("sms", mobile), ("voice", mobile), ("email", email)):
                    if address:
                        named.setdefault((channel, address), (name or "", target))
        rows = s.execute(sa.select(d.c.channel, d.c.address, d.c.state, d.c.error,
                                   d.c.attempts, d.c.sent_at, d.c.final_at)
                         .where(d.c.campaign_id == campaign_id).order_by(d.c.id)).all()
    out: list[list[Any]] = []
    citizens: list[list[Any]] = []
    geo_names = ", ".join(g["name"] for g in targets.get("groups", [])
                          if g.get("kind") == "geographic") or "geographic group"
    for ch, address, state, error, attempts, sent, final in rows:
        times = [t.isoformat() if t else "" for t in (sent, final)]
        if (ch, address) in named:
            name, target = named[(ch, address)]
            out.append([name, target, ch, address, state, error or "", attempts, *times])
        elif address.startswith(("pseudo:", "erased:")):
            # Past the retention period (dispatch.retention) or erased (GDPR Art. 17):
            # the row stays, under its pseudonym, with no address.
            citizens.append([address, "", ch, "", state, error or "", attempts, *times])
        elif geographic:
            citizens.append([_pseudonym(address, secret), geo_names, ch, "", state,
                             error or "", attempts, *times])
    out.sort(key=lambda r: (str(r[0]).casefold(), r[2]))
    return out + citizens


def _time_key(d: sa.Table, engine: Engine, seconds: bool) -> sa.ColumnElement[Any]:
    """``sent_at`` truncated to the second or minute, as UTC text ``YYYY-MM-DD HH:MM[:SS]``."""
    if engine.dialect.name == "postgresql":
        utc = sa.func.timezone("UTC", d.c.sent_at)
        return sa.func.to_char(utc, "YYYY-MM-DD HH24:MI:SS" if seconds else "YYYY-MM-DD HH24:MI")
    return sa.func.substr(sa.cast(d.c.sent_at, sa.String), 1, 19 if seconds else 16)


def report_timeline(engine: Engine, campaign_id: str, first: str | None,
                    last: str | None) -> tuple[int, list[tuple[dt.datetime, str, int]]]:
    """Deliveries sent per time bucket and channel: ``(bucket seconds, [(bucket start
    UTC, channel, count)])``, per second (1) when the sending lasted at most 10 minutes,
    else per minute (60). ``first``/``last``: the report's first/last ``sent_at``
    (RFC 3339); none: ``(1, [])``."""
    if not first or not last:
        return 1, []
    span = _parse(last) - _parse(first)
    seconds = span <= dt.timedelta(minutes=10)
    d = table(Delivery)
    key = _time_key(d, engine, seconds)
    with read_transaction(engine) as s:
        rows = s.execute(sa.select(key, d.c.channel, sa.func.count())
                         .where(d.c.campaign_id == campaign_id, d.c.sent_at.is_not(None))
                         .group_by(key, d.c.channel)).all()
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return (1 if seconds else 60), sorted((dt.datetime.strptime(str(k)[:19 if seconds else 16], fmt)
                   .replace(tzinfo=dt.UTC), ch, n) for k, ch, n in rows)


def _extras(engine: Engine, campaign_id: str, report: dict[str, Any]) -> dict[str, Any]:
    """What the files add to the report: area geometry, authority names, failure
    reasons per state, the timeline."""
    d = table(Delivery)
    with read_transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None  # campaign_report found it
        owner = s.get(Authority, c.authority_id)
        names: dict[str, str] = {}
        if owner is not None:
            # German and English: the German name, else the name in the authority's own
            # first language (Antwerpen, not Anvers).
            own = {"fr": owner.name_fr, "nl": owner.name_nl, "de": owner.name_de}
            first_lang = (owner.languages or "fr").split(",")[0].strip()
            local = own.get(first_lang) or owner.name_fr
            names = {"fr": owner.name_fr, "nl": owner.name_nl,
                     "de": owner.name_de or local, "en": local}
        area = c.area
        reasons: dict[str, dict[str, dict[str, int]]] = {}
        for ch, st, err, n in s.execute(
                sa.select(d.c.channel, d.c.state, d.c.error, sa.func.count())
                .where(d.c.campaign_id == campaign_id,
                       d.c.state.in_(("failed", "expired")))
                .group_by(d.c.channel, d.c.state, d.c.error)):
            reasons.setdefault(ch, {}).setdefault(st, {})[err or "unknown"] = n
    sent = [ch for ch in report["channels"].values() if ch.get("first_sent_at")]
    first = min((ch["first_sent_at"] for ch in sent), default=None)
    last = max((ch["last_sent_at"] for ch in sent), default=None)
    return {"area": area, "names": names, "reasons": reasons, "first": first, "last": last,
            "timeline": report_timeline(engine, campaign_id, first, last)}


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- drawing ---------------------------------------------------------------------------

def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    kind = geometry.get("type")
    if kind == "Feature":
        return _rings(geometry.get("geometry") or {})
    if kind == "FeatureCollection":
        return [r for f in geometry.get("features") or [] for r in _rings(f)]
    if kind == "GeometryCollection":
        return [r for g in geometry.get("geometries") or [] for r in _rings(g)]
    if kind == "Polygon":
        return list(geometry.get("coordinates") or [])
    if kind == "MultiPolygon":
        return [r for p in geometry.get("coordinates") or [] for r in p]
    return []


def area_svg(area_geojson: str | None, width: int = 360, height: int = 260) -> str:
    """The area as an inline SVG: an equirectangular projection centred on the area
    (x scaled by cos(mean latitude), so shapes keep their proportions at Belgian
    latitudes), fitted in ``width`` × ``height`` px; ``""`` when there is no polygon."""
    try:
        rings = _rings(json.loads(area_geojson or "null") or {})
    except (ValueError, TypeError, AttributeError):
        return ""
    points = [(float(p[0]), float(p[1])) for r in rings for p in r if len(p) >= 2]
    if not points:
        return ""
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    k = math.cos(math.radians((min(lats) + max(lats)) / 2))
    w, h = (max(lons) - min(lons)) * k or 1e-6, (max(lats) - min(lats)) or 1e-6
    pad = 12
    scale = min((width - 2 * pad) / w, (height - 2 * pad) / h)
    ox = (width - w * scale) / 2
    oy = (height - h * scale) / 2
    paths = []
    for ring in rings:
        pts = [(ox + (float(p[0]) - min(lons)) * k * scale,
                oy + (max(lats) - float(p[1])) * scale) for p in ring if len(p) >= 2]
        if pts:
            paths.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z")
    km = w * 111.32  # width of the drawing in km
    bar_km = _nice(km / 4)
    bar_px = bar_km / km * w * scale if km else 0
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" class="area-map">'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f4f6f8"/>'
            f'<path d="{" ".join(paths)}" fill="#e0533d" fill-opacity="0.35" '
            f'stroke="#a4281a" stroke-width="1.5" fill-rule="evenodd"/>'
            f'<g font-size="10" fill="#222"><line x1="{pad}" y1="{height - 8}" '
            f'x2="{pad + bar_px:.1f}" y2="{height - 8}" stroke="#222" stroke-width="2"/>'
            f'<text x="{pad}" y="{height - 12}">{_km(bar_km)}</text>'
            f'<text x="{width - pad}" y="{pad + 4}" text-anchor="end">N ↑</text></g></svg>')


def _nice(x: float) -> float:
    if x <= 0:
        return 0.0
    p = 10 ** math.floor(math.log10(x))
    return next(m * p for m in (5, 2, 1) if m * p <= x)


def _km(x: float) -> str:
    return f"{x:g} km" if x >= 1 else f"{x * 1000:g} m"


def chart_svg(step: int, timeline: list[tuple[dt.datetime, str, int]], channels: list[str],
              lang: str, width: int = 640, height: int = 220) -> str:
    """Deliveries sent over time (``report_timeline``: ``step`` seconds per bucket) as
    stacked bars per channel (inline SVG), at most
    ``MAX_BARS`` bars; axis times in Brussels time; ``""`` when nothing was sent."""
    if not timeline:
        return ""
    start, end = timeline[0][0], timeline[-1][0]
    total = int((end - start).total_seconds()) // step + 1
    per = max(1, math.ceil(total / MAX_BARS))
    nbars = math.ceil(total / per)
    bars: list[dict[str, int]] = [{} for _ in range(nbars)]
    for t, ch, n in timeline:
        i = int((t - start).total_seconds()) // step // per
        bars[i][ch] = bars[i].get(ch, 0) + n
    top = max(sum(b.values()) for b in bars) or 1
    left, bottom, right, head = 44, 34, 8, 22
    plot_w, plot_h = width - left - right, height - bottom - head
    bw = plot_w / nbars
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" class="chart" font-size="10">',
           f'<line x1="{left}" y1="{head + plot_h}" x2="{width - right}" y2="{head + plot_h}" '
           'stroke="#444"/>',
           f'<line x1="{left}" y1="{head}" x2="{left}" y2="{head + plot_h}" stroke="#444"/>',
           f'<text x="{left - 4}" y="{head + 4}" text-anchor="end">'
           f'{format_decimal(top, locale=lang)}</text>',
           f'<text x="{left - 4}" y="{head + plot_h}" text-anchor="end">0</text>']
    order = [c for c in channels if c != "cap"]
    for i, bar in enumerate(bars):
        y = float(head + plot_h)
        for ch in order:
            n = bar.get(ch, 0)
            if not n:
                continue
            hgt = n / top * plot_h
            y -= hgt
            out.append(f'<rect x="{left + i * bw + bw * 0.1:.1f}" y="{y:.1f}" '
                       f'width="{min(max(bw * 0.8, 0.5), 40):.1f}" height="{hgt:.1f}" '
                       f'fill="{CHANNEL_COLOURS.get(ch, "#777")}"/>')
    fmt = "HH:mm:ss" if step == 1 else "HH:mm"
    last_bar_end = start + dt.timedelta(seconds=nbars * per * step)
    for x, t, anchor in ((left, start, "start"), (width - right, last_bar_end, "end")):
        out.append(f'<text x="{x}" y="{head + plot_h + 14}" text-anchor="{anchor}">'
                   f'{format_datetime(t, fmt, tzinfo=BRUSSELS, locale=lang)}</text>')
    span = format_timedelta(dt.timedelta(seconds=per * step), locale=lang, format="short")
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{head + plot_h + 28}" '
               f'text-anchor="middle">{label(lang, "per_bar")}: {span}</text>')
    x = left
    for ch in order:
        out.append(f'<rect x="{x}" y="4" width="10" height="10" '
                   f'fill="{CHANNEL_COLOURS.get(ch, "#777")}"/>'
                   f'<text x="{x + 14}" y="13">{label(lang, "channel." + ch)}</text>')
        x += 90
    out.append("</svg>")
    return "".join(out)


# --- PDF -------------------------------------------------------------------------------

def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES),
                       autoescape=select_autoescape(["html"]))


def _when(value: str | None, lang: str) -> str:
    if not value:
        return "—"
    return format_datetime(_parse(value), "medium", tzinfo=BRUSSELS, locale=lang)


def _pdf(report: dict[str, Any], extra: dict[str, Any], lang: str) -> bytes:
    from weasyprint import HTML  # heavy import: only when a PDF is asked for

    def num(x: float | int) -> str:
        return str(format_decimal(x, locale=lang))

    def eur(x: float) -> str:
        # Costs are kept to the thousandth of a euro (SMS prices): never rounded away.
        return str(format_currency(x, "EUR", locale=lang, currency_digits=False,
                                   decimal_quantization=False))

    names = extra["names"]
    authority = names.get(lang)
    launched = report.get("launched_at")
    duration = "—"
    if launched and extra["last"]:
        duration = str(format_timedelta(_parse(extra["last"]) - _parse(launched),
                                        locale=lang, threshold=2))
    channels = [(name, report["channels"][name]) for name in report["channel_list"]
                if name != "cap" and name in report["channels"]]
    total_cost = sum(ch.get("cost_eur", 0.0) for _, ch in channels)
    total_billed = sum(ch.get("billed_eur", 0.0) for _, ch in channels)
    step, buckets = extra["timeline"]
    html = _env().get_template("report.html").render(
        r=report, lang=lang, t=LABELS[lang], L=lambda k: label(lang, k),
        authority=authority or report["authority_id"], channels=channels,
        reasons=extra["reasons"], cap=report["channels"].get("cap"),
        when=lambda v: _when(v, lang), num=num, eur=eur, duration=duration,
        first=extra["first"], last=extra["last"],
        total_cost=total_cost, total_billed=total_billed,
        area=area_svg(extra["area"]),
        chart=chart_svg(step, buckets, report["channel_list"], lang),
        generated=format_datetime(dt.datetime.now(dt.UTC), "medium", tzinfo=BRUSSELS,
                                  locale=lang))
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    return pdf
