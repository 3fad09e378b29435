"""STORAGE=oci end to end: collect_events.py as a real process, the real `oci` SDK, a local fake OCI.

The fake checks every request's signature against the test-generated API key it trusts.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import unquote

import pytest
from archive_truth import (
    archived_lines,
    archived_versions,
    canonical,
    versions_in_snapshots,
)
from conftest import Collector, format_1_state, state_view
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fake_oci import ApiKey, FakeOCIServer, write_oci_config
from in_process import environment

from polisen_collector.pages.parse import parse_page
from polisen_collector.storage.local import LocalStorage

BUCKET = "polisen-events-collector"
STATE = "metadata/last_seen.json"
VAULT = "ocid1.vault.oc1.eu-stockholm-1.testvault"
REPLAY_COUNT = 30


@pytest.fixture(scope="module")
def api_key() -> ApiKey:
    return ApiKey.generate()


@pytest.fixture
def fake_oci(api_key):
    with FakeOCIServer() as server:
        server.trust(api_key)
        yield server


def workspace(workdir: Path, api_url: str) -> Collector:
    workdir.mkdir(parents=True, exist_ok=True)
    return Collector(workdir, api_url)


def oci_collector(workdir: Path, api_url: str, fake: FakeOCIServer, key: ApiKey, **extra: str) -> Collector:
    collector = workspace(workdir, api_url)
    collector.env.update({
        "STORAGE": "oci",
        "OCI_ENDPOINT": fake.url,
        "OCI_CONFIG_FILE": str(write_oci_config(workdir / "oci", key)),
        "OCI_RETRY_ATTEMPTS": "3",
        "OCI_RETRY_BASE_SECONDS": "0.01",
        **extra,
    })
    return collector


@pytest.fixture
def oci_run(tmp_path, fake_api, fake_oci, api_key) -> Collector:
    return oci_collector(tmp_path / "host-a", fake_api.url, fake_oci, api_key)


def bucket_state(fake: FakeOCIServer) -> dict:
    """The bucket's state document, its base (if any) merged in."""
    with tempfile.TemporaryDirectory() as folder:
        return state_view(LocalStorage(fake.dump(Path(folder))))


def by_day(lines: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Each partition's events in collection order, whatever the run ids in the names."""
    days: dict[str, list[str]] = defaultdict(list)
    for name, event in lines:
        days[name.rsplit("/", 1)[0]].append(canonical(event))
    return dict(days)


def requests_to(fake: FakeOCIServer, method: str, fragment: str) -> list:
    return [r for r in fake.requests if r.method == method and fragment in r.path]


@pytest.mark.slow
def test_replay_through_oci_stores_the_same_archive_as_local(tmp_path, fake_api, fake_oci, oci_run, snapshot_bodies):
    local = workspace(tmp_path / "local", fake_api.url)
    for index in range(REPLAY_COUNT):
        fake_api.serve(index)
        for collector in (local, oci_run):
            result = collector.run()
            assert result.returncode == 0, result.log[-800:] + result.stderr[-800:]

    bucket = fake_oci.dump(tmp_path / "bucket")
    assert by_day(archived_lines(bucket)) == by_day(archived_lines(local.data_dir))
    assert archived_versions(bucket) == versions_in_snapshots(snapshot_bodies[:REPLAY_COUNT])
    seen = bucket_state(fake_oci)["seen"]
    assert {k: v[:2] for k, v in seen.items()} == {k: v[:2] for k, v in local.state()["seen"].items()}
    objects = fake_oci.objects()
    assert {blob.content_type for name, blob in objects.items() if name.startswith("events/")} == {"application/x-ndjson"}
    assert objects[STATE].content_type == "application/gzip"
    assert not oci_run.data_dir.exists(), "STORAGE=oci must not write the local archive"


def test_listing_pages_through_next_start_with(tmp_path, fake_oci, oci_run, monkeypatch):
    for day in range(1, 26):
        fake_oci.put_object(f"events/2026/05/{day:02d}/events-x.jsonl", b"")
    fake_oci.put_object("metadata/other.json", b"{}")
    import polisen_collector.storage.oci as oci_storage
    from polisen_collector.config import load_settings
    from polisen_collector.parts import open_store

    monkeypatch.setattr(oci_storage, "LIST_PAGE_SIZE", 7)
    with environment(oci_run.env):
        storage = open_store(load_settings(env_file=None))
        listed = list(storage.list("events/2026/05/"))
    assert listed == [f"events/2026/05/{day:02d}/events-x.jsonl" for day in range(1, 26)]
    pages = requests_to(fake_oci, "GET", "/o?")
    assert len(pages) == 4 and "start=events%2F2026%2F05%2F08" in pages[1].path


@pytest.mark.slow
def test_two_collectors_racing_on_one_bucket_lose_nothing(tmp_path, fake_api, fake_oci, api_key, snapshot_bodies):
    hosts = [oci_collector(tmp_path / f"host-{name}", fake_api.url, fake_oci, api_key) for name in "ab"]
    rounds = 10
    for index in range(rounds):
        fake_api.serve(index)
        fake_oci.rendezvous("GET", STATE, parties=2)
        processes = [subprocess.Popen(host.command(), cwd=host.workdir, env=host.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for host in hosts]
        outputs = [process.communicate(timeout=60)[0] for process in processes]
        assert [p.returncode for p in processes] == [0, 0], outputs

    truth = versions_in_snapshots(snapshot_bodies[:rounds])
    archived = archived_versions(fake_oci.dump(tmp_path / "bucket"))
    assert {event_id: set(versions) for event_id, versions in archived.items()} == \
        {event_id: set(versions) for event_id, versions in truth.items()}
    from polisen_collector.archive.events import validate_event

    seen = bucket_state(fake_oci)["seen"]
    latest = {event_id: validate_event(json.loads(versions[-1])).hash for event_id, versions in truth.items()}
    assert {int(k): v[0] for k, v in seen.items()} == latest
    conflicts = sum(json.loads(path.read_text())["counts"].get("state_conflicts", 0)
                    for host in hosts for path in host.metrics_files())
    assert conflicts == rounds, "both read the same state each round, so exactly one write per round loses"


def test_state_write_412_reloads_merges_and_retries(fake_api, fake_oci, oci_run):
    fake_api.serve(0)
    assert oci_run.run().returncode == 0
    before = bucket_state(fake_oci)["seen"]
    planted = {"999999999": ["cafe", "2026-05-20", time.strftime("%Y-%m-%d", time.gmtime())]}

    def another_collector_writes_the_state() -> None:
        document = bucket_state(fake_oci)
        document["seen"].update(planted)
        fake_oci.put_object(STATE, format_1_state(document))

    fake_oci.before("PUT", STATE, another_collector_writes_the_state)
    fake_api.serve(5)
    result = oci_run.run()
    assert result.returncode == 0, result.log
    assert "state changed under us" in result.log
    statuses = [r.status for r in requests_to(fake_oci, "PUT", "metadata%2Flast_seen.json")]
    assert statuses == [200, 412, 200], "the 412 is not retried by the SDK: the run reloads and merges"
    after = bucket_state(fake_oci)["seen"]
    new_ids = {str(e["id"]) for e in fake_api.current_events()} - set(before)
    assert new_ids and new_ids <= set(after)
    assert after["999999999"] == planted["999999999"]
    assert set(before) <= set(after)
    assert json.loads(oci_run.metrics_files()[-1].read_text())["counts"]["state_conflicts"] == 1


def test_5xx_on_event_put_fails_the_run_and_the_next_run_loses_nothing(tmp_path, fake_api, fake_oci, oci_run, snapshot_bodies):
    fake_api.serve(0)
    assert oci_run.run().returncode == 0
    state_before = fake_oci.objects()[STATE]
    fake_oci.fail("PUT", "events/*", 503, code="ServiceUnavailable")
    fake_api.serve(20)
    failed = oci_run.run()
    assert failed.returncode == 1
    assert "OCI service error (HTTP 503 ServiceUnavailable) after the SDK's retries" in failed.log, failed.log
    assert oci_run.health()["status"] == "failed"
    assert fake_oci.objects()[STATE] == state_before, "the state must not move past unstored events"
    refused = [r.path for r in requests_to(fake_oci, "PUT", "/o/events%2F") if r.status == 503]
    assert refused and all(refused.count(path) == 3 for path in refused), "each object is tried OCI_RETRY_ATTEMPTS=3 times"

    fake_oci.state.faults.clear()
    assert oci_run.run().returncode == 0
    truth = versions_in_snapshots([snapshot_bodies[0], snapshot_bodies[20]])
    assert archived_versions(fake_oci.dump(tmp_path / "bucket")) == truth


def assert_failed_as_config_error_storing_nothing(collector: Collector, result, fake: FakeOCIServer, message: str) -> None:
    """Exit 2 with one clear line; the bucket, the local folder and the API cache are untouched."""
    assert result.returncode == 2, result.log[-800:]
    [line] = result.stderr.splitlines()
    assert line.startswith("configuration error: ") and message in line, result.stderr
    assert "Traceback" not in result.stdout + result.stderr + result.log
    assert fake.objects() == {}
    assert not [r for r in fake.requests if r.method in ("PUT", "POST", "DELETE")]
    assert not collector.data_dir.exists() and not (collector.log_dir / "api-cache.json").exists()
    assert collector.health()["status"] == "failed"


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("OCI_BUCKET_NAME", "no-such-bucket", "bucket not found or not authorized (BucketNotFound); check OCI_BUCKET_NAME"),
    ("OCI_NAMESPACE", "wrongnamespace", "bucket not found or not authorized (NamespaceNotFound)"),
])
def test_wrong_bucket_or_namespace_is_a_config_error_at_the_state_read_storing_nothing(
        tmp_path, fake_api, fake_oci, oci_run, snapshot_bodies, setting, value, message):
    fake_api.serve(0)
    result = oci_run.run(env={setting: value})
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, f"reading {STATE} in OCI bucket")
    assert message in result.log
    reads = [r for r in fake_oci.requests if r.path.startswith("/n/") and "/b/" in r.path]
    assert [(r.method, r.status) for r in reads] == [("GET", 404)], "the state read is the check; a 404 is not retried"
    assert len(fake_api.requests) == 1, "the API fetch runs alongside the state read, once"

    fixed = oci_run.run()
    assert fixed.returncode == 0, fixed.log[-800:]
    assert archived_versions(fake_oci.dump(tmp_path / "bucket")) == versions_in_snapshots(snapshot_bodies[:1])


