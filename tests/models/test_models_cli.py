from typer.testing import CliRunner

from pyplatform.cli.main import app


def test_models_train_and_info(market_settings, monkeypatch):
    from pyplatform.config import reset_settings_cache

    monkeypatch.setenv("PYPLATFORM_DATA_DIR", str(market_settings.data_dir))
    reset_settings_cache()
    try:
        r = CliRunner()
        out = r.invoke(app, ["models", "train", "clim", "-i", "close / move(close, 5) - 1", "-i", "zscore(close, 10)",
                             "--horizon", "3", "--kind", "linear", "--no-int8"])
        assert out.exit_code == 0, out.output
        assert "walk-forward folds" in out.output
        path = market_settings.data_dir / "models" / "clim" / "model.onnx"
        assert path.exists()
        info = r.invoke(app, ["models", "info", str(path)])
        assert info.exit_code == 0 and "CPUExecutionProvider" in info.output and "inputs=2" in info.output
        from pyplatform.models.serving import gpu_available

        gpu = r.invoke(app, ["models", "info", str(path), "--device", "gpu"])
        # without a GPU: a clear error, never a silent CPU fallback; with one: served by it
        assert (gpu.exit_code == 0) == gpu_available()
    finally:
        reset_settings_cache()
