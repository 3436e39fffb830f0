"""Render ``dolphindb_scripts/*.dos`` templates into runnable DolphinDB scripts.

Templates are plain DolphinDB with ``{{ name }}`` placeholders (DolphinDB itself never
uses double braces). Every value put into a script is validated first: names must be
identifiers, numbers positive, paths free of quotes, and factor metrics must come from
the factor language's DolphinDB compiler and use only functions the reactive state
engine documents and only bar columns. Nothing user-typed reaches a script unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyplatform.dolphindb import schema
from pyplatform.dolphindb.dos_parse import parse_calls, tokenize
from pyplatform.dolphindb.signatures import ENGINE_FUNCTIONS

__all__ = [
    "DeployConfig", "FactorMetric", "RenderedScript", "SCRIPTS_DIR", "DEPLOY_ORDER",
    "UNDEPLOY_ORDER", "DROP_STREAMS", "DROP_DATA", "render_text", "render_scripts",
    "render_publish", "validate_metric", "library_metrics", "deploy_order", "metacode_problems",
]

SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "dolphindb_scripts"
DEPLOY_ORDER = ("00_helpers", "10_databases", "20_stream_tables", "30_bar_engines",
                "40_factor_engine", "45_tick_factor_engine", "50_subscriptions")
UNDEPLOY_ORDER = ("00_helpers", "90_teardown_subscriptions", "91_teardown_engines")
DROP_STREAMS = "92_teardown_stream_tables"
DROP_DATA = "93_teardown_databases"

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_SESSION = re.compile(r"\d\d:\d\d:\d\d")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
BAR_COLUMNS = frozenset(schema.columns("bars"))
TICK_COLUMNS = frozenset(schema.columns("ticks"))
INPUT_COLUMNS = {"bars": BAR_COLUMNS, "ticks": TICK_COLUMNS}
_METRIC_CONSTANTS = frozenset({"true", "false", "NULL"})
_METRIC_STRINGS = frozenset({"min", "max", "average", "first", "dense"})  # mrank tiesMethod values


@dataclass(frozen=True)
class DeployConfig:
    """What the deploy scripts are rendered with (defaults suit a single node).

    Parameters
    ----------
    prefix : str
        Prefix of every deployed object (stream tables ``{prefix}_ticks``, DFS databases
        ``dfs://{prefix}_ticks``, engines, actions and helper functions).
    time_type : {"TIMESTAMP", "NANOTIMESTAMP"}
        DolphinDB type of ``ts``. TIMESTAMP (ms) is what the engine documentation uses.
    tick_hash_buckets, bar_hash_buckets, factor_hash_buckets : int
        HASH partitions by symbol of the tick, 1-minute bar and factor databases.
    first_day : date
        First VALUE partition of the daily-partitioned databases (more are added as data
        arrives when the server runs with ``newValuePartitionPolicy=add``).
    first_month, last_month : str
        ``YYYY.MM`` range of the monthly VALUE partitions created up front (1-minute bars,
        signals); later months are added as data arrives (``newValuePartitionPolicy=add``).
    daily_first_year, daily_last_year : int
        Years covered by the daily-bar database's yearly RANGE partitions (issue 15 item 12:
        a month of daily bars is ~7 MB for 5,000 symbols, a year ~81 MB). RANGE partitions
        are fixed: rows outside ``[daily_first_year, daily_last_year + 1)`` are not written
        (``addRangePartitions`` extends them), so the default spans 1970-2099.
    tick_cache_size, cache_size : int
        Rows kept in memory by the tick stream table and by the others.
    retention_minutes : int
        How long full (1 GB) stream-table log files are kept.
    pre_cache : int
        Rows reloaded into memory from the log when a stream table is re-shared after a
        restart.
    snapshot_dir : str
        Directory on the server for engine snapshots (must exist).
    snapshot_interval : int
        Messages between engine snapshots.
    dfs_batch_size : int
        Rows per batch written by the stream -> DFS subscriptions.
    dfs_throttle : float
        Seconds after which a partial batch is written anyway.
    sessions : tuple of (begin, end)
        Trading sessions ``("14:30:00", "21:00:00")`` IN UTC (``ts`` is UTC); when given,
        the 1-minute bar engine is ``createDailyTimeSeriesEngine`` restricted to them.
    bar_accepted_delay_ms : int
        ``acceptedDelay`` of the 1-minute bar engine (0: not set), the embedded
        ``BarEngine(accepted_delay=...)``: ticks up to this late still count in their window.
        Exclusive with ``bar_force_trigger_ms`` (documented for ``createTimeSeriesEngine``).
    bar_force_trigger_ms : int
        ``forceTriggerTime`` of the 1-minute bar engine (0: not set): a quiet symbol's window
        is closed once other symbols' ticks are this far past its end (the embedded engine's
        ``on_clock`` driven by event time).
    daily_bar_close_after_ms : int
        ``forceTriggerSessionEndTime`` of the daily bar engine (0: not set). The daily
        engine has one session per UTC day, ``00:00:00`` to ``00:00:00`` (next midnight,
        documented), so its one window per day is ``[midnight, next midnight)``; this
        closes a day's bar this long after the day ends instead of waiting for the
        symbol's first 1-minute bar of a later day. Leave time for the day's last
        1-minute bars: they are emitted only when a later tick of that symbol (or
        ``forceTriggerTime``) closes them, and rows that arrive after the day's window was
        computed are discarded by the engine.
    session_timezone : str
        Must be ``"UTC"`` when ``sessions`` are given: the engine compares
        ``sessionBegin``/``sessionEnd`` with ``ts`` as it is, with no time zone and no DST,
        so exchange-local hours (09:30 New York) would silently select the wrong hours.
    narrow_snapshots : bool
        Give the narrow reactive state engines ``snapshotDir`` (off by default: the 3.00.1
        manual does not list it for ``createNarrowReactiveStateEngine``; turn it on only for
        a server whose manual does). Without snapshots a restarted factor engine subscribes
        from new bars (``offset=-1``).
    """

    prefix: str = "pp"
    time_type: schema.TimeType = "TIMESTAMP"
    tick_hash_buckets: int = 50
    bar_hash_buckets: int = 10
    factor_hash_buckets: int = 10
    first_day: date = date(2020, 1, 1)
    first_month: str = "2000.01"
    last_month: str = "2040.12"
    daily_first_year: int = 1970
    daily_last_year: int = 2099
    tick_cache_size: int = 1_000_000
    cache_size: int = 100_000
    retention_minutes: int = 1440
    pre_cache: int = 100_000
    snapshot_dir: str = "/home/dolphindb/pyplatform/snapshots"
    snapshot_interval: int = 10_000
    dfs_batch_size: int = 10_000
    dfs_throttle: float = 1.0
    sessions: tuple[tuple[str, str], ...] = field(default=())
    narrow_snapshots: bool = False
    session_timezone: str = ""
    bar_accepted_delay_ms: int = 0
    bar_force_trigger_ms: int = 0
    daily_bar_close_after_ms: int = 60_000

    def __post_init__(self) -> None:
        if not _IDENT.fullmatch(self.prefix):
            raise ValueError(f"DeployConfig.prefix must be an identifier, got {self.prefix!r}")
        if self.time_type not in ("TIMESTAMP", "NANOTIMESTAMP"):
            raise ValueError(f"DeployConfig.time_type must be TIMESTAMP or NANOTIMESTAMP, got {self.time_type!r}")
        for name in ("tick_hash_buckets", "bar_hash_buckets", "factor_hash_buckets", "tick_cache_size",
                     "cache_size", "retention_minutes", "pre_cache", "snapshot_interval", "dfs_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"DeployConfig.{name} must be a positive integer, got {value!r}")
        for name in ("bar_accepted_delay_ms", "bar_force_trigger_ms", "daily_bar_close_after_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"DeployConfig.{name} must be an integer >= 0, got {value!r}")
        if self.bar_accepted_delay_ms and self.bar_force_trigger_ms:
            # createTimeSeriesEngine, acceptedDelay: "if it is set, forceTriggerTime and
            # updateTime cannot be set" -- the server would refuse the engine at deploy
            raise ValueError("DeployConfig.bar_accepted_delay_ms and bar_force_trigger_ms cannot both be set: "
                             "createTimeSeriesEngine does not accept acceptedDelay together with forceTriggerTime")
        for name in ("daily_first_year", "daily_last_year"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1900 <= value <= 2200:
                raise ValueError(f"DeployConfig.{name} must be a year between 1900 and 2200, got {value!r}")
        if self.daily_first_year > self.daily_last_year:
            raise ValueError("DeployConfig.daily_first_year must not be after daily_last_year, got "
                             f"{self.daily_first_year} > {self.daily_last_year}")
        if not self.dfs_throttle > 0:
            raise ValueError(f"DeployConfig.dfs_throttle must be > 0 seconds, got {self.dfs_throttle!r}")
        for name in ("first_month", "last_month"):
            if not re.fullmatch(r"\d{4}\.(0[1-9]|1[0-2])", getattr(self, name)):
                raise ValueError(f"DeployConfig.{name} must look like 2020.01, got {getattr(self, name)!r}")
        if not re.fullmatch(r"[A-Za-z0-9_./:\\ -]+", self.snapshot_dir):
            raise ValueError(f"DeployConfig.snapshot_dir has characters not allowed in a path: {self.snapshot_dir!r}")
        for i, pair in enumerate(self.sessions):
            if len(pair) != 2 or not all(_SESSION.fullmatch(t) for t in pair) or pair[0] >= pair[1]:
                raise ValueError(f"DeployConfig.sessions[{i}] must be ('HH:MM:SS', 'HH:MM:SS') with begin < end, got {pair!r}")
        if self.sessions and self.session_timezone != "UTC":
            raise ValueError("DeployConfig.sessions are compared with ts, which is UTC, with no DST: give them in "
                             "UTC and say so with session_timezone='UTC' (--session-tz UTC); exchange-local "
                             f"sessions are not supported (got session_timezone={self.session_timezone!r})")

    @property
    def unit_per_ms(self) -> int:
        return 1 if self.time_type == "TIMESTAMP" else 1_000_000


@dataclass(frozen=True)
class FactorMetric:
    """A factor as an engine computes it: ``name``, its DolphinDB metacode body and the
    stream it reads (``bars``: the factor engine; ``ticks``: the tick factor engine)."""

    name: str
    dolphindb: str
    input: str = "bars"

    def __post_init__(self) -> None:
        if self.input not in INPUT_COLUMNS:
            raise ValueError(f"factor {self.name}: input must be 'bars' or 'ticks', got {self.input!r}")
        validate_metric(self.name, self.dolphindb, self.input)


@dataclass(frozen=True)
class RenderedScript:
    """One rendered script: ``name`` (file stem, e.g. ``10_databases``) and its text."""

    name: str
    text: str


def validate_metric(name: str, text: str, input: str = "bars") -> None:
    """Reject a factor metric that the engine could not run or that is not plain metacode.

    Raises
    ------
    ValueError
        Naming the factor and the offending function, column or token.
    """
    if not _IDENT.fullmatch(name or ""):
        raise ValueError(f"factor name must be an identifier (letters, digits, _), got {name!r}")
    tokens = tokenize(text, f"factor {name}")
    if not tokens:
        raise ValueError(f"factor {name}: empty DolphinDB expression")
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.kind == "symbol" or (tok.kind == "string" and tok.text.strip("'\"") not in _METRIC_STRINGS):
            raise ValueError(f"factor {name}: literal {tok.text!r} is not allowed in metrics")
        if tok.kind == "op":
            if tok.text in ("(", "["):
                depth += 1
            elif tok.text in (")", "]"):
                depth -= 1
            elif tok.text in ("<", ">", "<=", ">=") and not (
                    i >= 2 and tokens[i - 1].text == "(" and tokens[i - 2].text == "nullCompare"):
                # a bare < or > could close the metacode brackets <...> the metric sits in;
                # the factor compiler only emits them as nullCompare's operator argument
                raise ValueError(f"factor {name}: {tok.text!r} at column {tok.pos} outside nullCompare(op, ...)")
            elif tok.text in ("==", "!=") and i >= 2 and tokens[i - 2].text == "nullCompare":
                # nullCompare documents func as <, >, >=, <= (or between, in) only
                raise ValueError(f"factor {name}: nullCompare({tok.text}, ...) is not documented "
                                 "(func must be <, >, >= or <=)")
            elif tok.text == "-" and i >= 1 and tokens[i - 1].text == "-":
                # "--x" is not -(-x) in DolphinDB; the factor compiler writes -(-x)
                raise ValueError(f"factor {name}: '--' at column {tokens[i - 1].pos} (write -(-x))")
            elif tok.text in (";", "{", "}", "=", "<-", "@", "$", "?", ":", "..", "."):
                raise ValueError(f"factor {name}: token {tok.text!r} at column {tok.pos} is not allowed in a metric")
            continue
        if tok.kind == "ident":
            is_call = i + 1 < len(tokens) and tokens[i + 1].text == "("
            if is_call and tok.text not in ENGINE_FUNCTIONS:
                raise ValueError(f"factor {name}: function {tok.text!r} is not a documented reactive-state-engine function")
            columns = INPUT_COLUMNS[input]
            if not is_call and tok.text not in columns and tok.text not in _METRIC_CONSTANTS:
                raise ValueError(f"factor {name}: {tok.text!r} is not a column of {input} {sorted(columns)}")
    if depth != 0:
        raise ValueError(f"factor {name}: unbalanced brackets in {text!r}")
    problems = metacode_problems(text)
    if problems:
        raise ValueError(f"factor {name}: {problems[0]}")


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch in "([" and 1 or (-1 if ch in ")]" else 0)
        if depth < 0:
            return False
    return depth == 0


def _unwrap(text: str) -> str:
    t = text.strip()
    while t.startswith("(") and t.endswith(")") and _balanced(t[1:-1]):
        t = t[1:-1].strip()
    return t


def _null_operands(cond: str) -> list[str] | None:
    """``[A, B]`` when ``cond`` is exactly ``isNull(A) || isNull(B)`` (or ``[A]`` for ``isNull(A)``)."""
    def one(part: str) -> str | None:
        part = part.strip()
        if part.startswith("isNull(") and part.endswith(")") and _balanced(part[7:-1]):
            return part[7:-1]
        return None
    if one(cond) is not None:
        return [one(cond)]
    for i in range(len(cond)):
        if cond.startswith(" || ", i):
            a, b = one(cond[:i]), one(cond[i + 4:])
            if a is not None and b is not None:
                return [a, b]
    return None


def _is_guard(call, null: str) -> list[str] | None:
    """Operands of an explicit NULL guard ``iif(isNull(A) [|| isNull(B)], <null>, body)``."""
    if call.name != "iif" or len(call.args) != 3 or call.args[1].text.strip() != null:
        return None
    return _null_operands(call.args[0].text)


def metacode_problems(text: str) -> list[str]:
    """Metacode forms whose meaning on the server differs from the factor language's.

    Each rule follows a documentation page (docs/dolphindb.md, "metacode"): ``nullCompare``
    takes only ``< > <= >=``; ``||``/``&&``/``not`` and binary ``max``/``min`` must sit in an
    explicit NULL guard ``iif(isNull(a) || isNull(b), 00b|00F, ...)`` (``or`` ignores NULL
    under ``logicOrIgnoreNull=true``, ``max`` treats NULL as the minimum); ``iif`` branches
    must both be DOUBLE (no integer literals, no bare INT/CHAR column); no ``--``; no
    ``0 * move(...)`` alignment trick.
    """
    problems: list[str] = []
    calls = parse_calls(text, "metric")
    guards = []  # (call text, operands, body)
    for c in calls:
        if c.name == "nullCompare" and c.args and c.args[0].text.strip() in ("==", "!="):
            problems.append(f"nullCompare({c.args[0].text.strip()}, ...) is not documented")
        if c.name == "iif" and len(c.args) == 3:
            for a in c.args[1:]:
                t = a.text.strip()
                if re.fullmatch(r"-?\d+", t) or t in ("trades", "side"):
                    problems.append(f"iif branch {t!r} is not DOUBLE (iif needs both branches of one type)")
        for null in ("00b", "00F"):
            ops = _is_guard(c, null)
            if ops:
                guards.append((c.text, ops, c.args[2].text.strip()))
    guarded_bodies = {(tuple(ops), _unwrap(body.removeprefix("double(").removesuffix(")")
                                          if body.startswith("double(") else body)) for _, ops, body in guards}
    for c in calls:
        if c.name in ("max", "min") and len(c.args) == 2:
            key = (tuple(a.text.strip() for a in c.args), c.text)
            if key not in guarded_bodies:
                problems.append(f"binary {c.name}({c.args[0].text}, {c.args[1].text}) without a NULL guard "
                                "(DolphinDB's max/min treat NULL as the smallest value)")
    # logic operators: strip every well-formed guard (checking its operands recursively);
    # whatever ||, && or not( is left has DolphinDB's own NULL rules
    stripped = text
    for gtext, ops, body in sorted(guards, key=lambda g: -len(g[0])):
        if gtext not in stripped:
            continue
        for o in ops:  # the guarded operands must be clean themselves
            problems += [p for p in metacode_problems(o) if p.startswith("logical")]
        stripped = stripped.replace(gtext, "G")
    stripped = re.sub(r"isNull\(", "N(", stripped)
    if re.search(r"\|\||&&|\bnot\(", stripped):
        problems.append("logical operator without an explicit NULL guard (or ignores NULL operands "
                        "under logicOrIgnoreNull=true)")
    if re.search(r"-\s*-", text):
        problems.append("'--' is not -(-x)")
    if re.search(r"\b0 \* move\(", text):
        problems.append("'x + 0 * move(x, k)' alignment trick (skip the first k inputs with iif(nullCompare(>, cumcount(x), k), x, 00F))")
    return list(dict.fromkeys(problems))


def _input_of(name: str, columns: set[str]) -> str:
    for kind in ("bars", "ticks"):
        if columns <= INPUT_COLUMNS[kind]:
            return kind
    raise ValueError(f"factor {name}: columns {sorted(columns)} are neither all bar nor all tick columns")


def library_metrics(settings=None) -> list[FactorMetric]:
    """Metrics for the built-in library, then the active published expression factors in
    publication order (the order ``addReactiveMetrics`` appended them to a running engine).

    Model factors (ONNX) are not expressions and run in the Python engine only.
    """
    from pyplatform import factors as fl

    out = [FactorMetric(d.name, fl.to_dolphindb(fl.parse(d.expression)), d.input) for d in fl.load_library()]
    known = {m.name for m in out}
    try:
        from pyplatform.registry.factors import FactorRegistry

        active = FactorRegistry.from_settings(settings).active()
    except (ImportError, FileNotFoundError):
        active = {}
    for v in sorted(active.values(), key=lambda v: (v.published_ns, v.name)):
        if v.kind != "expression" or v.name in known:
            continue
        expr = fl.parse(v.expression)
        out.append(FactorMetric(v.name, fl.to_dolphindb(expr), _input_of(v.name, set(expr.columns()))))
    return out


def deploy_order(metrics: list[FactorMetric]) -> tuple[str, ...]:
    """:data:`DEPLOY_ORDER` without the factor-engine file of an input that has no factors."""
    inputs = {m.input for m in metrics}
    skip = ({"40_factor_engine"} if "bars" not in inputs else set()) | \
        ({"45_tick_factor_engine"} if "ticks" not in inputs else set())
    return tuple(n for n in DEPLOY_ORDER if n not in skip)


def _ms_literal(hms: str, time_type: str) -> str:
    return hms + (".000" if time_type == "TIMESTAMP" else ".000000000")


def context(config: DeployConfig, metrics: list[FactorMetric]) -> dict[str, str]:
    """Placeholder values for ``config`` and ``metrics``."""
    if not metrics:
        raise ValueError("no factors to deploy: the factor engine needs at least one metric")
    dup = {m.name for m in metrics if [x.name for x in metrics].count(m.name) > 1}
    if dup:
        raise ValueError(f"factor names must be unique, duplicated: {sorted(dup)}")
    c = config
    bars = [m for m in metrics if m.input == "bars"]
    ticks = [m for m in metrics if m.input == "ticks"]
    ctx: dict[str, str] = {
        "p": c.prefix,
        "time_type": c.time_type,
        "tick_hash_buckets": str(c.tick_hash_buckets),
        "bar_hash_buckets": str(c.bar_hash_buckets),
        "factor_hash_buckets": str(c.factor_hash_buckets),
        "first_day": c.first_day.strftime("%Y.%m.%d"),
        "first_day_plus_1": date.fromordinal(c.first_day.toordinal() + 1).strftime("%Y.%m.%d"),
        "first_month": c.first_month + "M",
        "last_month": c.last_month + "M",
        # yearly RANGE boundaries of the daily bars: daily_first_year.01M + (0..n) * 12
        "daily_first_year": str(c.daily_first_year),
        "daily_years": str(c.daily_last_year - c.daily_first_year + 1),
        "daily_end_year": str(c.daily_last_year + 1),
        "tick_cache_size": str(c.tick_cache_size),
        "cache_size": str(c.cache_size),
        "retention_minutes": str(c.retention_minutes),
        "pre_cache": str(c.pre_cache),
        "snapshot_dir": c.snapshot_dir,
        "snapshot_interval": str(c.snapshot_interval),
        "dfs_batch_size": str(c.dfs_batch_size),
        "dfs_throttle": repr(float(c.dfs_throttle)),
        # a millisecond key would merge ticks of one millisecond (issue 15, item 9)
        "tick_keep_duplicates": "ALL" if c.time_type == "TIMESTAMP" else "LAST",
        "remove_offsets": "false",
        "minute": str(60_000 * c.unit_per_ms),
        "day": str(86_400_000 * c.unit_per_ms),
    }
    for key, group in (("factor", bars), ("tick_factor", ticks)):
        if group:  # without factors of an input its engine file is not rendered (deploy_order)
            engine = f'getStreamEngine("{c.prefix}_{key}_engine")'
            if c.narrow_snapshots:
                ctx[f"{key}_snapshot_args"] = (f', snapshotDir="{c.snapshot_dir}", '
                                               f"snapshotIntervalInMsgCount={c.snapshot_interval}")
                ctx[f"{key}_offset"] = f"iif(getSnapshotMsgId({engine}) >= 0, getSnapshotMsgId({engine}) + 1, -1)"
            else:
                ctx[f"{key}_snapshot_args"] = ""
                ctx[f"{key}_offset"] = "-1"
            ctx[f"{key}_count"] = str(len(group))
            ctx[f"{key}_metrics"] = ", ".join(f"<{m.dolphindb}>" for m in group)
            ctx[f"{key}_names"] = "[" + ", ".join(f'"{m.name}"' for m in group) + "]"
    extra = ""
    if c.bar_accepted_delay_ms:
        extra += f", acceptedDelay={c.bar_accepted_delay_ms * c.unit_per_ms}"
    if c.bar_force_trigger_ms:
        extra += f", forceTriggerTime={c.bar_force_trigger_ms * c.unit_per_ms}"
    ctx["bar_extra_args"] = extra
    # Daily bars (issue 15, item 5): createTimeSeriesEngine with a one-day step aligns its
    # first window to the hour (roundTime: steps over 30 min align to 3,600,000 ms), so
    # the daily engine is used with ONE session per UTC day, 00:00:00 -> 00:00:00 ("00:00:00
    # in sessionEnd is the next day's midnight"): its window is the calendar day. The
    # session literals must have the time column's precision (TIME for TIMESTAMP, NANOTIME
    # for NANOTIMESTAMP). mergeSessionEnd=false: a row stamped exactly at the next midnight
    # belongs to the next day and only triggers this day's window.
    midnight = _ms_literal("00:00:00", c.time_type)
    day_args = f", sessionBegin={midnight}, sessionEnd={midnight}, mergeSessionEnd=false"
    if c.daily_bar_close_after_ms:
        day_args += f", forceTriggerSessionEndTime={c.daily_bar_close_after_ms * c.unit_per_ms}"
    ctx["day_session_args"] = day_args
    if c.sessions:
        begins = [_ms_literal(b, c.time_type) for b, _ in c.sessions]
        ends = [_ms_literal(e, c.time_type) for _, e in c.sessions]
        vec = (lambda xs: xs[0] if len(xs) == 1 else "[" + ", ".join(xs) + "]")
        ctx["bar_engine_function"] = "createDailyTimeSeriesEngine"
        ctx["bar_session_args"] = f", sessionBegin={vec(begins)}, sessionEnd={vec(ends)}"
    else:
        ctx["bar_engine_function"] = "createTimeSeriesEngine"
        ctx["bar_session_args"] = ""
    for key in schema.TABLES:
        ctx[f"{key}_names"] = schema.dolphin_names(key)
        ctx[f"{key}_types"] = schema.dolphin_types(key, c.time_type)
    return ctx


def render_text(template: str, values: dict[str, str], source: str = "<template>") -> str:
    """Replace every ``{{ name }}`` in ``template``; an unknown name is an error."""
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            line = template.count("\n", 0, m.start()) + 1
            raise KeyError(f"{source}:{line}: no value for placeholder {{{{{key}}}}}")
        return values[key]
    return _PLACEHOLDER.sub(sub, template)


def render_scripts(config: DeployConfig | None = None, metrics: list[FactorMetric] | None = None,
                   names: tuple[str, ...] | None = None,
                   scripts_dir: Path = SCRIPTS_DIR, extra: dict[str, str] | None = None) -> list[RenderedScript]:
    """Render the named templates (default: all, in file-name order).

    Parameters
    ----------
    config : DeployConfig, optional
        Defaults to ``DeployConfig()``.
    metrics : list of FactorMetric, optional
        Factor metrics; defaults to :func:`library_metrics`.
    names : tuple of str, optional
        Template stems to render, in order (e.g. :data:`DEPLOY_ORDER`).
    extra : dict, optional
        Placeholder values of one run (``remove_offsets`` for ``undeploy --drop-streams``).
    """
    config = config or DeployConfig()
    metrics = library_metrics() if metrics is None else metrics
    values = context(config, metrics)
    values.update({k: v for k, v in (extra or {}).items() if k in ("remove_offsets",) and v in ("true", "false")})
    stems = names or tuple(sorted(p.stem for p in scripts_dir.glob("*.dos")
                                  if p.stem in deploy_order(metrics) or p.stem not in DEPLOY_ORDER))
    out = []
    for stem in stems:
        path = scripts_dir / f"{stem}.dos"
        if not path.exists():
            raise FileNotFoundError(f"no template {path}")
        header = f"// rendered by pyplatform from dolphindb_scripts/{stem}.dos -- edit the template, not this file\n"
        out.append(RenderedScript(stem, header + render_text(path.read_text(), values, str(path))))
    return out


def render_publish(config: DeployConfig, metrics: list[FactorMetric]) -> str:
    """Script that adds ``metrics`` to the running factor engine of their input
    (``addReactiveMetrics``; one call per engine)."""
    if not metrics:
        raise ValueError("nothing to publish: no metrics given")
    lines = []
    for input_, engine in (("bars", "factor_engine"), ("ticks", "tick_factor_engine")):
        group = [m for m in metrics if m.input == input_]
        if group:
            names = ", ".join(f'"{m.name}"' for m in group)
            bodies = ", ".join(f"<{m.dolphindb}>" for m in group)
            lines.append(f'addReactiveMetrics(name="{config.prefix}_{engine}", metricNames=[{names}], '
                         f"metrics=[{bodies}])\n")
    return "".join(lines)
