#!/usr/bin/env python3
"""Trends of the collector from its per-run metrics files.

A shim for cron and `python3 analyze_metrics.py`; the code is polisen_collector/cli/analyze_metrics.py
(installed as the `polisen-analyze-metrics` command).
"""

import sys

from polisen_collector.cli.launch import analyze_metrics

if __name__ == "__main__":
    sys.exit(analyze_metrics())
