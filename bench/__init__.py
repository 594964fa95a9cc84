"""Benchmarks: `python -m bench <name> [options]`; each prints JSON lines.

Every figure is reported beside the reference SQL workload of ../shared/bench/
measured in the same run (``reference_rate`` and ``ratio``), and with the
process's ``peak_rss_mb``.
"""
