"""Cost of the wrong-language check (Lingua, four languages) in one process.

Loads ``tocsin.messages.language`` in a fresh process, then times the first
detection (it builds the detector) and the next ones over the 60 alert
sentences of ``tests/fixtures/alert_sentences.json``, and prints the peak
resident memory (``ru_maxrss``) before and after. The detector is loaded only
by web processes that run a language check; the CLI and workers never load it.
No anchor in SPEC: the figure to watch is the memory a web process gains.

usage: python benchmarks/bench_language.py
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

SENTENCES = Path(__file__).resolve().parent.parent / "tests/fixtures/alert_sentences.json"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    by_language = json.loads(SENTENCES.read_text(encoding="utf-8"))["sentences"]
    texts = [text for sentences in by_language.values() for text in sentences]
    before = _rss_mib()
    started = time.perf_counter()
    from tocsin.messages.language import detect_language

    imported = time.perf_counter() - started
    started = time.perf_counter()
    detect_language(texts[0])
    first = time.perf_counter() - started
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        for text in texts:
            detect_language(text)
    per_text = (time.perf_counter() - started) / (rounds * len(texts))
    print(f"import {imported:.2f} s; first detection {first:.2f} s; then "
          f"{per_text * 1000:.2f} ms per text ({len(texts)} sentences x {rounds})")
    print(f"peak RSS {before:.0f} MiB before, {_rss_mib():.0f} MiB after "
          f"(+{_rss_mib() - before:.0f} MiB)")


if __name__ == "__main__":
    main()
