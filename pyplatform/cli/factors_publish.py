"""``pyplatform factors publish | retire | published``: the registry from the command line."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("publish")
    def publish(
        name: str = typer.Argument(..., help="Factor name (letters, digits, '_')."),
        expression: str = typer.Argument(..., help="Expression in the factor language."),
        description: str = typer.Option("", "--description", "-d"),
        tag: list[str] = typer.Option(None, "--tag", "-t", help="Tag (repeat)."),
        author: str = typer.Option(None, help="Default: the current user."),
        symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Validate on these symbols (default all)."),
        recent_days: int = typer.Option(60, help="Days of recent history to validate on."),
        freq: str = typer.Option("1d", help="Bars to validate on: 1d or 1min."),
    ) -> None:
        """Validate (parse; live == research on recent history; evaluation) and publish a new version."""
        import pyplatform as pp
        from pyplatform.research.publishing import PublishError

        try:
            v = pp.publish(name, expression, author=author, description=description, tags=tag or (),
                           symbols=symbol or None, recent_days=recent_days, freq=freq)
        except PublishError as exc:
            typer.secho(f"not published: {exc}", fg="red", err=True)
            raise typer.Exit(1)
        ic = v.evaluation.get("ic", {}).get("1p", {})
        typer.echo(f"published {v.name} v{v.version}: {v.expression}\n"
                   f"  validated on {v.validation['compared']} rows (stream == batch), "
                   f"rank IC 1p mean {ic.get('ic_mean')}, t {ic.get('t_stat')}")

    @app.command("retire")
    def retire(name: str = typer.Argument(...), reason: str = typer.Option("", help="Why (kept with the factor).")) -> None:
        """Stop a published factor live; all versions and history are kept."""
        import pyplatform as pp
        from pyplatform.registry import RegistryError

        try:
            pp.retire(name, reason)
        except RegistryError as exc:
            typer.secho(str(exc), fg="red", err=True)
            raise typer.Exit(1)
        typer.echo(f"retired {name}")

    @app.command("published")
    def published() -> None:
        """List published factors: latest version, author, status, IC."""
        import pyplatform as pp

        df = pp.published()
        typer.echo("no published factors" if df.empty else df.to_string())