@pytest.mark.parametrize("namespace", [None, "testnamespace"])
def test_unknown_api_key_is_401_and_exit_2_at_the_first_request(tmp_path, fake_api, fake_oci, oci_run, namespace):
    stranger = ApiKey.generate()
    env = {"OCI_CONFIG_FILE": str(write_oci_config(tmp_path / "stranger", stranger))}
    if namespace:
        env["OCI_NAMESPACE"] = namespace
    result = oci_run.run(env=env)
    first = "looking up the namespace" if namespace is None else f"reading {STATE} in OCI bucket"
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, first)
    assert "OCI refused the credentials (API key of profile DEFAULT" in result.log
    assert [r.status for r in fake_oci.requests] == [401], "a 401 is not retried"
    assert len(fake_api.requests) == (0 if namespace is None else 1), "only the state read runs alongside the fetch"


def test_a_run_costs_only_the_round_trips_it_needs(fake_api, fake_oci, oci_run):
    """With OCI_NAMESPACE set: API fetch and state read at once, then the event writes, then the state write."""
    oci_run.env["OCI_NAMESPACE"] = "testnamespace"
    fake_api.serve(0)
    assert oci_run.run().returncode == 0
    fake_api.state.latency = fake_oci.state.latency = 0.2
    for log in (fake_api.requests, fake_oci.requests):
        log.clear()
    fake_api.serve(1)
    assert oci_run.run().returncode == 0
    calls = [(r.method, unquote(r.path.split("/o/")[1])) for r in fake_oci.requests]
    assert calls[0] == ("GET", STATE) and calls[-1] == ("PUT", STATE)
    writes = calls[1:-1]
    assert writes and all(method == "PUT" and name.startswith("events/") for method, name in writes)
    assert len({name.rsplit("/", 1)[0] for _, name in writes}) == len(writes), "one object per event date"
    (fetch,) = fake_api.requests
    offset = time.time() - time.monotonic()
    state_read = fake_oci.requests[0]
    assert fetch.time < state_read.end + offset and state_read.time + offset < fetch.end, "fetch and state read overlap"

    stored = fake_oci.objects()
    for log in (fake_api.requests, fake_oci.requests):
        log.clear()
    assert oci_run.run().returncode == 0
    assert [r.status for r in fake_api.requests] == [304]
    assert [(r.method, r.status) for r in fake_oci.requests] == [("GET", 304)], "nothing new: one state read, no write"
    assert fake_oci.objects() == stored


