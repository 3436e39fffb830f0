"""atomic_write: all-or-nothing replacement, permissions, no leftovers on failure."""

import os
import stat

import pytest

from pyplatform import fsio


def test_replaces_content_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "state.json"
    fsio.atomic_write(p, "old")
    fsio.atomic_write(p, b"new content")
    assert p.read_bytes() == b"new content"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.json"]


def test_failed_write_keeps_old_content(tmp_path, monkeypatch):
    p = tmp_path / "state.json"
    fsio.atomic_write(p, "old")

    def broken_write(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsio.os, "write", broken_write)
    with pytest.raises(OSError, match="No space"):
        fsio.atomic_write(p, "new")
    monkeypatch.undo()
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.json"]


def test_mode_is_applied(tmp_path):
    p = tmp_path / "secret"
    fsio.atomic_write(p, "s3cr3t", mode=0o600)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600


def test_durable_write_fsyncs_file_and_directory(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(fsio.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    fsio.atomic_write(tmp_path / "a", "x")
    assert len(calls) == 2
    calls.clear()
    fsio.atomic_write(tmp_path / "b", "x", durable=False)
    assert calls == []


def test_every_state_file_writer_is_durable(tmp_path, monkeypatch):
    # the DolphinDB OffsetBook carries the same resume-by-offset promise as the embedded
    # AckStore, so both must fsync; so must the store's manifest and the stream acks
    from pyplatform.dolphindb.subscriber import OffsetBook
    from pyplatform.store.manifest import Manifest, save_manifest
    from pyplatform.stream.acks import AckStore

    calls = []
    real = os.fsync
    monkeypatch.setattr(fsio.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    writers = {
        "OffsetBook": lambda: OffsetBook(tmp_path / "ddb" / "offsets.json").ack("risk", 5),
        "AckStore": lambda: AckStore(tmp_path).set("risk", 5),
        "manifest": lambda: save_manifest(tmp_path, Manifest()),
    }
    for name, write in writers.items():
        calls.clear()
        write()
        assert len(calls) == 2, f"{name} wrote without fsync of file and directory"
