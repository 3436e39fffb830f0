"""The factor language's limits on hostile or accidental input, in one place.

Every limit is checked before anything recursive runs over the text or the tree, and each
error says which limit was hit and why it exists (see ``docs/factors.md``, "Limits").

- ``MAX_TEXT_CHARS``: characters of expression text (bounds the parser's time and memory).
- ``MAX_DEPTH``: nesting depth of the tree (operators, calls, parentheses all count). The
  tree is walked recursively by the runtimes and by ``str``; 100 keeps every walk far from
  Python's recursion limit. A 600-term ``a + b + ...`` chain is 600 deep: write it as nested
  sums of shorter chains, or as ``msum`` over a column.
- ``MAX_NODES``: nodes of the tree (numbers, columns, operators, calls).
- ``MAX_WINDOW``: the largest window or step count of any function (DolphinDB's cap on
  m-function windows inside streaming engines).
- ``MAX_STATE_BYTES``: stream state one function call may hold *per symbol* (the ring of the
  window plus its aggregates; ``state_floats``). 2 MiB per symbol is 10 GiB for 5,000
  symbols; the error names the largest window that fits. (``mmax(x, 102400)`` would need
  2.3 MiB per symbol, 12 GB at 5,000 symbols.)
"""

from __future__ import annotations

__all__ = ["MAX_TEXT_CHARS", "MAX_DEPTH", "MAX_NODES", "MAX_WINDOW", "MAX_STATE_BYTES", "state_floats"]

MAX_TEXT_CHARS = 10_000
MAX_DEPTH = 100
MAX_NODES = 2_000
MAX_WINDOW = 102_400
MAX_STATE_BYTES = 2 << 20

from pyplatform.factors.primitives import state_floats  # noqa: E402 - the state layouts live with the primitives
