"""environment.yml must describe the same Python environment as pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml  # pyyaml comes with the test extras' dependencies

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("fix", "dolphindb", "ml", "test"):
        wanted += project["optional-dependencies"][extra]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = [p for p in pip_section if not p.startswith("-e")]
    assert _names(listed) == _names(wanted)
    # identical specifiers, not just names
    assert sorted(listed) == sorted(wanted)
