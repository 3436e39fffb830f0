"""Assemble BENCHMARKS.md from the per-area figure files in docs/benchmarks/.

Each area's owner records its command, machine and medians in docs/benchmarks/<area>.md;
this script stitches them in a fixed order under one header, so BENCHMARKS.md is never
edited by hand. Run: python scripts/build_benchmarks.py
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["summary", "history", "stream", "engine", "factors", "feeds", "soak", "signals", "trading", "journal",
         "backtest", "research", "dashboard", "models", "gpu_factors", "dolphindb"]

HEADER = """# Benchmarks

Every hot path has a `pyplatform bench ...` command that prints its figures beside the
obvious alternative measured in the same run, as a ratio of medians. Figures below were
measured on the project's development machines: 2 vCPUs, 24 GB, Linux, Python 3.11, shared
with other work (load averages of 5-10 were common), so absolute numbers are noisy; ratios
measured in one run are the meaningful part. No GPU was available; GPU rows are marked as not
measured. This file is assembled by `python scripts/build_benchmarks.py` from
`docs/benchmarks/*.md`.

"""


def _demote(lines):
    # headings only: a "#" line inside a fenced block is a shell comment, not a heading
    fenced = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        yield "#" + line if line.startswith("#") and not fenced else line


def build() -> str:
    parts = [HEADER]
    files = {p.stem: p for p in (ROOT / "docs" / "benchmarks").glob("*.md")}
    for name in ORDER + sorted(set(files) - set(ORDER)):
        if name in files:
            text = files[name].read_text().strip()
            # demote the area's headings one level under this page's title
            text = "\n".join(_demote(text.splitlines()))
            parts.append(text + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    (ROOT / "BENCHMARKS.md").write_text(build())
    print("wrote", ROOT / "BENCHMARKS.md")
