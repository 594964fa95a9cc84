"""Helpers shared by the benchmarks: JSON lines, peak memory, the reference workloads."""

import json
import os
import resource
import sys
from pathlib import Path

# ../shared/bench/reference beside the checkout, as the project's layout has it.
REFERENCE_DIR = Path(
    os.environ.get(
        "BENCH_REFERENCE_DIR",
        Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "reference",
    )
)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and its waited-for children), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def emit(**fields) -> None:
    fields.setdefault("peak_rss_mb", peak_rss_mb())
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
