"""The campaign services, imported once for every route module.

Guarded so that the platform (login, map, health checks) still starts while
the campaigns area is missing from a development tree; the campaign routes
then answer 503.
"""

from __future__ import annotations

from types import ModuleType

campaigns: ModuleType | None
try:
    from tocsin.campaigns import services as campaigns
except ImportError:  # pragma: no cover - only in a partial development tree
    campaigns = None


class CampaignsUnavailable(Exception):
    """The campaign services could not be imported (answered 503)."""


def campaign_services() -> ModuleType:
    """The ``tocsin.campaigns.services`` module; raises CampaignsUnavailable."""
    if campaigns is None:
        raise CampaignsUnavailable()
    return campaigns
