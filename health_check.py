#!/usr/bin/env python3
"""Is the collector healthy? Exit code and one line for cron, Nagios or Prometheus.

A shim for cron and `python3 health_check.py`; the code is polisen_collector/cli/health_check.py
(installed as the `polisen-health-check` command).
"""

import sys

from polisen_collector.cli.launch import health_check

if __name__ == "__main__":
    sys.exit(health_check())
