"""Plot functions returning Plotly figures, shared by the notebook API and the Dash app.

Every function takes frames (never a store handle) and returns a ``plotly.graph_objects.Figure``
in the platform's dark template, so ``fig.show()`` in Jupyter and ``dcc.Graph(figure=fig)`` in
Dash draw the same picture.
"""

from pyplatform.plots.backtest import (
    drawdown, drawdown_figure, equity_figure, monthly_returns, monthly_returns_figure, trades_figure,
)
from pyplatform.plots.downsample import LADDER, TIMEFRAMES, aggregate_ohlcv, choose_timeframe, timeframe
from pyplatform.plots.factors import (
    correlation_figure, factor_values_figure, ic_comparison_figure, ic_decay_figure, ic_figure,
    quantile_returns_figure, turnover_figure,
)
from pyplatform.plots.price_charts import bar_labels, candlestick_figure, depth_figure, intraday_figure
from pyplatform.plots.theme import TEMPLATE, empty_figure, register_template

__all__ = [
    "TEMPLATE", "register_template", "empty_figure",
    "LADDER", "TIMEFRAMES", "timeframe", "aggregate_ohlcv", "choose_timeframe",
    "bar_labels", "candlestick_figure", "intraday_figure", "depth_figure",
    "factor_values_figure", "ic_figure", "ic_decay_figure", "quantile_returns_figure", "turnover_figure",
    "correlation_figure", "ic_comparison_figure",
    "drawdown", "monthly_returns", "equity_figure", "drawdown_figure", "monthly_returns_figure", "trades_figure",
]
