"""Partition layout of the DFS databases: what ``10_databases.dos`` creates, how big its
partitions get, how to recognise a database created with an older layout, and the
DolphinDB script that copies one into the current layout.

Sizing (docs/dolphindb.md, "Partition sizing"): DolphinDB recommends 100 MB - 1 GB of
uncompressed data per partition (Tutorials_CN ``database.md`` 4.2/4.3,
``database_and_table_creation_details.md`` 2.4/2.5) and at most 1,000 sort keys per TSDB
partition (``best_practices_for_partitioned_storage.md``; the count is the product of
the distinct -- or ``sortKeyMappingFunction``-hashed -- values of every sort column but
the last, ``database_and_table_creation_details.md`` 2.1.2). :func:`partition_bytes`
and :func:`sort_keys_per_partition` do that arithmetic from the table schemas.

A partition scheme cannot be changed in place ("不支持直接修改分区方案": create a database
with the new scheme, copy, drop the old one). The preflight therefore reads
``schema(loadTable(path, table))`` of every table that already exists and compares its
partition types and the type of its time level with :func:`expected_layouts`; a
mismatch stops ``deploy`` and names ``pyplatform dolphindb migrate``, which runs
:func:`migration_script`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyplatform.dolphindb import schema
from pyplatform.dolphindb.render import DeployConfig

__all__ = ["Layout", "DATABASES", "expected_layouts", "layout_probe_lines", "judge_layouts",
           "row_bytes", "partition_bytes", "sort_keys_per_partition", "migration_script", "MIGRATABLE"]

# DolphinDB data type IDs (the ``schema`` page's typeInt / ``type()``): DATE 6, MONTH 7.
DATE, MONTH = 6, 7
_TYPE_NAMES = {DATE: "DATE (one partition per day)", MONTH: "MONTH (one partition per month or range of months)"}

# history-store database -> DFS table name (schema.DFS) in creation order
DATABASES = ("ticks", "bars_1m", "bars_1d", "factors", "signals")

# bytes per value as stored before compression (SYMBOL is an INT index into the symbol
# base; the partition guidance is for uncompressed data)
_WIDTH = {"TIMESTAMP": 8, "NANOTIMESTAMP": 8, "SYMBOL": 4, "DOUBLE": 8, "INT": 4, "CHAR": 1, "STRING": 24}

# tables whose layout changed with issue 15 item 12 (a database created before needs a
# migration): the bars' partition schemes, and the factors table's ``factor`` column
# (created STRING before, SYMBOL now)
MIGRATABLE = ("bars_1m", "bars_1d", "factors")


@dataclass(frozen=True)
class Layout:
    """A database's partition layout as the preflight compares it.

    ``levels`` are the partition types (``partitionTypeName``) from the first level on,
    ``time_type`` the DolphinDB type of the first (time) level's scheme, ``buckets`` the
    HASH level's bucket count (0 without one), ``months_per_partition`` the width of one
    time partition in months (0 for daily partitions)."""

    levels: tuple[str, ...]
    time_type: int
    buckets: int = 0
    months_per_partition: int = 0
    columns: tuple[tuple[str, str], ...] = ()  # (column, type) the table must have


    def describe(self) -> str:
        out = " x ".join(self.levels) + f", time level {_TYPE_NAMES.get(self.time_type, self.time_type)}"
        return out + "".join(f", {c} {t}" for c, t in self.columns)


def expected_layouts(config: DeployConfig) -> dict[str, Layout]:
    """The layout ``10_databases.dos`` renders for each database under ``config``."""
    return {
        "ticks": Layout(("VALUE", "HASH"), DATE, config.tick_hash_buckets),
        "bars_1m": Layout(("VALUE", "HASH"), MONTH, config.bar_hash_buckets, 1),
        "bars_1d": Layout(("RANGE",), MONTH, 0, 12),
        "factors": Layout(("VALUE", "HASH"), DATE, config.factor_hash_buckets, 0, (("factor", "SYMBOL"),)),
        "signals": Layout(("VALUE",), MONTH, 0, 1),
    }


def _dfs(config: DeployConfig, table: str) -> str:
    return f"dfs://{config.prefix}_{schema.DFS[table][0]}"


def layout_probe_lines(config: DeployConfig) -> list[str]:
    """Read-only preflight lines: for each existing table its ``partitionTypeName`` (one
    name per level) and the type of the first level's scheme. ``schema(table)`` reports the
    database's partition scheme (``schema`` page: ``partitionSchema`` holds one scheme per
    COMPO level; for a one-level database it is the scheme itself, whose first element has
    the scheme's type). Nothing is opened for writing: ``loadTable`` of an existing table."""
    out = []
    for table in DATABASES:
        path, name, key = _dfs(config, table), schema.DFS[table][1], f"layout:{table}"
        # colDefs: name, typeString per column (schema page); the columns a layout pins
        cols = "".join(f'; ppPf["{key}:col:{c}"] = exec first(typeString) from ppC where name == "{c}"'
                       for c, _ in expected_layouts(config)[table].columns)
        out.append(f'if(existsTable("{path}", "{name}")) {{ try {{ ppS = schema(loadTable("{path}", "{name}")); '
                   f'ppPf["{key}:types"] = string(ppS.partitionTypeName); '
                   f'ppPf["{key}:time"] = type(ppS.partitionSchema[0])'
                   + (f"; ppC = ppS.colDefs{cols}" if cols else "") + ' } '
                   f'catch(ex) {{ ppPf["{key}:types"] = "unreadable" }} }}')
    return out


