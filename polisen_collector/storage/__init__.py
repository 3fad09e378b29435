"""The archive's store: the interface in base.py, a local folder and OCI Object Storage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polisen_collector.storage.base import Storage


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


@dataclass(frozen=True)
class StorageOptions:
    """Which store (STORAGE) and where: DATA_DIR for the local folder, `oci` for a bucket."""

    backend: str
    data_dir: Path
    oci: OciOptions


def open_storage(options: StorageOptions) -> Storage:
    """The backend the options name; OCI's SDK is imported only when it is chosen."""
    if options.backend == "oci":
        from polisen_collector.storage.oci import open_oci_storage

        return open_oci_storage(options.oci)
    from polisen_collector.storage.local import LocalStorage

    return LocalStorage(options.data_dir)
