#!/usr/bin/env python3
"""Check the OCI credentials the collector would use, without printing any secret.

A shim for cron and `python3 secrets_manager.py`; the code is polisen_collector/cli/secrets_manager.py
(installed as the `polisen-secrets-check` command).
"""

import sys

from polisen_collector.cli.launch import secrets_manager

if __name__ == "__main__":
    sys.exit(secrets_manager())
