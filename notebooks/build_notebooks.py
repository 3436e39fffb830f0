"""Builds the researcher notebooks from the cell lists below (source of truth, diff-friendly).

Run ``python notebooks/build_notebooks.py`` after editing; the tests execute every
``notebooks/*.ipynb`` top to bottom against a generated market.
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
                 "hourly = pp.bars([sym], start=day, end=day + pp.api.pd.Timedelta(days=1), freq='1h')\nhourly"),
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
        ("md", "## Evaluate: rank IC, decay, quantile returns, turnover"),
        ("code", "ev = pp.evaluate(expr, horizons=(1, 5), quantiles=3)\nev"),
        ("code", "ev.decay"),
        ("code", "figs = pp.factor_figures(ev, values=rev['factor'])\nsorted(figs)"),
        ("code", "figs['quantiles']"),
        ("md", "## Compare with library factors"),
        ("code", "from pyplatform.research.evaluation import factor_correlation\n"
                 "lib = pp.library().index[:3]\n"
                 "factors = {'rev': rev['factor'], **{n: pp.factor(n)[n] for n in lib}}\n"
                 "factor_correlation(factors).round(2)"),
        ("md", "## Publish\nValidated (parses, live and research runtimes agree on recent history), "
               "versioned, and picked up by the running engine."),
        ("code", "v = pp.publish('rev10', expr, description='10-day reversal z-score', tags=['mean-reversion'])\n"
                 "v.version, v.validation"),
        ("code", "pp.published()"),
        ("code", "try:\n    pp.publish('broken', 'mavg(close, ')\nexcept ValueError as e:\n    print(e)"),
    ],
    "03_backtest_study.ipynb": [
        ("md", "# Backtest study with a parameter sweep\nThe vectorised path sweeps a grid; "
               "the event-driven backtest runs the live strategy, risk and order code."),
        ("code", "import pyplatform as pp\nsweep = pp.sweep([3, 5, 10], [20, 30, 50], freq='1d')\n"
                 "sweep.sort_values('sharpe', ascending=False).head()"),
        ("code", "best = sweep.groupby(['fast', 'slow'])['sharpe'].mean().idxmax()\nbest"),
        ("code", "from pyplatform.backtest.vectorized import dual_ma_returns\n"
                 "sym = sweep.index.get_level_values('symbol')[0]\n"
                 "b = pp.bars([sym], freq='1d').xs(sym, level='symbol')\n"
                 "r = dual_ma_returns(b['open'].to_numpy(), b['close'].to_numpy(), *best)\n"
                 "from pyplatform.plots import equity_figure\n"
                 "equity = (1 + pp.api.pd.Series(r, index=b.index)).cumprod()\n"
                 "equity_figure({f'{sym} {best}': equity})"),
        ("md", "## The same strategy through the live code\nEvent-driven: factor engine, strategy, risk, "
               "order manager and paper broker under a simulated clock, with latency, slippage and fees."),
        ("code", "res = pp.backtest({'kind': 'ma_cross', 'params': {'fast': int(best[0]), 'slow': int(best[1])}},\n"
                 "                  symbols=[sym], freq='1d', save=True)\nres"),
        ("code", "res.metrics"),
        ("code", "res.report()"),
    ],
    "04_live_subscription.ipynb": [
        ("md", "# Live factor values in a notebook\nWhen the platform runs (`make demo`), subscribe to its "
               "signal service with `pp.subscribe(topic, symbols, url=..., token=...)`. Here a local "
               "service replays history through the live factor engine so the notebook is self-contained."),
        ("code", "import pyplatform as pp\nfrom pyplatform.research.live import LocalService\n"
                 "svc = LocalService({'mom_5': 'close / move(close, 5) - 1', 'z_10': 'zscore(close, 10)'}).start()\n"
                 "svc.url"),
        ("code", "view = pp.subscribe(['factors:mom_5', 'factors:z_10'], '*', url=svc.url, token=svc.token)\n"
                 "assert view.wait(20, timeout=60)\nview"),
        ("code", "view.latest()"),
        ("code", "from pyplatform.plots import factor_values_figure\n"
                 "df = view.frame()\nfactor_values_figure(df['z_10'].dropna(), name='z_10 (live)')"),
        ("code", "view.stop(); svc.stop()\nview.received"),
    ],
    "05_model_factor.ipynb": [
        ("md", "# A learned factor\nTrain walk-forward on factor values, evaluate out of sample, "
               "export to ONNX, publish to the live engine (CPU; TensorRT on a GPU)."),
        ("code", "from pyplatform.models.factor import train_model_factor\n"
                 "inputs = ['close / move(close, 5) - 1', 'zscore(close, 10)', 'mstd(close / prev(close) - 1, 10)']\n"
                 "res = train_model_factor('mlp_alpha', inputs, horizon=3, n_splits=2, publish=True)\n"
                 "print(res.summary())"),
        ("code", "res.folds"),
        ("code", "import pyplatform as pp\npp.published()"),
    ],
}


def build() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
                    for kind, src in cells]
        nbf.write(nb, HERE / name)


if __name__ == "__main__":
    build()
