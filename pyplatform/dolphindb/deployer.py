"""Deploying, undeploying, inspecting and extending the pipeline on a DolphinDB server.

The deployer renders the scripts, checks them (documented signatures, deploy order,
existence guards) and runs them one file per ``session.run`` call, in order, in one
session (the later files use the helper functions 00_helpers.dos defines). Running it
twice changes nothing: every create in the scripts is guarded by an existence check.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyplatform.dolphindb.layout import migration_script
from pyplatform.dolphindb.plan import signature_problems, simulate
from pyplatform.dolphindb.preflight import PreflightError, PreflightReport, run_preflight, snapshot_dir_script
from pyplatform.dolphindb.render import (
    DROP_DATA, DROP_STREAMS, UNDEPLOY_ORDER, DeployConfig, FactorMetric, RenderedScript,
    deploy_order, library_metrics, render_publish, render_scripts,
)

__all__ = ["Deployer", "DeployCheckError", "PreflightError", "check_scripts", "deploy_plan", "undeploy_plan",
           "status_script"]


class DeployCheckError(RuntimeError):
    """The rendered scripts failed a check; nothing was sent to the server."""


def deploy_plan(config: DeployConfig, metrics: list[FactorMetric]) -> list[RenderedScript]:
    """The deploy scripts in execution order."""
    return render_scripts(config, metrics, deploy_order(metrics))


def undeploy_plan(config: DeployConfig, metrics: list[FactorMetric], drop_streams: bool = False,
                  drop_data: bool = False) -> list[RenderedScript]:
    """The teardown scripts in execution order (data is kept unless asked)."""
    names = UNDEPLOY_ORDER + ((DROP_STREAMS,) if drop_streams or drop_data else ()) + \
        ((DROP_DATA,) if drop_data else ())
    # dropping the stream tables: the DFS writers' persisted offsets go with them
    extra = {"remove_offsets": "true" if drop_streams or drop_data else "false"}
    return render_scripts(config, metrics, names, extra=extra)


def check_scripts(config: DeployConfig, metrics: list[FactorMetric]) -> list[str]:
    """Every problem found in the rendered deploy and full teardown plans (empty = all good)."""
    deploy = deploy_plan(config, metrics)
    teardown = undeploy_plan(config, metrics, drop_streams=True, drop_data=True)
    problems = signature_problems(deploy + teardown[1:])
    deployed, order = simulate(deploy)
    problems += order
    again, rerun = simulate(deploy, deployed)
    problems += [f"re-deploy: {p}" for p in rerun if "without an existence check" not in p]
    left, down = simulate(teardown, deployed)
    problems += [f"teardown: {p}" for p in down]
    if left:
        problems.append(f"teardown leaves {sorted(left)} behind")
    return problems


def status_script(config: DeployConfig) -> str:
    """Script returning (stream tables, engines, database flags) of the deployment."""
    p = config.prefix
    return (
        f'streams = exec name from objs(true) where shared and name like "{p}_%"\n'
        f'engines = exec engineName from getStreamEngineList() where engineName like "{p}_%"\n'
        f'dbs = [existsDatabase("dfs://{p}_ticks"), existsDatabase("dfs://{p}_bars_1m"), '
        f'existsDatabase("dfs://{p}_bars_1d"), existsDatabase("dfs://{p}_factors"), '
        f'existsDatabase("dfs://{p}_signals")]\n'
        "[streams, engines, dbs]"
    )


@dataclass
class Deployer:
    """Runs the rendered scripts through an open ``dolphindb.Session``.

    Parameters
    ----------
    session : dolphindb.Session
        Logged in as a user allowed to create databases, stream tables and engines.
    config : DeployConfig
        Names, sizes and options of the deployment.
    metrics : list of FactorMetric, optional
        Factor metrics; defaults to the library plus published factors.
    """

    session: object
    config: DeployConfig
    metrics: list[FactorMetric] | None = None
    report: PreflightReport | None = None

    def _metrics(self) -> list[FactorMetric]:
        if self.metrics is None:
            self.metrics = library_metrics()
        return self.metrics

    def _run(self, scripts: list[RenderedScript], progress=None, metrics: list[FactorMetric] | None = None
             ) -> list[str]:
        problems = check_scripts(self.config, metrics if metrics is not None else self._metrics())
        if problems:
            raise DeployCheckError("rendered scripts failed their checks:\n  " + "\n  ".join(problems))
        done = []
        for s in scripts:
            try:
                self.session.run(s.text)
            except Exception as exc:  # the server's message names the failing statement
                raise RuntimeError(f"{s.name}.dos failed on the server: {exc} "
                                   f"(scripts before it ran: {done or 'none'})") from None
            done.append(s.name)
            if progress is not None:
                progress(s.name)
        return done

    def preflight(self) -> PreflightReport:
        """Ask the node for its version and settings (read-only) and judge them."""
        self.report = run_preflight(self.session, self.config, self._metrics())
        return self.report

    def deploy(self, progress=None, preflight: bool = True) -> list[str]:
        """Create whatever is missing, in order; returns the script names run.

        The preflight runs first: a failed precondition raises :class:`PreflightError`
        (naming the setting to change) before anything is created; then the snapshot
        directory is created if absent and the engines get the metrics the server's version
        supports (``report.fallbacks`` says what was left out).
        """
        metrics = self._metrics()
        if preflight:
            report = self.preflight()
            if not report.ok:
                raise PreflightError(report)
            metrics = report.metrics if report.metrics is not None else metrics
            # checked like the rendered scripts, then run on its own before them
            mk = RenderedScript("snapshot_dir", snapshot_dir_script(self.config))
            problems = signature_problems([mk])
            if problems:
                raise DeployCheckError("snapshot-directory script failed its checks:\n  " + "\n  ".join(problems))
            plan = deploy_plan(self.config, metrics)
            problems = check_scripts(self.config, metrics)
            if problems:
                raise DeployCheckError("rendered scripts failed their checks:\n  " + "\n  ".join(problems))
            try:
                self.session.run(mk.text)
            except Exception as exc:
                raise RuntimeError(f"creating the snapshot directory {self.config.snapshot_dir} failed on the "
                                   f"server: {exc} (nothing else was created)") from None
            done = self._run(plan, progress, metrics)
            self.metrics = list(metrics)  # what the engine runs now (publish checks names against it)
            return done
        return self._run(deploy_plan(self.config, metrics), progress, metrics)

    def undeploy(self, drop_streams: bool = False, drop_data: bool = False, progress=None) -> list[str]:
        """Unsubscribe and drop engines (and optionally stream tables, DFS databases)."""
        return self._run(undeploy_plan(self.config, self._metrics(), drop_streams, drop_data), progress)

    def status(self) -> dict[str, list[str]]:
        """Which of the deployment's objects exist on the server now."""
        p = self.config.prefix
        streams, engines, dbs = self.session.run(status_script(self.config))
        names = [f"dfs://{p}_{x}" for x in ("ticks", "bars_1m", "bars_1d", "factors", "signals")]
        return {"stream tables": sorted(map(str, streams)), "engines": sorted(map(str, engines)),
                "databases": [n for n, ok in zip(names, dbs) if ok]}

    def migrate(self, tables: tuple[str, ...] | None = None, progress=None) -> tuple[tuple[str, ...], str]:
        """Copy the databases created with an older partition layout into the current one.

        Without ``tables``, the preflight's layout checks pick the databases to migrate
        (those that exist with another layout). Run it with the pipeline undeployed; returns
        the databases migrated and the script that ran (nothing runs when none differ).
        """
        if tables is None:
            report = self.preflight()
            tables = tuple(_table_of(c.name, self.config.prefix)
                           for c in report.checks if c.name.startswith("layout ") and c.ok is False)
        if not tables:
            return (), ""
        script = migration_script(self.config, tuple(tables))
        problems = signature_problems([RenderedScript("migrate", script)])
        if problems:
            raise DeployCheckError("migration script failed its checks:\n  " + "\n  ".join(problems))
        if progress is not None:
            progress(f"migrating {', '.join(tables)}")
        self.session.run(script)
        return tuple(tables), script

    def publish(self, new: list[FactorMetric]) -> str:
        """Add factors to the running factor engine; returns the script that ran.

        The engine computes a published factor from the next bar on (its state warms up
        over the factor's look-back); ``deploy`` after a restart renders it with the rest.
        """
        known = {m.name for m in self._metrics()}
        clash = sorted(m.name for m in new if m.name in known)
        if clash:
            raise ValueError(f"factor(s) {clash} already run in the engine; publish a new name or version")
        script = render_publish(self.config, new)
        problems = signature_problems([RenderedScript("publish", script)])
        if problems:
            raise DeployCheckError("publish script failed its checks:\n  " + "\n  ".join(problems))
        self.session.run(script)
        self.metrics = self._metrics() + list(new)
        return script


def _table_of(check_name: str, prefix: str) -> str:
    """``"layout dfs://pp_bars_1m"`` -> ``"bars_1m"``."""
    return check_name.removeprefix("layout ").removeprefix(f"dfs://{prefix}_")
