"""quickfix session settings: written into a directory, loopback by default."""

from __future__ import annotations

import socket
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FixSessionConfig", "free_port", "data_dictionary", "copy_session_id"]


def copy_session_id(sid):
    """An owned copy of a quickfix ``SessionID`` (callbacks pass references into the session)."""
    import quickfix as fix

    return fix.SessionID(sid.getBeginString().getValue(), sid.getSenderCompID().getValue(),
                         sid.getTargetCompID().getValue())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind to 0 and ask)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def data_dictionary() -> Path:
    """The FIX 4.4 data dictionary shipped with the quickfix wheel."""
    candidates = [Path(sysconfig.get_path("data")) / "share" / "quickfix" / "FIX44.xml"]
    try:
        import quickfix

        candidates.append(Path(quickfix.__file__).parent / "spec" / "FIX44.xml")
    except ImportError:  # pragma: no cover
        pass
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"FIX44.xml not found (looked in {', '.join(map(str, candidates))})")


@dataclass(frozen=True, slots=True)
class FixSessionConfig:
    """One FIX 4.4 session, either end.

    Parameters
    ----------
    directory : Path
        Holds the settings file, the FileStore (sequence numbers and sent messages,
        persisted across restarts) and the message logs.
    role : str
        ``initiator`` (the broker adapter) or ``acceptor`` (the exchange simulator).
    """

    directory: Path
    role: str
    port: int
    host: str = "127.0.0.1"
    sender_comp_id: str = "PYPLATFORM"
    target_comp_id: str = "SIMEX"
    heartbeat_s: int = 30
    reconnect_s: int = 1
    log_messages: bool = True

    def write(self) -> Path:
        """Write ``<directory>/<role>.cfg`` and return its path."""
        d = Path(self.directory)
        (d / "store").mkdir(parents=True, exist_ok=True)
        (d / "log").mkdir(parents=True, exist_ok=True)
        lines = [
            "[DEFAULT]",
            f"ConnectionType={self.role}",
            f"FileStorePath={d / 'store'}",
            f"FileLogPath={d / 'log'}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            f"DataDictionary={data_dictionary()}",
            "PersistMessages=Y",
            "ResetOnLogon=N",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "ValidateUserDefinedFields=N",
            "",
            "[SESSION]",
            "BeginString=FIX.4.4",
            f"SenderCompID={self.sender_comp_id}",
            f"TargetCompID={self.target_comp_id}",
        ]
        if self.role == "initiator":
            lines += [f"SocketConnectHost={self.host}", f"SocketConnectPort={self.port}",
                      f"HeartBtInt={self.heartbeat_s}", f"ReconnectInterval={self.reconnect_s}"]
        elif self.role == "acceptor":
            lines += [f"SocketAcceptPort={self.port}", f"SocketAcceptAddress={self.host}"]
        else:
            raise ValueError(f"FIX role must be 'initiator' or 'acceptor', got {self.role!r}")
        path = d / f"{self.role}.cfg"
        path.write_text("\n".join(lines) + "\n")
        return path
