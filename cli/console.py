"""``gameday console``: serve the web console (``console/``)."""

from __future__ import annotations

from typing import Annotated

import typer

from gameday.cli.context import fail, settings_of


def register(app: typer.Typer) -> None:
    app.command(name="console")(console_command)


def console_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8080,
    host: Annotated[
        str,
        typer.Option(help="Address to bind: loopback by default; another only with sign-in (GAMEDAY_CONSOLE_USERS)."),
    ] = "127.0.0.1",
) -> None:
    """Serve the web console: Now (running drills, Stop, Stop all, Freeze), Runs, Schedules, Approvals.

    Read-only unless GAMEDAY_CONSOLE_ACTIONS enables actions (stop, approve, freeze, schedules, or all) and a
    person signs in: GAMEDAY_CONSOLE_USERS="alice:SECRET,bob:SECRET2" (login form or basic auth) or
    GAMEDAY_CONSOLE_TOKEN (a bearer token, acting as GAMEDAY_CONSOLE_TOKEN_USER). Every action is sent as
    "alice via console" and logged with the client's address. Reads the same GAMEDAY_* settings as every command.

    Example: GAMEDAY_CONSOLE_USERS=alice:s3cret GAMEDAY_CONSOLE_ACTIONS=stop,approve gameday console --port 8080
    """
    settings = settings_of(ctx)
    from gameday.console.auth import ConsoleAuth

    try:
        auth = ConsoleAuth.from_env()
    except ValueError as err:
        fail(str(err))
    if host not in ("127.0.0.1", "::1", "localhost") and not auth.required:
        typer.echo(
            f"warning: --host {host} with no sign-in: whoever reaches the port reads every run "
            "(actions stay off without sign-in); set GAMEDAY_CONSOLE_USERS",
            err=True,
        )
    import uvicorn

    from gameday.console.app import build_app

    enabled = f"actions: {', '.join(sorted(auth.actions))}" if auth.may_act else "read-only"
    typer.echo(f"gameday console on http://{host}:{port}/ ({enabled})", err=False)
    uvicorn.run(build_app(settings.config, auth), host=host, port=port, log_level="warning")