@pytest.mark.parametrize(("env", "message"), [
    ({"OCI_CONFIG_FILE": "/nonexistent/oci-config"}, "OCI_CONFIG_FILE='/nonexistent/oci-config' does not exist"),
    ({"OCI_PROFILE": "NOPE"}, "OCI_PROFILE='NOPE' is not a profile in"),
    ({"OCI_AUTH": "resource_principal"}, "OCI_AUTH=resource_principal: no resource principal available"),
    ({"OCI_AUTH": "vault"}, "OCI_VAULT_ID and OCI_VAULT_NAME are both empty"),
])
def test_missing_credentials_are_one_line_and_exit_2(fake_api, oci_run, env, message):
    result = oci_run.run(env=env)
    assert result.returncode == 2
    assert message in result.log
    assert "Traceback" not in result.stdout + result.stderr + result.log
    assert fake_api.requests == []


def encrypted_pem(key: ApiKey, pass_phrase: bytes) -> str:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(pass_phrase),
    ).decode("ascii")


def damaged_pem(key: ApiKey) -> str:
    """`key` with one CRT exponent off by one: it loads, and only a consistency check sees it."""
    numbers = key.private_key.private_numbers()
    broken = rsa.RSAPrivateNumbers(numbers.p, numbers.q, numbers.d, numbers.dmp1 ^ 2, numbers.dmq1, numbers.iqmp,
                                   numbers.public_numbers)
    return broken.private_key(unsafe_skip_rsa_key_validation=True).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode("ascii")


def rsa_pem(n: int, e: int, d: int, p: int, q: int, dmp1: int, dmq1: int, iqmp: int) -> str:
    """A PKCS#1 RSA private key of exactly these numbers, which need not fit together (DER by hand:
    cryptography refuses to write such a key)."""

    def length(size: int) -> bytes:
        return bytes([size]) if size < 128 else bytes([0x80 | (size.bit_length() + 7) // 8]) + size.to_bytes(
            (size.bit_length() + 7) // 8, "big")

    def integer(value: int) -> bytes:
        data = value.to_bytes(value.bit_length() // 8 + 1, "big")
        return b"\x02" + length(len(data)) + data

    body = b"".join(integer(value) for value in (0, n, e, d, p, q, dmp1, dmq1, iqmp))
    encoded = base64.b64encode(b"\x30" + length(len(body)) + body).decode("ascii")
    lines = [encoded[i:i + 64] for i in range(0, len(encoded), 64)]
    return "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *lines, "-----END RSA PRIVATE KEY-----", ""])


def prime1_is_1_pem(key: ApiKey) -> str:
    """`key` with its first prime written as 1 (issue 22: it was a ZeroDivisionError)."""
    numbers = key.private_key.private_numbers()
    public = numbers.public_numbers
    return rsa_pem(public.n, public.e, numbers.d, 1, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp)


def tiny_pem(key: ApiKey) -> str:
    """A consistent RSA key of 12 bits (p = 61, q = 53): it loads, and would fail at the first signature."""
    p, q, e = 61, 53, 17
    d = pow(e, -1, (p - 1) * (q - 1))
    return rsa_pem(p * q, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))


def small_pem(key: ApiKey) -> str:
    return ApiKey(key.tenancy, key.user, rsa.generate_private_key(public_exponent=65537, key_size=1024)).pem


def public_pem(key: ApiKey) -> str:
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def ec_pem(key: ApiKey) -> str:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode("ascii")


BAD_KEYS = {
    "damaged": (damaged_pem, "is not a readable RSA PEM private key, or a damaged one (its numbers do not fit together)"),
    "prime1=1": (prime1_is_1_pem, "is not a readable RSA PEM private key, or a damaged one (its numbers do not fit together)"),
    "public": (public_pem, "is a public key, not the private key"),
    "non-RSA": (ec_pem, "is not an RSA key (OCI API keys are RSA keys)"),
    "tiny": (tiny_pem, "is a 12-bit RSA key: OCI API keys have at least 2048 bits"),
    "1024-bit": (small_pem, "is a 1024-bit RSA key: OCI API keys have at least 2048 bits"),
    "not the fingerprint's": (lambda key: ApiKey.generate().pem, "is not the key of its fingerprint"),
}
TOOLS_READING_THE_KEY = {
    "run": ("collect_events.py", ()),
    "audit": ("collect_events.py", ("--audit",)),
    "compaction": ("collect_events.py", ("--compact",)),
    "backfill": ("collect_events.py", ("--backfill", "2026-05-20")),
    "export": ("export_events.py", ()),
    "secrets check": ("secrets_manager.py", ()),
}


@pytest.mark.parametrize("tool", TOOLS_READING_THE_KEY)
@pytest.mark.parametrize("kind", BAD_KEYS)
def test_every_tool_refuses_every_bad_key_in_one_line_before_any_request(tmp_path, fake_api, fake_oci, oci_run,
                                                                         api_key, kind, tool):
    """Issue 22 row 14: a bad key was a ZeroDivisionError (exit 1) or a traceback in some tools."""
    make, problem = BAD_KEYS[kind]
    script, args = TOOLS_READING_THE_KEY[tool]
    config = write_oci_config(tmp_path / "bad-key", api_key)
    (tmp_path / "bad-key" / "key.pem").write_text(make(api_key))
    result = oci_run.run(*args, script=script, env={"OCI_CONFIG_FILE": str(config)})
    assert result.returncode == 2, (result.stdout, result.stderr, result.log[-800:])
    [line] = result.stderr.splitlines()  # each tool says it its way ("configuration error: ...", "audit tick failed: ...")
    assert f"the private key of profile DEFAULT of OCI config file {config} {problem}" in line, line
    assert "Traceback" not in result.stdout + result.stderr + result.log
    assert fake_oci.requests == [] and fake_api.requests == []


def test_a_profile_without_key_file_and_an_upper_case_fingerprint(tmp_path, fake_api, fake_oci, oci_run, api_key):
    """A missing entry is named (it was a KeyError); a fingerprint in capitals is the same fingerprint."""
    config = write_oci_config(tmp_path / "odd", api_key)
    text = config.read_text()
    config.write_text("\n".join(line for line in text.splitlines() if not line.startswith("key_file=")) + "\n")
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config)}, process=True)
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, f"profile DEFAULT of OCI config file "
                                                  f"{config} is invalid: key_file missing")
    config.write_text(text.replace(api_key.fingerprint, api_key.fingerprint.upper()))
    fake_api.serve(0)
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config)})
    assert result.returncode == 0, result.log[-800:]
    assert fake_oci.objects()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: "pass_phrase=hunter2-CANARY\n" + text,
     "cannot be parsed (MissingSectionHeaderError at line 1)"),
    (lambda text: text + "pass_phrase = hunter2-CANARY\n  broken continuation\n= no key\n",
     "cannot be parsed (ParsingError at line 9)"),
    (lambda text: text + "authentication_type=instance_principal\n",
     "is invalid: The authentication type delegation_token_with_instance_principal requires"),
])
def test_an_odd_config_file_is_one_line_that_quotes_none_of_it(tmp_path, fake_api, fake_oci, oci_run, api_key, edit,
                                                                 message):
    """The parser's own messages quote the offending line, which may hold a pass_phrase."""
    config = write_oci_config(tmp_path / "odd", api_key)
    config.write_text(edit(config.read_text()))
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config), "LOG_LEVEL": "DEBUG"})
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, message)
    assert "CANARY" not in everything_written(oci_run, result)


