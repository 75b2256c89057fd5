"""Long-running commands: ``worker``, ``dev`` (embedded Temporal + worker) and ``demo``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

import typer

from cli.context import console, fail, run_async, settings_of


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(dev)
    app.command()(demo)


def worker(ctx: typer.Context) -> None:
    """Run a worker: executes drills and their rollbacks. Run several for redundancy; SIGTERM stops it cleanly."""
    from worker.main import run_worker

    settings = settings_of(ctx)
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
) -> None:
    """Embedded default: a Temporal dev server (database file in the data dir), its Web UI, and a worker.

    Ctrl-C stops the worker, then the server. Workflows and schedules persist in <data dir>/temporal.db.
    """
    from worker.devserver import DevServer, DevServerError
    from worker.main import run_worker

    settings = settings_of(ctx)
    config = settings.config
    server = DevServer(db_file=config.data_dir / "temporal.db", port=port, ui_port=ui_port)
    try:
        server.start()
    except DevServerError as err:
        fail(str(err))
    config = config.with_overrides(temporal_address=server.address, ui_url=server.ui_url)
    console.print(f"Temporal dev server at [bold]{server.address}[/]; Web UI at [bold]{server.ui_url}[/]")
    console.print(f"results database: {config.database_label}")
    console.print(f"worker on task queue [bold]{config.task_queue}[/]; Ctrl-C stops everything")
    try:
        run_async(settings, run_worker(config, wait_ready=30))
    finally:
        server.stop()


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the Temporal server and Web UI running afterwards, until Ctrl-C.")
    ] = False,
) -> None:
    """Run the bundled demo end to end: Temporal + worker + a small shop API, and a drill that stalls its dependency.

    Everything runs on loopback and is stopped at the end. Results stay in the data dir's SQLite file.
    """
    from demo.system import DemoSystem
    from worker.devserver import DevServer, DevServerError, free_port

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
    from activities.report import render_markdown
    from activities.store import Store
    from cli import launch
    from worker.client import connect
    from worker.main import build_worker
    from workflows.loader import parse_drill

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
            now = f"{health.get('status')} (breaker {health.get('breaker')}, serving from {health.get('source')})"
        except Exception as err:
            now = f"unreachable ({err.__class__.__name__})"
        if now != last:
            console.print(f"  [dim]demo api health:[/] {now}")
            last = now
        await asyncio.sleep(0.25)
