"""The state object's encoding: format 3 (compressed columns, a head over a base) written, 2 and 1 still read."""

from __future__ import annotations

import gzip
import json

import pytest

from polisen_collector.archive.state import (
    STATE_FORMAT,
    CorruptState,
    decode_state,
    encode_state,
)
from polisen_collector.storage.base import NotModified, StoredObject
from polisen_collector.storage.delta_map import BASES
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
    assert document["format"] == STATE_FORMAT == 3
    assert document["base"] is None and document["forgotten"] == [], "a small state needs no base"
    assert document["seen"] == {
        "id_deltas": [635718, 650297 - 635718, 4],
        "hash": ["fedcba9876543210", "0123456789abcdef", "cafe"],
        "day": ["2026-05-20", "2026-05-20", "2026-03-02"],
        "last_seen": ["2026-05-20", "2026-05-27", "2026-05-27"],
    }
    assert document["updated_by_run"] == "run-1"
    assert seen_of(data) == SEEN


def test_format_1_is_still_read_and_rewritten_as_format_3():
    assert seen_of(format_1(SEEN)) == SEEN
    assert seen_of(encode_state(seen_of(format_1(SEEN)), "run-2")) == SEEN


def test_format_2_is_still_read():
    document = json.loads(gzip.decompress(encode_state(SEEN, "run-1")))
    del document["base"], document["forgotten"]
    assert seen_of(gzip.compress(json.dumps({**document, "format": 2}).encode())) == SEEN


def big_state(count: int, start: int = 600000) -> dict:
    return {start + 3 * n: (f"{n * 2654435761 % 2**64:016x}", "2026-05-20", "2026-05-27") for n in range(count)}


def bases_in(storage: LocalStorage) -> list[str]:
    return sorted(storage.list(BASES))


def test_a_large_state_is_a_small_head_over_a_write_once_base(tmp_path):
    storage = LocalStorage(tmp_path)
    seen = big_state(3000)
    first = encode_state(seen, "run-1", storage=storage)
    [base_name] = bases_in(storage)
    assert json.loads(gzip.decompress(first))["base"] == base_name
    assert len(first) < 500, "the head carries nothing the base holds"
    assert decode_state(first, storage)[0] == seen

    edited = {**seen, 600000: ("beef", "2026-05-20", "2026-05-28"), 700000: ("cafe", "2026-05-28", "2026-05-28")}
    del edited[600003], edited[600006]
    base = decode_state(first, storage)[2]
    second = encode_state(edited, "run-2", storage=storage, base=base)
    head = json.loads(gzip.decompress(second))
    assert bases_in(storage) == [base_name], "a small change writes no new base"
    assert head["base"] == base_name and head["forgotten"] == [600003, 600006] and head["carried"] == 4
    assert head["seen"]["id_deltas"] == [600000, 100000] and head["seen"]["hash"] == ["beef", "cafe"]
    assert decode_state(second, storage)[0] == edited
    assert len(second) < 300


def test_a_new_base_once_the_heads_have_carried_as_many_rows_as_it_holds(tmp_path):
    storage = LocalStorage(tmp_path)
    stale = "metadata/bases/last_seen-20200101T000000Z-0123456789abcdef.json.gz"
    storage.put(stale, b"left by a run killed before its head was written")
    seen = big_state(1000)
    base = decode_state(encode_state(seen, "run-1", storage=storage), storage)[2]
    assert stale not in bases_in(storage), "an unused base written long ago is deleted"
    edited = {**seen, **{key: ("0", "2026-05-20", "2026-05-28") for key in list(seen)[:600]}}
    head = json.loads(gzip.decompress(data := encode_state(edited, "run-2", storage=storage, base=base)))
    assert (head["base"], head["carried"]) == (base.name, 600)
    base = decode_state(data, storage)[2]
    assert base.carried == 600
    head = json.loads(gzip.decompress(data := encode_state(edited, "run-3", storage=storage, base=base)))
    assert head["base"] != base.name, "600 + 600 rows carried: more than the base's 1000"
    assert head["seen"]["id_deltas"] == [] and head["forgotten"] == [] and head["carried"] == 0
    assert bases_in(storage) == sorted([base.name, head["base"]]), "the base the last head named is kept"
    assert decode_state(data, storage)[0] == edited


def test_a_missing_or_damaged_base_makes_the_state_corrupt(tmp_path):
    storage = LocalStorage(tmp_path)
    data = encode_state(big_state(400), "run-1", storage=storage)
    [name] = bases_in(storage)
    storage.put(name, b"not gzip")
    with pytest.raises(CorruptState, match="unreadable"):
        decode_state(data, storage)
    storage.delete(name)
    with pytest.raises(CorruptState, match="missing"):
        decode_state(data, storage)
    with pytest.raises(CorruptState, match="without its store"):
        decode_state(data)