def _names(value) -> list[str]:
    """A scalar name or a vector of names (as the client returns them) as a list of str."""
    if isinstance(value, str):
        return [value]
    try:
        return [str(x) for x in value]
    except TypeError:
        return [str(value)]


def judge_layouts(facts: dict, config: DeployConfig) -> list[tuple[str, object, bool | None, str, str]]:
    """``(name, value, ok, need, fix)`` per database: ok when absent (deploy creates it)
    or laid out as planned, False when it exists with another layout (deploy would keep
    the old one), None when its schema could not be read."""
    checks = []
    for table, want in expected_layouts(config).items():
        name = f"layout {_dfs(config, table)}"
        types = facts.get(f"layout:{table}:types")
        if types is None:
            checks.append((name, "absent (will be created)", True, "", ""))
            continue
        got_types = _names(types)
        if got_types == ["unreadable"]:
            checks.append((name, "schema(loadTable(...)) could not be read", None, want.describe(), ""))
            continue
        # a COMPO database may report its levels or just "COMPO" (the schema page lists both forms)
        levels_ok = got_types == list(want.levels) or (got_types == ["COMPO"] and len(want.levels) > 1)
        try:
            got_time = int(facts.get(f"layout:{table}:time"))
        except (TypeError, ValueError):
            got_time = -1
        # a pinned column absent from the facts (an older preflight) is not held against it
        got_cols = [(c, str(facts.get(f"layout:{table}:col:{c}", t))) for c, t in want.columns]
        ok = levels_ok and got_time == want.time_type and got_cols == list(want.columns)
        value = (" x ".join(got_types) + f", time level {_TYPE_NAMES.get(got_time, got_time)}"
                 + "".join(f", {c} {t}" for c, t in got_cols))
        fix = (f"{_dfs(config, table)} was created with an older layout (partition scheme or column types); it "
               f"cannot be changed in place: `pyplatform dolphindb undeploy`, then `pyplatform dolphindb migrate --yes` (copies it "
               f"into the new scheme and swaps; `--dry-run` prints the script), then deploy again "
               f"(docs/dolphindb.md, 'Migrating a database to the current partition scheme')")
        checks.append((name, value, ok, want.describe(), fix))
    return checks


# ------------------------------------------------------------------ sizing arithmetic
def row_bytes(key: str, time_type: str = "TIMESTAMP") -> int:
    """Uncompressed bytes of one row of schema ``key`` (STRING counted at 24 bytes)."""
    return sum(_WIDTH[time_type if t == "TS" else t] for _, t in schema.TABLES[key])


def partition_bytes(rows_per_time_partition: float, key: str, buckets: int = 1,
                    time_type: str = "TIMESTAMP") -> float:
    """Uncompressed bytes in one partition: the rows of one time partition spread evenly
    over ``buckets`` HASH partitions."""
    return rows_per_time_partition * row_bytes(key, time_type) / max(1, buckets)


def sort_keys_per_partition(distinct: list[int], mapping: list[int | None] | None = None) -> int:
    """Sort keys in one partition: the product over the sort columns but the last of their
    distinct values in the partition, each capped by its ``hashBucket`` count when mapped."""
    mapping = mapping or [None] * len(distinct)
    n = 1
    for d, m in zip(distinct, mapping):
        n *= min(d, m) if m else d
    return n


