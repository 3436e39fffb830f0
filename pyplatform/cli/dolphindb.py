"""``pyplatform dolphindb``: render, check, deploy, undeploy and inspect the DolphinDB backend."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Deploy to / undeploy from a DolphinDB server.")


def _config(prefix: str, nanoseconds: bool, snapshot_dir: str | None, sessions: list[str],
            session_tz: str | None = None, daily_close_after_ms: int | None = None):
    from pyplatform.dolphindb.render import DeployConfig

    kw = {"prefix": prefix, "time_type": "NANOTIMESTAMP" if nanoseconds else "TIMESTAMP"}
    if daily_close_after_ms is not None:
        kw["daily_bar_close_after_ms"] = daily_close_after_ms
    if session_tz:
        kw["session_timezone"] = session_tz
    if snapshot_dir:
        kw["snapshot_dir"] = snapshot_dir
    if sessions:
        pairs = []
        for s in sessions:
            begin, sep, end = s.partition("-")
            if not sep:
                raise typer.BadParameter(f"--session {s!r}: expected HH:MM:SS-HH:MM:SS")
            pairs.append((begin, end))
        kw["sessions"] = tuple(pairs)
    try:
        return DeployConfig(**kw)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


_PREFIX = typer.Option("pp", help="Prefix of every deployed object.")
_NS = typer.Option(False, "--nanoseconds", help="Store ts as NANOTIMESTAMP instead of TIMESTAMP (ms).")
_SNAP = typer.Option(None, help="Engine snapshot directory on the server (must exist).")
_SESS = typer.Option([], "--session", help="Trading session HH:MM:SS-HH:MM:SS in UTC (repeat); bars only inside.")
_SESS_TZ = typer.Option(None, "--session-tz", help="Time zone of --session; must be UTC (ts is UTC, no DST).")
_DAILY = typer.Option(None, "--daily-close-after-ms",
                      help="Emit a day's bar this long after UTC midnight (forceTriggerSessionEndTime) "
                           "instead of on the symbol's next bar; 0 turns it off (default 60,000).")


@app.command()
def render(out: Path = typer.Option(Path("rendered_dolphindb"), help="Directory for the rendered .dos files."),
           prefix: str = _PREFIX, nanoseconds: bool = _NS, snapshot_dir: str | None = _SNAP,
           session: list[str] = _SESS, session_tz: str | None = _SESS_TZ,
           daily_close_after_ms: int | None = _DAILY) -> None:
    """Render the scripts (library + published factors) for a DBA to read or run by hand, and check them."""
    from pyplatform.dolphindb.deployer import check_scripts
    from pyplatform.dolphindb.render import library_metrics, render_scripts

    config = _config(prefix, nanoseconds, snapshot_dir, session, session_tz, daily_close_after_ms)
    metrics = library_metrics()
    out.mkdir(parents=True, exist_ok=True)
    for s in render_scripts(config, metrics):
        (out / f"{s.name}.dos").write_text(s.text)
        typer.echo(f"wrote {out / (s.name + '.dos')}")
    problems = check_scripts(config, metrics)
    for p in problems:
        typer.echo(f"PROBLEM {p}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"checked: {len(metrics)} factors; signatures, deploy order, guards and teardown OK")


def _deployer(prefix: str, nanoseconds: bool, snapshot_dir: str | None, session: list[str],
              session_tz: str | None = None, daily_close_after_ms: int | None = None):
    from pyplatform.dolphindb.connection import connect, target_from_settings
    from pyplatform.dolphindb.deployer import Deployer

    try:
        target = target_from_settings()
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    config = _config(prefix, nanoseconds, snapshot_dir, session, session_tz, daily_close_after_ms)
    try:
        return Deployer(connect(target), config), target
    except ConnectionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command()
def deploy(prefix: str = _PREFIX, nanoseconds: bool = _NS, snapshot_dir: str | None = _SNAP,
           session: list[str] = _SESS, session_tz: str | None = _SESS_TZ,
           daily_close_after_ms: int | None = _DAILY) -> None:
    """Create the databases, stream tables, engines and subscriptions that are missing (idempotent)."""
    from pyplatform.dolphindb.preflight import PreflightError

    deployer, target = _deployer(prefix, nanoseconds, snapshot_dir, session, session_tz, daily_close_after_ms)
    try:
        done = deployer.deploy(progress=lambda name: typer.echo(f"ran {name}.dos on {target}"))
    except PreflightError as exc:
        for line in exc.report.lines():
            typer.echo(line, err=True)
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for line in deployer.report.fallbacks if deployer.report else []:
        typer.echo(f"fallback: {line}")
    typer.echo(f"deployed ({len(done)} scripts)")


@app.command()
def undeploy(prefix: str = _PREFIX, drop_streams: bool = typer.Option(False, help="Also drop stream tables and their logs."),
             drop_data: bool = typer.Option(False, help="Also drop the DFS databases (all history)."),
             yes: bool = typer.Option(False, "--yes", help="Confirm --drop-data.")) -> None:
    """Unsubscribe and drop the engines; stream tables and history are kept unless asked."""
    if drop_data and not yes:
        typer.echo("--drop-data deletes every DFS database of this deployment; add --yes to confirm", err=True)
        raise typer.Exit(2)
    deployer, target = _deployer(prefix, False, None, [])
    deployer.undeploy(drop_streams=drop_streams, drop_data=drop_data,
                      progress=lambda name: typer.echo(f"ran {name}.dos on {target}"))
    typer.echo("undeployed")


@app.command()
def status(prefix: str = _PREFIX, snapshot_dir: str | None = _SNAP) -> None:
    """The preflight (version, settings, permissions, fallbacks) and which of the deployment's
    stream tables, engines and databases exist on the server."""
    deployer, target = _deployer(prefix, False, snapshot_dir, [])
    typer.echo(f"{target}")
    for line in deployer.preflight().lines():
        typer.echo(line)
    for kind, names in deployer.status().items():
        typer.echo(f"{kind}: {', '.join(names) if names else '(none)'}")


@app.command()
def migrate(prefix: str = _PREFIX, table: list[str] = typer.Option(
                [], "--table", help="Database to migrate (repeat); default: those the preflight finds in an older "
                                    "layout (with --dry-run: every database whose layout changed)."),
            dry_run: bool = typer.Option(False, "--dry-run", help="Print the DolphinDB script; connect to nothing."),
            yes: bool = typer.Option(False, "--yes", help="Confirm: the old databases are dropped after the copy.")
            ) -> None:
    """Copy DFS databases created with an older partition scheme into the current one
    (create a copy, sqlDS + mr copy, count check, drop, recreate, copy back). Undeploy first."""
    from pyplatform.dolphindb.layout import MIGRATABLE, migration_script

    config = _config(prefix, False, None, [])
    if dry_run:
        try:
            typer.echo(migration_script(config, tuple(table) or MIGRATABLE), nl=False)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        return
    if not yes:
        typer.echo("migrate drops each old database once its copy is checked; add --yes to confirm "
                   "(or --dry-run to read the script)", err=True)
        raise typer.Exit(2)
    deployer, target = _deployer(prefix, False, None, [])
    done, _ = deployer.migrate(tuple(table) or None, progress=typer.echo)
    typer.echo(f"migrated {', '.join(done)} on {target}" if done else "every database already has the current layout")
