"""The one lazy-export helper: names load on first use, are cached, and show in dir()."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from pyplatform._lazy import lazy_exports


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "lazypkg"
    root.mkdir()
    (root / "__init__.py").write_text(
        "from pyplatform._lazy import lazy_exports\n"
        "EAGER = 1\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'heavy': 'part'})\n")
    (root / "part.py").write_text("import sys\nsys.modules[__package__].loads += 1\nheavy = 'value'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg

    lazypkg.loads = 0
    yield lazypkg
    for name in [m for m in sys.modules if m == "lazypkg" or m.startswith("lazypkg.")]:
        del sys.modules[name]


def test_a_lazy_name_loads_its_submodule_once_on_first_use(package):
    assert "lazypkg.part" not in sys.modules and package.loads == 0
    assert package.heavy == "value" and package.heavy == "value"
    assert package.loads == 1 and "heavy" in vars(package)  # cached on the package


def test_dir_lists_own_and_lazy_names_and_unknown_names_raise(package):
    assert {"EAGER", "heavy", "__doc__"} <= set(dir(package))
    with pytest.raises(AttributeError, match="module 'lazypkg' has no attribute 'nope'"):
        package.nope


def test_the_helper_returns_the_pep562_pair():
    get, dir_ = lazy_exports("json", {"loads": "decoder"})
    assert isinstance(get, types.FunctionType) and "JSONDecoder" in dir_()


def test_importing_pyplatform_data_leaves_the_importer_and_market_unloaded():
    code = ("import sys, pyplatform.data as d; "
            "print(sorted(m for m in ('pyplatform.data.importer', 'pyplatform.data.synthetic_market') if m in sys.modules)); "
            "d.import_files; print('pyplatform.data.importer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"