def test_a_config_file_that_would_block_is_one_line(tmp_path, fake_api, fake_oci, oci_run):
    config = tmp_path / "fifo-config"
    os.mkfifo(config)
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config)}, process=True, timeout=60)
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci,
                                                  f"OCI_CONFIG_FILE={str(config)!r} is not a regular file")


def test_a_key_file_that_is_not_the_fingerprints_key_is_refused_before_any_request(tmp_path, fake_api, fake_oci,
                                                                                    oci_run, api_key):
    """The commonest key mix-up (a new key file, the old fingerprint) is named before OCI answers 401."""
    config = write_oci_config(tmp_path / "mixed-up", api_key)
    (tmp_path / "mixed-up" / "key.pem").write_text(ApiKey.generate().pem)
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config)})
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, "is not the key of its fingerprint "
                                                  f"{api_key.fingerprint} (the key's is ")
    assert fake_oci.requests == [] and fake_api.requests == []


@pytest.mark.parametrize(("key_text", "pass_phrase", "problem"), [
    (lambda key: encrypted_pem(key, b"s3cret"), None, "needs a pass_phrase"),
    (lambda key: encrypted_pem(key, b"s3cret"), "wrong", "is not a readable RSA PEM private key"),
    (lambda key: key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"), None,
     "is a public key, not the private key"),
    (lambda key: damaged_pem(key), "inherited-from-DEFAULT", "is not a readable RSA PEM private key, or a damaged one"),
    (lambda key: encrypted_pem(key, b"s3cret"), "s3cret", None),
    (lambda key: key.pem, "inherited-from-DEFAULT", None),
    (lambda key: "\n" * (2 << 20) + key.pem, None, "is not a readable RSA PEM private key"),  # read to 1 MiB only
    (lambda key: key.pem + key.private_key.public_key().public_bytes(  # as some tools save a key pair
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"), None, None),
])
def test_key_files_with_and_without_a_pass_phrase(tmp_path, fake_api, fake_oci, oci_run, api_key, key_text,
                                                  pass_phrase, problem):
    config = write_oci_config(tmp_path / "keyed", api_key)
    (tmp_path / "keyed" / "key.pem").write_text(key_text(api_key))
    if pass_phrase:
        config.write_text(config.read_text() + f"pass_phrase={pass_phrase}\n")
    fake_api.serve(0)
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config)})
    if problem is None:
        assert result.returncode == 0, result.log[-800:]
        assert fake_oci.objects(), "the key signed requests that OCI accepted"
    else:
        assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, f"the private key of profile DEFAULT "
                                                      f"of OCI config file {config} {problem}")


@pytest.mark.parametrize("replace", [os.mkfifo, lambda path: None], ids=["fifo", "missing"])
def test_a_key_file_missing_or_that_would_block_is_a_config_error(tmp_path, fake_api, fake_oci, oci_run, api_key,
                                                                  replace):
    config = write_oci_config(tmp_path / "odd-key", api_key)
    (tmp_path / "odd-key" / "key.pem").unlink()
    replace(tmp_path / "odd-key" / "key.pem")
    result = oci_run.run(env={"OCI_CONFIG_FILE": str(config)}, process=True, timeout=60)
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, "the key_file of profile DEFAULT of "
                                                  f"OCI config file {config} is missing or not a regular file")


def test_unreachable_endpoint_fails_the_run_with_an_actionable_line(fake_api, oci_run):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    result = oci_run.run(env={"OCI_ENDPOINT": f"http://127.0.0.1:{closed_port}"})
    assert result.returncode == 1
    assert f"OCI endpoint http://127.0.0.1:{closed_port} unreachable or timed out" in result.log


def test_secrets_check_says_ok_or_one_line_when_oci_is_unreachable(fake_api, fake_oci, oci_run):
    """secrets_manager.py (polisen-secrets-check): without OCI_NAMESPACE the namespace lookup is
    its first request, and a failure there is the same one line as a failed read (was a traceback)."""
    result = oci_run.run(script="secrets_manager.py")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith(f"OK: OCI bucket {BUCKET} (namespace testnamespace, endpoint {fake_oci.url})")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = oci_run.run(script="secrets_manager.py", env={"OCI_ENDPOINT": closed})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"OCI could not be reached: looking up the namespace failed: OCI endpoint "
                                          f"{closed} unreachable or timed out (RequestException); check the network, "
                                          "a proxy, or OCI_ENDPOINT"]


def test_the_region_endpoint_in_messages_is_the_url_not_the_sdk_template(api_key):
    import oci

    from polisen_collector.storage.oci_auth import endpoint_of

    config = {"region": "eu-stockholm-1", "tenancy": api_key.tenancy, "user": api_key.user,
              "fingerprint": api_key.fingerprint, "key_content": api_key.pem}
    signer = oci.signer.Signer(api_key.tenancy, api_key.user, api_key.fingerprint, None, private_key_content=api_key.pem)
    client = oci.object_storage.ObjectStorageClient(config, signer=signer)
    assert endpoint_of(client) == "https://objectstorage.eu-stockholm-1.oraclecloud.com"


