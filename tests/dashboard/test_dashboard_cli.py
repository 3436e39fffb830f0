"""``pyplatform dash``: serves the app over HTTP; refuses a signal URL without a token file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from typer.testing import CliRunner

from pyplatform.cli.dash import app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dash_serves_the_app(market_settings, tmp_path):
    port = _free_port()
    env = {**os.environ, "PYPLATFORM_DATA_DIR": str(market_settings.data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "pyplatform.cli.main", "dash", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        html, layout = "", ""
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                html = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                layout = urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=2).read().decode()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode()) from None
                time.sleep(0.3)
        assert "<title>pyplatform research</title>" in html
        assert "live-badge" in layout and "Backtests" in layout
    finally:
        proc.terminate()
        proc.wait(10)


def test_signal_url_needs_a_token_file(market_settings):
    result = CliRunner().invoke(app, ["--data-dir", str(market_settings.data_dir), "--signal-url", "ws://127.0.0.1:1"])
    assert result.exit_code != 0
    assert "--token-file" in result.output
