"""The archive in an OCI Object Storage bucket, same layout as the local folder.

Imported only when STORAGE=oci, so a local run never loads the `oci` SDK. Conditional
writes use the bucket's ETags (`if-match`, `if-none-match: *`); a lost race is a 412,
reported as PreconditionFailed and never retried. Transient failures (timeouts, 429, 5xx)
are retried by the SDK's own retry strategy; what remains becomes one actionable line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import oci
import urllib3

from polisen_collector.config import ConfigError
from polisen_collector.storage.base import NotModified, PreconditionFailed, StorageError, StoredObject
from polisen_collector.storage.oci_auth import OciAuth, client_settings, endpoint_of, oci_credentials
from polisen_collector.storage.options import OciOptions

log = logging.getLogger("polisen.oci")

LIST_PAGE_SIZE = 1000
BODY_CHUNK = 1 << 16
MIN_BODY_RATE = 1 << 20
"""Bytes a second an object's body comes at, at the least, on average: beyond the request's own
deadline, a body may take its size at this rate (a state of 256 MiB four more minutes)."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    return (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout)


class OCIStorage:
    """One bucket through an ObjectStorageClient.

    Every failure becomes a StorageError, or a ConfigError when OCI says the credentials,
    namespace or bucket are wrong: the first request of a run is the check of the settings.
    """

    def __init__(self, client: Any, namespace: str, bucket: str, auth: str = "the configured credentials",
                 deadline: float = 130.0) -> None:
        self.client = client
        self.deadline = deadline
        self.namespace = namespace
        self.bucket = bucket
        self.auth = auth
        self.endpoint = endpoint_of(client)
        self.description = f"OCI bucket {bucket} (namespace {namespace}, endpoint {self.endpoint})"

    def _fail(self, action: str, error: BaseException) -> StorageError | ConfigError:
        """The error to raise; wrong credentials, namespace or bucket are a ConfigError (exit 2)."""
        if isinstance(error, oci.exceptions.ServiceError):
            return service_error(f"{action} in {self.description}", error, self.auth)
        return StorageError(
            f"{action} in {self.description} failed: endpoint unreachable or timed out "
            f"({type(error).__name__}); check the network, a proxy, or OCI_ENDPOINT"
        )

    def get(self, name: str) -> StoredObject | None:
        found = self._get(name, if_none_match=None)
        assert not isinstance(found, NotModified)
        return found

    def get_if_changed(self, name: str, etag: str) -> StoredObject | NotModified | None:
        return self._get(name, if_none_match=etag)

    def _get(self, name: str, if_none_match: str | None) -> StoredObject | NotModified | None:
        try:
            response = self.client.get_object(self.namespace, self.bucket, name, if_none_match=if_none_match)
            data = self._body(name, response.data)
        except oci.exceptions.ServiceError as error:
            if error.status == 304 and if_none_match is not None:
                return NotModified(if_none_match)
            if error.status == 404 and error.code == "ObjectNotFound":
                return None
            raise self._fail(f"reading {name}", error) from None
        except _transport_errors() as error:
            raise self._fail(f"reading {name}", error) from None
        return StoredObject(data=data, etag=response.headers["etag"])

    def _body(self, name: str, body: Any) -> bytes:
        """An object's bytes, read here rather than by the SDK so that a server trickling them
        cannot hold the job: within `deadline` seconds plus its size at MIN_BODY_RATE. Each read
        returns what has arrived (urllib3's read1), so the deadline is checked as the bytes come;
        a stream broken off, short, or silent for the read timeout is a StorageError too."""
        limit = self.deadline + int(body.headers.get("Content-Length") or 0) / MIN_BODY_RATE
        end = time.monotonic() + limit
        chunks = []
        try:
            while chunk := body.raw.read1(BODY_CHUNK):
                chunks.append(chunk)
                if time.monotonic() > end:
                    raise StorageError(f"reading {name} in {self.description} failed: its body took longer than "
                                       f"{limit:.0f} s; check the network or a proxy")
        except (OSError, urllib3.exceptions.HTTPError) as error:
            raise self._fail(f"reading {name}", error) from None
        finally:
            body.close()
        return b"".join(chunks)

    def put(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        try:
            response = self.client.put_object(
                self.namespace, self.bucket, name, data, content_type=content_type,
                if_match=if_match, if_none_match="*" if if_none_match else None,
            )
        except oci.exceptions.ServiceError as error:
            conditional = if_match is not None or if_none_match
            if conditional and (error.status == 412 or (error.status == 409 and error.code == "IfNoneMatchFailed")):
                raise PreconditionFailed(f"{name} changed since it was read ({error.code})") from None
            raise self._fail(f"writing {name}", error) from None
        except _transport_errors() as error:
            raise self._fail(f"writing {name}", error) from None
        etag: str = response.headers["etag"]
        return etag

    def list(self, prefix: str) -> Iterator[str]:
        """Names under `prefix` in name order, one page of LIST_PAGE_SIZE at a time."""
        start = None
        while True:
            try:
                page = self.client.list_objects(
                    self.namespace, self.bucket, prefix=prefix, start=start, limit=LIST_PAGE_SIZE, fields="name",
                ).data
            except (oci.exceptions.ServiceError, *_transport_errors()) as error:
                raise self._fail(f"listing {prefix or 'all objects'}", error) from None
            for summary in page.objects:
                yield summary.name
            if not page.next_start_with:
                return
            start = page.next_start_with

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(self.namespace, self.bucket, name)
        except oci.exceptions.ServiceError as error:
            if error.status == 404 and error.code == "ObjectNotFound":
                return
            raise self._fail(f"deleting {name}", error) from None
        except _transport_errors() as error:
            raise self._fail(f"deleting {name}", error) from None


def service_error(where: str, error: Any, auth: str) -> StorageError | ConfigError:
    """An OCI service error in words an operator can act on.

    Refused credentials and a missing bucket or namespace are configuration (exit 2);
    throttling and 5xx, which the SDK has already retried, fail the run.
    """
    status, code = error.status, error.code
    if status == 401:
        return ConfigError(f"{where}: OCI refused the credentials ({auth}): not authenticated; "
                           "check the user, tenancy, fingerprint and key, and the clock")
    if status == 403 or (status == 404 and code != "ObjectNotFound"):
        return ConfigError(f"{where}: bucket not found or not authorized ({code}); check OCI_BUCKET_NAME, "
                           "OCI_NAMESPACE and the IAM policy")
    if status == 429:
        return StorageError(f"{where} failed: throttled by OCI (HTTP 429) after the SDK's retries; try again later")
    if status >= 500:
        return StorageError(f"{where} failed: OCI service error (HTTP {status} {code}) after the SDK's retries; "
                            "try again later")
    return StorageError(f"{where} failed: HTTP {status} {code}")


def open_oci_storage(options: OciOptions) -> OCIStorage:
    """A client for the configured bucket, without a network call when OCI_NAMESPACE is set.

    Nothing is checked ahead of the run: its first request (the state read) is the check,
    so a run costs no extra round trip. Wrong credentials, namespace or bucket then raise
    ConfigError (exit 2) before anything is stored; an unreachable or failing endpoint
    raises StorageError (the run fails, the next one tries again).
    """
    auth = oci_credentials(options)
    try:
        client = oci.object_storage.ObjectStorageClient(auth.config, signer=auth.signer,
                                                        service_endpoint=options.endpoint, **client_settings(options))
    except (ValueError, oci.exceptions.ClientError) as error:
        raise ConfigError(f"cannot build the OCI Object Storage client: {type(error).__name__}") from None
    namespace = options.namespace or _look_up_namespace(client, auth)
    storage = OCIStorage(client, namespace, options.bucket, auth.description,
                         deadline=options.connect_timeout + 2 * options.read_timeout)
    log.debug("using %s with %s", storage.description, auth.description)
    return storage


def _look_up_namespace(client: Any, auth: OciAuth) -> str:
    """The tenancy's namespace: one round trip that setting OCI_NAMESPACE saves."""
    endpoint = endpoint_of(client)
    try:
        namespace: str = client.get_namespace().data
        return namespace
    except oci.exceptions.ServiceError as error:
        raise service_error(f"looking up the namespace at {endpoint}", error, auth.description) from None
    except _transport_errors() as error:
        raise StorageError(f"looking up the namespace failed: OCI endpoint {endpoint} unreachable or timed out "
                           f"({type(error).__name__}); check the network, a proxy, or OCI_ENDPOINT") from None
