"""Long-running commands: ``worker``, ``dev`` (embedded Temporal + worker) and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gameday.cli.context import console, err_console, fail, run_async, settings_of

if TYPE_CHECKING:
    from gameday.config.app import GamedayConfig
    from gameday.demo.system import DemoSystem


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(dev)
    app.command()(demo)


def worker(
    ctx: typer.Context,
    site: Annotated[
        str | None,
        typer.Option(
            envvar="GAMEDAY_SITE",
            help="The site this worker acts for (a host, a VM, a PID namespace): it runs the faults, reverts and "
            "lock resolution of targets with this `site:`. Default: the host name.",
        ),
    ] = None,
) -> None:
    """Run a worker: executes drills and their rollbacks. Run several for redundancy; SIGTERM stops it cleanly."""
    from gameday.worker.main import run_worker

    settings = settings_of(ctx)
    if site is not None and site.strip():
        settings = dataclasses.replace(settings, config=settings.config.with_overrides(site=site.strip()))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's full URL at INFO: a webhook URL with its token in the path, a probe's query
    # string. The worker's own lines say what was called, without the secret parts.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic says at INFO which dialect and DDL mode it uses each time the schema is checked: noise at every start.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    console.print(f"worker on task queue [bold]{settings.config.task_queue}[/] at {settings.config.temporal_address}")
    run_async(settings, run_worker(settings.config))


def dev(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Temporal frontend port.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port.")] = 8233,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Also serve the demo system for the README's tour, until this command stops: the shop API on "
            "127.0.0.1:8000 and its inventory on 127.0.0.1:8001, with their pidfiles in --demo-dir.",
        ),
    ] = False,
    demo_dir: Annotated[
        Path,
        typer.Option(help="With --demo: where the pidfiles and logs go (created private to you; never shared)."),
    ] = Path("/tmp/gameday-demo"),  # demo.system.SERVE_DIR, written out: importing it would slow every command
    console_port: Annotated[
        int,
        typer.Option(
            help="Also serve the web console (gameday console) on 127.0.0.1 at this port; 0: no console. A port "
            "already taken is a warning, not a failure."
        ),
    ] = 8080,
) -> None:
    """Embedded default: a Temporal dev server (database file in the data dir), its Web UI, a worker and the console.

    Ctrl-C (or SIGTERM: `kill %1` when started with `&`) stops the worker, the demo system, then the server.
    Workflows and schedules persist in <data dir>/temporal.db.
    """
    from gameday.worker.devserver import DevServer, DevServerError

    settings = settings_of(ctx)
    config = settings.config
    server = DevServer(db_file=config.data_dir / "temporal.db", port=port, ui_port=ui_port)
    try:
        server.start()
    except DevServerError as err:
        fail(str(err))
    system = None
    try:
        if demo:
            system = _serve_demo(demo_dir)
        config = config.with_overrides(temporal_address=server.address, ui_url=server.ui_url)
        console.print(f"Temporal dev server at [bold]{server.address}[/]; Web UI at [bold]{server.ui_url}[/]")
        console.print(f"results database: {config.database_label}")
        if system is not None:
            _print_demo(system)
        stop = "Ctrl-C" + (f" (in the background: kill %1, or kill {os.getpid()})" if demo else "")
        console.print(f"worker on task queue [bold]{config.task_queue}[/]; {stop} stops everything")
        run_async(settings, _dev_services(config, console_port))
    finally:
        if system is not None:
            system.stop()
        server.stop()


async def _dev_services(config: GamedayConfig, console_port: int) -> None:
    """The worker; beside it in the same loop until it stops (Ctrl-C, SIGTERM): the console (unless
    ``console_port`` is 0) and the Slack listener when ``GAMEDAY_SLACK_APP_TOKEN`` is set (and usable)."""
    from gameday.worker.main import run_worker

    served = _console_beside(config, console_port) if console_port else None
    try:
        await asyncio.gather(run_worker(config, wait_ready=30), *_slack_beside(config))
    finally:
        if served is not None:
            served[0].should_exit = True
            await served[1]


def _console_beside(config: GamedayConfig, console_port: int) -> tuple[Any, asyncio.Task[None]] | None:
    """The console served on 127.0.0.1:``console_port`` in this loop; ``None`` (with a warning) if it cannot be."""
    from gameday.console.auth import ConsoleAuth
    from gameday.console.serve import beside, bound

    try:
        auth = ConsoleAuth.from_env()
        sock = bound("127.0.0.1", console_port)
    except (OSError, ValueError) as err:
        err_console.print(f"warning: no console on 127.0.0.1:{console_port}: {err}", markup=False)
        return None
    server = beside(config, auth)
    mode = "actions: " + ", ".join(sorted(auth.actions)) if auth.may_act else "read-only"
    console.print(f"console at [bold]http://127.0.0.1:{console_port}/[/] ({mode})")
    return server, asyncio.create_task(server.serve(sockets=[sock]))


def _slack_beside(config: GamedayConfig) -> list[Coroutine[Any, Any, None]]:
    """The Slack listener, when ``GAMEDAY_SLACK_APP_TOKEN`` is set and usable; none otherwise (with a warning)."""
    from gameday.config.slack_app import SlackAppConfig

    slack = SlackAppConfig.from_env()
    if not slack.enabled:
        return []
    if problem := slack.problem():
        err_console.print(f"[yellow]warning:[/] Slack listener not started: {problem}")
        return []
    from gameday.worker.slack_app import run_slack_listener

    console.print("Slack listener (Socket Mode): Stop drill / Approve buttons and /gameday")
    return [run_slack_listener(config, slack, wait_ready=30)]


def _serve_demo(workdir: Path) -> DemoSystem:
    """The demo system on its known ports, started; a port in use or an unsafe directory is one line."""
    from gameday.demo.system import SERVE_API_PORT, SERVE_INVENTORY_PORT, DemoError, DemoSystem

    try:
        return DemoSystem(workdir, api_port=SERVE_API_PORT, inventory_port=SERVE_INVENTORY_PORT).start()
    except DemoError as err:
        fail(str(err))


def _print_demo(system: DemoSystem) -> None:
    """What ``dev --demo`` serves: the addresses and pidfiles a drill names (the README's tour names these)."""
    rows = [
        (
            "shop API",
            system.api_url,
            system.api_pidfile,
            "GET /products, /checkout, /health, /metrics; PUT, GET /orders/ID",
        ),
        ("inventory", system.inventory_url, system.inventory_pidfile, "GET /items: the shop API's dependency"),
    ]
    width = max(len(str(pidfile)) for _, _, pidfile, _ in rows)
    console.print("demo system (the README's tour drills it; it stops with this command):", markup=False)
    for name, url, pidfile, what in rows:
        console.print(f"  {name:<9}  {url}  pidfile {pidfile!s:<{width}}  {what}", markup=False, soft_wrap=True)
    console.print(f"  logs       {system.workdir}/*.log", markup=False, soft_wrap=True)


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the Temporal server and Web UI running afterwards, until Ctrl-C.")
    ] = False,
) -> None:
    """Run the bundled demo end to end: Temporal + worker + a small shop API, and a drill that stalls its dependency.

    Everything runs on loopback and is stopped at the end. Results stay in the data dir's SQLite file.
    """
    from gameday.demo.system import DemoSystem
    from gameday.worker.devserver import DevServer, DevServerError, free_port

    settings = settings_of(ctx)
    config = settings.config
    workdir = config.data_dir / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    server = DevServer(db_file=config.data_dir / "demo-temporal.db", port=free_port(), ui_port=free_port())
    try:
        server.start()
    except DevServerError as err:
        fail(str(err))
    config = config.with_overrides(temporal_address=server.address, ui_url=server.ui_url, task_queue="gameday-demo")
    try:
        with DemoSystem(workdir) as system:
            console.print(f"Temporal dev server at {server.address}, Web UI at {server.ui_url}")
            console.print(f"demo system: shop API at {system.api_url} (its inventory dependency is the fault target)")
            code = run_async(settings, _demo(config, system))
        if keep:
            console.print(f"Web UI stays at {server.ui_url}: Ctrl-C to stop")
            with contextlib.suppress(KeyboardInterrupt):
                if server.process is not None:
                    server.process.wait()
    finally:
        server.stop()
    raise typer.Exit(code=code)


