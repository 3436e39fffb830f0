"""Checks a DolphinDB node against what the deployment needs, BEFORE anything is created.

``deploy`` runs :func:`run_preflight` first and ``pyplatform dolphindb status`` shows its
report. One read-only script asks the node for ``version()`` and the configuration values
the pipeline depends on (``getConfig(key)``: persistenceDir, newValuePartitionPolicy,
maxPartitionNumPerQuery, logicOrIgnoreNull), whether the snapshot directory exists, and
what the logged-in user may do. The answers are judged in Python:

* a failed precondition (no ``persistenceDir``, ``newValuePartitionPolicy`` other than
  ``add``, a server older than the supported minimum, a user without the rights to create
  databases) stops the deploy with the setting to change;
* a feature the server's version does not document gets its fallback, reported: factors
  using ``wilder`` are left out of the reactive engines below 3.00, and the narrow reactive
  state engines run without snapshots (the 3.00.1 manual does not list ``snapshotDir``);
* the snapshot directory is created when absent (:func:`snapshot_dir_script`), after the
  checks passed -- the bar engines refuse a directory that does not exist;
* a DFS database that already exists with another partition layout than the one
  ``10_databases.dos`` creates (``schema(loadTable(...))``: partition types and the type of
  the time level, :mod:`pyplatform.dolphindb.layout`) stops the deploy: the create is
  guarded by ``existsDatabase``, so the old layout would silently stay; the fix names
  ``pyplatform dolphindb migrate``.

Version minimums come from the function reference pages named next to each feature;
where no page states one it says so (docs/dolphindb.md, "unconfirmed").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyplatform.dolphindb.layout import judge_layouts, layout_probe_lines
from pyplatform.dolphindb.render import DeployConfig, FactorMetric

__all__ = ["PreflightError", "PreflightReport", "Check", "FEATURES", "MINIMUM_VERSION", "preflight_script",
           "judge", "run_preflight", "snapshot_dir_script", "parse_version"]

# The oldest server the scripts are written for: the 2.00.12 / 3.00.1 manuals are the ones
# every call was checked against (createNarrowReactiveStateEngine, addReactiveMetrics,
# existsSubscriptionTopic 1.30.16/2.00.4, createPartitionedTable keepDuplicates).
MINIMUM_VERSION = (2, 0, 12)

# feature -> (minimum version or None when no manual documents it, where it is documented, fallback)
FEATURES: dict[str, tuple[tuple[int, ...] | None, str, str]] = {
    "wilder in reactive state engines": (
        (3, 0, 0), "createReactiveStateEngine state-function list (3.00 zh manual; absent from 2.00.12 and the en page)",
        "factors using wilder (rsi, atr, natr) are left out of the engines"),
    "snapshots on createNarrowReactiveStateEngine": (
        None, "the 3.00.1 createNarrowReactiveStateEngine page says snapshotDir is not supported "
              "('暂不支持指定 snapshotDir, snapshotIntervalInMsgCount 和 raftGroup'); the current zh page documents "
              "it; the first version that does is not stated",
        "narrow engines run without snapshotDir; after a restart they start from new bars"),
}

_KEYS = ("persistenceDir", "newValuePartitionPolicy", "maxPartitionNumPerQuery", "logicOrIgnoreNull")


class PreflightError(RuntimeError):
    """A precondition failed; nothing was created. ``report`` has every check."""

    def __init__(self, report: "PreflightReport"):
        self.report = report
        bad = [c for c in report.checks if c.ok is False]
        super().__init__("preflight failed, nothing was created:\n  " +
                         "\n  ".join(f"{c.name}: {c.value!r} -- {c.fix}" for c in bad))


@dataclass(frozen=True)
class Check:
    """One judged fact: ``ok`` True, False (blocks deploy) or None (information only)."""

    name: str
    value: object
    ok: bool | None
    need: str = ""
    fix: str = ""


@dataclass
class PreflightReport:
    facts: dict
    checks: list[Check] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    version: tuple[int, ...] = ()
    metrics: list[FactorMetric] | None = None  # what the engines will run (after fallbacks)
    narrow_snapshots: bool = False

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)

    def lines(self) -> list[str]:
        mark = {True: "ok  ", False: "FAIL", None: "info"}
        out = [f"{mark[c.ok]} {c.name}: {c.value!r}" + (f" (need {c.need})" if c.need else "")
               + (f" -- {c.fix}" if c.ok is False and c.fix else "") for c in self.checks]
        out += [f"fallback: {f}" for f in self.fallbacks]
        return out


def parse_version(text: str) -> tuple[int, ...]:
    """``"3.00.1.2 2024.06.30 LINUX x86_64"`` -> ``(3, 0, 1, 2)``."""
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise ValueError(f"cannot read a server version from {text!r}")
    return tuple(int(g) for g in m.groups() if g is not None)


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(f"{x:02d}" if i == 1 else str(x) for i, x in enumerate(v))


def preflight_script(config: DeployConfig) -> str:
    """A read-only script returning a dictionary of facts about the node (nothing is created)."""
    lines = ["ppPf = dict(STRING, ANY)", 'ppPf["version"] = version()']
    for key in _KEYS:
        # getConfig(key): the value, or NULL when key is not a parameter (getConfig page)
        lines.append(f'try {{ ppPf["{key}"] = string(getConfig("{key}")) }} catch(ex) {{ ppPf["{key}"] = "" }}')
    lines.append(f'ppPf["snapshotDirExists"] = exists("{config.snapshot_dir}")')
    # getUserAccess(): the logged-in user's permissions; admin sees everyone's, a user its own
    lines.append('try { ppPf["isAdmin"] = bool(exec first(isAdmin) from getUserAccess()) } '
                 'catch(ex) { ppPf["isAdmin"] = false }')
    # getUserAccess() without userIds: the current user's rights (current en page), but the
    # 2.00.11 zh page says only administrators may call it -- a refusal is "unreadable", not "none"
    lines.append('try { ppPf["dbOwner"] = string(exec first(DB_OWNER) from getUserAccess()) } '
                 'catch(ex) { ppPf["dbOwner"] = "unreadable" }')
    # partition layout of the databases that exist already (schema page; read-only)
    lines += layout_probe_lines(config)
    lines.append("ppPf")
    return "\n".join(lines) + "\n"


def judge(facts: dict, config: DeployConfig, metrics: list[FactorMetric] | None = None) -> PreflightReport:
    """Turn the node's answers into checks, fallbacks and the metrics the engines will run."""
    report = PreflightReport(dict(facts))
    try:
        version = parse_version(facts.get("version", ""))
    except ValueError as exc:
        report.checks.append(Check("version()", facts.get("version"), False, _fmt(MINIMUM_VERSION), str(exc)))
        return report
    report.version = version
    report.checks.append(Check("version()", ".".join(map(str, version)), version >= MINIMUM_VERSION,
                               f">= {_fmt(MINIMUM_VERSION)}", "upgrade the server: the scripts use "
                               "createNarrowReactiveStateEngine/addReactiveMetrics as documented from that manual on"))
    pdir = str(facts.get("persistenceDir") or "")
    report.checks.append(Check("persistenceDir", pdir, bool(pdir), "a directory",
                               "set persistenceDir=/data/ddb/streams in dolphindb.cfg (cluster.cfg for data nodes) "
                               "and restart: enableTableShareAndPersistence needs it"))
    policy = str(facts.get("newValuePartitionPolicy") or "")
    report.checks.append(Check("newValuePartitionPolicy", policy, policy == "add", "add",
                               "set newValuePartitionPolicy=add and restart: with the default 'skip' rows of a new "
                               "day are silently dropped from the daily VALUE partitions"))
    mpq = str(facts.get("maxPartitionNumPerQuery") or "")
    report.checks.append(Check("maxPartitionNumPerQuery", mpq or "(default 65536)", None,
                               "", "undated reads are bounded by the store; raise it for very long tick histories"))
    report.checks.append(Check("logicOrIgnoreNull", str(facts.get("logicOrIgnoreNull") or "(default true)"), None))
    report.checks.append(Check(f"snapshot directory {config.snapshot_dir}",
                               "exists" if facts.get("snapshotDirExists") else "absent (will be created)", True))
    admin, owner = bool(facts.get("isAdmin")), str(facts.get("dbOwner") or "")
    if not admin and owner == "unreadable":
        # the server refused getUserAccess to a non-administrator: unknown, so not a blocker;
        # the first create would fail with the server's own permission error
        report.checks.append(Check("user permissions", "not an administrator; getUserAccess refused (admin-only "
                                   "on some versions)", None, "admin or DB_OWNER"))
    else:
        # DB_OWNER is "allow" / "none" / "deny" (getUserAccess page)
        may_create = admin or owner.lower() in ("allow", "true", "1")
        report.checks.append(Check("user permissions", "admin" if admin else (f"DB_OWNER={owner}" if owner else "none"),
                                   may_create, "admin or DB_OWNER",
                                   "log in as admin, or grant(userId, DB_OWNER) so the user can create the databases"))
    for name, value, ok, need, fix in judge_layouts(facts, config):
        report.checks.append(Check(name, value, ok, need, fix))
    # fallbacks for features the version does not document
    usable = list(metrics) if metrics is not None else None
    wmin, _, wfall = FEATURES["wilder in reactive state engines"]
    if version < wmin and usable is not None:
        dropped = [m.name for m in usable if re.search(r"\bwilder\(", m.dolphindb)]
        if dropped:
            usable = [m for m in usable if m.name not in dropped]
            report.fallbacks.append(f"server {'.'.join(map(str, version))} < {_fmt(wmin)}: {wfall}: {dropped}")
    report.metrics = usable
    report.narrow_snapshots = bool(config.narrow_snapshots)
    if not config.narrow_snapshots:
        report.fallbacks.append(FEATURES["snapshots on createNarrowReactiveStateEngine"][2])
    return report


def run_preflight(session, config: DeployConfig, metrics: list[FactorMetric] | None = None) -> PreflightReport:
    """Ask the node (one read-only request) and judge the answers."""
    facts = session.run(preflight_script(config))
    if not isinstance(facts, dict):
        raise RuntimeError(f"preflight: the server answered {type(facts).__name__}, expected a dictionary")
    return judge(facts, config, metrics)


def snapshot_dir_script(config: DeployConfig) -> str:
    """Create the snapshot directory and its parents where absent (``mkdir`` makes one level)."""
    path = config.snapshot_dir.replace("\\", "/").rstrip("/")
    parts = [p for p in path.split("/") if p]
    prefixes = []
    for i in range(1, len(parts) + 1):
        prefix = ("/" if path.startswith("/") else "") + "/".join(parts[:i])
        if re.fullmatch(r"[A-Za-z]:", prefix):  # a Windows drive letter is not a directory to make
            continue
        prefixes.append(prefix)
    return "".join(f'if(!exists("{p}")) {{ mkdir("{p}") }}\n' for p in prefixes)
