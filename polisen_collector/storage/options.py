"""Which store and how to reach it: the storage layer's own options, built from the settings in parts.py.

A module of its own, below both the choice of backend (storage/__init__.py) and the OCI
backend that reads them (oci.py, oci_auth.py), so neither imports the other to name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OciOptions:
    """How to reach the bucket: the OCI_* settings (docs/oci.md), named without their prefix."""

    bucket: str
    region: str
    auth: str
    namespace: str | None = None
    endpoint: str | None = None
    config_file: str | None = None
    profile: str = "DEFAULT"
    vault_id: str | None = None
    vault_name: str | None = None
    compartment_id: str | None = None
    vault_auth: str = "config_file"
    vault_secret_prefix: str = "polisen-collector-"
    secrets_endpoint: str | None = None
    kms_endpoint: str | None = None
    retry_attempts: int = 5
    retry_base_seconds: float = 1.0
    connect_timeout: float = 10.0
    """Seconds to connect, and (read_timeout) with no byte from the service: the SDK's defaults, said here."""
    read_timeout: float = 60.0


@dataclass(frozen=True)
class StorageOptions:
    """Which store (STORAGE) and where: DATA_DIR for the local folder, `oci` for a bucket."""

    backend: str
    data_dir: Path
    oci: OciOptions
