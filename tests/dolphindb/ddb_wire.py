"""A loopback endpoint speaking enough of DolphinDB's API protocol to record what a client sends.

It is NOT a DolphinDB server: it executes nothing. It accepts the official ``dolphindb``
client's connection (``API 0 <len> / <flags>\\nconnect\\nlogin\\n<user>\\n<password>\\n...``,
answered ``<session> 0 1\\nOK\\n``), then records every request -- ``script`` bodies,
``function`` calls with their serialized arguments decoded to (form, type, value), and
``variable`` uploads -- and answers each one from a list of scripted replies (default: no
object, i.e. ``None`` on the client).

Protocol notes (read from dolphindb/api-java ``DBConnection.java`` and by watching what the
installed ``dolphindb`` 3.0.x client sends):

* request  ``API[2] <session> <bodyLength>[ / <flag>_1_<priority>_<parallelism>[__<fetch>]]\\n<body>``
  with body ``script\\n<text>``, ``function\\n<name>\\n<nargs>\\n<littleEndian>`` + arguments,
  or ``variable\\n<names>\\n<n>\\n<littleEndian>`` + objects;
* reply    ``<session> <nObjects> <littleEndian>\\n`` then ``OK\\n`` (or the error message
  line), then the object: a little-endian short ``form << 8 | type`` and the data.

The server runs in its own PROCESS (``python ddb_wire.py <log> <replies>``): several client
calls (``MultithreadedTableWriter(...)``, ``TableAppender(...)``) hold the GIL while they
wait for the server, so a server thread in the test process would never answer them.
Each request becomes one JSON line in the log file; :class:`WireServer` starts the process,
reads the log back and shuts it down.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

__all__ = ["WireServer", "TYPES", "FORMS", "encode", "decode"]

TYPES = {0: "VOID", 1: "BOOL", 2: "CHAR", 3: "SHORT", 4: "INT", 5: "LONG", 6: "DATE", 7: "MONTH",
         8: "TIME", 9: "MINUTE", 10: "SECOND", 11: "DATETIME", 12: "TIMESTAMP", 13: "NANOTIME",
         14: "NANOTIMESTAMP", 15: "FLOAT", 16: "DOUBLE", 17: "SYMBOL", 18: "STRING", 19: "UUID",
         20: "FUNCTIONDEF", 21: "HANDLE", 22: "CODE", 23: "DATASOURCE", 24: "RESOURCE", 25: "ANY",
         27: "DICTIONARY", 28: "DATEHOUR", 30: "IPADDR", 31: "INT128", 32: "BLOB"}
TYPE_CODES = {v: k for k, v in TYPES.items()}
FORMS = {0: "SCALAR", 1: "VECTOR", 2: "PAIR", 3: "MATRIX", 4: "SET", 5: "DICTIONARY", 6: "TABLE"}
_FIXED = {"VOID": ("b", 1), "BOOL": ("b", 1), "CHAR": ("b", 1), "SHORT": ("h", 2), "INT": ("i", 4),
          "LONG": ("q", 8), "DATE": ("i", 4), "MONTH": ("i", 4), "TIME": ("i", 4), "MINUTE": ("i", 4),
          "SECOND": ("i", 4), "DATETIME": ("i", 4), "TIMESTAMP": ("q", 8), "NANOTIME": ("q", 8),
          "NANOTIMESTAMP": ("q", 8), "FLOAT": ("f", 4), "DOUBLE": ("d", 8), "DATEHOUR": ("i", 4)}
_NULL = {"b": -128, "h": -32768, "i": -2**31, "q": -2**63}


# ------------------------------------------------------------------ decoding (client -> us)
class _Reader:
    """Reads objects from ``data``, asking ``more()`` for further bytes (a socket) when short."""

    def __init__(self, data: bytes, more=None):
        self.data, self.pos, self.more = data, 0, more

    def _need(self, n: int) -> None:
        while self.pos + n > len(self.data):
            chunk = self.more() if self.more else b""
            if not chunk:
                raise EOFError("short object")
            self.data += chunk

    def take(self, n: int) -> bytes:
        self._need(n)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))

    def cstring(self) -> str:
        while b"\x00" not in self.data[self.pos:]:
            self._need(len(self.data) - self.pos + 1)
        end = self.data.index(b"\x00", self.pos)
        out = self.data[self.pos:end].decode("utf-8", "replace")
        self.pos = end + 1
        return out


def _values(r: _Reader, typ: str, n: int, extended: bool = False) -> list:
    if typ in ("STRING", "SYMBOL") and extended:  # symbol base: id, size, strings, then indexes
        r.unpack("i")
        size = r.unpack("i")[0]
        base = [r.cstring() for _ in range(size)]
        return [base[i] for i in r.unpack(f"{n}i")] if n else []
    if typ in ("STRING", "SYMBOL", "CODE", "FUNCTIONDEF"):
        return [r.cstring() for _ in range(n)]
    if typ == "BLOB":
        out = []
        for _ in range(n):
            out.append(r.take(r.unpack("i")[0]).decode("utf-8", "replace"))
        return out
    if typ in ("UUID", "INT128", "IPADDR"):
        return [r.take(16).hex() for _ in range(n)]
    fmt, _ = _FIXED[typ]
    vals = list(r.unpack(f"{n}{fmt}")) if n else []
    null = _NULL.get(fmt)
    # DOUBLE/FLOAT NULL is -DBL_MAX / -FLT_MAX on the wire
    return [None if (v == null or (fmt in "fd" and (v != v or v <= -3.4e38))) else v for v in vals]


def _decode(r: _Reader) -> dict:
    flag = r.unpack("h")[0]
    typ_code, form_code = flag & 0xFF, flag >> 8
    extended = typ_code >= 128
    typ = TYPES.get(typ_code - 128 if extended else typ_code, f"TYPE{typ_code}")
    form = FORMS.get(form_code, f"FORM{form_code}")
    if form == "SCALAR":
        if typ == "FUNCTIONDEF":
            r.take(1)
        return {"form": form, "type": typ, "value": _values(r, typ, 1)[0]}
    if form in ("VECTOR", "PAIR", "SET", "MATRIX"):
        if form == "SET":
            return dict(_decode(r), form="SET")
        if form == "MATRIX":
            r.take(1)  # label flags (no labels from the API)
        rows, cols = r.unpack("ii")
        n = rows * cols
        if typ == "ANY":
            return {"form": form, "type": typ, "value": [_decode(r) for _ in range(n)]}
        return {"form": form, "type": typ, "value": _values(r, typ, n, extended), "rows": rows}
    if form == "DICTIONARY":
        keys, values = _decode(r), _decode(r)
        return {"form": form, "type": typ, "keys": keys, "values": values}
    if form == "TABLE":
        rows, cols = r.unpack("ii")
        name = r.cstring()
        names = [r.cstring() for _ in range(cols)]
        columns = [_decode(r) for _ in range(cols)]
        return {"form": form, "type": typ, "name": name, "rows": rows,
                "columns": {n: {"type": c["type"], "value": c.get("value")} for n, c in zip(names, columns)}}
    raise ValueError(f"cannot decode form {form}")


def decode(data: bytes, count: int) -> list[dict]:
    """``count`` serialized objects from ``data`` (little-endian) as plain dicts."""
    r = _Reader(data)
    return [_decode(r) for _ in range(count)]


# ------------------------------------------------------------------ encoding (us -> client)
def _scalar(typ: str, value) -> bytes:
    head = struct.pack("<h", TYPE_CODES[typ])
    if typ in ("STRING", "SYMBOL"):
        return head + str(value).encode() + b"\x00"
    fmt, _ = _FIXED[typ]
    if value is None:
        value = _NULL.get(fmt, float("nan"))
    return head + struct.pack("<" + fmt, value)


def _vector(typ: str, values: list) -> bytes:
    head = struct.pack("<hii", (1 << 8) | TYPE_CODES[typ], len(values), 1)
    if typ == "ANY":
        return head + b"".join(encode(v) for v in values)
    if typ in ("STRING", "SYMBOL"):
        return head + b"".join(str(v).encode() + b"\x00" for v in values)
    fmt, _ = _FIXED[typ]
    null = _NULL.get(fmt, float("nan"))
    return head + struct.pack(f"<{len(values)}{fmt}", *[null if v is None else v for v in values])


def _infer(values: list) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool}:
        return "BOOL"
    if kinds <= {int}:
        return "LONG"
    if kinds <= {int, float}:
        return "DOUBLE"
    if kinds <= {str}:
        return "STRING"
    return "ANY"


def encode(value) -> bytes:
    """A JSON-able reply as a DolphinDB object.

    ``None`` VOID; ``bool`` BOOL; ``int`` LONG; ``float`` DOUBLE; ``str`` STRING; a list a
    vector of the inferred type (ANY when mixed); a dict a STRING->ANY dictionary;
    ``{"__type__": T, "value": v}`` a scalar or vector of type ``T``;
    ``{"__table__": {col: [values] | {"__type__": T, "value": [...]}}}`` a table.
    """
    if isinstance(value, dict) and "__type__" in value:
        v = value["value"]
        return _vector(value["__type__"], v) if isinstance(v, list) else _scalar(value["__type__"], v)
    if isinstance(value, dict) and "__table__" in value:
        cols = value["__table__"]
        rows = len(next(iter(cols.values()))["value"] if isinstance(next(iter(cols.values())), dict)
                   else next(iter(cols.values()))) if cols else 0
        out = struct.pack("<hii", 6 << 8, rows, len(cols)) + b"\x00"
        out += b"".join(n.encode() + b"\x00" for n in cols)
        return out + b"".join(encode(c) if isinstance(c, dict) else _vector(_infer(c), c) for c in cols.values())
    if isinstance(value, dict):
        keys = list(value)
        return struct.pack("<h", (5 << 8) | TYPE_CODES["ANY"]) + _vector("STRING", keys) + \
            _vector("ANY", [value[k] for k in keys])
    if value is None:
        return struct.pack("<hb", 0, 0)
    if isinstance(value, bool):
        return _scalar("BOOL", int(value))
    if isinstance(value, int):
        return _scalar("LONG", value)
    if isinstance(value, float):
        return _scalar("DOUBLE", value)
    if isinstance(value, str):
        return _scalar("STRING", value)
    if isinstance(value, (list, tuple)):
        return _vector(_infer(list(value)), list(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


# ------------------------------------------------------------------ the server process
def _match(rule: dict, req: dict) -> bool:
    text = req.get("script") or req.get("function") or ""
    return rule["match"] in text and rule.get("kind", req["kind"]) == req["kind"]


class _Conn(threading.Thread):
    def __init__(self, sock: socket.socket, cid: int, log, rules: list[dict], lock: threading.Lock):
        super().__init__(daemon=True)
        self.sock, self.cid, self.log, self.rules, self.lock = sock, cid, log, rules, lock
        self.buf = b""

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def _line(self) -> bytes:
        while b"\n" not in self.buf:
            self._fill(len(self.buf) + 1)
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def run(self) -> None:
        try:
            while True:
                header = self._line().decode()
                parts = header.split(" ")
                length = int(parts[2])
                self._fill(length)
                body, self.buf = self.buf[:length], self.buf[length:]
                self._handle(header, body)
        except (EOFError, OSError, ValueError, IndexError):
            pass
        finally:
            self.sock.close()

    def _handle(self, header: str, body: bytes) -> None:
        kind, _, rest = body.partition(b"\n")
        req: dict = {"conn": self.cid, "header": header, "kind": kind.decode()}
        if req["kind"] == "connect":
            fields = rest.split(b"\n")
            if fields and fields[0] == b"login":
                req["user"] = fields[1].decode()  # the password is never logged
            self._record(req)
            self._reply(None)
            return
        if req["kind"] == "script":
            req["script"] = rest.decode("utf-8", "replace")
        elif req["kind"] == "function":
            # "<name>\n<nargs>\n<endian>" counts in the length; the arguments follow it
            name, nargs, _ = (rest.split(b"\n", 2) + [b"", b""])[:3]
            req["function"] = name.decode()
            req["args"] = self._objects(int(nargs or 0))
        elif req["kind"] == "variable":
            names, n, _ = (rest.split(b"\n", 2) + [b"", b""])[:3]
            req["names"] = names.decode().split(",")
            req["objects"] = self._objects(int(n or 0))
        self._record(req)
        for rule in self.rules:
            if _match(rule, req):
                if "error" in rule:
                    self._error(rule["error"])
                else:
                    self._reply(rule.get("reply"))
                return
        self._reply(None)

    def _objects(self, count: int) -> list[dict]:
        """Decode ``count`` objects straight from the connection (they follow the body)."""
        r = _Reader(self.buf, more=lambda: self.sock.recv(1 << 20))
        out = [_decode(r) for _ in range(count)]
        self.buf = r.data[r.pos:]
        return out

    def _record(self, req: dict) -> None:
        with self.lock:
            self.log.write(json.dumps(req) + "\n")
            self.log.flush()

    def _reply(self, value) -> None:
        if value is None:
            self.sock.sendall(b"1 0 1\nOK\n")
        else:
            self.sock.sendall(b"1 1 1\nOK\n" + encode(value))

    def _error(self, message: str) -> None:
        self.sock.sendall(b"1 0 1\n" + message.encode() + b"\n")


def _serve(log_path: str, rules_path: str) -> None:
    rules = json.loads(Path(rules_path).read_text()) if rules_path and os.path.exists(rules_path) else []
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    print(srv.getsockname()[1], flush=True)
    # exit with the test process: it holds our stdin open and never writes to it
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    lock = threading.Lock()
    with open(log_path, "a") as log:
        cid = 0
        while True:
            conn, _ = srv.accept()
            cid += 1
            _Conn(conn, cid, log, rules, lock).start()


class WireServer:
    """Starts the recording endpoint in a child process; ``requests()`` reads what it got.

    Parameters
    ----------
    tmp_path : Path
        Where the log and reply files live.
    rules : list of dict, optional
        Scripted replies, first match wins: ``{"match": "version()", "reply": "3.00.1"}``
        (substring of a script or a function name; optional ``"kind"``), or
        ``{"match": ..., "error": "message"}`` to answer with a server error.
    """

    def __init__(self, tmp_path: Path, rules: list[dict] | None = None):
        self.log = Path(tmp_path) / "wire.jsonl"
        self.rules_file = Path(tmp_path) / "wire_rules.json"
        self.rules_file.write_text(json.dumps(rules or []))
        self.proc = subprocess.Popen([sys.executable, __file__, str(self.log), str(self.rules_file)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def requests(self, kind: str | None = None, wait_for: int = 0, timeout: float = 10.0) -> list[dict]:
        """Recorded requests (optionally of one kind), waiting until at least ``wait_for`` exist."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log.read_text().splitlines() if self.log.exists() else []
            reqs = [json.loads(x) for x in lines]
            if kind is not None:
                reqs = [r for r in reqs if r["kind"] == kind]
            if len(reqs) >= wait_for or time.monotonic() > deadline:
                return reqs
            time.sleep(0.05)

    def scripts(self) -> list[str]:
        return [r["script"] for r in self.requests("script")]

    def calls(self, name: str | None = None) -> list[dict]:
        return [r for r in self.requests("function") if name is None or r["function"] == name]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stdin.close()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
