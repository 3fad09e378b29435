#!/usr/bin/env python3
"""The last run's performance metrics.

A shim for cron and `python3 performance_metrics.py`; the code is polisen_collector/cli/performance_metrics.py
(installed as the `polisen-performance-metrics` command).
"""

import sys

from polisen_collector.cli.launch import performance_metrics

if __name__ == "__main__":
    sys.exit(performance_metrics())