def imported_modules(collector: Collector) -> set[str]:
    """The modules one run of `collector` imports, from `python -X importtime`."""
    result = subprocess.run([sys.executable, "-X", "importtime", *collector.command()[1:]], cwd=collector.workdir,
                            env=collector.env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_local_run_never_imports_oci(collector):
    imported = imported_modules(collector)
    assert "polisen_collector.api.client" in imported
    assert "polisen_collector.storage.local" in imported
    assert not {name for name in imported
                if name.split(".")[0] in ("oci", "circuitbreaker") or name.startswith("polisen_collector.storage.oci")}



NEVER_ON_A_RUN = {"polisen_collector.recovery.backfill", "polisen_collector.archive.compaction",
                  "polisen_collector.export", "polisen_collector.analysis", "polisen_collector.metrics.prometheus",
                  "polisen_collector.health.ping"}


def test_a_run_imports_only_what_it_uses(fake_api, collector):
    fake_api.serve(0)
    first = imported_modules(collector)
    assert "polisen_collector.recovery.gaps" in first, "an answer with events is checked for a gap"
    assert not first & NEVER_ON_A_RUN
    fake_api.serve(1)
    assert not imported_modules(collector) & NEVER_ON_A_RUN
    nothing_new = imported_modules(collector)
    assert not {name for name in nothing_new if name.startswith("polisen_collector.recovery")}, "a 304 checks nothing"
    assert not nothing_new & NEVER_ON_A_RUN


def test_an_oci_run_imports_the_sdk_but_no_client_it_does_not_call(fake_api, fake_oci, oci_run):
    """A plain `import oci`: the SDK loads its service clients when first used, so no vault client here."""
    fake_api.serve(0)
    imported = imported_modules(oci_run)
    assert fake_oci.objects(), "the run stored its events"
    assert {"oci", "oci.object_storage.object_storage_client", "oci.signer"} <= imported
    assert not {name for name in imported if name.startswith(("oci.secrets", "oci.key_management"))}
    assert not imported & NEVER_ON_A_RUN


def state_reads(fake: FakeOCIServer) -> list[tuple[int, int]]:
    """(status, response body bytes) of each read of the state."""
    return [(r.status, r.body_out) for r in requests_to(fake, "GET", "metadata%2Flast_seen.json")]


def test_fifos_in_place_of_the_local_copies_are_read_as_missing(fake_api, fake_oci, oci_run):
    """A FIFO would block the run that opened it; a copy that is not a regular file is no copy."""
    oci_run.env["OCI_NAMESPACE"] = "testnamespace"
    fake_api.serve(0)
    assert oci_run.run().returncode == 0
    copies = [oci_run.log_dir / "state-cache", *(oci_run.log_dir / "bases").iterdir()]
    assert len(copies) == 2, copies
    for path in copies:
        path.unlink()
        os.mkfifo(path)
    fake_oci.requests.clear()
    fake_api.serve(1)
    result = oci_run.run(process=True, timeout=60)  # a blocked run would time out
    assert result.returncode == 0, result.log[-800:]
    assert all(path.is_file() for path in copies), "read in full from the bucket, then kept again"
    assert [(r.method, r.status) for r in fake_oci.requests][:2] == [("GET", 200), ("GET", 200)]


def test_a_local_copy_with_a_line_break_in_its_etag_is_not_offered(fake_api, fake_oci, oci_run):
    """The etag of a copy goes out as If-None-Match: one with a line break (a forged copy, its
    checksum still right) failed every run's state read until the copy was rewritten."""
    oci_run.env["OCI_NAMESPACE"] = "testnamespace"
    fake_api.serve(0)
    assert oci_run.run().returncode == 0
    copy = oci_run.log_dir / "state-cache"
    header, _, data = copy.read_bytes().partition(b"\n")
    copy.write_bytes(json.dumps({**json.loads(header), "etag": "x\r\nX-Injected: 1"}).encode() + b"\n" + data)
    fake_oci.requests.clear()
    fake_api.serve(1)
    result = oci_run.run()
    assert result.returncode == 0, result.log[-800:]
    (read,) = requests_to(fake_oci, "GET", "metadata%2Flast_seen.json")
    assert read.status == 200 and "if-none-match" not in read.headers, "a forged copy is not even offered"


def test_the_state_travels_only_when_it_changed(tmp_path, fake_api, fake_oci, api_key, oci_run, snapshot_bodies):
    """Read with If-None-Match and the etag this host last saw; its copy is used only on that 304.

    The state's 500 ids live in a write-once base that each host reads at most once; a run
    that stores a few events rewrites only the head, the entries that differ from the base."""
    oci_run.env["OCI_NAMESPACE"] = "testnamespace"
    fake_api.serve(0)
    assert oci_run.run().returncode == 0
    assert (oci_run.log_dir / "state-cache").exists()
    (base,) = [name for name in fake_oci.objects() if name.startswith("metadata/bases/last_seen-")]
    assert json.loads(gzip.decompress(fake_oci.objects()[STATE].data))["base"] == base
    fake_oci.requests.clear()
    assert oci_run.run().returncode == 0  # nothing new: the API answers 304, and so does the state read
    assert [(r.method, r.status, r.body_in, r.body_out) for r in fake_oci.requests] == [("GET", 304, 0, 0)]

    fake_api.serve(1)
    fake_oci.requests.clear()
    assert oci_run.run().returncode == 0  # new events: the state is still the one this host wrote
    assert state_reads(fake_oci) == [(304, 0)]
    (written,) = requests_to(fake_oci, "PUT", "metadata%2Flast_seen.json")
    assert written.body_in == len(fake_oci.objects()[STATE].data) < 1_000, "the head only"
    assert requests_to(fake_oci, "GET", "metadata%2Fbases") == [], "the base this host wrote is never read back"

    other = oci_collector(tmp_path / "host-b", fake_api.url, fake_oci, api_key)
    fake_api.serve(2)
    fake_oci.requests.clear()
    assert other.run().returncode == 0  # another host moves the state on: this host's copy is stale
    assert [r.status for r in requests_to(fake_oci, "GET", "metadata%2Fbases")] == [200], "read once by a new host"
    moved = fake_oci.objects()[STATE].data
    fake_api.serve(3)
    fake_oci.requests.clear()
    assert other.run().returncode == 0
    assert requests_to(fake_oci, "GET", "metadata%2Fbases") == [], "then kept"
    moved = fake_oci.objects()[STATE].data
    fake_oci.requests.clear()
    assert oci_run.run().returncode == 0
    assert state_reads(fake_oci) == [(200, len(moved))]

    (oci_run.log_dir / "state-cache").write_bytes(b"damaged")
    fake_api.serve(4)
    fake_oci.requests.clear()
    assert oci_run.run().returncode == 0
    (read,) = requests_to(fake_oci, "GET", "metadata%2Flast_seen.json")
    assert read.status == 200 and "if-none-match" not in read.headers, "a damaged copy is not even offered"
    assert archived_versions(fake_oci.dump(tmp_path / "bucket")) == versions_in_snapshots(snapshot_bodies[:5])


# --- OCI Vault ------------------------------------------------------------------------------

CANARY_TENANCY = "ocid1.tenancy.oc1..canaryCANARY7f3a9d"
VAULT_READER = "ocid1.user.oc1..vaultreader"
COMPARTMENT = "ocid1.compartment.oc1..testcompartment"
VAULT_NAME = "polisen-secrets"


def vault_setup(tmp_path: Path, fake: FakeOCIServer, bucket_key: ApiKey, vault: str = VAULT,
                **overrides: str | None) -> dict[str, str]:
    """A vault holding `bucket_key`, reached with a second key in a minimal config file."""
    reader = ApiKey.generate(user=VAULT_READER)
    fake.trust(reader)
    secrets = {
        "polisen-collector-user-ocid": bucket_key.user,
        "polisen-collector-tenancy-ocid": bucket_key.tenancy,
        "polisen-collector-fingerprint": bucket_key.fingerprint,
        "polisen-collector-private-key": bucket_key.pem,
        "polisen-collector-region": "eu-stockholm-1",
    }
    secrets.update(overrides)
    for name, value in secrets.items():
        if value is not None:
            fake.add_secret(vault, name, value)
    return {
        "OCI_AUTH": "vault",
        "OCI_VAULT_ID": vault,
        "OCI_SECRETS_ENDPOINT": fake.url,
        "OCI_CONFIG_FILE": str(write_oci_config(tmp_path / "vault-reader", reader)),
    }


def everything_written(collector: Collector, result: subprocess.CompletedProcess) -> str:
    texts = [result.stdout, result.stderr]
    for folder in (collector.log_dir, collector.metrics_dir, collector.workdir / "data"):
        texts += [path.read_text(errors="replace") for path in folder.rglob("*") if path.is_file()]
    return "\n".join(texts)


def test_vault_credentials_fetched_in_parallel_and_never_written(tmp_path, fake_api, fake_oci, oci_run):
    secret_key = ApiKey.generate(tenancy=CANARY_TENANCY)
    fake_oci.trust(secret_key)
    fake_oci.rendezvous("POST", "/20190301/secretbundles/*", 5)  # none is answered before all five arrived
    fake_api.serve(0)
    result = oci_run.run(env={**vault_setup(tmp_path, fake_oci, secret_key), "LOG_LEVEL": "DEBUG"})
    assert result.returncode == 0, result.log[-1500:]
    reads = requests_to(fake_oci, "POST", "getByName")
    assert sorted(r.path.split("secretName=")[1].split("&")[0] for r in reads) == [
        "polisen-collector-fingerprint", "polisen-collector-private-key", "polisen-collector-region",
        "polisen-collector-tenancy-ocid", "polisen-collector-user-ocid",
    ]
    assert max(r.time for r in reads) < min(r.end for r in reads), "the five secrets are fetched at once"
    assert not requests_to(fake_oci, "GET", "/20180608/vaults"), "OCI_VAULT_ID given: no vault lookup"
    bucket_requests = [r for r in fake_oci.requests if r.path.startswith("/n")]
    assert bucket_requests and all(secret_key.fingerprint in r.headers["authorization"] for r in bucket_requests)
    assert len(fake_oci.objects()) > 1

    written = everything_written(oci_run, result)
    key_body = secret_key.pem.splitlines()[1:-1]
    assert not any(line in written for line in key_body)
    assert CANARY_TENANCY not in written
    on_disk = "\n".join(path.read_text(errors="replace") for path in tmp_path.rglob("*") if path.is_file())
    assert not any(line in on_disk for line in key_body), "the vault's key is never written to disk"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"polisen-collector-fingerprint": None},
     "secret 'polisen-collector-fingerprint' (API key fingerprint) is missing or not readable"),
    ({"polisen-collector-tenancy-ocid": CANARY_TENANCY.replace("tenancy", "group")},
     "secret 'polisen-collector-tenancy-ocid' (tenancy OCID) is malformed: must be an OCID starting with ocid1.tenancy."),
    ({"polisen-collector-private-key": "-----BEGIN PRIVATE KEY-----\nCANARYnotakey\n-----END PRIVATE KEY-----"},
     "secret 'polisen-collector-private-key' (API private key) is malformed: not a readable RSA PEM private key"),
    ({"polisen-collector-fingerprint": "CANARY:not:a:fingerprint", "polisen-collector-user-ocid": None},
     ("secret 'polisen-collector-user-ocid' (user OCID) is missing or not readable; secret 'polisen-collector-fingerprint'"
      " (API key fingerprint) is malformed: must be 16 hex pairs separated by colons")),
])
def test_vault_missing_or_malformed_secret_is_named_without_its_value(tmp_path, fake_api, fake_oci, api_key, oci_run,
                                                                     overrides, message):
    result = oci_run.run(env={**vault_setup(tmp_path, fake_oci, api_key, **overrides), "LOG_LEVEL": "DEBUG"})
    assert result.returncode == 2
    assert message in result.log
    assert fake_api.requests == []
    written = everything_written(oci_run, result)
    assert "CANARY" not in written.upper()
    assert not any(line in written for line in api_key.pem.splitlines()[1:-1])


