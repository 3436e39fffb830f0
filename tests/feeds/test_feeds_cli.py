"""``pyplatform simulate`` serves the protocol; bad options are named."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from typer.testing import CliRunner
from websockets.sync.client import connect

from pyplatform.cli.simulate import app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_simulate_command_serves_itick_to_a_client(tmp_path):
    port = _free_port()
    token = tmp_path / "token"
    token.write_text("cli-secret\n")
    proc = subprocess.Popen([sys.executable, "-m", "pyplatform.cli.main", "simulate", "--port", str(port),
                             "--always-open", "--symbols", "5", "--seconds", "20", "--token-file", str(token)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ws = connect(f"ws://127.0.0.1:{port}/stock", additional_headers={"token": "cli-secret"})
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read()
                time.sleep(0.2)
        with ws:
            assert json.loads(ws.recv())["msg"] == "Connected Successfully"
            assert json.loads(ws.recv())["resAc"] == "auth"
            ws.send(json.dumps({"ac": "subscribe", "params": "BTCUSDT$BA", "types": "tick"}))
            kinds = {json.loads(ws.recv()).get("data", {}).get("type") for _ in range(5)}
            assert "tick" in kinds
        with connect(f"ws://127.0.0.1:{port}/stock", additional_headers={"token": "wrong"}) as bad:
            bad.recv()
            assert json.loads(bad.recv()) == {"code": 0, "resAc": "auth", "msg": "auth failed"}
    finally:
        proc.terminate()
        proc.wait(10)
    assert "cli-secret" not in proc.stdout.read()


def test_simulate_rejects_an_empty_token_file(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    res = CliRunner().invoke(app, ["--token-file", str(empty), "--port", "0", "--seconds", "0.1"],
                             env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})
    assert res.exit_code != 0 and "is empty" in res.output
