"""Every notebook in notebooks/ runs top to bottom against a generated market."""

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NB_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))


def test_notebooks_are_built_from_source():
    """The .ipynb files match build_notebooks.py (no hand edits that the builder would lose)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", NB_DIR / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert set(mod.NOTEBOOKS) == set(NOTEBOOKS)
    for name, cells in mod.NOTEBOOKS.items():
        nb = nbformat.read(NB_DIR / name, as_version=4)
        assert [c.source for c in nb.cells] == [src for _, src in cells], name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, market_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(market_dir, data)
    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(data))
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_ship_with_their_outputs(name):
    """Readers on GitHub see results: `python notebooks/build_notebooks.py --execute` saved them."""
    nb = nbformat.read(NB_DIR / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    with_output = [c for c in code if c.get("outputs")]
    assert len(with_output) >= len(code) - 1, f"{name}: {len(with_output)} of {len(code)} code cells have outputs"
    assert not [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    assert "pp.api.pd" not in "".join(c.source for c in code)  # user code needs no reach into the module
