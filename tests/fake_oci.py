"""A local stand-in for OCI Object Storage, the Vault Secrets service and KMS vault listing, driven by the real `oci` SDK.

It speaks the few REST calls the collector makes (namespace, bucket head/get, object
PUT/GET/HEAD/DELETE with ETag and if-match / if-none-match, list with prefix/start/limit,
secret bundle by name, vaults of a compartment paged by limit/page) and verifies each request's OCI signature (draft-cavage HTTP
signatures, RSA-SHA256) against the public keys it was given: anything else is a 401.
Tests queue faults (`fail`), slow some requests down (`delay`) and read the request log;
`state.latency` adds the same network latency to every request (for bench/bench_run.py).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNATURE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class ApiKey:
    """A test-generated API key as an OCI user would upload it."""

    tenancy: str
    user: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, tenancy: str = "ocid1.tenancy.oc1..aaaatesttenancy",
                 user: str = "ocid1.user.oc1..aaaatestuser") -> ApiKey:
        return cls(tenancy, user, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")

    @property
    def fingerprint(self) -> str:
        import hashlib

        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.md5(der).hexdigest()
        return ":".join(digest[i:i + 2] for i in range(0, 32, 2))

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"


def write_oci_config(folder: Path, key: ApiKey) -> Path:
    """An OCI config file (and its key file) for `key`, as an operator would set it up."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key.pem").write_text(key.pem)
    config = folder / "config"
    config.write_text(
        f"[DEFAULT]\nuser={key.user}\ntenancy={key.tenancy}\nfingerprint={key.fingerprint}\n"
        f"region=eu-stockholm-1\nkey_file={folder / 'key.pem'}\n"
    )
    return config


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    times: int | None
    code: str = "InternalServerError"


@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int
    headers: dict[str, str]
    time: float = 0.0
    end: float = 0.0
    body_in: int = 0
    body_out: int = 0


@dataclass
class StoredBlob:
    data: bytes
    etag: str
    content_type: str


