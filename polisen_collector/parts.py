"""The parts every job builds from the settings: the store, the API client, the page client.

A run, an audit tick, a backfill, compaction, the export and the secrets check all build
theirs here, each layer from its own small options object, so that two jobs never differ in
how they reach the same store or API. The imports are inside the functions: a job imports
only the parts it builds (a local run never imports `oci`, the export never imports requests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polisen_collector import interrupt
from polisen_collector.host_files import HostFiles
from polisen_collector.storage import open_storage
from polisen_collector.storage.options import OciOptions, StorageOptions

if TYPE_CHECKING:
    from polisen_collector.api.client import ApiOptions, PolisenClient
    from polisen_collector.api.rate_limit import RateLimiter
    from polisen_collector.config import Settings
    from polisen_collector.pages.fetch import PageClient
    from polisen_collector.storage.base import Storage
    from polisen_collector.storage.local import LocalStorage

# What a job waits for, said once on a terminal (interrupt.pauser): every wait ends at once on a signal.
API_WAIT = "the next request to the API (retries back off; the API's usage rules ask for 10 s between requests)"
PAGE_WAIT = "the next event page (PAGE_INTERVAL_SECONDS between pages)"
HOST_RECORD_BYTES = 16 << 20
"""The host's records are read no further: the ledger holds a day of requests (under 200 KB at the
10 s rule), the withdrawal hints the ids a month of answers lacked."""


def storage_options(settings: Settings) -> StorageOptions:
    return StorageOptions(backend=settings.storage, data_dir=settings.data_dir, oci=OciOptions(
        bucket=settings.oci_bucket, region=settings.oci_region, auth=settings.oci_auth,
        namespace=settings.oci_namespace, endpoint=settings.oci_endpoint, config_file=settings.oci_config_file,
        profile=settings.oci_profile, vault_id=settings.oci_vault_id, vault_name=settings.oci_vault_name,
        compartment_id=settings.oci_compartment_id, vault_auth=settings.oci_vault_auth,
        vault_secret_prefix=settings.oci_vault_secret_prefix, secrets_endpoint=settings.oci_secrets_endpoint,
        kms_endpoint=settings.oci_kms_endpoint, retry_attempts=settings.oci_retry_attempts,
        retry_base_seconds=settings.oci_retry_base_seconds,
    ))


def open_store(settings: Settings) -> Storage:
    """The store itself: for the jobs that read it once or walk it (export, compaction, a dry run)."""
    return open_storage(storage_options(settings))


def open_archive(settings: Settings) -> Storage:
    """The store for the jobs that read the state and the page queue again and again (a run, an
    audit tick, a backfill): from a remote store they are read against this host's copies."""
    storage = open_store(settings)
    if settings.storage == "local":
        return storage
    from polisen_collector.archive.state import STATE_OBJECT
    from polisen_collector.pages.queue import QUEUE_OBJECT
    from polisen_collector.storage.delta_map import BASES, decoded_limit
    from polisen_collector.storage.local_copy import LocalCopy

    files = HostFiles(settings.log_dir)
    return LocalCopy(storage, {STATE_OBJECT: files.state_copy, QUEUE_OBJECT: files.queue_copy},
                     write_once={BASES: files.bases}, max_bytes=decoded_limit(settings.state_retention_days))


def api_options(settings: Settings) -> ApiOptions:
    from polisen_collector.api.client import ApiOptions

    return ApiOptions(
        url=settings.api_url,
        contact_email=settings.contact_email,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_retries=settings.max_retries,
        backoff_factor=settings.backoff_factor,
        retry_after_max=settings.retry_after_max,
        max_body_bytes=settings.max_body_bytes,
    )


def open_client(settings: Settings) -> PolisenClient:
    """The API client every job of a host uses: its requests all count in the host's rate-limit ledger;
    when a signal stops the job, its waits end at once and a request on the wire is cut short."""
    from polisen_collector.api.client import PolisenClient

    client = PolisenClient(api_options(settings), limiter=rate_limiter(settings), sleep=interrupt.pauser(API_WAIT))
    interrupt.on_stop(client.abort)
    return client


def rate_limiter(settings: Settings) -> RateLimiter | None:
    """The host's ledger of API requests (LOG_DIR), or None when API_RATE_LIMIT is off."""
    if not settings.rate_limit:
        return None
    from polisen_collector.api.rate_limit import RateLimiter

    return RateLimiter(host_store(settings), sleep=interrupt.pauser(API_WAIT))


def host_store(settings: Settings) -> LocalStorage:
    """This host's own records in LOG_DIR as a store (the rate ledger, the withdrawal hints), written
    and read like the archive's objects, no further than HOST_RECORD_BYTES."""
    from polisen_collector.storage.local import LocalStorage

    return LocalStorage(settings.log_dir, max_object_bytes=HOST_RECORD_BYTES)


def page_client(settings: Settings) -> PageClient:
    """The polite client of the event pages (at least PAGE_INTERVAL_SECONDS apart while the rate limit is on);
    as the API client, its pacing ends at once on a stop signal and a page on the wire is cut short."""
    from polisen_collector.pages.fetch import PageClient, PageOptions

    client = PageClient(PageOptions(
        origin=settings.page_origin, contact_email=settings.contact_email,
        connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
        interval=settings.page_interval if settings.rate_limit else 0.0, max_bytes=settings.page_max_bytes,
    ), sleep=interrupt.pauser(PAGE_WAIT))
    interrupt.on_stop(client.abort)
    return client