@pytest.mark.parametrize("kind", ["prime1=1", "damaged", "non-RSA", "tiny"])
def test_a_bad_vault_key_is_named_before_any_bucket_request(tmp_path, fake_api, fake_oci, api_key, oci_run, kind):
    make, problem = BAD_KEYS[kind]
    result = oci_run.run(env=vault_setup(tmp_path, fake_oci, api_key, **{"polisen-collector-private-key": make(api_key)}))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"secret 'polisen-collector-private-key' (API private key) is malformed: {problem.removeprefix('is ')}" in line
    assert not [r for r in fake_oci.requests if not r.path.startswith("/20190301/")] and fake_api.requests == []


def test_a_vault_key_that_is_not_its_fingerprints_is_named_without_either_value(tmp_path, fake_api, fake_oci,
                                                                                 api_key, oci_run):
    other = ApiKey.generate()
    result = oci_run.run(env={**vault_setup(tmp_path, fake_oci, api_key, **{"polisen-collector-fingerprint": other.fingerprint}),
                              "LOG_LEVEL": "DEBUG"})
    assert result.returncode == 2
    assert (f"OCI Vault {VAULT}: secret 'polisen-collector-private-key' (API private key) is not the key of secret "
            "'polisen-collector-fingerprint' (API key fingerprint): OCI would refuse every request") in result.log
    written = everything_written(oci_run, result)
    assert other.fingerprint not in written and api_key.fingerprint not in written
    assert fake_api.requests == [] and fake_oci.objects() == {}


