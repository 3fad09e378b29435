#!/usr/bin/env python3
"""Cron entry point: run one collection of the Polisen events feed and exit.

A shim for cron and `python3 collect_events.py`; the code is polisen_collector/cli/collect_events.py
(installed as the `polisen-collect` command).
"""

import sys

from polisen_collector.cli.launch import collect_events

if __name__ == "__main__":
    sys.exit(collect_events())
