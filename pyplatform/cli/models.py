"""``pyplatform models``: train a model factor walk-forward, export it, and show serving info."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Train, export and serve model factors.")


@app.command("train")
def train(
    name: str = typer.Argument(..., help="Model factor name (becomes the factor's name)."),
    inputs: list[str] = typer.Option(..., "--input", "-i", help="A factor expression or library name feeding the model (repeat)."),
    horizon: int = typer.Option(5, help="Target: forward return over this many bars."),
    kind: str = typer.Option("mlp", help="mlp or linear."),
    symbols: list[str] = typer.Option(None, "--symbol", help="Universe (default: all)."),
    start: str = typer.Option(None), end: str = typer.Option(None),
    int8: bool = typer.Option(True, help="Also write an INT8 (QDQ) model calibrated on history."),
    publish: bool = typer.Option(False, help="Publish the model factor to the registry."),
    author: str = typer.Option(None),
) -> None:
    """Train walk-forward on daily bars, evaluate out of sample, export ONNX (and INT8)."""
    from pyplatform.models.factor import train_model_factor

    res = train_model_factor(name, inputs, horizon=horizon, kind=kind, symbols=symbols or None,
                             start=start, end=end, int8=int8, publish=publish, author=author)
    typer.echo(res.summary())


@app.command("info")
def info(path: Path = typer.Argument(..., exists=True, help="An .onnx model file."),
         device: str = typer.Option("cpu", help="cpu, gpu or auto.")) -> None:
    """Load a model and report which execution provider serves it."""
    from pyplatform.models.serving import OnnxModel, gpu_available

    m = OnnxModel(path, device=device)
    typer.echo(f"{path.name}: provider={m.provider} precision={m.precision} inputs={m.n_features} "
               f"gpu_available={gpu_available()}")
