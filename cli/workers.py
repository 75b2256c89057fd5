"""``gameday workers``: the sites, the workers polling for each (from Temporal) and the faults each holds (ledger)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from gameday.cli.context import console, run_async, settings_of

if TYPE_CHECKING:
    from gameday.activities.sites import Poller

NO_SITE = "(any site)"
"""How faults any worker may revert (http faults, rows written before sites) are listed."""


def register(app: typer.Typer) -> None:
    app.command()(workers)


def workers(ctx: typer.Context) -> None:
    """List the sites with a live worker, each worker (identity, last poll, what it can do) and the faults held.

    A site is live when a worker of it polls the task queue (Temporal's `describe_task_queue` pollers; each
    worker's identity names its site, `gameday worker --site`). What a worker can do, as it found it at its
    start and wrote in its identity: docker (its Docker engine answered), proxy (it hosts proxy targets),
    version; "unknown" for a worker too old to say. Faults held: fault ledger rows applied (or maybe
    applied) and not reverted, by the site whose worker applied them. While a freeze is in force ('gameday
    freeze'), a FROZEN line per freeze comes first.
    """
    settings = settings_of(ctx)

    async def go() -> None:
        import asyncio

        from gameday.activities.ledger import FaultLedger
        from gameday.activities.sites import pollers
        from gameday.activities.store import Store
        from gameday.cli.freeze import print_frozen
        from gameday.cli.runs import client_for
        from gameday.model.sites import site_queue

        config = settings.config
        client = await client_for(settings)
        shared = await pollers(client, config.task_queue)
        sites = sorted({p.site for p in shared if p.site})
        entries = await asyncio.to_thread(FaultLedger(Store(config.resolved_database_url)).pending)
        held: dict[str, list[str]] = {}
        for entry in entries:
            held.setdefault(entry.site or NO_SITE, []).append(f"{entry.input.record.label} (run {entry.input.run_id})")
        await print_frozen(client, config.task_queue)  # the kill switch first: a line per freeze in force
        console.print(f"task queue {config.task_queue}: {len(sites)} site(s) live", markup=False)
        now = datetime.now(UTC)
        for site in sites:
            at_site = await pollers(client, site_queue(config.task_queue, site), activities=True)
            console.print(f"site {site}: {len(at_site)} worker(s), {_can(at_site)}", markup=False)
            for poller in sorted(at_site, key=lambda p: p.identity):
                seen = "never" if poller.last_poll is None else _ago(now, poller.last_poll)
                console.print(f"  worker {poller.identity}  last poll {seen}  {_can([poller])}", markup=False)
            _faults(held.pop(site, []))
        unsited = [p.identity for p in shared if p.site is None]
        if unsited:
            console.print(f"workers without a site (older gameday): {', '.join(sorted(unsited))}", markup=False)
        for site in sorted(held):
            live = "" if site == NO_SITE else " (NO LIVE WORKER: start `gameday worker --site " + site + "`)"
            console.print(f"site {site}{live}:", markup=False)
            _faults(held[site])

    run_async(settings, go())


def _can(pollers: list[Poller]) -> str:
    """``docker: yes, proxy: yes, version 0.1.0`` for one worker; for a site, ``yes`` when any of its workers can,
    ``no`` when every one said it cannot, else ``unknown`` (a worker too old to say)."""
    caps = [p.capabilities for p in pollers]

    def word(values: list[bool | None]) -> str:
        if any(v is True for v in values):
            return "yes"
        if values and all(v is False for v in values):
            return "no"
        return "unknown"

    versions = sorted({c.version for c in caps if c.version})
    text = f"docker: {word([c.docker for c in caps])}, proxy: {word([c.proxy for c in caps])}"
    return text + (f", version {'/'.join(versions)}" if versions else ", version unknown")


def _faults(labels: list[str]) -> None:
    if not labels:
        console.print("  faults held: none", markup=False)
        return
    console.print(f"  faults held: {len(labels)}", markup=False)
    for label in labels:
        console.print(f"    {label}", markup=False)


def _ago(now: datetime, then: datetime) -> str:
    then = then if then.tzinfo else then.replace(tzinfo=UTC)
    return f"{max((now - then).total_seconds(), 0.0):.1f}s ago"