async def _demo(config, system) -> int:  # type: ignore[no-untyped-def]
    from gameday.activities.store import Store
    from gameday.cli import launch
    from gameday.model.loader import parse_drill
    from gameday.report.run import render_markdown
    from gameday.worker.client import connect
    from gameday.worker.main import build_worker

    store = Store(config.resolved_database_url)
    client = await connect(config, wait_ready=30)
    drill = parse_drill(system.render_drill(), file="demo/drill.yaml")
    async with build_worker(client, config.task_queue, store):
        handle = await launch.start(client, config, drill, source="demo/drill.yaml", run_id=None)
        console.print(f"started [bold]{handle.id}[/]\n  {config.workflow_url(handle.id)}")
        watcher = asyncio.create_task(_watch_health(system))
        try:
            record = await launch.follow(handle, console)
        finally:
            watcher.cancel()
    console.print(launch.verdict_line(record))
    console.rule("report")
    console.print(render_markdown(record, config.workflow_url(record.run_id)), markup=False)
    console.rule()
    console.print(f"results database: {config.database_label}")
    console.print(
        f"Web UI (while the server runs; 'gameday demo --keep' keeps it): {config.workflow_url(record.run_id)}"
    )
    return 0


async def _watch_health(system) -> None:  # type: ignore[no-untyped-def]
    """Show what the drill does to the demo API, as its own /health reports it."""
    last = None
    while True:
        try:
            health = await asyncio.to_thread(system.health)
            breaker = health.get("breaker")
            state = breaker.get("state") if isinstance(breaker, dict) else breaker
            now = f"{health.get('level')} (breaker {state}, serving from {health.get('source')})"
        except Exception as err:
            now = f"unreachable ({err.__class__.__name__})"
        if now != last:
            console.print(f"  [dim]demo api health:[/] {now}")
            last = now
        await asyncio.sleep(0.25)
