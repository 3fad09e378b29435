"""The archive's store: the interface in base.py, a local folder and OCI Object Storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polisen_collector.storage.base import Storage
    from polisen_collector.storage.options import StorageOptions


def open_storage(options: StorageOptions) -> Storage:
    """The backend the options name; OCI's SDK is imported only when it is chosen."""
    if options.backend == "oci":
        from polisen_collector.storage.oci import open_oci_storage

        return open_oci_storage(options.oci)
    from polisen_collector.storage.local import LocalStorage

    return LocalStorage(options.data_dir)
