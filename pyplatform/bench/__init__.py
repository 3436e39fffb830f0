"""Benchmarks of the hot paths, each beside the obvious alternative (``pyplatform bench``).

One module per area; each has a ``register(app)`` that adds its commands to the
``pyplatform bench`` Typer app (:mod:`pyplatform.cli.bench` lists them) and a ``--quick``
form the tests run. :mod:`~pyplatform.bench.report` holds what they share: medians of timed
runs, ratios, Markdown tables and the machine line.

Baselines (the naive implementations the figures are ratios against) live here as
functions or subclasses of the production classes, never as flags on them. The bench sits
above every domain package: it imports them, none of them imports it.

Importing a bench module is cheap (standard library and Typer): NumPy, pandas and the
domain code are imported when a benchmark runs, so ``pyplatform --help`` does not pay for them.
"""