def by_name(env: dict[str, str], fake: FakeOCIServer) -> dict[str, str]:
    """`env` with the vault given by display name in COMPARTMENT instead of by OCID."""
    named = {key: value for key, value in env.items() if key != "OCI_VAULT_ID"}
    return {**named, "OCI_VAULT_NAME": VAULT_NAME, "OCI_COMPARTMENT_ID": COMPARTMENT, "OCI_KMS_ENDPOINT": fake.url}


def test_vault_looked_up_by_name_once_then_its_secrets_fetched(tmp_path, fake_api, fake_oci, api_key, oci_run,
                                                                snapshot_bodies):
    fake_oci.state.vault_page_size = 2
    fake_oci.add_vault(COMPARTMENT, "other-team")
    fake_oci.add_vault(COMPARTMENT, VAULT_NAME, "PENDING_DELETION")
    fake_oci.add_vault(COMPARTMENT, "polisen-secrets-old")
    fake_oci.add_vault("ocid1.compartment.oc1..elsewhere", VAULT_NAME)
    vault = fake_oci.add_vault(COMPARTMENT, VAULT_NAME)
    fake_oci.add_vault(COMPARTMENT, "zz-last")
    fake_api.serve(0)
    fake_oci.rendezvous("POST", "/20190301/secretbundles/*", 5)  # none is answered before all five arrived
    result = oci_run.run(env=by_name(vault_setup(tmp_path, fake_oci, api_key, vault=vault), fake_oci))
    assert result.returncode == 0, result.log[-1500:]
    assert f"OCI_VAULT_NAME='{VAULT_NAME}' is vault {vault}; setting OCI_VAULT_ID to it saves this lookup" in result.log

    listing = requests_to(fake_oci, "GET", "/20180608/vaults")
    assert [(r.status, "compartmentId=ocid1.compartment.oc1..testcompartment" in r.path) for r in listing] == \
        [(200, True)] * 3, "five vaults in the compartment, two a page: three pages, paged by the SDK"
    reads = requests_to(fake_oci, "POST", "getByName")
    assert len(reads) == 5 and all(f"vaultId={vault}&" in r.path or r.path.endswith(f"vaultId={vault}") for r in reads)
    assert max(r.end for r in listing) <= min(r.time for r in reads), "the lookup comes first, then the secrets"
    assert max(r.time for r in reads) < min(r.end for r in reads), "the five secrets are still fetched at once"
    assert all(VAULT_READER in r.headers["authorization"] for r in listing + reads), "the vault is reached with the reader key"
    bucket_requests = [r for r in fake_oci.requests if r.path.startswith("/n")]
    assert bucket_requests and all(api_key.fingerprint in r.headers["authorization"] for r in bucket_requests)
    assert archived_versions(fake_oci.dump(tmp_path / "bucket")) == versions_in_snapshots(snapshot_bodies[:1])


@pytest.mark.parametrize(("vaults", "env", "message"), [
    ([("ACTIVE", VAULT_NAME)], {"OCI_COMPARTMENT_ID": ""},
     f"OCI_COMPARTMENT_ID is empty: OCI_VAULT_NAME='{VAULT_NAME}' is looked up in a compartment"),
    ([("ACTIVE", VAULT_NAME)], {"OCI_COMPARTMENT_ID": "ocid1.vault.oc1..notacompartment"},
     "OCI_COMPARTMENT_ID='ocid1.vault.oc1..notacompartment' is invalid: must be an OCID starting with ocid1.compartment."),
    ([("ACTIVE", "other-team")], {},
     f"looking up OCI_VAULT_NAME='{VAULT_NAME}' in compartment {COMPARTMENT}: no vault of that name"),
    ([("ACTIVE", VAULT_NAME), ("ACTIVE", VAULT_NAME)], {},
     "2 ACTIVE vaults have that name ({0}, {1}); set OCI_VAULT_ID to the one holding the secrets"),
    ([("PENDING_DELETION", VAULT_NAME), ("CREATING", VAULT_NAME)], {},
     "no ACTIVE vault of that name ({0} is PENDING_DELETION, {1} is CREATING)"),
    ([("ACTIVE", VAULT_NAME)], {"OCI_COMPARTMENT_ID": "ocid1.compartment.oc1..nosuch"},
     "compartment not found or not authorized (NotAuthorizedOrNotFound); check OCI_COMPARTMENT_ID"),
])
def test_vault_name_that_finds_no_single_active_vault_is_one_line_and_exit_2(
        tmp_path, fake_api, fake_oci, api_key, oci_run, vaults, env, message):
    ids = [fake_oci.add_vault(COMPARTMENT, name, lifecycle_state) for lifecycle_state, name in vaults]
    fake_api.serve(0)
    settings = {**by_name(vault_setup(tmp_path, fake_oci, api_key, vault=ids[0]), fake_oci), **env}
    result = oci_run.run(env=settings)
    assert_failed_as_config_error_storing_nothing(oci_run, result, fake_oci, message.format(*ids))
    assert fake_api.requests == []
    assert not requests_to(fake_oci, "POST", "getByName")
    expected_lookups = 0 if message.startswith("OCI_COMPARTMENT_ID") else 1
    assert len(requests_to(fake_oci, "GET", "/20180608/vaults")) == expected_lookups, "a 404 is not retried"


def test_pages_are_stored_in_the_bucket_like_the_events(tmp_path, fake_api, fake_oci, oci_run, snapshot_bodies):
    from polisen_collector.pages.queue import QUEUE_OBJECT, decode_queue

    fake_api.serve(0)
    assert oci_run.run(env={"PAGES_PER_RUN": "3"}).returncode == 0
    objects = fake_oci.objects()
    pages = {name: blob for name, blob in objects.items() if name.startswith("pages/")}
    assert sorted(blob.content_type for blob in pages.values()) == ["application/gzip"] * 3 + ["application/json"] * 3
    for name, blob in pages.items():
        if name.endswith(".html.gz"):
            stored = json.loads(pages[name.removesuffix(".html.gz") + ".parsed-v1.json"].data)
            page = parse_page(gzip.decompress(blob.data))
            assert {key: stored[key] for key in ("title", "body", "published", "reason")} == {
                "title": page.title, "body": page.body, "published": page.published, "reason": None}
    bucket = LocalStorage(fake_oci.dump(tmp_path / "bucket"))
    queue, base = decode_queue(objects[QUEUE_OBJECT].data, bucket)
    assert base.name is not None and base.name.startswith("metadata/bases/pages-"), "500 entries: a head over a base"
    assert sum(entry.fingerprint is not None for entry in queue.values()) == 3
    assert len(queue) == len(json.loads(snapshot_bodies[0]))
    assert not oci_run.data_dir.exists(), "STORAGE=oci must not write the local archive"


