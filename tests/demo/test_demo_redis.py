"""The demo's Redis refuses clients without the password, which never appears in `ps`."""

import shutil
import socket
from pathlib import Path

import pytest

from pyplatform.demo import _Redis

# redis-server is installed by scripts/system_deps.sh (make test): no skip without it
assert shutil.which("redis-server"), "redis-server missing: run scripts/system_deps.sh"


def _ask(port: int, *commands: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"".join(commands))
        s.settimeout(2)
        out = b""
        while out.count(b"\r\n") < len(commands):
            out += s.recv(4096)
        return out


def test_demo_redis_requires_auth_and_keeps_the_password_off_the_command_line(tmp_path):
    r = _Redis(tmp_path / "redis", password="s3cr3tpassw0rd")
    try:
        assert _ask(r.port, b"PING\r\n").startswith(b"-NOAUTH")
        assert _ask(r.port, b"AUTH s3cr3tpassw0rd\r\n", b"PING\r\n") == b"+OK\r\n+PONG\r\n"
        assert _ask(r.port, b"AUTH wrong\r\n").startswith(b"-WRONGPASS")
        cmdline = Path(f"/proc/{r.proc.pid}/cmdline").read_bytes()
        assert b"s3cr3t" not in cmdline
    finally:
        r.stop()


def test_a_password_that_could_break_the_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="alphanumeric"):
        _Redis(tmp_path / "redis", password="x\nrequirepass other")
