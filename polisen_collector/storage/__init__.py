"""The archive's store: the interface in base.py, a local folder and OCI Object Storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polisen_collector.config import Settings
    from polisen_collector.storage.base import Storage


def open_storage(settings: Settings) -> Storage:
    """The backend the settings name; OCI's SDK is imported only when it is chosen."""
    if settings.storage == "oci":
        from polisen_collector.storage.oci import open_oci_storage

        return open_oci_storage(settings)
    from polisen_collector.storage.local import LocalStorage

    return LocalStorage(settings.data_dir)