@pytest.mark.slow
def test_the_compaction_job_stores_missing_page_parses_and_the_export_reads_them(fake_api, fake_oci, oci_run):
    """A version without a parse (an archive from before parses were stored) and one parsed by an older
    parser: the export parses them itself, the daily job stores their parse, then the export reads it."""
    fake_api.serve(0)
    assert oci_run.run(env={"PAGES_PER_RUN": "3"}).returncode == 0
    bucket = fake_oci.state.buckets[BUCKET]
    parses = sorted(name for name in bucket if name.endswith(".parsed-v1.json"))
    expected = {name: bucket[name].data for name in parses}
    del bucket[parses[0]]
    bucket[parses[1].replace("-v1.json", "-v0.json")] = bucket.pop(parses[1])

    def export(*args: str) -> tuple[list[dict], str]:
        result = oci_run.run(*args, script="export_events.py")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if '"page_title": null' not in line], \
            result.stderr

    rows, summary = export()
    assert len(rows) == 3 and "; 2 page versions had no stored parse and were parsed (--store-parses" in summary
    assert oci_run.run("--compact").returncode == 0
    assert {name: blob.data for name, blob in bucket.items() if ".parsed-" in name} == expected
    assert export() == (rows, summary.split("; 2 page versions")[0] + "\n")
    del bucket[parses[2]]
    assert export("--store-parses")[1].endswith("; 1 page versions had no stored parse and were parsed, 1 parses stored\n")
    assert {name: blob.data for name, blob in bucket.items() if ".parsed-" in name} == expected


@pytest.mark.slow
def test_withdrawals_are_records_in_the_bucket_too(fake_api, fake_oci, oci_run):
    """A withdrawal and a return through STORAGE=oci: the records are objects in the bucket, the export reads them."""
    withdrawn = 635380  # dated 2026-05-17, inside the dense range of answers 1 and 2
    oci_run.env.update({"AUDIT_HORIZON_DAYS": "3660", "AUDIT_REQUESTS_PER_TICK": "4"})
    for index in (0, 1, 2):
        if index == 1:
            fake_api.withdraw(withdrawn)
        fake_api.serve(index)
        assert oci_run.run().returncode == 0
    fake_api.state.clock = lambda: time.time() - 3600  # the first answer of its day to lack it, an hour ago
    try:
        assert oci_run.run("--audit").returncode == 0
    finally:
        fake_api.state.clock = time.time
    result = oci_run.run("--audit")  # the second confirms it
    assert result.returncode == 0, result.log[-800:]
    assert "audit 2026-05-17: 1 withdrawn (635380)" in result.log
    fake_api.restore(withdrawn)
    fake_api.serve(3)
    assert oci_run.run().returncode == 0
    result = oci_run.run("--audit")
    assert result.returncode == 0, result.log[-800:]
    names = sorted(name for name in fake_oci.objects() if name.startswith("withdrawals/"))
    assert len(names) == 2 and all(name.startswith("withdrawals/2026/05/17/withdrawals-") for name in names)
    records = [json.loads(fake_oci.objects()[name].data) for name in names]
    assert [(r["id"], r["status"], r["event_date"]) for r in records] == [
        (withdrawn, "withdrawn", "2026-05-17"), (withdrawn, "republished", "2026-05-17")]
    assert {blob.content_type for name, blob in fake_oci.objects().items() if name in names} == {"application/x-ndjson"}
    export = oci_run.run("--withdrawals", script="export_events.py")
    assert export.returncode == 0, export.stderr
    assert [(row["id"], row["status"]) for row in map(json.loads, export.stdout.splitlines())] == [
        (withdrawn, "withdrawn"), (withdrawn, "republished")]
    assert not oci_run.data_dir.exists(), "STORAGE=oci must not write the local archive"


def bucket_options(fake: FakeOCIServer, key: ApiKey, folder: Path, **timeouts: float):
    from polisen_collector.storage.options import OciOptions

    return OciOptions(bucket=BUCKET, region="eu-stockholm-1", auth="config_file", namespace=fake.state.namespace,
                      endpoint=fake.url, config_file=str(write_oci_config(folder, key)), retry_attempts=1, **timeouts)


@pytest.mark.slow
def test_a_service_silent_for_the_read_timeout_fails_the_read_at_once(tmp_path, fake_oci, api_key):
    """The clients take the timeouts of OciOptions (the SDK's own would wait 60 s for a byte)."""
    from polisen_collector.storage.base import StorageError
    from polisen_collector.storage.oci import open_oci_storage

    storage = open_oci_storage(bucket_options(fake_oci, api_key, tmp_path, connect_timeout=1.0, read_timeout=0.3))
    fake_oci.put_object(STATE, b"{}")
    fake_oci.delay("GET", STATE, 3.0)
    start = time.monotonic()
    with pytest.raises(StorageError, match="unreachable or timed out"):
        storage.get(STATE)
    assert time.monotonic() - start < 2.0


@pytest.mark.slow
def test_an_object_trickled_in_slower_than_its_deadline_fails_the_read_in_time(tmp_path, fake_oci, api_key):
    """Never silent for a read timeout, yet never done: the body is read against one deadline
    (connect + 2 x read timeout, plus its size at MIN_BODY_RATE), not for as long as it trickles."""
    from polisen_collector.storage.base import StorageError
    from polisen_collector.storage.oci import open_oci_storage

    storage = open_oci_storage(bucket_options(fake_oci, api_key, tmp_path, connect_timeout=0.2, read_timeout=0.4))
    fake_oci.put_object(STATE, b"{}".ljust(200))
    fake_oci.trickle("GET", STATE, 0.05)  # 10 s for the whole body
    start = time.monotonic()
    with pytest.raises(StorageError, match=f"reading {STATE} in OCI bucket {BUCKET} .* failed: its body took longer than"):
        storage.get(STATE)
    assert time.monotonic() - start < 3.0
    (request,) = [r for r in fake_oci.requests if r.method == "GET" and unquote(r.path).endswith(STATE)]
    assert 0 < request.body_out < 200  # cut while it trickled
