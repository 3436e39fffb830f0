"""``pyplatform tokens``: the signing secret, and issuing / revoking signal-service tokens."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import typer

app = typer.Typer(help="Issue and revoke signal-service tokens (short-lived JWTs, rotating keys).", no_args_is_help=True)


def _settings():
    from pyplatform.config import get_settings

    return get_settings()


@app.command("init-secret")
def init_secret(
    path: Path = typer.Option(None, help="Where to write it (default: jwt_secret_file, else DATA_DIR/secrets/jwt.secret)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing secret (invalidates every token)."),
) -> None:
    """Create the master signing secret (mode 600) and print how to point the platform at it."""
    s = _settings()
    path = path or s.jwt_secret_file or s.path("secrets", "jwt.secret")
    if path.exists() and not force:
        raise typer.BadParameter(f"{path} exists; pass --force to replace it (every issued token stops working)")
    path.parent.mkdir(parents=True, exist_ok=True)
    # replaced atomically (a running service that re-reads the file never sees it empty or
    # half-written), mode 600 before any byte is written
    from pyplatform.fsio import atomic_write

    atomic_write(path, secrets.token_hex(32) + "\n", mode=0o600)
    _audit("secret.rotate", str(path), {"replaced": bool(force)})
    typer.echo(f"wrote {path}\nexport PYPLATFORM_JWT_SECRET_FILE={path.resolve()}")


@app.command("issue")
def issue(
    subject: str = typer.Option(..., help="Who the token is for (logged, shown in the subscription registry)."),
    topic: list[str] = typer.Option(["*"], help="Entitled topic pattern, repeatable (quotes, factors:*, signals:momo)."),
    symbol: list[str] = typer.Option(["*"], help="Entitled symbol, repeatable ('*' = all)."),
    ttl: int = typer.Option(900, help="Lifetime in seconds (keep it short; clients refresh)."),
    as_json: bool = typer.Option(False, "--json", help="Print the claims as well."),
) -> None:
    """Print a signed token (stdout has only the token unless --json)."""
    from pyplatform.signals.auth import decode_unverified
    from pyplatform.signals.service import build_issuer

    tok = build_issuer(_settings()).issue(subject, topics=topic, symbols=symbol, now_ns=time.time_ns(), ttl_s=ttl)
    claims = decode_unverified(tok)
    # recorded before the token is shown: a token the audit log does not know never leaves
    _audit("token.issue", subject, {"jti": claims.get("jti"), "topics": topic, "symbols": symbol, "ttl_s": ttl,
                                    "exp": claims.get("exp")})
    if as_json:
        typer.echo(json.dumps({"token": tok, "claims": decode_unverified(tok)}, indent=2))
    else:
        typer.echo(tok)


@app.command("revoke")
def revoke(
    token_or_id: str = typer.Argument(..., help="A whole token, or its id (the 'jti' claim)."),
    until: int = typer.Option(7 * 86_400, help="With a bare id: keep it listed this many seconds."),
) -> None:
    """Revoke a token: every service process refuses it and closes connections using it."""
    from pyplatform.signals.auth import RevocationList, decode_unverified
    from pyplatform.signals.service import revocation_path

    now = time.time_ns()
    if token_or_id.count(".") == 2:
        try:
            claims = decode_unverified(token_or_id)
        except Exception as exc:
            raise typer.BadParameter(f"not a readable token: {exc}") from None
        jti, exp = str(claims.get("jti", "")), int(claims.get("exp", now // 10**9 + until))
        if not jti:
            raise typer.BadParameter("the token has no 'jti' claim")
    else:
        jti, exp = token_or_id, now // 10**9 + until
    settings = _settings()
    path = revocation_path(settings)
    RevocationList(path).revoke(jti, exp, now)
    from pyplatform.signals.service import redis_password

    shared = _revoke_in_redis(settings.redis_url, jti, exp, redis_password(settings))
    _audit("token.revoke", jti, {"until": exp, "shared": shared.startswith("shared")})
    typer.echo(f"revoked {jti} (listed in {path} until {exp}; {shared})")


def _audit(kind: str, subject: str, details: dict) -> None:
    """Record a token operation in the audit log (docs/audit.md); refuse to go on if it cannot."""
    from pyplatform.audit import AuditError, audit

    try:
        audit(kind, f"cli:{os.environ.get('USER', 'unknown')}", subject, "ok", details, settings=_settings(),
              strict=True)
    except (AuditError, OSError) as exc:
        typer.echo(f"error: the audit log refused the record ({exc}); run `pyplatform audit verify`", err=True)
        raise typer.Exit(2) from None


def _revoke_in_redis(url: str, jti: str, exp: int, password: str | None = None) -> str:
    """Share the revocation with service processes on other hosts through Redis, if reachable."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1,
                                      **({"password": password} if password else {}))
        client.hset("pp:revoked", jti, exp)
        return "shared through Redis"
    except (redis.RedisError, OSError) as exc:
        return f"Redis unreachable ({type(exc).__name__}): this host's file only"


@app.command("verify")
def verify(token: str = typer.Argument(..., help="The token to check.")) -> None:
    """Check a token as the service would and print its claims (exit 1 if refused)."""
    from pyplatform.signals.auth import AuthError
    from pyplatform.signals.service import build_verifier

    try:
        c = build_verifier(_settings()).verify(token, time.time_ns())
    except AuthError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"subject": c.subject, "token_id": c.token_id, "expires_ns": c.expires_ns,
                           "topics": c.topics, "symbols": c.symbols}))
