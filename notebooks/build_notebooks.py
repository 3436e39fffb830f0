"""Builds the researcher notebooks from the cell lists below (source of truth, diff-friendly).

Run ``python notebooks/build_notebooks.py --execute`` after editing: it rebuilds every
notebook, runs it against a small generated market and saves the outputs, so readers see
results on GitHub. The tests execute every ``notebooks/*.ipynb`` top to bottom and check the
saved cells match these lists.
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent

NOTEBOOKS = {
    "01_quickstart.ipynb": [
        ("md", "# Quick start\nHistory, a chart and a factor, with `import pyplatform as pp`. "
               "The data directory comes from `PYPLATFORM_DATA_DIR` (default `./data`); run "
               "`pyplatform data generate` first for a synthetic market."),
        ("code", "import pyplatform as pp\nsyms = pp.history('bars_1d').index.get_level_values('symbol').unique()\nsyms[:10]"),
        ("code", "daily = pp.bars(freq='1d')\ndaily.tail()"),
        ("code", "sym = syms[0]\nday = pp.bars([sym], freq='1min').index.get_level_values(0).normalize().unique()[-2]\n"
                 "hourly = pp.bars([sym], start=day, end=day + pp.Timedelta(days=1), freq='1h')\nhourly"),
        ("md", "## A K-line chart\nThe same plotting functions serve Jupyter and the Dash app."),
        ("code", "from pyplatform.plots import candlestick_figure\n"
                 "b = daily.xs(sym, level='symbol').reset_index()\n"
                 "b['ts'] = b['datetime'].astype('int64')\n"
                 "fig = candlestick_figure(b, '1d', symbol=sym)\nfig"),
        ("md", "## A factor\nAny expression in the factor language, or a library name (`pp.library()`)."),
        ("code", "pp.chart(sym, '1h', overlays=['mavg(close, 20)'])"),
        ("code", "pp.library().head(10)"),
        ("code", "mom = pp.factor('close / move(close, 10) - 1')\nmom.dropna().tail()"),
        ("code", "assert mom.index.names == ['datetime', 'symbol'] and mom['factor'].notna().any()"),
    ],
    "02_factor_research.ipynb": [
        ("md", "# Factor research end to end\nDefine, evaluate, compare, publish."),
        ("code", "import pyplatform as pp\nexpr = '(close - mavg(close, 10)) / mstd(close, 10)'\n"
                 "rev = pp.factor(expr)\nrev.describe()"),
        ("md", "## Evaluate: rank IC, decay, quantile returns, turnover\n"
               "The universe is the **stocks** by default: one trading calendar, so no weekend of 24/7 "
               "crypto names enters a cross-section, and forward returns step over each stock's own "
               "sessions (a Friday's 1-period return is Friday to Monday). `universe='crypto'`, "
               "`'forex'`, a saved list or `'all'` choose otherwise."),
        ("code", "ev = pp.evaluate(expr, horizons=(1, 5), quantiles=3)\nev"),
        ("md", "### Reading the IC\nThe rank IC is the Spearman correlation, on one date, between the "
               "factor and the next returns; `ic_mean` averages it over `n_dates` dates. A daily IC of "
               "0.02-0.05 is already useful for a broad universe. Whether it is distinguishable from "
               "zero is the t-statistic: `t = ic_mean / ic_std * sqrt(n_dates)`, with its two-sided "
               "p-value. Few names per date and few dates make the IC noisy; `ev.window` says which "
               "dates every number covers."),
        ("code", "s = ev.summary.loc['1p']\n"
                 "verdict = ('significant at 5%' if s['p_value'] < 0.05 else 'not distinguishable from zero')\n"
                 "print(f\"1-period rank IC {s['ic_mean']:+.4f} (t = {s['t_stat']:+.2f}, p = {s['p_value']:.3f}) \"\n"
                 "      f\"over {int(s['n_dates'])} dates: {verdict}\")\nev.window"),
        ("md", "Quantile returns are shown as alphalens computes them (each date's mean per quantile, "
               "averaged over dates); the pooled mean over all rows is beside it."),
        ("code", "import pandas as pd\n"
                 "pd.concat({'mean by date (alphalens)': ev.quantile_returns, 'pooled': ev.pooled_quantile_returns}, axis=1)"),
        ("code", "ev.decay"),
        ("code", "figs = pp.factor_figures(ev, values=rev['factor'])\nsorted(figs)"),
        ("code", "figs['quantiles']"),
        ("md", "## Compare with library factors"),
        ("code", "from pyplatform.research.evaluation import factor_correlation\n"
                 "lib = pp.library().index[:3]\n"
                 "factors = {'rev': rev['factor'], **{n: pp.factor(n)[n] for n in lib}}\n"
                 "factor_correlation(factors).round(2)"),
        ("md", "## Publish\nValidated (parses, live and research runtimes agree on recent history), "
               "versioned, and picked up by the running engine. The attached IC covers the whole daily "
               "history, and `pp.published()` says so in `ic_window`."),
        ("code", "v = pp.publish('rev10', expr, description='10-day reversal z-score', tags=['mean-reversion'])\n"
                 "v.version, v.validation"),
        ("code", "pp.published()[['version', 'description', 'ic_mean_1p', 'ic_window']]"),
        ("code", "try:\n    pp.publish('broken', 'mavg(close, ')\nexcept ValueError as e:\n    print(e)"),
    ],
    "03_backtest_study.ipynb": [
        ("md", "# Backtest study: choose in-sample, judge out-of-sample\nParameters picked on the "
               "same data they are judged on always look good. Here the sweep picks the moving "
               "averages on the first two thirds of the history (in-sample) and the choice is then "
               "judged on the last third (out-of-sample), which it has never seen."),
        ("code", "import pyplatform as pp\n"
                 "days = pp.bars(freq='1d').index.get_level_values('datetime').unique().sort_values()\n"
                 "split = days[int(len(days) * 2 / 3)]\n"
                 "print(f'in-sample {days[0]:%Y-%m-%d} to {split:%Y-%m-%d}, out-of-sample {split:%Y-%m-%d} to {days[-1]:%Y-%m-%d}')"),
        ("code", "ins = pp.sweep([2, 3, 5], [10, 15], end=split, freq='1d')\n"
                 "best = tuple(int(x) for x in ins.groupby(['fast', 'slow'])['sharpe'].mean().idxmax())\n"
                 "ins.groupby(['fast', 'slow'])['sharpe'].mean().sort_values(ascending=False).head()"),
        ("code", "outs = pp.sweep([2, 3, 5], [10, 15], start=split, freq='1d')\n"
                 "import pandas as pd\n"
                 "table = pd.DataFrame({'in-sample': ins.groupby(['fast', 'slow'])['sharpe'].mean(),\n"
                 "                      'out-of-sample': outs.groupby(['fast', 'slow'])['sharpe'].mean()})\n"
                 "table.loc[[best]]"),
        ("md", "The in-sample Sharpe of the chosen pair is the best of the grid by construction; its "
               "out-of-sample Sharpe is the honest estimate. On a synthetic random-walk market the "
               "out-of-sample number is expected to fall towards zero: the in-sample edge was noise."),
        ("code", "rank = table['out-of-sample'].rank(ascending=False)[best]\n"
                 "print(f'chosen {best}: in-sample Sharpe {table.loc[best, \"in-sample\"]:+.2f}, '\n"
                 "      f'out-of-sample {table.loc[best, \"out-of-sample\"]:+.2f} (rank {int(rank)} of {len(table)} out of sample)')"),
        ("md", "## The chosen pair through the live code, out of sample\nEvent-driven: factor engine, "
               "strategy, risk, order manager and paper broker under a simulated clock, with latency, "
               "slippage and fees, on the out-of-sample dates only."),
        ("code", "sym = outs.index.get_level_values('symbol')[0]\n"
                 "res = pp.run_backtest({'kind': 'ma_cross', 'params': {'fast': best[0], 'slow': best[1]}},\n"
                 "                      symbols=[sym], start=split, freq='1d', save=True)\nres"),
        ("code", "res.metrics"),
        ("md", "## A drafted strategy runs too\nA plain-English rule becomes a `rule` strategy that the "
               "same backtest runs."),
        ("code", "d = pp.draft_strategy(f'buy {sym.split(\".\")[0]} when the close crosses above the 10-day moving average, '\n"
                 "                       'sell on the reverse cross, 10% position per trade, stop loss 5%')\n"
                 "d"),
        ("code", "pp.run_backtest(d.to_config(), start=split, freq='1d').metrics"),
    ],
    "04_live_subscription.ipynb": [
        ("md", "# Live factor values in a notebook\nWhen the platform runs (`make demo`), subscribe to its "
               "signal service with `pp.subscribe(topic, symbols, url=..., token=...)`. Here a local "
               "service replays history through the live factor engine so the notebook is self-contained."),
        ("code", "import pyplatform as pp\nfrom pyplatform.clock import LiveClock\nfrom pyplatform.research.live_view import LocalService\n"
                 "svc = LocalService({'mom_5': 'close / move(close, 5) - 1', 'z_10': 'zscore(close, 10)'},\n"
                 "                   clock=LiveClock()).start()\n"
                 "svc.url"),
        ("code", "view = pp.subscribe(['factors:mom_5', 'factors:z_10'], '*', url=svc.url, token=svc.token)\n"
                 "assert view.wait(20, timeout=60)\nview"),
        ("md", "Rows carry their **bar's time** (this local service replays daily history), and rows "
               "still warming up (no value yet) are not published."),
        ("code", "view.latest()"),
        ("code", "from pyplatform.plots import factor_values_figure\n"
                 "df = view.frame()\nfactor_values_figure(df['z_10'].dropna(), name='z_10 (live)')"),
        ("code", "view.stop(); svc.stop()\nview.received"),
    ],
    "05_model_factor.ipynb": [
        ("md", "# A learned factor\nTrain walk-forward on factor values, evaluate out of sample, "
               "export to ONNX, publish to the live engine, and decide honestly about INT8 (CPU; "
               "TensorRT on a GPU)."),
        ("code", "from pyplatform.models.factor import train_model_factor\n"
                 "inputs = ['close / move(close, 5) - 1', 'zscore(close, 10)', 'mstd(close / prev(close) - 1, 10)']\n"
                 "res = train_model_factor('mlp_alpha', inputs, horizon=3, n_splits=2, publish=True)\n"
                 "print(res.summary())"),
        ("code", "res.folds"),
        ("md", "## INT8 or FP32?\nWhat is published is the **FP32** model (the registry stores "
               "`model.onnx`). The INT8 export is only worth using for inference when it predicts what "
               "FP32 predicts; its relative error below is measured on the training inputs. Above a "
               "few percent INT8 ranks names differently, so this notebook says so instead of using it."),
        ("code", "tolerance = 0.05\n"
                 "err = res.int8_rel_error\n"
                 "use_int8 = err is not None and err <= tolerance\n"
                 "print(f'INT8 mean relative error vs FP32: {err:.1%} -> '\n"
                 "      + ('close enough: INT8 may serve this factor' if use_int8 else\n"
                 "         'too far from FP32: keep serving the published FP32 model, do not deploy the INT8 file'))"),
        ("code", "import pyplatform as pp\npp.published()[['version', 'expression', 'ic_mean_1p', 'ic_window']]"),
    ],
}


def build(execute: bool = False, data_dir: str | None = None) -> None:
    """Write the notebooks; with ``execute`` run each against a market and save its outputs
    (so a reader on GitHub sees the results). Without ``data_dir`` a small market is generated
    into a temporary directory (the same shape the tests use)."""
    import os
    import shutil
    import tempfile

    tmp = None
    if execute and data_dir is None:
        from pyplatform.data import generate_market

        tmp = tempfile.mkdtemp(prefix="pp-nb-")
        data_dir = os.path.join(tmp, "data")
        generate_market(data_dir, n_symbols=8, start="2024-01-01", end="2024-05-01", tick_days=1, seed=11,
                        progress=False)
    try:
        for name, cells in NOTEBOOKS.items():
            nb = nbf.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
                        for kind, src in cells]
            if execute:
                from nbclient import NotebookClient

                work = tempfile.mkdtemp(prefix="pp-nb-run-")
                run_dir = os.path.join(work, "data")
                shutil.copytree(data_dir, run_dir)  # each notebook starts from the same market
                old = os.environ.get("PYPLATFORM_DATA_DIR")
                os.environ["PYPLATFORM_DATA_DIR"] = run_dir
                try:
                    NotebookClient(nb, timeout=300, kernel_name="python3",
                                   resources={"metadata": {"path": work}}).execute()
                finally:
                    if old is None:
                        os.environ.pop("PYPLATFORM_DATA_DIR", None)
                    else:
                        os.environ["PYPLATFORM_DATA_DIR"] = old
                    shutil.rmtree(work, ignore_errors=True)
            nbf.write(nb, HERE / name)
            print(f"wrote {name}" + (" (executed, outputs saved)" if execute else ""))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--execute", action="store_true", help="run each notebook and save its outputs")
    ap.add_argument("--data-dir", help="market to run against (default: generate a small one)")
    a = ap.parse_args()
    build(a.execute, a.data_dir)
