"""The deploy plan read back from rendered scripts: what each call creates, uses and drops.

Used by the tests (and ``pyplatform dolphindb render --check``) to prove without a server
that the scripts deploy in the platform's order: every object is created before it is
used, every create is guarded by an existence check of the same object (so re-running
changes nothing), teardown drops dependants before what they depend on, and every call
matches its documented signature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyplatform.dolphindb.dos_parse import Call, defined_functions, parse_calls, tokenize
from pyplatform.dolphindb.render import RenderedScript
from pyplatform.dolphindb.signatures import check_call

__all__ = ["Effect", "ScriptPlan", "plan_of", "signature_problems", "simulate"]

_ENGINE_CREATORS = {"createTimeSeriesEngine", "createDailyTimeSeriesEngine",
                    "createReactiveStateEngine", "createNarrowReactiveStateEngine"}
_DFS = re.compile(r"""["'](dfs://[A-Za-z0-9_]+)["']""")


@dataclass(frozen=True)
class Effect:
    """``action`` (create | use | drop) on ``obj`` (kind:name) at ``line``; ``needs`` are
    the objects the created one depends on (for teardown order)."""

    action: str
    obj: str
    line: int
    call: str
    guarded: bool = False
    needs: tuple[str, ...] = ()


@dataclass
class ScriptPlan:
    name: str
    calls: list[Call]
    effects: list[Effect] = field(default_factory=list)
    defined: frozenset[str] = frozenset()


def _lit(call: Call, param: str, position: int) -> str | None:
    arg = call.arg(param, position)
    return arg.literal if arg is not None else None


def _uses_inside(call: Call, all_calls: list[Call]) -> list[str]:
    """Objects referenced by calls nested in ``call``'s argument text."""
    out = []
    for m in re.finditer(r'objByName\("([A-Za-z0-9_]+)"\)', call.text):
        out.append(f"stream:{m.group(1)}")
    for m in re.finditer(r'getStreamEngine\("([A-Za-z0-9_]+)"\)', call.text):
        out.append(f"engine:{m.group(1)}")
    for m in re.finditer(r'loadTable\("(dfs://[A-Za-z0-9_]+)",\s*"([A-Za-z0-9_]+)"\)', call.text):
        out.append(f"table:{m.group(1)}/{m.group(2)}")
    return list(dict.fromkeys(out))


def _guarded(call: Call, name: str) -> bool:
    """Is ``call`` inside ``if(!check("...name..."))``?"""
    return any(g.lstrip().startswith("!") and f'"{name}"' in g for g in call.guards)


def _checked(call: Call, name: str) -> bool:
    """Is ``call`` inside ``if(check("...name..."))`` (runs only when the object exists)?"""
    return any(not g.lstrip().startswith("!") and f'"{name}"' in g for g in call.guards)


def _effects(call: Call, calls: list[Call]) -> list[Effect]:
    n, line = call.name, call.line
    eff: list[Effect] = []
    if n == "database":
        path = _lit(call, "directory", 0)
        if path and path.startswith("dfs://"):
            if call.arg("partitionType", 1) is not None:
                eff.append(Effect("create", f"db:{path}", line, n, _guarded(call, path)))
            else:
                eff.append(Effect("use", f"db:{path}", line, n))
    elif n == "createPartitionedTable":
        handle = call.arg("dbHandle", 0)
        m = _DFS.search(handle.text) if handle else None
        table = _lit(call, "tableName", 2)
        if m and table:
            eff.append(Effect("create", f"table:{m.group(1)}/{table}", line, n,
                              _guarded(call, table), needs=(f"db:{m.group(1)}",)))
    elif n == "loadTable":
        db, table = _lit(call, "database", 0), _lit(call, "tableName", 1)
        if db and table:
            eff.append(Effect("use", f"table:{db}/{table}", line, n))
    elif n == "enableTableShareAndPersistence":
        name = _lit(call, "tableName", 1)
        if name:
            eff.append(Effect("create", f"stream:{name}", line, n, _guarded(call, name)))
    elif n == "objByName":
        name = _lit(call, "name", 0)
        if name:
            eff.append(Effect("use", f"stream:{name}", line, n))
    elif n in _ENGINE_CREATORS:
        name = _lit(call, "name", 0)
        if name:
            eff.append(Effect("create", f"engine:{name}", line, n, _guarded(call, name),
                              needs=tuple(_uses_inside(call, calls))))
    elif n == "getStreamEngine":
        name = _lit(call, "name", 0)
        if name:
            eff.append(Effect("use", f"engine:{name}", line, n))
    elif n == "addReactiveMetrics":
        name = _lit(call, "name", 0)
        if name:
            eff.append(Effect("use", f"engine:{name}", line, n))
    elif n == "subscribeTable":
        table, action = _lit(call, "tableName", 1), _lit(call, "actionName", 2)
        if table and action:
            needs = (f"stream:{table}",) + tuple(_uses_inside(call, calls))
            eff.append(Effect("use", f"stream:{table}", line, n))
            eff.append(Effect("create", f"sub:{table}/{action}", line, n,
                              _guarded(call, action), needs=needs))
    elif n == "unsubscribeTable":
        table, action = _lit(call, "tableName", 1), _lit(call, "actionName", 2)
        if table and action:
            eff.append(Effect("drop", f"sub:{table}/{action}", line, n, _checked(call, action)))
    elif n == "dropStreamEngine":
        name = _lit(call, "name", 0)
        if name:
            eff.append(Effect("drop", f"engine:{name}", line, n, _checked(call, name)))
    elif n == "dropStreamTable":
        name = _lit(call, "tableName", 0)
        if name:
            eff.append(Effect("drop", f"stream:{name}", line, n, _checked(call, name)))
    elif n == "dropDatabase":
        path = _lit(call, "dbDir", 0)
        if path:
            eff.append(Effect("drop", f"db:{path}", line, n, _checked(call, path)))
    return eff


def plan_of(script: RenderedScript) -> ScriptPlan:
    """Calls and effects of one rendered script."""
    calls = parse_calls(script.text, script.name)
    plan = ScriptPlan(script.name, calls, defined=defined_functions(tokenize(script.text, script.name)))
    for call in calls:
        plan.effects.extend(_effects(call, calls))
    return plan


def signature_problems(scripts: list[RenderedScript]) -> list[str]:
    """Every call that does not match the documented-signature table, as ``file:line: problem``."""
    defined: frozenset[str] = frozenset()
    problems = []
    for s in scripts:
        plan = plan_of(s)
        defined = defined | plan.defined
        for c in plan.calls:
            for p in check_call(c.name, c.positional, c.keywords, method=c.method,
                                partial=c.partial, defined=defined):
                problems.append(f"{s.name}:{c.line}: {p}")
    return problems


def simulate(scripts: list[RenderedScript], existing: dict[str, tuple[str, ...]] | None = None
             ) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Run the plan of ``scripts`` in order against a model of the server.

    Parameters
    ----------
    scripts : list of RenderedScript
        In execution order.
    existing : dict, optional
        Objects already on the server (object -> what it needs), e.g. after a deploy.

    Returns
    -------
    (objects, problems)
        Objects present at the end, and every ordering problem found: a use before
        create, an unguarded create, a drop of something missing or still needed.
    """
    objects = dict(existing or {})
    problems: list[str] = []
    for s in scripts:
        for e in plan_of(s).effects:
            where = f"{s.name}:{e.line}: {e.call}"
            if e.action == "use":
                if e.obj not in objects:
                    problems.append(f"{where} uses {e.obj} before it is created")
            elif e.action == "create":
                if not e.guarded:
                    problems.append(f"{where} creates {e.obj} without an existence check (not idempotent)")
                for need in e.needs:
                    if need not in objects:
                        problems.append(f"{where} creates {e.obj} needing {need}, which does not exist yet")
                objects.setdefault(e.obj, e.needs)
            elif e.action == "drop":
                if e.obj not in objects:
                    if not e.guarded:  # a guarded drop of an absent object is a no-op
                        problems.append(f"{where} drops {e.obj}, which does not exist (unguarded)")
                    continue
                kind, _, name = e.obj.partition(":")
                # dropping a database drops its tables with it
                gone = {e.obj} | ({o for o in objects if o.startswith(f"table:{name}/")} if kind == "db" else set())
                users = [o for o, needs in objects.items() if o not in gone and gone & set(needs)]
                if users:
                    problems.append(f"{where} drops {e.obj} while {sorted(users)} still need it")
                for o in gone:
                    objects.pop(o, None)
    return objects, problems