# ------------------------------------------------------------------ migration
def migration_script(config: DeployConfig, tables: tuple[str, ...] = MIGRATABLE) -> str:
    """DolphinDB script copying each database of ``tables`` into the current layout.

    Per database: create ``<path>_migrating`` with the new scheme (the same statements as
    ``10_databases.dos``), copy every partition of the old table into it (``sqlDS`` gives
    one data source per partition; ``mr`` with ``parallel=false``, because several old
    partitions feed one new partition and one partition cannot be written concurrently),
    check the row counts, drop the old database, recreate it under its own path with the
    new scheme, copy back, check again and drop the copy. Run it with the pipeline
    undeployed (the stream -> DFS writers must not write meanwhile); the writers resume from
    their persisted offsets after the next deploy. Stops (``throw``) at the first count
    mismatch, before anything is dropped that is not copied.
    """
    from pyplatform.dolphindb.render import render_scripts

    unknown = [t for t in tables if t not in DATABASES]
    if unknown:
        raise ValueError(f"cannot migrate {unknown}: databases are {list(DATABASES)}")
    # the create statements of the current layout, taken from the rendered 10_databases.dos
    creates = _create_blocks(render_scripts(config, _one_metric(), ("10_databases",))[0].text, config)
    lines = [
        "// pyplatform: copy DFS databases into the current partition scheme (issue 15 item 12).",
        "// Run with the pipeline undeployed (`pyplatform dolphindb undeploy`); deploy afterwards.",
        "def ppCopyInto(dbPath, tbName, data) { tableInsert(loadTable(dbPath, tbName), data); return size(data) }",
        "def ppRows(dbPath, tbName) { return exec count(ts) from loadTable(dbPath, tbName) }",
    ]
    for table in tables:
        path = _dfs(config, table)
        name = schema.DFS[table][1]
        tmp = path + "_migrating"
        create_new, create_tmp = creates[table], creates[table].replace(f'"{path}"', f'"{tmp}"')
        lines += [
            f"// --- {path}/{name}",
            f'if(existsDatabase("{tmp}")) {{ dropDatabase("{tmp}") }}',
            create_tmp,
            f'ppN = ppRows("{path}", "{name}")',
            f'ppDone = mr(ds=sqlDS(<select * from loadTable("{path}", "{name}")>), '
            f'mapFunc=ppCopyInto{{"{tmp}", "{name}"}}, reduceFunc=add, parallel=false)',
            f'if(ppRows("{tmp}", "{name}") != ppN) {{ throw "{path}: copy has " + string(ppRows("{tmp}", "{name}")) '
            f'+ " rows, expected " + string(ppN) + "; nothing was dropped" }}',
            f'dropDatabase("{path}")',
            create_new,
            f'ppDone = mr(ds=sqlDS(<select * from loadTable("{tmp}", "{name}")>), '
            f'mapFunc=ppCopyInto{{"{path}", "{name}"}}, reduceFunc=add, parallel=false)',
            f'if(ppRows("{path}", "{name}") != ppN) {{ throw "{path}: copy back has " + string(ppRows("{path}", '
            f'"{name}")) + " rows, expected " + string(ppN) + "; the copy is kept in {tmp}" }}',
            f'dropDatabase("{tmp}")',
        ]
    return "\n".join(lines) + "\n"


def _one_metric():
    from pyplatform.dolphindb.render import FactorMetric

    # 10_databases.dos does not depend on the factors; render needs one to fill the context
    return [FactorMetric("close_copy", "close")]


def _create_blocks(text: str, config: DeployConfig) -> dict[str, str]:
    """The unguarded ``database(...)`` + ``createPartitionedTable(...)`` statements of each
    database in the rendered ``10_databases.dos``."""
    out: dict[str, str] = {}
    for table in DATABASES:
        path = _dfs(config, table)
        name = schema.DFS[table][1]
        db_line = next(ln.strip() for ln in text.splitlines()
                       if ln.strip().startswith(f'database(directory="{path}", partitionType='))
        tb_line = next(ln.strip() for ln in text.splitlines()
                       if ln.strip().startswith(f'createPartitionedTable(dbHandle=database(directory="{path}")')
                       and f'tableName="{name}"' in ln)
        out[table] = db_line + "\n" + tb_line
    return out
