import json
import multiprocessing as mp

import pytest

from pyplatform.clock import SimClock
from pyplatform.registry import FactorRegistry, RegistryError


def test_versions_are_immutable_and_increase(tmp_path):
    r = FactorRegistry(tmp_path, SimClock(0))
    g0 = r.generation()
    v1 = r.add_version("mom20", "close / move(close, 20) - 1", author="ana", description="momentum")
    v2 = r.add_version("mom20", "close / move(close, 21) - 1", author="ana")
    assert (v1.version, v2.version) == (1, 2)
    assert r.get("mom20").expression.endswith("21) - 1")
    assert r.get("mom20", 1).expression.endswith("20) - 1")
    assert r.generation() == g0 + 2
    # the stored file is the version, byte for byte
    assert json.loads((tmp_path / "mom20" / "v0001.json").read_text())["author"] == "ana"
    with pytest.raises(RegistryError, match="no version 7"):
        r.get("mom20", 7)


def test_retire_keeps_history_and_republish_unretires(tmp_path):
    r = FactorRegistry(tmp_path, SimClock(0))
    r.add_version("a", "mavg(close, 5)", author="x")
    r.add_version("b", "mavg(close, 10)", author="x")
    r.retire("a", "decayed")
    assert set(r.active()) == {"b"}
    assert r.is_retired("a") and len(r.versions("a")) == 1
    r.add_version("a", "mavg(close, 6)", author="x")
    assert set(r.active()) == {"a", "b"} and r.active()["a"].version == 2


@pytest.mark.parametrize("bad", ["", "1abc", "a-b", "a b", "x" * 70, "../etc"])
def test_bad_names_rejected(tmp_path, bad):
    with pytest.raises(RegistryError, match="invalid factor name"):
        FactorRegistry(tmp_path, SimClock(0)).add_version(bad, "close", author="x")


def test_unknown_and_authorless(tmp_path):
    r = FactorRegistry(tmp_path, SimClock(0))
    with pytest.raises(RegistryError, match="no published factor"):
        r.retire("ghost")
    with pytest.raises(RegistryError, match="author"):
        r.add_version("f", "close", author="")


def _publish(root, i):
    FactorRegistry(root, SimClock(0)).add_version("race", f"mavg(close, {i + 2})", author=f"p{i}")


def test_concurrent_publishers_never_overwrite(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_publish, args=(tmp_path, i)) for i in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    vs = FactorRegistry(tmp_path, SimClock(0)).versions("race")
    assert [v.version for v in vs] == [1, 2, 3, 4, 5, 6]
    assert len({v.author for v in vs}) == 6


def test_publish_and_retire_times_come_from_the_clock(tmp_path):
    clock = SimClock(1_700_000_000_000_000_000)
    r = FactorRegistry(tmp_path, clock)
    assert r.add_version("a", "mavg(close, 5)", author="x").published_ns == 1_700_000_000_000_000_000
    clock.set(1_700_000_000_500_000_000)
    r.retire("a", "decayed")
    assert json.loads((tmp_path / "a" / "retired.json").read_text())["ts"] == 1_700_000_000_500_000_000
    with pytest.raises(ValueError, match="needs a clock"):
        FactorRegistry(tmp_path, None)
    with pytest.raises(TypeError):
        FactorRegistry(tmp_path)  # the clock is a required argument