def test_a_real_sized_state_is_a_fraction_of_format_1():
    seen = {600000 + 3 * n: (f"{n * 2654435761 % 2**64:016x}", "2026-05-20", "2026-05-27") for n in range(1000)}
    compact, plain = encode_state(seen, "r"), format_1(seen)
    assert seen_of(compact) == seen
    assert len(compact) < len(plain) / 4
    assert len(compact) < 12 * len(seen), "about 10 bytes an id, most of them the hash"


def fixed_gzip(data: bytes) -> bytes:
    """gzip without a time in its header: a parameter's id is then the same in every collection
    (pytest-xdist's workers must collect the same tests)."""
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("data", [
    b"\x1f\x8b not really gzip",
    fixed_gzip(b"{not json"),
    fixed_gzip(b'{"format": 4, "seen": {}}'),
    fixed_gzip(b'{"format": 3, "seen": {}}'),
    fixed_gzip(b'{"format": 3, "base": "metadata/last_seen.json", "forgotten": [],'
                  b' "seen": {"id_deltas": [], "hash": [], "day": [], "last_seen": []}}'),
    fixed_gzip(b'{"format": 3, "forgotten": ["7"], "seen": {"id_deltas": [], "hash": [], "day": [], "last_seen": []}}'),
    fixed_gzip(b'{"format": 2, "seen": {"id_deltas": [1, 2], "hash": ["a"], "day": ["2026-05-20"], "last_seen": []}}'),
    fixed_gzip(b'{"format": 2, "seen": {"id_deltas": [5, 0], "hash": ["a", "b"], "day": ["2026-05-20", "2026-05-20"],'
                  b' "last_seen": ["2026-05-20", "2026-05-20"]}}'),
    fixed_gzip(b'{"format": 2, "seen": {"id_deltas": [5], "hash": ["a"], "day": ["May"], "last_seen": ["2026-05-20"]}}'),
    fixed_gzip(b'{"format": 2, "seen": {"7": ["a", "2026-05-20", "2026-05-20"]}}'),
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


def test_local_storage_lists_in_the_buckets_name_order(tmp_path):
    """Byte order of whole names, as Object Storage lists them: `a-b` < `a.b` < `a/b` < `a0`, a folder
    sorted as its name and a slash; hidden temp files and symlinked folders left out."""
    names = ["pages/2026/05/20/1.html.gz", "pages/2026/05/20/1.parsed.json", "pages/2026/05/2-x", "pages/2026/05/2.x",
             "pages/2026/05/20a", "pages/2026/05/21/9.html.gz", "pages/2026/050", "events/2026/05/20/e.jsonl",
             "metadata/state.json"]
    storage = LocalStorage(tmp_path)
    for name in names:
        storage.put(name, b"x")
    (tmp_path / "pages" / "2026" / "05" / "20" / ".1.html.gz.tmp").write_bytes(b"half")
    (tmp_path / "pages" / "2026" / "linked").symlink_to(tmp_path / "pages" / "2026" / "05")
    for prefix in ("", "pages/", "pages/2026/05/2", "pages/2026/05/20", "pages/2026/05/20/", "pages/2026/05/20/1.p",
                   "pages/2026/0", "nothing/"):
        assert list(storage.list(prefix)) == sorted(name for name in names if name.startswith(prefix)), prefix


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


def test_local_copy_reads_a_write_once_object_once_and_keeps_the_newest_few(tmp_path):
    store = LocalStorage(tmp_path / "store")
    folder = tmp_path / "logs" / "bases"
    kept = LocalCopy(store, {}, write_once={"metadata/bases/": folder})
    names = [f"metadata/bases/last_seen-2026052{n}T000000Z-{n:016x}.json.gz" for n in range(5)]
    for name in names[:4]:
        store.put(name, name.encode())  # written by another host
    assert kept.get(names[0]).data == names[0].encode()
    store.delete(names[0])
    assert kept.get(names[0]).data == names[0].encode(), "the copy is used without asking the store"
    (folder / names[0].rsplit("/", 1)[1]).write_bytes(b"damaged")
    assert kept.get(names[0]) is None, "a damaged copy is not used"
    for name in names[1:4]:
        kept.get(name)
    kept.put(names[4], b"ours")
    assert sorted(path.name for path in folder.iterdir()) == [name.rsplit("/", 1)[1] for name in names[2:]]
    assert kept.get("metadata/bases/a/b") is None and not (folder / "a").exists(), "only flat names are kept"
