"""The research app on the demo's decade: opening the Market page and a factor's first evaluation
against a cached one.

Run after ``make demo`` (or on any data directory)::

    python -m pyplatform.bench.dashboard_decade --data-dir ./data --repeats 3

Prints medians of ``--repeats`` runs; a first evaluation clears the factor caches each time.
"""

from __future__ import annotations

import argparse

from pyplatform.bench.report import median_time

__all__ = ["run"]


def _median_ms(fn, repeats: int) -> float:
    return median_time(fn, repeats) * 1e3


def run(data_dir, repeats: int = 3, universe: str = "stocks") -> dict:
    """Figures (ms) of the decade benchmark; see the module docstring."""
    from pyplatform.config import get_settings
    from pyplatform.dashboard.app import default_sources
    from pyplatform.dashboard.context import AppContext
    from pyplatform.dashboard.live_buffer import LiveBuffer
    from pyplatform.clock import LiveClock
    from pyplatform.dashboard.pages.market import build_chart

    s = get_settings(data_dir=data_dir, fsync="never")
    src = default_sources(s)
    fd, bars = src["factors"], src["bars"]
    actx = AppContext(settings=s, bars=bars, live=LiveBuffer(), clock=LiveClock(), factors=fd)
    syms = bars.symbols()
    out: dict = {}
    _, status, _ = build_chart(actx, syms[0], "1d", [], [], None, None, False)
    out["open_status"] = status
    out["open_ms"] = _median_ms(lambda: build_chart(actx, syms[0], "1d", [], [], None, None, False), repeats)
    out["open_compare2_ms"] = _median_ms(
        lambda: build_chart(actx, syms[0], "1d", [], [], None, None, False, compare=syms[1:3]), repeats)
    name = next(iter(fd.library))

    def first():
        fd._cache.clear()
        fd._frames.clear()
        fd.evaluate(name, universe)

    out["factor"] = name
    out["first_eval_ms"] = _median_ms(first, repeats)
    out["cached_eval_ms"] = _median_ms(lambda: fd.evaluate(name, universe), repeats)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    r = run(a.data_dir, a.repeats)
    print(r["open_status"])
    print(f"open Market page (daily candles, whole history): {r['open_ms']:.1f} ms; "
          f"with 2 symbols compared: {r['open_compare2_ms']:.1f} ms")
    print(f"factor {r['factor']}: first evaluation {r['first_eval_ms']:.1f} ms, cached {r['cached_eval_ms']:.3f} ms, "
          f"first / cached {r['first_eval_ms'] / r['cached_eval_ms']:,.0f}x")


if __name__ == "__main__":
    main()