@dataclass
class FakeOCIState:
    namespace: str
    buckets: dict[str, dict[str, StoredBlob]]
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    secrets: dict[tuple[str, str], bytes] = field(default_factory=dict)
    vaults: list[dict] = field(default_factory=list)
    compartments: set[str] = field(default_factory=set)
    vault_page_size: int = 1000
    faults: list[Fault] = field(default_factory=list)
    delays: list[tuple[str, str, float]] = field(default_factory=list)
    trickles: list[tuple[str, str, float]] = field(default_factory=list)
    latency: float = 0.0
    hooks: list[tuple[str, str, Callable[[], None]]] = field(default_factory=list)
    meetings: list[list] = field(default_factory=list)
    requests: list[LoggedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up are part of the tests."""


class FakeOCIServer:
    """Object Storage at `url` (namespace `namespace`), Secrets at `url` + /20190301, KMS vaults at `url` + /20180608."""

    def __init__(self, namespace: str = "testnamespace", buckets: tuple[str, ...] = ("polisen-events-collector",)):
        self.state = FakeOCIState(namespace=namespace, buckets={name: {} for name in buckets})
        handler = type("Handler", (_Handler,), {"fake": self.state})
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def trust(self, key: ApiKey) -> None:
        self.state.keys[key.key_id] = key.private_key.public_key()

    def add_secret(self, vault_id: str, name: str, value: str) -> None:
        self.state.secrets[(vault_id, name)] = value.encode("utf-8")

    def add_vault(self, compartment: str, display_name: str, lifecycle_state: str = "ACTIVE") -> str:
        """A vault in `compartment` (which then exists); its new OCID is returned."""
        vault_id = f"ocid1.vault.oc1.eu-stockholm-1.{uuid.uuid4().hex[:12]}"
        endpoint = f"https://{vault_id[-12:]}-management.kms.eu-stockholm-1.oraclecloud.com"
        self.state.compartments.add(compartment)
        self.state.vaults.append({
            "id": vault_id, "displayName": display_name, "lifecycleState": lifecycle_state,
            "compartmentId": compartment, "managementEndpoint": endpoint,
            "cryptoEndpoint": endpoint.replace("-management", "-crypto"),
            "timeCreated": "2026-01-15T10:00:00.000Z", "vaultType": "DEFAULT",
        })
        return vault_id

    def fail(self, method: str, pattern: str, status: int, times: int | None = None,
             code: str = "InternalServerError") -> None:
        """Answer `status` to requests of `method` whose object name (or path) matches the glob."""
        self.state.faults.append(Fault(method, pattern, status, times, code))

    def delay(self, method: str, pattern: str, seconds: float) -> None:
        self.state.delays.append((method, pattern, seconds))

    def trickle(self, method: str, pattern: str, seconds: float) -> None:
        """Send the body of the answers to matching requests one byte every `seconds`, as a server
        that never falls silent for a whole read timeout yet never finishes."""
        self.state.trickles.append((method, pattern, seconds))

    def before(self, method: str, pattern: str, hook: Callable[[], None]) -> None:
        """Call `hook` once, before answering the next matching request (another writer, say)."""
        self.state.hooks.append((method, pattern, hook))

    def rendezvous(self, method: str, pattern: str, parties: int) -> None:
        """Hold the next `parties` matching requests until all have arrived (at most 5 s).

        Two collectors then read the same state and must race to write it.
        """
        self.state.meetings.append([method, pattern, threading.Barrier(parties, timeout=5), parties])

    def put_object(self, name: str, data: bytes, bucket: str = "polisen-events-collector") -> None:
        with self.state.lock:
            self.state.buckets[bucket][name] = StoredBlob(data, uuid.uuid4().hex, "application/octet-stream")

    def objects(self, bucket: str = "polisen-events-collector") -> dict[str, StoredBlob]:
        with self.state.lock:
            return dict(self.state.buckets[bucket])

    def dump(self, root: Path, bucket: str = "polisen-events-collector") -> Path:
        """Write the bucket out as a folder, to read it back like a local archive."""
        for name, blob in self.objects(bucket).items():
            path = root.joinpath(*name.split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob.data)
        return root

    @property
    def requests(self) -> list[LoggedRequest]:
        return self.state.requests


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOCIState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self.trickle_every = 0.0
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.entry = LoggedRequest(self.command, self.path, 0, {k.lower(): v for k, v in self.headers.items()}, time.monotonic(),
                                   body_in=len(self.body))
        with self.fake.lock:
            self.fake.requests.append(self.entry)
        if self.fake.latency:
            time.sleep(self.fake.latency)
        if not self._signed():
            return self._error(401, "NotAuthenticated",
                               "The required information to complete authentication was not provided or was incorrect.")
        segments = parts.path.split("/")
        if parts.path.startswith("/20190301/secretbundles/actions/getByName") and self.command == "POST":
            return None if self._injected(parts.path) else self._secret()
        if parts.path == "/20180608/vaults" and self.command == "GET":
            return None if self._injected(parts.path) else self._vaults()
        if segments[1:2] != ["n"]:
            return self._error(404, "NotFound", "Not found")
        if len(segments) <= 3 and self.command == "GET":
            return self._send(200, json.dumps(self.fake.namespace).encode())
        namespace = unquote(segments[2])
        if len(segments) < 5 or segments[3] != "b":
            return self._error(404, "NotFound", "Not found")
        bucket = unquote(segments[4])
        name = unquote("/".join(segments[6:])) if len(segments) > 6 and segments[5] == "o" else None
        if self._injected(name or parts.path):
            return None
        if namespace != self.fake.namespace:
            return self._error(404, "NamespaceNotFound",
                               "You do not have authorization to perform this request, or the requested resource "
                               f"could not be found. Namespace {namespace} not found.")
        if bucket not in self.fake.buckets:
            return self._error(404, "BucketNotFound",
                               f"Either the bucket named '{bucket}' does not exist in the namespace '{namespace}' "
                               "or you are not authorized to access it")
        objects = self.fake.buckets[bucket]
        if len(segments) == 5 or (len(segments) == 6 and segments[5] == ""):
            return self._bucket(namespace, bucket)
        if segments[5] == "o" and name is None:
            return self._list(objects)
        if name:
            return self._object(objects, name)
        return self._error(404, "NotFound", "Not found")

    def _signed(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Signature "):
            return False
        params = dict(SIGNATURE_PARAM.findall(header))
        key = self.fake.keys.get(params.get("keyId", ""))
        if params.get("version") != "1" or key is None or "signature" not in params:
            return False
        lines = []
        for name in params.get("headers", "date").split():
            if name == "(request-target)":
                lines.append(f"(request-target): {self.command.lower()} {self.path}")
            elif name in self.headers:
                lines.append(f"{name}: {self.headers[name]}")
            else:
                return False
        try:
            key.verify(base64.b64decode(params["signature"]), "\n".join(lines).encode("ascii"),
                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True

    def _injected(self, name: str) -> bool:
        with self.fake.lock:
            hook = next((h for h in self.fake.hooks if h[0] == self.command and fnmatch.fnmatchcase(name, h[1])), None)
            if hook:
                self.fake.hooks.remove(hook)
            meeting = next((m for m in self.fake.meetings if m[0] == self.command and fnmatch.fnmatchcase(name, m[1])), None)
            if meeting:
                meeting[3] -= 1
                if meeting[3] == 0:
                    self.fake.meetings.remove(meeting)
        if hook:
            hook[2]()
        if meeting:
            with contextlib.suppress(threading.BrokenBarrierError):
                meeting[2].wait()
        seconds = next((s for m, p, s in self.fake.delays if m == self.command and fnmatch.fnmatchcase(name, p)), 0)
        if seconds:
            time.sleep(seconds)
        self.trickle_every = next(
            (s for m, p, s in self.fake.trickles if m == self.command and fnmatch.fnmatchcase(name, p)), 0)
        with self.fake.lock:
            for fault in self.fake.faults:
                if fault.method == self.command and fnmatch.fnmatchcase(name, fault.pattern) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    break
            else:
                return False
        self._error(fault.status, fault.code, "injected fault")
        return True

    def _bucket(self, namespace: str, bucket: str) -> None:
        if self.command not in ("GET", "HEAD"):
            return self._error(405, "MethodNotAllowed", "Method not allowed")
        document = {"namespace": namespace, "name": bucket, "compartmentId": "ocid1.compartment.oc1..test",
                    "etag": "bucket-etag", "publicAccessType": "NoPublicAccess"}
        self._send(200, json.dumps(document).encode(), etag="bucket-etag")

    def _list(self, objects: dict[str, StoredBlob]) -> None:
        prefix = self.query.get("prefix", "")
        start = self.query.get("start", "")
        limit = int(self.query.get("limit", "1000"))
        with self.fake.lock:
            names = sorted(n for n in objects if n.startswith(prefix) and n >= start)
        page = names[:limit]
        document: dict = {"objects": [{"name": n} for n in page], "prefixes": []}
        if len(names) > limit:
            document["nextStartWith"] = names[limit]
        self._send(200, json.dumps(document).encode())

    def _object(self, objects: dict[str, StoredBlob], name: str) -> None:
        if self.command == "PUT":
            with self.fake.lock:
                current = objects.get(name)
                if_match = self.headers.get("if-match")
                if self.headers.get("if-none-match") == "*" and current is not None:
                    return self._error(412, "IfNoneMatchFailed",
                                       f"The If-None-Match header is '*' but there is an existing entity for {name}")
                if if_match is not None and (current is None or current.etag != if_match):
                    return self._error(412, "IfMatchFailed",
                                       f"The If-Match header '{if_match}' does not match the current entity tag")
                blob = StoredBlob(self.body, uuid.uuid4().hex, self.headers.get("Content-Type", "application/octet-stream"))
                objects[name] = blob
            return self._send(200, b"", etag=blob.etag, extra={"last-modified": email.utils.formatdate(usegmt=True)})
        if self.command == "DELETE":
            with self.fake.lock:
                removed = objects.pop(name, None)
            if removed is None:
                return self._error(404, "ObjectNotFound", f"The object '{name}' was not found")
            return self._send(204, b"")
        if self.command in ("GET", "HEAD"):
            with self.fake.lock:
                blob = objects.get(name)
            if blob is None:
                return self._error(404, "ObjectNotFound", f"The object '{name}' was not found")
            if self.headers.get("if-none-match") == blob.etag:
                return self._send(304, b"", etag=blob.etag)
            return self._send(200, blob.data, etag=blob.etag, content_type=blob.content_type)
        self._error(405, "MethodNotAllowed", "Method not allowed")

    def _secret(self) -> None:
        key = (self.query.get("vaultId", ""), self.query.get("secretName", ""))
        value = self.fake.secrets.get(key)
        if value is None:
            return self._error(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        document = {
            "secretId": "ocid1.vaultsecret.oc1..test" + uuid.uuid4().hex[:8],
            "versionNumber": 1,
            "stages": ["CURRENT", "LATEST"],
            "secretBundleContent": {"contentType": "BASE64", "content": base64.b64encode(value).decode("ascii")},
        }
        self._send(200, json.dumps(document).encode())

    def _vaults(self) -> None:
        compartment = self.query.get("compartmentId")
        if not compartment:
            return self._error(400, "MissingParameter", "compartmentId is required")
        if compartment not in self.fake.compartments:
            return self._error(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        vaults = [vault for vault in self.fake.vaults if vault["compartmentId"] == compartment]
        start = int(self.query.get("page", "0"))
        end = start + min(int(self.query.get("limit", self.fake.vault_page_size)), self.fake.vault_page_size)
        more = {"opc-next-page": str(end)} if end < len(vaults) else None
        self._send(200, json.dumps(vaults[start:end]).encode(), extra=more)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"code": code, "message": message}).encode())

    def _send(self, status: int, body: bytes, *, etag: str | None = None,
              content_type: str = "application/json", extra: dict[str, str] | None = None) -> None:
        self.entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("opc-request-id", uuid.uuid4().hex)
        if etag:
            self.send_header("ETag", etag)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            if getattr(self, "trickle_every", 0):
                return self._trickle(body)
            self.wfile.write(body)
            self.entry.body_out = len(body)
        self.entry.end = time.monotonic()

    def _trickle(self, body: bytes) -> None:
        """The body a byte at a time until it is sent or the client hangs up."""
        for index in range(len(body)):
            try:
                self.wfile.write(body[index:index + 1])
                self.wfile.flush()
            except OSError:
                break
            self.entry.body_out = index + 1
            time.sleep(self.trickle_every)
        self.entry.end = time.monotonic()
