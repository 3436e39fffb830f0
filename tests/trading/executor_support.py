"""QuickFIX's example executor as a test venue: fetched by the project's script, run on loopback.

The executor (``examples/executor/C++`` of QuickFIX 1.15, as Debian ships it) fills every
limit NewOrderSingle at once and in full (ExecType F, OrdStatus 2, LastQty/LastPx/AvgPx, no
TransactTime), refuses other order types with a session Reject and any other application
message with a BusinessMessageReject. Its ExecIDs and OrderIDs count from 1 per process.
It prints every message it sends and receives, which is the oracle the tests compare
positions with: what the venue says it executed, parsed from its own output.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "scripts" / "fetch_quickfix_executor.sh"
_MSG = re.compile(r"8=FIX\.4\.4\x01.*?\x0110=\d{3}\x01")


def fetch_executor() -> Path:
    """The cache folder with ``executor`` and ``lib/`` (fetched on first use, then reused)."""
    out = subprocess.run(["bash", str(FETCH)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{FETCH} failed ({out.returncode}): {out.stderr.strip()}")
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fields(raw: str) -> dict[int, str]:
    return {int(k): v for k, _, v in (f.partition("=") for f in raw.strip("\x01").split("\x01"))}


class Executor:
    """One executor process at a time, restartable with a different reset policy."""

    def __init__(self, cache: Path, directory: Path, port: int, dictionary: Path,
                 sender: str = "EXECUTOR", target: str = "PYPLATFORM") -> None:
        self.cache, self.dir, self.port, self.dictionary = cache, directory, port, dictionary
        self.sender, self.target = sender, target
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.dir.mkdir(parents=True, exist_ok=True)

    def start(self, reset_on_logon: bool = False) -> "Executor":
        self.runs += 1
        cfg = self.dir / f"executor{self.runs}.cfg"
        cfg.write_text("\n".join([
            "[DEFAULT]", "ConnectionType=acceptor", f"FileStorePath={self.dir / 'store'}",
            "StartTime=00:00:00", "EndTime=00:00:00", "UseDataDictionary=Y", f"DataDictionary={self.dictionary}",
            f"ResetOnLogon={'Y' if reset_on_logon else 'N'}", f"SocketAcceptPort={self.port}",
            "SocketAcceptAddress=127.0.0.1", "SocketReuseAddress=Y", "", "[SESSION]", "BeginString=FIX.4.4",
            f"SenderCompID={self.sender}", f"TargetCompID={self.target}", ""]))
        env = dict(os.environ, LD_LIBRARY_PATH=str(self.cache / "lib"))
        out = open(self.dir / f"executor{self.runs}.out", "wb")
        self.proc = subprocess.Popen([str(self.cache / "executor"), str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        out.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # listening?
            if self.proc.poll() is not None:
                raise RuntimeError(f"executor exited with {self.proc.returncode}: {self.output(self.runs)[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("executor did not start listening within 20s")

    def kill(self) -> None:
        """SIGKILL: no logout, no flush -- a venue that crashed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def output(self, run: int) -> str:
        return (self.dir / f"executor{run}.out").read_bytes().decode("latin-1")

    def sent(self, msg_type: str) -> list[dict[int, str]]:
        """Every message of ``msg_type`` the executor sent, across all its runs."""
        out = []
        for run in range(1, self.runs + 1):
            for m in _MSG.findall(self.output(run)):
                f = fields(m)
                if f.get(35) == msg_type and f.get(49) == self.sender:
                    out.append(f)
        return out

    def positions(self) -> dict[str, Decimal]:
        """Signed quantity per symbol from the executor's own ExecutionReports (trades only)."""
        pos: dict[str, Decimal] = {}
        for f in self.sent("8"):
            if f.get(150) in ("F", "1", "2"):
                sign = 1 if f[54] == "1" else -1
                pos[f[55]] = pos.get(f[55], Decimal(0)) + sign * Decimal(f[32])
        return {s: q for s, q in pos.items() if q}
