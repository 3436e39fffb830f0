"""The hash-chained audit log: chain, tamper detection, crash leftovers, concurrency, CLI."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pyplatform.audit import AuditError, AuditLog, Head, read_audit, verify_file
from pyplatform.audit.chain import GENESIS, encode_record
from pyplatform.clock import SimClock

T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00 UTC


def _log(tmp_path, n=5) -> AuditLog:
    lg = AuditLog(tmp_path / "audit.log", clock=SimClock(T0))
    for i in range(n):
        lg.append("token.issue", "cli:alice", f"sub{i}", details={"jti": f"j{i}"}, now_ns=T0 + i)
    return lg


def _lines(lg) -> list[str]:
    return lg.path.read_text().splitlines(keepends=True)


def _cli(*args):
    from pyplatform.cli.main import app

    return CliRunner().invoke(app, ["audit", *args])


def test_first_record_hash_matches_a_hand_computed_sha256(tmp_path):
    lg = _log(tmp_path, 1)
    # canonical JSON written by hand: sorted keys, no spaces, every field but "hash"
    body = ('{"actor":"cli:alice","details":{"jti":"j0"},"kind":"token.issue","outcome":"ok",'
            f'"prev":"{"0" * 64}","seq":0,"subject":"sub0","ts":{T0}}}')
    expected = hashlib.sha256(body.encode()).hexdigest()
    rec = json.loads(_lines(lg)[0])
    assert rec["hash"] == expected and rec["prev"] == GENESIS
    assert lg.head() == Head(0, expected)
    assert verify_file(lg.path).ok


def test_intact_log_verifies_from_the_cli(tmp_path):
    lg = _log(tmp_path)
    out = _cli("verify", "--path", str(lg.path))
    assert out.exit_code == 0, out.output
    assert "ok: 5 records" in out.output


def _edit(lg, i, fn):
    lines = _lines(lg)
    rec = json.loads(lines[i])
    fn(rec)
    lines[i] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    lg.path.write_text("".join(lines))


@pytest.mark.parametrize("attack, expect", [
    ("edit a detail", "line 3: hash mismatch"),
    ("edit and re-hash", "line 4: prev does not match"),
    ("delete a middle line", "line 3: seq 3 where 2 was expected"),
    ("swap two lines", "line 2: seq 2 where 1 was expected"),
    ("truncate the last two", "2 record(s) truncated"),
    ("delete the head file", "audit.log.head is missing"),
    ("append a line by hand", "appended by something other than the audit writer"),
    ("garbage line", "line 2: not an audit record"),
])
def test_tampering_is_detected(tmp_path, attack, expect):
    lg = _log(tmp_path)
    lines = _lines(lg)
    if attack == "edit a detail":
        _edit(lg, 2, lambda r: r["details"].update(jti="forged"))
    elif attack == "edit and re-hash":
        from pyplatform.audit.chain import record_hash

        def rehash(r):
            r["subject"] = "mallory"
            r["hash"] = record_hash(r)
        _edit(lg, 2, rehash)
    elif attack == "delete a middle line":
        lg.path.write_text("".join(lines[:2] + lines[3:]))
    elif attack == "swap two lines":
        lg.path.write_text("".join([lines[0], lines[2], lines[1], *lines[3:]]))
    elif attack == "truncate the last two":
        lg.path.write_text("".join(lines[:3]))
    elif attack == "delete the head file":
        lg.path.write_text("".join(lines[:3]))
        lg.head_path.unlink()
    elif attack == "append a line by hand":
        # two forged records that chain correctly (no key is needed to compute SHA-256)
        h = lg.head()
        l1, h1 = encode_record(h.seq + 1, T0 + 9, "token.revoke", "mallory", "x", "ok", {}, h.hash)
        l2, _ = encode_record(h.seq + 2, T0 + 9, "token.revoke", "mallory", "y", "ok", {}, h1)
        lg.path.write_bytes(lg.path.read_bytes() + l1 + l2)
    elif attack == "garbage line":
        lg.path.write_text("".join([lines[0], "hello\n", *lines[1:]]))
    report = verify_file(lg.path)
    assert not report.ok
    assert expect in report.summary(), report.summary()
    out = _cli("verify", "--path", str(lg.path))
    assert out.exit_code == 1 and "TAMPERED" in out.output
    # nothing builds on a broken chain: a writer that starts now refuses to append
    before = lg.path.read_bytes()
    with pytest.raises(AuditError, match="audit verify"):
        AuditLog(lg.path, SimClock(T0)).append("token.issue", "cli:alice", "late")
    assert lg.path.read_bytes() == before


def test_a_wholesale_rewrite_is_caught_by_an_outside_anchor(tmp_path):
    lg = _log(tmp_path, 3)
    anchor = lg.head().hash  # what `pyplatform audit head` printed into a ticket last week
    lg.path.unlink()
    lg.head_path.unlink()
    forged = AuditLog(lg.path, SimClock(T0))
    for i in range(4):
        forged.append("token.issue", "cli:alice", f"other{i}", now_ns=T0 + i)
    assert verify_file(lg.path).ok  # self-consistent ...
    out = _cli("verify", "--path", str(lg.path), "--anchor", anchor)
    assert out.exit_code == 1 and "is not in the chain" in out.output  # ... but not the chain we anchored
    assert _cli("verify", "--path", str(lg.path), "--anchor", forged.head().hash).exit_code == 0


def test_torn_half_line_from_a_crash_is_reported_then_dropped(tmp_path):
    lg = _log(tmp_path, 3)
    lg.path.write_bytes(lg.path.read_bytes() + b'{"actor":"cli:al')  # a crash mid-write
    report = verify_file(lg.path)
    assert report.ok and report.torn_tail and report.records == 3
    lg.append("order.submit", "oms:demo", "o-1")
    report = verify_file(lg.path)
    assert report.ok and not report.torn_tail and report.records == 4


def test_record_written_before_a_crash_moved_the_head_is_not_acknowledged(tmp_path):
    lg = _log(tmp_path, 3)
    h = lg.head()
    line, _ = encode_record(h.seq + 1, T0 + 5, "order.submit", "oms:demo", "o-lost", "ok", {}, h.hash)
    lg.path.write_bytes(lg.path.read_bytes() + line)  # written, then SIGKILL before the head moved
    report = verify_file(lg.path)
    assert report.ok and report.unacknowledged == 1 and "warning" in report.summary()
    new = lg.append("order.submit", "oms:demo", "o-next")
    assert new.seq == 3
    subjects = read_audit(lg.path)["subject"].tolist()
    assert subjects == ["sub0", "sub1", "sub2", "o-next"]
    assert verify_file(lg.path).ok and verify_file(lg.path).unacknowledged == 0


def _writer(path: str, who: int, n: int) -> None:
    lg = AuditLog(path, SimClock(T0), fsync=False)
    for i in range(n):
        lg.append("order.submit", f"proc:{who}", f"{who}-{i}")


def test_concurrent_writers_in_several_processes_keep_one_chain(tmp_path):
    path = str(tmp_path / "audit.log")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = verify_file(path)
    assert report.ok and report.records == 120
    frame = read_audit(path)
    assert frame["seq"].tolist() == list(range(120))
    assert sorted(frame["subject"]) == sorted(f"{w}-{i}" for w in range(3) for i in range(40))
    # each writer's own records stay in its order
    for w in range(3):
        mine = frame[frame["actor"] == f"proc:{w}"]["subject"].tolist()
        assert mine == [f"{w}-{i}" for i in range(40)]


def test_credentials_in_details_are_masked(tmp_path):
    lg = AuditLog(tmp_path / "audit.log", SimClock(T0))
    lg.append("secret.rotate", "cli:root", details={"token": "eyJhbGciOi.secret.part", "redis": "redis://u:pw77@h:6379",
                                                   "nested": {"password": "hunter2"}, "jti": "keep-me"})
    text = lg.path.read_text()
    for secret in ("eyJhbGciOi", "pw77", "hunter2"):
        assert secret not in text
    assert "keep-me" in text and "redis://***@h:6379" in text


def test_read_audit_filters(tmp_path):
    lg = AuditLog(tmp_path / "audit.log", SimClock(T0))
    lg.append("token.issue", "cli:alice", "bob", now_ns=T0)
    lg.append("token.revoke", "cli:alice", "bob", now_ns=T0 + 60_000_000_000)
    lg.append("order.submit", "oms:demo", "o-1", now_ns=T0 + 120_000_000_000)
    lg.append("risk.refused", "risk:demo", "o-2", outcome="refused", details={"check": "max_notional"},
              now_ns=T0 + 180_000_000_000)
    f = read_audit(lg.path, kinds="token.*")
    assert f["kind"].tolist() == ["token.issue", "token.revoke"]
    assert f["datetime"].tolist() == [pd.Timestamp("2026-01-01 00:00"), pd.Timestamp("2026-01-01 00:01")]
    assert read_audit(lg.path, actor="oms:demo")["subject"].tolist() == ["o-1"]
    assert read_audit(lg.path, start="2026-01-01 00:01", end="2026-01-01 00:03")["seq"].tolist() == [1, 2]
    assert read_audit(lg.path, kinds=["risk.refused"]).iloc[0]["details"] == {"check": "max_notional"}
    out = _cli("show", "--path", str(lg.path), "--kind", "token.*", "--json")
    assert out.exit_code == 0
    assert [json.loads(x)["kind"] for x in out.output.splitlines()] == ["token.issue", "token.revoke"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="Token Issue", actor="a"), "dotted lower-case"),
    (dict(kind="token.issue", actor=""), "actor must be"),
    (dict(kind="token.issue", actor="a", details={"x": object()}), "not plain JSON"),
    (dict(kind="token.issue", actor="a", details={"x": float("nan")}), "not JSON"),
    (dict(kind="token.issue", actor="a", now_ns=1.5), "int nanoseconds"),
])
def test_bad_records_are_refused_and_nothing_is_written(tmp_path, kwargs, match):
    lg = _log(tmp_path, 2)
    before = lg.path.read_bytes()
    with pytest.raises(AuditError, match=match):
        lg.append(**kwargs)
    assert lg.path.read_bytes() == before and verify_file(lg.path).ok


def test_hook_is_loud_but_not_fatal_unless_strict(tmp_path, caplog):
    from pyplatform.audit import audit
    from pyplatform.config import Settings

    s = Settings(data_dir=tmp_path)
    assert audit("killswitch.engage", "cli:ops", "demo", settings=s)
    assert verify_file(s.audit_path).records == 1
    s.audit_path.write_text("")  # truncated behind the writer's back
    assert audit("killswitch.release", "cli:ops", "demo", settings=s) is False
    assert "could not record killswitch.release" in caplog.text
    with pytest.raises(AuditError):
        audit("killswitch.release", "cli:ops", "demo", settings=s, strict=True)


def test_cli_record_and_head(tmp_path):
    path = tmp_path / "audit.log"
    out = _cli("record", "deploy", "--subject", "dolphindb://h:8848", "--detail", "scripts=3", "--path", str(path),
               "--actor", "cli:ops")
    assert out.exit_code == 0, out.output
    head = json.loads(_cli("head", "--path", str(path)).output)
    assert head["seq"] == 0 and head["hash"] == json.loads(out.output)["hash"]
    assert read_audit(path).iloc[0]["details"] == {"scripts": "3"}
    assert _cli("record", "deploy", "--detail", "oops", "--path", str(path)).exit_code != 0


def test_a_log_needs_a_clock_and_stamps_records_with_its_time(tmp_path):
    with pytest.raises(TypeError):
        AuditLog(tmp_path / "audit.log")  # no silent wall time
    clock = SimClock(T0 + 42)
    lg = AuditLog(tmp_path / "audit.log", clock)
    lg.append("token.issue", "cli:alice", "a")
    clock.advance(1_000)
    lg.append("token.issue", "cli:alice", "b")
    lg.append("token.issue", "cli:alice", "c", now_ns=T0 + 7)  # an explicit time wins
    assert [json.loads(x)["ts"] for x in lg.path.read_text().splitlines()] == [T0 + 42, T0 + 1_042, T0 + 7]
