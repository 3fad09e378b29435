#!/usr/bin/env python3
"""Export the archive as one clean table: JSONL, CSV, Parquet or SQLite.

A shim for cron and `python3 export_events.py`; the code is polisen_collector/cli/export_events.py
(installed as the `polisen-export` command).
"""

import sys

from polisen_collector.cli.launch import export_events

if __name__ == "__main__":
    sys.exit(export_events())
