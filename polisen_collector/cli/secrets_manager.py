"""Check the OCI credentials the collector would use (OCI_AUTH), without printing any secret.

It builds the credentials exactly as a run does (config file, instance or resource
principal, or API-key secrets in OCI Vault) and reads the bucket's state object once.
Exit codes: 0 the credentials reach the bucket, 1 OCI could not be reached, 2 bad
configuration or credentials.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from polisen_collector.cli.common import ToolParser, add_standard_options, door
from polisen_collector.config import STORAGE_FIELDS, ConfigError, load_settings
from polisen_collector.exit_codes import EXIT_CONFIG, EXIT_FAILED, EXIT_OK


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        description="Check that the OCI credentials (OCI_AUTH: config file, principals or OCI Vault) reach the bucket.",
        epilog="Settings come from the environment or a .env file; see README.md.",
    )
    add_standard_options(parser)
    return parser.parse_args(argv)


def _local_hint(env_file: Path) -> str:
    """Why OCI settings are asked for on a host whose archive is local (STORAGE is forced to oci)."""
    try:
        if load_settings(env_file=env_file, only=("storage",)).storage != "local":
            return ""
    except ConfigError:
        return ""
    return ("; this checks the OCI settings a STORAGE=oci run would use, and STORAGE=local here "
            "needs none (docs/oci.md)")


@door
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(overrides={"STORAGE": "oci"}, env_file=args.env_file, only=STORAGE_FIELDS)
        from polisen_collector.archive.state import STATE_OBJECT
        from polisen_collector.parts import open_store
        from polisen_collector.storage.base import StorageError

        try:
            storage = open_store(settings)  # without OCI_NAMESPACE, the namespace is looked up here
            found = storage.get(STATE_OBJECT) is not None
        except StorageError as error:
            print(f"OCI could not be reached: {error}", file=sys.stderr)
            return EXIT_FAILED
    except ConfigError as error:
        print(f"configuration error: {error}{_local_hint(args.env_file)}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"OK: {storage.description} is readable ({STATE_OBJECT} {'found' if found else 'not there yet'})")
    return EXIT_OK
