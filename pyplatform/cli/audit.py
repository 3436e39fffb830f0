"""``pyplatform audit``: verify, show and append to the hash-chained audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="The append-only, hash-chained audit log (docs/audit.md).")

_PATH = typer.Option(None, "--path", help="Audit log file (default: PYPLATFORM_AUDIT_LOG or data_dir/audit/audit.log).")


def _path(path: Path | None) -> Path:
    from pyplatform.config import get_settings

    return Path(path) if path is not None else get_settings().audit_path


@app.command()
def verify(path: Path = _PATH,
           anchor: list[str] = typer.Option([], "--anchor", help="A head hash recorded earlier elsewhere "
                                            "(`pyplatform audit head`); it must still be in the chain."),
           as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Check every record, the hash chain and the head; exit 1 if anything was edited, removed or truncated."""
    from pyplatform.audit import verify_file

    p = _path(path)
    report = verify_file(p, anchors=anchor)
    if as_json:
        typer.echo(json.dumps({"path": str(p), "ok": report.ok, "records": report.records,
                               "head": {"seq": report.head.seq, "hash": report.head.hash},
                               "torn_tail": report.torn_tail, "unacknowledged": report.unacknowledged,
                               "problems": [{"line": q.line, "reason": q.reason} for q in report.problems]}, indent=2))
    else:
        typer.echo(f"{p}: {report.summary()}")
        for q in report.problems[5:50]:
            typer.echo(f"  {q}")
        if report.torn_tail:
            typer.echo("  note: the last line is torn (an append that crashed; it was never acknowledged)")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def head(path: Path = _PATH) -> None:
    """Print the newest record's seq and hash: keep it elsewhere and pass it to `verify --anchor` later."""
    from pyplatform.audit import AuditLog
    from pyplatform.clock import LiveClock

    h = AuditLog(_path(path), LiveClock()).head()
    typer.echo(h.to_json())


@app.command()
def show(path: Path = _PATH,
         kind: list[str] = typer.Option([], "--kind", help="Kinds to keep (repeatable; 'token.*' keeps a family)."),
         actor: str = typer.Option(None, help="Only this actor."),
         subject: str = typer.Option(None, help="Only this subject."),
         start: str = typer.Option(None, help="From this UTC time (inclusive), e.g. 2026-01-02T09:30."),
         end: str = typer.Option(None, help="Up to this UTC time (exclusive)."),
         limit: int = typer.Option(50, help="Newest N records (0: all)."),
         as_json: bool = typer.Option(False, "--json", help="One JSON record per line.")) -> None:
    """List audit records (not verified: run `pyplatform audit verify` to trust them)."""
    from pyplatform.audit import read_audit

    try:
        frame = read_audit(_path(path), kinds=kind or None, actor=actor, subject=subject, start=start, end=end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if limit:
        frame = frame.tail(limit)
    if as_json:
        for rec in frame.assign(datetime=frame["datetime"].astype(str)).to_dict("records"):
            typer.echo(json.dumps(rec, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"audit log {_path(path)} ({len(frame)} records)")
    for col in ("seq", "datetime", "kind", "actor", "subject", "outcome", "details"):
        table.add_column(col)
    for rec in frame.to_dict("records"):
        table.add_row(str(rec["seq"]), str(rec["datetime"]), rec["kind"], rec["actor"], str(rec["subject"] or ""),
                      rec["outcome"], json.dumps(rec["details"], separators=(",", ":"))[:120])
    Console().print(table)


@app.command()
def record(kind: str = typer.Argument(..., help="e.g. deploy, killswitch.engage"),
           subject: str = typer.Option(None, help="What it was done to."),
           outcome: str = typer.Option("ok", help="ok, refused, error..."),
           detail: list[str] = typer.Option([], "--detail", help="key=value (repeatable)."),
           actor: str = typer.Option(None, help="Who (default cli:$USER)."),
           path: Path = _PATH) -> None:
    """Append one record by hand (scripts that deploy or halt trading call this)."""
    from pyplatform.audit import AuditError, AuditLog
    from pyplatform.clock import LiveClock

    details = {}
    for d in detail:
        k, sep, v = d.partition("=")
        if not sep or not k:
            raise typer.BadParameter(f"--detail {d!r} is not key=value", param_hint="--detail")
        details[k] = v
    try:
        h = AuditLog(_path(path), LiveClock()).append(kind, actor or f"cli:{os.environ.get('USER', 'unknown')}",
                                                      subject, outcome, details)
    except AuditError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(h.to_json())
