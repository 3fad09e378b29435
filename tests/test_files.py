"""files.read_regular: whole files in few reads, and never a blocking open of a FIFO in a file's place."""

from __future__ import annotations

import os
import pathlib

import pytest

from polisen_collector.files import NotRegularFile, read_regular, replace_with


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


def test_replace_with_writes_through_a_link_and_never_replaces_a_fifo_or_a_device(tmp_path):
    """A symbolic link's target is replaced and the link kept; a FIFO (or a device: /dev/full, as root, was
    replaced by a regular file) is refused, left as it is, and nothing is written beside it."""
    target, link, fifo = tmp_path / "real.png", tmp_path / "link.png", tmp_path / "fifo.png"
    target.write_bytes(b"old")
    link.symlink_to(target)
    replace_with(link, lambda name: pathlib.Path(name).write_bytes(b"new"))
    assert (link.is_symlink(), target.read_bytes()) == (True, b"new")
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="fifo.png is a FIFO, not a regular file"):
        replace_with(fifo, lambda name: pathlib.Path(name).write_bytes(b"new"))
    assert fifo.is_fifo() and sorted(path.name for path in tmp_path.iterdir()) == ["fifo.png", "link.png", "real.png"]
