"""quickfix session settings: written into a directory, loopback by default."""

from __future__ import annotations

import socket
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FixSessionConfig", "free_port", "data_dictionary", "copy_session_id", "parse_venue"]


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


_YES = {"y": True, "yes": True, "true": True, "1": True, "n": False, "no": False, "false": False, "0": False}


def _flag(key: str, text: str) -> bool:
    try:
        return _YES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"session setting {key}={text!r}: expected Y or N") from None


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
    port, host : int, str
        Where the venue listens (initiator) or where to listen (acceptor).
    sender_comp_id, target_comp_id : str
        SenderCompID(49)/TargetCompID(56) as agreed with the counterparty.
    heartbeat_s, reconnect_s : int
        HeartBtInt(108) and the initiator's reconnect interval.
    reset_on_logon, reset_on_logout, reset_on_disconnect : bool
        quickfix's ResetOnLogon/ResetOnLogout/ResetOnDisconnect: start sequence numbers
        again at 1 on that occasion (our logon then carries ResetSeqNumFlag 141=Y). Match
        what the venue does; the default (N) keeps them, so missed reports are resent.
    store_path : Path, optional
        FileStorePath (default ``<directory>/store``).
    dictionary : Path, optional
        The FIX 4.4 data dictionary (default: the one shipped with the quickfix wheel). The
        codec takes which tags are required from the same file.
    extra : tuple of (key, value)
        Further quickfix settings written into the ``[SESSION]`` section as they are.
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
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    store_path: Path | None = None
    dictionary: Path | None = None
    extra: tuple = ()

    def __post_init__(self) -> None:
        if self.role not in ("initiator", "acceptor"):
            raise ValueError(f"FIX role must be 'initiator' or 'acceptor', got {self.role!r}")
        if not (0 < int(self.port) < 65536):
            raise ValueError(f"FIX session port must be 1..65535, got {self.port!r}")
        for name in ("sender_comp_id", "target_comp_id"):
            if not getattr(self, name):
                raise ValueError(f"FIX session {name} must not be empty")

    @property
    def session_name(self) -> str:
        """``FIX.4.4:SENDER->TARGET``, quickfix's own spelling of the session id."""
        return f"FIX.4.4:{self.sender_comp_id}->{self.target_comp_id}"

    @property
    def dictionary_path(self) -> Path:
        return Path(self.dictionary) if self.dictionary is not None else data_dictionary()

    def write(self) -> Path:
        """Write ``<directory>/<role>.cfg`` and return its path."""
        d = Path(self.directory)
        store = Path(self.store_path) if self.store_path is not None else d / "store"
        store.mkdir(parents=True, exist_ok=True)
        (d / "log").mkdir(parents=True, exist_ok=True)
        yn = {True: "Y", False: "N"}
        lines = [
            "[DEFAULT]",
            f"ConnectionType={self.role}",
            f"FileStorePath={store}",
            f"FileLogPath={d / 'log'}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            f"DataDictionary={self.dictionary_path}",
            "PersistMessages=Y",
            f"ResetOnLogon={yn[self.reset_on_logon]}",
            f"ResetOnLogout={yn[self.reset_on_logout]}",
            f"ResetOnDisconnect={yn[self.reset_on_disconnect]}",
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
        else:
            lines += [f"SocketAcceptPort={self.port}", f"SocketAcceptAddress={self.host}"]
        lines += [f"{k}={v}" for k, v in self.extra]
        path = d / f"{self.role}.cfg"
        path.write_text("\n".join(lines) + "\n")
        return path

    @classmethod
    def from_file(cls, path: str | Path, directory: str | Path | None = None, **overrides) -> "FixSessionConfig":
        """Read our end of a session from a quickfix settings file.

        The file is the usual quickfix format (``[DEFAULT]`` then one ``[SESSION]``;
        ``#`` comments). Keys this class models become fields (SenderCompID,
        TargetCompID, SocketConnectHost/Port, HeartBtInt, ReconnectInterval, the three
        Reset flags, FileStorePath, DataDictionary); any other session key is kept in
        ``extra``. Keys that the adapter sets itself (ConnectionType, UseDataDictionary,
        logs, schedule) are ignored. ``directory`` (default: next to the file) holds the
        written settings and logs.

        Raises
        ------
        ValueError
            Naming the file and the key when something required is missing or malformed.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"FIX session file {path} does not exist")
        sections: list[tuple[str, dict[str, str]]] = []
        for no, raw in enumerate(path.read_text().splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                sections.append((line[1:-1].strip().upper(), {}))
                continue
            if "=" not in line or not sections:
                raise ValueError(f"{path}:{no}: expected KEY=VALUE inside a [DEFAULT] or [SESSION] section, got {raw!r}")
            k, _, v = line.partition("=")
            sections[-1][1][k.strip()] = v.strip()
        merged: dict[str, str] = {}
        for name, kv in sections:
            if name == "DEFAULT":
                merged.update(kv)
        sessions = [kv for name, kv in sections if name == "SESSION"]
        if len(sessions) != 1:
            raise ValueError(f"{path}: expected exactly one [SESSION] section, found {len(sessions)}")
        merged.update(sessions[0])
        role = merged.get("ConnectionType", "initiator").lower()
        if role != "initiator":
            raise ValueError(f"{path}: ConnectionType={role}: the broker connects to a venue, it must be initiator")
        if merged.get("BeginString", "FIX.4.4") != "FIX.4.4":
            raise ValueError(f"{path}: BeginString={merged['BeginString']}: only FIX.4.4 is supported")

        def need(key: str) -> str:
            if key not in merged:
                raise ValueError(f"{path}: {key} missing")
            return merged[key]

        def num(key: str, default: int) -> int:
            text = merged.get(key, str(default))
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{path}: {key}={text!r} is not an integer") from None

        known = {"ConnectionType", "BeginString", "SenderCompID", "TargetCompID", "SocketConnectHost",
                 "SocketConnectPort", "HeartBtInt", "ReconnectInterval", "ResetOnLogon", "ResetOnLogout",
                 "ResetOnDisconnect", "FileStorePath", "DataDictionary", "UseDataDictionary", "FileLogPath",
                 "StartTime", "EndTime", "PersistMessages", "ValidateUserDefinedFields"}
        kw = dict(
            directory=Path(directory) if directory is not None else path.parent / f"{path.stem}.session",
            role="initiator", port=int(need("SocketConnectPort")) if need("SocketConnectPort").isdigit()
            else num("SocketConnectPort", 0),
            host=merged.get("SocketConnectHost", "127.0.0.1"), sender_comp_id=need("SenderCompID"),
            target_comp_id=need("TargetCompID"), heartbeat_s=num("HeartBtInt", 30),
            reconnect_s=num("ReconnectInterval", 1),
            reset_on_logon=_flag("ResetOnLogon", merged.get("ResetOnLogon", "N")),
            reset_on_logout=_flag("ResetOnLogout", merged.get("ResetOnLogout", "N")),
            reset_on_disconnect=_flag("ResetOnDisconnect", merged.get("ResetOnDisconnect", "N")),
            store_path=Path(merged["FileStorePath"]) if "FileStorePath" in merged else None,
            dictionary=Path(merged["DataDictionary"]) if "DataDictionary" in merged else None,
            extra=tuple((k, v) for k, v in merged.items() if k not in known),
        )
        kw.update(overrides)
        return cls(**kw)


def parse_venue(spec: str, directory: str | Path, **overrides) -> FixSessionConfig:
    """Our initiator's session from ``--venue``: a quickfix settings file or ``host:port``.

    ``overrides`` (sender_comp_id, target_comp_id, reset_on_logon, ...) win over the file.

    Raises
    ------
    ValueError
        When ``spec`` is neither an existing file nor ``host:port`` with a numeric port.
    """
    p = Path(spec)
    if p.is_file():
        return FixSessionConfig.from_file(p, directory, **overrides)
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--venue {spec!r}: expected a quickfix session file or HOST:PORT (e.g. 127.0.0.1:9878)")
    return FixSessionConfig(Path(directory), "initiator", int(port), host, **overrides)
