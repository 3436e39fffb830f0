"""The DolphinDB backend: the same pipeline deployed to a DolphinDB server or cluster.

- ``dolphindb_scripts/*.dos`` (templates) rendered by :mod:`~pyplatform.dolphindb.render`
  and checked by :mod:`~pyplatform.dolphindb.plan` against the documented signatures in
  :mod:`~pyplatform.dolphindb.signatures`;
- :class:`~pyplatform.dolphindb.deployer.Deployer`: deploy / undeploy / status / publish;
- :class:`~pyplatform.dolphindb.store.DolphinDBStore`: the history store on DFS tables;
- :class:`~pyplatform.dolphindb.ingest.TickWriter`: ticks through MultithreadedTableWriter;
- :class:`~pyplatform.dolphindb.subscriber.SignalSubscriber`: signals to risk, resumed by offset.

Selected by configuration (``PYPLATFORM_DOLPHINDB_URI=dolphindb://host:port``). The
``dolphindb`` client package is imported only by the parts that talk to a server.
"""

from __future__ import annotations

from pyplatform.dolphindb.connection import DolphinDBTarget, connect, parse_uri, target_from_settings
from pyplatform.dolphindb.render import DeployConfig, FactorMetric, render_scripts

__all__ = ["DolphinDBTarget", "connect", "parse_uri", "target_from_settings", "DeployConfig",
           "FactorMetric", "render_scripts"]
