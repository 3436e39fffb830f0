"""Documented signatures of every DolphinDB function the platform's scripts call.

No DolphinDB server can be installed where this platform is developed and tested, so the
scripts are checked against this table instead: every call in ``dolphindb_scripts/`` (and
every script the Python side renders) must name a function listed here, pass only
documented keyword parameters, no more positional arguments than documented, and every
required parameter. Each entry records the page it was taken from; the review in
``docs/dolphindb.md`` walks through them one by one.

Notation follows the DolphinDB reference: parameters in square brackets are optional.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Signature", "SIGNATURES", "ENGINE_FUNCTIONS", "SCRIPT_KEYWORDS", "parse_signature",
    "check_call",
]

_DOCS = "https://docs.dolphindb.cn/en/Functions"


@dataclass(frozen=True)
class Signature:
    """One documented function signature.

    Parameters
    ----------
    name : str
        Function name as called in scripts.
    params : tuple of str
        Parameter names in documented order.
    required : frozenset of str
        Parameters that are not optional.
    source : str
        Documentation page the signature was copied from.
    variadic : bool
        True for functions documented with ``X, [X1], ...`` (any number of arguments).
    """

    name: str
    params: tuple[str, ...]
    required: frozenset[str]
    source: str
    variadic: bool = False
    alt_keywords: frozenset[str] = frozenset()


def parse_signature(text: str, source: str) -> Signature:
    """Parse ``name(a, [b=1], c)`` as written in DolphinDB's reference into a Signature.

    Optional parameters are the ones in square brackets; a trailing ``...`` makes the
    signature variadic. ``a|b`` (alternatives sharing one position) keeps the first name
    and accepts both as keywords.
    """
    name, _, rest = text.partition("(")
    body = rest.rsplit(")", 1)[0]
    params: list[str] = []
    required: set[str] = set()
    alts: set[str] = set()
    variadic = False
    for raw in (p.strip() for p in body.split(",")):
        if not raw:
            continue
        if raw == "...":
            variadic = True
            continue
        optional = raw.startswith("[")
        first, *others = (a.strip() for a in raw.strip("[]").split("=", 1)[0].split("|"))
        params.append(first)
        alts.update(others)
        if not optional:
            required.add(first)
    return Signature(name.strip(), tuple(params), frozenset(required), source, variadic, frozenset(alts))


# Signatures copied from the function reference pages (English, newest version unless a
# note says otherwise). Where versions differ, the parameters we use exist in 2.00.10+.
_TABLE = [
    # --- databases and tables ----------------------------------------------------------
    ("database(directory, [partitionType], [partitionScheme], [locations], [engine='OLAP'], "
     "[atomic='TRANS'], [chunkGranularity='TABLE'])", f"{_DOCS}/d/database.html"),
    ("existsDatabase(dbUrl)", f"{_DOCS}/e/existsDatabase.html"),
    ("existsTable(dbUrl, tableName)", f"{_DOCS}/e/existsTable.html"),
    # partitionColumns is required in the newest page and optional in 2.00.10's; we always pass it.
    ("createPartitionedTable(dbHandle, table, tableName, [partitionColumns], [compressMethods], "
     "[sortColumns|primaryKey], [keepDuplicates=ALL], [sortKeyMappingFunction], [softDelete=false], "
     "[indexes], [latestKeyCache=false], [compressHashSortKey=true], [encryptMode='plaintext'])",
     f"{_DOCS}/c/createPartitionedTable.html"),
    ("loadTable(database, tableName, [partitions], [memoryMode=false])", f"{_DOCS}/l/loadTable.html"),
    # dbDir in the current reference; 2.00's page called it ``directory``. The scripts pass it
    # positionally so the call is right under either name.
    ("dropDatabase(dbDir)", f"{_DOCS}/d/dropDatabase.html"),
    ("table(X, [X1], ...)", f"{_DOCS}/t/table.html"),
    # --- stream tables -----------------------------------------------------------------
    ("streamTable(X, [X1], ...)", f"{_DOCS}/s/streamTable.html"),
    ("enableTableShareAndPersistence(table, tableName, [asynWrite=true], [compress=true], [cacheSize], "
     "[retentionMinutes=1440], [flushMode=0], [preCache], [cachePurgeTimeColumn], [cachePurgeInterval], "
     "[cacheRetentionTime])", f"{_DOCS}/e/enableTableShareAndPersistence.html"),
    ("dropStreamTable(tableName)", f"{_DOCS}/d/dropStreamTable.html"),
    ("getPersistenceMeta(table)", f"{_DOCS}/g/getPersistenceMeta.html"),
    ("objByName(name, [sharedVar])", f"{_DOCS}/o/objByName.html"),
    ("objs([shared=false])", f"{_DOCS}/o/objs.html"),
    # --- engines -----------------------------------------------------------------------
    ("createTimeSeriesEngine(name, windowSize, step, metrics, dummyTable, outputTable, [timeColumn], "
     "[useSystemTime=false], [keyColumn], [garbageSize], [updateTime], [useWindowStartTime], "
     "[roundTime=true], [snapshotDir], [snapshotIntervalInMsgCount], [fill='none'], [forceTriggerTime], "
     "[raftGroup], [keyPurgeFreqInSec=-1], [closed='left'], [outputElapsedMicroseconds=false], "
     "[subWindow], [parallelism=1], [acceptedDelay=0], [outputHandler], [msgAsTable=false])",
     f"{_DOCS}/c/createTimeSeriesEngine.html"),
    ("createDailyTimeSeriesEngine(name, windowSize, step, metrics, dummyTable, outputTable, [timeColumn], "
     "[useSystemTime=false], [keyColumn], [garbageSize], [updateTime], [useWindowStartTime], "
     "[roundTime=true], [snapshotDir], [snapshotIntervalInMsgCount], [fill='none'], [sessionBegin], "
     "[sessionEnd], [mergeSessionEnd=false], [forceTriggerTime], [raftGroup], "
     "[forceTriggerSessionEndTime], [keyPurgeFreqInSec=-1], [closed='left'], "
     "[outputElapsedMicroseconds=false], [subWindow], [parallelism=1], [acceptedDelay=0], "
     "[outputHandler], [msgAsTable=false], [keyPurgeDaily=true], [mergeLastWindow=false], [mergeSession])",
     f"{_DOCS}/c/createDailyTimeSeriesEngine.html"),
    ("createNarrowReactiveStateEngine(name, metrics, metricNames, dummyTable, outputTable, keyColumn, "
     "[filter], [snapshotDir], [snapshotIntervalInMsgCount], [keepOrder], [keyPurgeFilter], "
     "[keyPurgeFreqInSecond=0], [raftGroup], [outputElapsedMicroseconds=false], [keyCapacity=1024], "
     "[parallelism=1], [outputHandler], [msgAsTable=false])",
     f"{_DOCS}/c/createNarrowReactiveStateEngine.html"),
    ("addReactiveMetrics(name, metricNames, metrics)", f"{_DOCS}/a/addReactiveMetrics.html"),
    ("getStreamEngine(name)", f"{_DOCS}/g/getStreamEngine.html"),
    ("getStreamEngineList()", f"{_DOCS}/g/getStreamEngineList.html"),
    ("getSnapshotMsgId(engine)", f"{_DOCS}/g/getSnapshotMsgId.html"),
    ("dropStreamEngine(name)", f"{_DOCS}/d/dropStreamEngine.html"),
    # appendMsg has no page of its own in the English reference; its use as
    # ``handler=appendMsg{engine}`` with ``handlerNeedMsgId=true`` is the documented snapshot
    # recipe (createReactiveStateEngine / stream-engine tutorials).
    ("appendMsg(engine, msgBody, msgId)", "https://docs.dolphindb.cn/en/Tutorials/reactive_state_engine.html"),
    # --- subscriptions -----------------------------------------------------------------
    ("subscribeTable([server], tableName, [actionName], [offset=-1], handler, [msgAsTable=false], "
     "[batchSize=0], [throttle=1], [hash=-1], [reconnect=false], [filter], [persistOffset=false], "
     "[timeTrigger=false], [handlerNeedMsgId=false], [raftGroup], [userId], [password], "
     "[udpMulticast=false])", f"{_DOCS}/s/subscribeTable.html"),
    ("unsubscribeTable([server], tableName, [actionName], [removeOffset=true], [raftGroup])",
     f"{_DOCS}/u/unsubscribeTable.html"),
    ("existsSubscriptionTopic([server], tableName, [actionName])", f"{_DOCS}/e/existsSubscriptionTopic.html"),
    # --- small helpers used in scripts and generated SQL --------------------------------
    ("iif(cond, trueResult, falseResult)", f"{_DOCS}/i/iif.html"),
    ("sum(X)", f"{_DOCS}/s/sum.html"),
    ("first(X)", f"{_DOCS}/f/first.html"),
    ("last(X)", f"{_DOCS}/l/last.html"),
    ("max(X, [Y])", f"{_DOCS}/m/max.html"),
    ("min(X, [Y])", f"{_DOCS}/m/min.html"),
    ("count(X)", f"{_DOCS}/c/count.html"),
    ("wavg(X, Y)", f"{_DOCS}/w/wavg.html"),
    ("wsum(X, Y)", f"{_DOCS}/w/wsum.html"),
    ("bar(X, interval, [closed])", f"{_DOCS}/b/bar.html"),
    ("atImax(location, value)", f"{_DOCS}/a/atImax.html"),
    ("atImin(location, value)", f"{_DOCS}/a/atImin.html"),
    ("isNull(X)", f"{_DOCS}/i/isNull.html"),
    ("aj(leftTable, rightTable, matchingCols, [rightMatchingCols])", f"{_DOCS}/a/aj.html"),
    # --- functions the factor language's DolphinDB runtime emits inside engine metrics ----
    ("mavg(X, window, [minPeriods])", f"{_DOCS}/m/mavg.html"),
    ("msum(X, window, [minPeriods])", f"{_DOCS}/m/msum.html"),
    ("mcount(X, window, [minPeriods])", f"{_DOCS}/m/mcount.html"),
    ("mstd(X, window, [minPeriods])", f"{_DOCS}/m/mstd.html"),
    ("mstdp(X, window, [minPeriods])", f"{_DOCS}/m/mstdp.html"),
    ("mvar(X, window, [minPeriods])", f"{_DOCS}/m/mvar.html"),
    ("mvarp(X, window, [minPeriods])", f"{_DOCS}/m/mvarp.html"),
    ("mmax(X, window, [minPeriods])", f"{_DOCS}/m/mmax.html"),
    ("mmin(X, window, [minPeriods])", f"{_DOCS}/m/mmin.html"),
    ("mcorr(X, Y, window, [minPeriods])", f"{_DOCS}/m/mcorr.html"),
    ("mbeta(Y, X, window, [minPeriods])", f"{_DOCS}/m/mbeta.html"),
    ("mrank(X, ascending, window, [ignoreNA=true], [tiesMethod='min'], [percent=false], [minPeriods])",
     f"{_DOCS}/m/mrank.html"),
    ("ema(X, window, [warmup=false])", f"{_DOCS}/e/ema.html"),
    ("wma(X, window)", f"{_DOCS}/w/wma.html"),
    ("sma(X, window)", f"{_DOCS}/s/sma.html"),
    ("dema(X, window)", f"{_DOCS}/d/dema.html"),
    ("tema(X, window)", f"{_DOCS}/t/tema.html"),
    ("wilder(X, window)", f"{_DOCS}/w/wilder.html"),
    ("prev(X)", f"{_DOCS}/p/prev.html"),
    ("move(X, steps)", f"{_DOCS}/m/move.html"),
    ("deltas(X, [n])", f"{_DOCS}/d/deltas.html"),
    ("ratios(X)", f"{_DOCS}/r/ratios.html"),
    ("percentChange(X, [n])", f"{_DOCS}/p/percentChange.html"),
    ("cumsum(X)", f"{_DOCS}/c/cumsum.html"),
    ("cumavg(X)", f"{_DOCS}/c/cumavg.html"),
    ("cummax(X)", f"{_DOCS}/c/cummax.html"),
    ("cummin(X)", f"{_DOCS}/c/cummin.html"),
    ("cumcount(X)", f"{_DOCS}/c/cumcount.html"),
    ("nullCompare(func, X, Y)", f"{_DOCS}/n/nullCompare.html"),
    ("abs(X)", f"{_DOCS}/a/abs.html"),
    ("log(X)", f"{_DOCS}/l/log.html"),
    ("sqrt(X)", f"{_DOCS}/s/sqrt.html"),
    ("exp(X)", f"{_DOCS}/e/exp.html"),
    ("signum(X)", f"{_DOCS}/s/signum.html"),
    ("double(X)", f"{_DOCS}/d/double.html"),
    ("hashBucket(X, buckets)", f"{_DOCS}/h/hashBucket.html"),
    # --- preflight (pyplatform/dolphindb/preflight.py) ----------------------------------
    ("version()", f"{_DOCS}/v/version.html"),
    ("getConfig([key])", f"{_DOCS}/g/getConfig.html"),
    ("exists(path)", f"{_DOCS}/e/exists.html"),
    ("mkdir(directory)", f"{_DOCS}/m/mkdir.html"),
    ("getUserAccess([userIds], [finalAccess=false])", f"{_DOCS}/g/getUserAccess.html"),
    ("string(X)", f"{_DOCS}/s/string.html"),
    ("bool(X)", f"{_DOCS}/b/bool.html"),
    ("dict(keyObj, valueObj, [ordered=false])", f"{_DOCS}/d/dict.html"),
    ("not(X)", f"{_DOCS}/n/not.html"),
    # --- partition layout check (preflight) and migration (pyplatform/dolphindb/layout.py) --
    # schema(dbHandle): partitionTypeName, partitionSchema (one scheme per COMPO level)
    ("schema(table|dbHandle)", f"{_DOCS}/s/schema.html"),
    ("type(X)", f"{_DOCS}/t/type.html"),
    # sqlDS: one data source per partition of the queried table; mr runs mapFunc on each
    # (Tutorials_CN database.md: repartitionDS/sqlDS + mr to copy a DFS table into a new scheme)
    ("sqlDS(sqlObj, [forcePartition=false])", f"{_DOCS}/s/sqlDS.html"),
    ("mr(ds, mapFunc, [reduceFunc], [finalFunc], [parallel=true])", f"{_DOCS}/m/mr.html"),
    ("tableInsert(table, args, ...)", f"{_DOCS}/t/tableInsert.html"),
    ("size(X)", f"{_DOCS}/s/size.html"),
]

SIGNATURES: dict[str, Signature] = {}
for _text, _source in _TABLE:
    _sig = parse_signature(_text, _source)
    SIGNATURES[_sig.name] = _sig

# Functions createReactiveStateEngine / createNarrowReactiveStateEngine accept inside
# metrics: the optimised state functions listed on the createReactiveStateEngine page
# (3.00 reference) plus element-wise (stateless) vector functions, which need no state.
ENGINE_STATE_FUNCTIONS = frozenset("""
cumavg cumsum cumprod cumcount cummin cummax cumvar cumvarp cumstd cumstdp cumcorr cumcovar cumbeta
cumwsum cumwavg cumfirstNot cumlastNot cummed cumpercentile cumnunique cumPositiveStreak cummdd
ema mavg msum mcount mprod mvar mvarp mstd mstdp mskew mkurtosis mmin mmax mimin mimax mmed
mpercentile mrank mcorr mcovar mbeta mwsum mwavg mmad mfirst mlast mslr tmove tmfirst tmlast tmsum
tmavg tmcount tmvar tmvarp tmstd tmstdp tmprod tmskew tmkurtosis tmmin tmmax tmmed tmpercentile
tmrank tmcovar tmbeta tmcorr tmwavg tmwsum tmoving moving sma wma dema tema trima linearTimeTrend
talib t3 ma gema wilder mmaxPositiveStreak
deltas ratios ffill move prev iterate ewmMean ewmVar ewmStd ewmCov ewmCorr prevState percentChange
rowMin rowMax rowAnd rowOr rowXor rowProd rowSum rowSum2 rowSize rowCount rowAvg
""".split())
ENGINE_STATELESS_FUNCTIONS = frozenset(
    "abs log exp sqrt pow signum iif nullFill isNull isValid round floor ceil neg reciprocal "
    "nullCompare max min not double".split())
ENGINE_FUNCTIONS = ENGINE_STATE_FUNCTIONS | ENGINE_STATELESS_FUNCTIONS

# Words that look like calls in scripts (``if(...)``) but are syntax, not functions.
SCRIPT_KEYWORDS = frozenset(
    "if else for do while def return and or not in select exec from where group by context "
    "order try catch go share as true false".split())


def check_call(name: str, positional: int, keywords: list[str], method: bool = False,
               partial: bool = False, defined: frozenset[str] = frozenset()) -> list[str]:
    """Problems with one call of ``name`` against its documented signature (empty if none).

    Parameters
    ----------
    name : str
        Called function.
    positional : int
        Number of positional arguments (for ``x.f(...)`` not counting ``x``).
    keywords : list of str
        Keyword argument names, in call order.
    method : bool
        Called as ``obj.name(...)``: ``obj`` is the first documented parameter.
    partial : bool
        Partial application ``name{...}``: required parameters may be supplied later.
    defined : frozenset of str
        Functions defined by the scripts themselves (``def``); accepted without checks.
    """
    if name in defined:
        return []
    sig = SIGNATURES.get(name)
    if sig is None:
        return [f"{name}: not in the documented-signature table (pyplatform/dolphindb/signatures.py)"]
    problems: list[str] = []
    npos = positional + (1 if method else 0)
    if not sig.variadic and npos > len(sig.params):
        problems.append(f"{name}: {npos} positional arguments, documented {len(sig.params)}")
    bound = set(sig.params[:npos])
    for kw in keywords:
        if kw not in sig.params and kw not in sig.alt_keywords and not sig.variadic:
            problems.append(f"{name}: keyword {kw!r} is not a documented parameter {sig.params}")
        elif kw in bound:
            problems.append(f"{name}: {kw!r} given both by position and by keyword")
        bound.add(kw)
    if not partial and not sig.variadic:
        missing = [p for p in sig.params if p in sig.required and p not in bound]
        if missing:
            problems.append(f"{name}: required parameter(s) {missing} not supplied")
    return problems
