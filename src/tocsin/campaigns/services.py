"""Campaign use cases: check, estimate, launch, schedule, update, cancel, report
(SPEC F12–F17, F19, F26).

The use cases live in one module each; this module is their public face, so that
web routes, the CLI and the worker import from one place:

- ``checks``: ``CampaignRequest`` and the checks every use case runs first;
- ``targeting``: who an area reaches, ``estimate_campaign``;
- ``launch``: ``launch_campaign`` (``launch`` also returns the warnings) and scheduled
  fan-out;
- ``control``: ``control_campaign`` (pause, resume, stop), ``campaign_progress``,
  ``send_times``;
- ``followups``: ``update_campaign``, ``all_clear``, ``cancel_campaign``;
- ``reports``: ``campaign_report``, ``list_campaigns``, ``pending_counts``;
- ``report_export``: ``export_report`` (the report as a PDF, CSV or JSON file).
"""

from __future__ import annotations

from tocsin.campaigns.approval import (
    approve_campaign,
    reject_campaign,
)
from tocsin.campaigns.checks import (
    MAX_SCHEDULE_AHEAD,
    CampaignInputError,
    CampaignNotFound,
    CampaignRequest,
)
from tocsin.campaigns.control import (
    campaign_progress,
    control_campaign,
    send_times,
)
from tocsin.campaigns.followups import (
    all_clear,
    cancel_campaign,
    default_all_clear_texts,
    update_campaign,
    update_source,
    update_with_warnings,
)
from tocsin.campaigns.launch import (
    Launched,
    due_scheduled,
    fan_out_scheduled,
    launch,
    launch_campaign,
)
from tocsin.campaigns.report_export import ReportFile, export_report
from tocsin.campaigns.reports import (
    RECEIPT_GRACE_SECONDS,
    campaign_report,
    list_campaigns,
    message_label,
    pending_counts,
)
from tocsin.campaigns.targeting import (
    Recipient,
    estimate_campaign,
    estimate_cells_layer,
    resolve_recipients,
)


def circle_area_geojson(text: str) -> dict[str, object]:
    """The circle ``"LAT,LON,RADIUS_KM"`` as a GeoJSON Feature for
    ``CampaignRequest.area_geojson`` (``tocsin.geo.shapes.circle_feature``).
    Raises ``CampaignInputError("circle", reason)``."""
    from tocsin.geo.areas import AreaError
    from tocsin.geo.shapes import circle_feature

    try:
        return circle_feature(text)
    except AreaError as exc:
        raise CampaignInputError(exc.field, exc.template, code=exc.code, **exc.params) from None

__all__ = [
    "campaign_progress",
    "control_campaign",
    "send_times",
    "ReportFile",
    "export_report",
    "approve_campaign",
    "reject_campaign",
    "CampaignInputError",
    "CampaignNotFound",
    "CampaignRequest",
    "Launched",
    "MAX_SCHEDULE_AHEAD",
    "RECEIPT_GRACE_SECONDS",
    "Recipient",
    "all_clear",
    "campaign_report",
    "circle_area_geojson",
    "cancel_campaign",
    "default_all_clear_texts",
    "due_scheduled",
    "estimate_campaign",
    "estimate_cells_layer",
    "fan_out_scheduled",
    "launch",
    "launch_campaign",
    "list_campaigns",
    "message_label",
    "pending_counts",
    "resolve_recipients",
    "update_campaign",
    "update_source",
    "update_with_warnings",
]
