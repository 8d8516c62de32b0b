"""Send scheduled campaigns when they are due (SPEC F19, F33).

Called from every worker's housekeeping loop. Safe with several workers: each
campaign is claimed by ``UPDATE campaign SET status='sending' WHERE id=… AND
status='scheduled' AND scheduled_for <= now`` (``campaigns.services.
fan_out_scheduled``); the one worker that changes the row fans it out in the
same transaction, the others see no row changed and move on.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.engine import Engine

from tocsin.campaigns.services import due_scheduled, fan_out_scheduled
from tocsin.core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def run_due(engine: Engine, settings: Settings | None = None,
            now: dt.datetime | None = None) -> list[str]:
    """Fan out every scheduled campaign due at ``now`` (default: the current UTC time).

    Returns the ids this call fanned out (not those another worker claimed).
    A campaign whose fan-out fails stays ``scheduled`` and is tried again on
    the next call; the error is logged.
    """
    settings = settings or get_settings()
    done: list[str] = []
    for campaign_id in due_scheduled(engine, now):
        try:
            count = fan_out_scheduled(engine, campaign_id, settings, now)
        except Exception:  # noqa: BLE001 - one bad campaign must not block the others
            log.exception("scheduled campaign %s could not be sent; retrying later",
                          campaign_id)
            continue
        if count is not None:
            log.info("scheduled campaign %s sent to %d recipients", campaign_id, count)
            done.append(campaign_id)
    return done
