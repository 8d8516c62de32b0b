"""The voice soak in its short form (issue 12): 3 worker processes against the voice gateway
simulator over real HTTP. ``make soak`` runs the full form (600 starts/min for 5 minutes);
here the rate is scaled down to 120 starts/min over 75 s so that the sliding-minute limit is
really reached, and the trunk to 100 simultaneous calls.

The window (at the times Tocsin gives start permits) and the trunk are hard limits and
are checked exactly; at the provider two more starts in a minute are tolerated, for
requests that a descheduled worker process sends late. The average start rate
is checked at 90 % of the limit here (the full form checks 99 %): this short run shares a
2-core machine with the rest of the suite, and worker processes that start late or are
descheduled lose start slots that a 5-minute run averages out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).parent.parent / "benchmarks" / "soak_voice.py"


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_short_soak_three_workers_hold_the_rate_and_the_trunk():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    done = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "75", "--per-minute", "120", "--trunk", "100",
         "--workers", "3", "--time-scale", "0.05"],
        capture_output=True, text=True, timeout=400, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["starts"] > 120, result  # the sliding minute was really filled
    assert result["most_permits_in_60s"] <= 120, result  # Tocsin's limit, exactly
    # At the provider, a start request that a starved process sends late can join the
    # next minute (beyond the 0.5 s margin): at most a couple on this shared machine.
    assert result["most_starts_in_60s"] <= 122, result
    assert result["max_simultaneous"] <= 100, result
    assert result["calls_remaining"] > 0, result
    assert result["average_per_minute"] >= 0.9 * 120, result
