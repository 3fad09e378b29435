"""The state object's encoding: format 2 (compressed columns) written, format 1 still read."""

from __future__ import annotations

import gzip
import json

import pytest

from polisen_collector.archive.state import (
    STATE_FORMAT,
    CorruptState,
    decode_state,
    dump_document,
    encode_state,
    load_document,
)
from polisen_collector.storage.base import NotModified, StoredObject
from polisen_collector.storage.local import LocalStorage
from polisen_collector.storage.local_copy import LocalCopy

SEEN = {
    650297: ("0123456789abcdef", "2026-05-20", "2026-05-27"),
    635718: ("fedcba9876543210", "2026-05-20", "2026-05-20"),
    650301: ("cafe", "2026-03-02", "2026-05-27"),
}


def seen_of(data: bytes) -> dict:
    """The remembered versions of a stored state (decode_state also returns last_answer_at)."""
    return decode_state(data)[0]


def format_1(seen: dict) -> bytes:
    """A state as collectors wrote it before format 2."""
    document = {"format": 1, "updated_at": "2026-05-27T10:00:00+00:00", "updated_by_run": "r1",
                "seen": {str(event_id): list(entry) for event_id, entry in sorted(seen.items())}}
    return json.dumps(document, separators=(",", ":")).encode()


def test_round_trip_of_the_compact_format():
    data = encode_state(SEEN, "run-1")
    assert data[:2] == b"\x1f\x8b", "gzip-compressed at rest and on the wire"
    document = json.loads(gzip.decompress(data))
    assert document["format"] == STATE_FORMAT == 2
    assert document["seen"] == {
        "id_deltas": [635718, 650297 - 635718, 4],
        "hash": ["fedcba9876543210", "0123456789abcdef", "cafe"],
        "day": ["2026-05-20", "2026-05-20", "2026-03-02"],
        "last_seen": ["2026-05-20", "2026-05-27", "2026-05-27"],
    }
    assert document["updated_by_run"] == "run-1"
    assert seen_of(data) == SEEN


def test_format_1_is_still_read_and_rewritten_as_format_2():
    assert seen_of(format_1(SEEN)) == SEEN
    assert seen_of(encode_state(seen_of(format_1(SEEN)), "run-2")) == SEEN


def test_other_top_level_fields_pass_through_both_ways():
    document = {"format": 2, "updated_at": "x", "last_answer_at": "2026-05-27T10:00:00+00:00", "notes": {"a": [1]},
                "seen": {"7": ["aa", "2026-05-20", "2026-05-21"], "3": ["bb", "2026-05-19", "2026-05-21"]}}
    loaded = load_document(dump_document(document))
    assert loaded == {**document, "seen": {"3": ["bb", "2026-05-19", "2026-05-21"], "7": ["aa", "2026-05-20", "2026-05-21"]}}


def test_a_real_sized_state_is_a_fraction_of_format_1():
    seen = {600000 + 3 * n: (f"{n * 2654435761 % 2**64:016x}", "2026-05-20", "2026-05-27") for n in range(1000)}
    compact, plain = encode_state(seen, "r"), format_1(seen)
    assert seen_of(compact) == seen
    assert len(compact) < len(plain) / 4
    assert len(compact) < 12 * len(seen), "about 10 bytes an id, most of them the hash"


@pytest.mark.parametrize("data", [
    b"\x1f\x8b not really gzip",
    gzip.compress(b"{not json"),
    gzip.compress(b'{"format": 3, "seen": {}}'),
    gzip.compress(b'{"format": 2, "seen": {"id_deltas": [1, 2], "hash": ["a"], "day": ["2026-05-20"], "last_seen": []}}'),
    gzip.compress(b'{"format": 2, "seen": {"id_deltas": [5, 0], "hash": ["a", "b"], "day": ["2026-05-20", "2026-05-20"],'
                  b' "last_seen": ["2026-05-20", "2026-05-20"]}}'),
    gzip.compress(b'{"format": 2, "seen": {"id_deltas": [5], "hash": ["a"], "day": ["May"], "last_seen": ["2026-05-20"]}}'),
    gzip.compress(b'{"format": 2, "seen": {"7": ["a", "2026-05-20", "2026-05-20"]}}'),
])
def test_a_damaged_state_is_corrupt_not_empty(data):
    with pytest.raises(CorruptState):
        seen_of(data)


def test_local_storage_answers_a_conditional_read(tmp_path):
    storage = LocalStorage(tmp_path)
    assert storage.get_if_changed("metadata/x", "etag") is None
    etag = storage.put("metadata/x", b"one")
    assert storage.get_if_changed("metadata/x", etag) == NotModified(etag)
    assert storage.get_if_changed("metadata/x", "other") == StoredObject(b"one", etag)


def test_local_copy_serves_the_copy_only_on_a_not_modified(tmp_path):
    store = LocalStorage(tmp_path / "store")
    copy = tmp_path / "logs" / "copy"
    kept = LocalCopy(store, {"metadata/state": copy})
    etag = kept.put("metadata/state", b"v1")
    assert kept.get("metadata/state") == StoredObject(b"v1", etag)
    store.put("metadata/state", b"v2")  # another host
    assert kept.get("metadata/state").data == b"v2"
    copy.write_bytes(copy.read_bytes().replace(b"v2", b"v3"))  # damaged: the checksum no longer matches
    assert kept.get("metadata/state").data == b"v2"
    store.delete("metadata/state")
    assert kept.get("metadata/state") is None and not copy.exists()
    assert kept.get("other") is None and not (tmp_path / "logs" / "other").exists()
