"""files.read_regular: whole files in few reads, and never a blocking open of a FIFO in a file's place."""

from __future__ import annotations

import os

import pytest

from polisen_collector.files import NotRegularFile, read_regular


def test_a_regular_file_is_read_whole_or_up_to_one_byte_past_the_cap(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(bytes(range(256)) * 1000)  # 256 000 bytes, more than one 64 KiB read
    assert read_regular(path) == bytes(range(256)) * 1000
    assert read_regular(path, max_bytes=300_000) == bytes(range(256)) * 1000
    assert read_regular(path, max_bytes=9) == bytes(range(10)), "max_bytes + 1: the caller sees it is too large"
    path.write_bytes(b"")
    assert read_regular(path) == b""


@pytest.mark.parametrize("kind", ["a FIFO", "a folder", "a device"])
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "state"
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "a folder":
        path.mkdir()
    else:
        path.symlink_to(os.devnull)  # followed, as any file name is: /dev/null is a character device
    with pytest.raises(NotRegularFile) as refused:
        read_regular(path)
    assert str(refused.value) == f"{path} is {kind}, not a regular file"
    assert refused.value.strerror == "not a regular file"


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "missing")
