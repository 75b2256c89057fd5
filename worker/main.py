"""Wiring: which workflows and activities run on which task queue, and a worker that stops cleanly."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import uuid
from datetime import timedelta
from types import TracebackType

from temporalio.client import Client
from temporalio.worker import Worker

from gameday.activities.blackout import check_blackout
from gameday.activities.fault_lease import FaultLease
from gameday.activities.faults.activities import FaultActivities, capture_target
from gameday.activities.freeze import QUERY_TIMEOUT as FREEZE_QUERY_TIMEOUT
from gameday.activities.freeze import FreezeActivities
from gameday.activities.gameday_store import GameDayActivities, GameDays
from gameday.activities.ledger import FaultLedger
from gameday.activities.locks import LockActivities, TargetLocks
from gameday.activities.notify.activities import NotifyActivities
from gameday.activities.notify.alert import AlertActivities
from gameday.activities.policy import check_policy
from gameday.activities.probes.activities import check_hypothesis, observe, verify_recovery
from gameday.activities.probes.watch import watch
from gameday.activities.proxy.activities import WorkerQueueActivities, hold_proxy, proxy_ready
from gameday.activities.resolve import resolve_targets
from gameday.activities.run_scope import ActivityScope
from gameday.activities.sites import SiteActivities, probe_capabilities
from gameday.activities.store import Store, StoreActivities
from gameday.activities.sweep import sweep
from gameday.activities.traffic.activities import TrafficActivities
from gameday.activities.traffic.read_back import read_back
from gameday.config.app import GamedayConfig
from gameday.config.notify import NotifyConfig
from gameday.model.sites import default_site, site_queue, worker_identity
from gameday.worker.client import connect
from gameday.workflows.drill_workflow import DrillWorkflow
from gameday.workflows.freeze_workflow import FreezeWorkflow
from gameday.workflows.gameday_workflow import GameDayWorkflow
from gameday.workflows.site_revert import SiteRevertWorkflow

log = logging.getLogger("gameday.worker")

HEARTBEAT_THROTTLE = timedelta(milliseconds=200)
"""Heartbeats reach the server at least this often, so a stop reaches a running activity this fast."""
STICKY_TIMEOUT = timedelta(seconds=2)
"""How long a workflow task waits for the worker that last ran the drill before any worker may take it."""
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""In-flight activities get this long to finish when the worker stops."""


def worker_queue_name(task_queue: str) -> str:
    """A task queue only this worker process polls: where activities that must share its memory go."""
    return f"{task_queue}@{socket.gethostname()}-{uuid.uuid4().hex[:12]}"


class GamedayWorker:
    """The three pollers of one worker process, run together (``async with``).

    Attributes:
        shared: polls the shared ``task_queue`` (workflows and every stateless activity).
        own: polls :attr:`worker_queue`, a queue of this process alone: ``hold_proxy`` and the faults on the
            proxies it holds run there, because a proxy is sockets in this process (the samples-python
            ``worker_specific_task_queues`` pattern; ``worker_queue`` on the shared queue tells its name).
        worker_queue: the name of that queue.
        at_site: polls the queue of this worker's site (``model/sites.py``): capture, apply, revert and
            resolution of host-local targets placed on it.
        site: the site's name.
    """

    def __init__(
        self,
        shared: Worker,
        own: Worker,
        worker_queue: str,
        at_site: Worker,
        site: str,
        lease: FaultLease | None = None,
    ) -> None:
        self.shared, self.own, self.worker_queue = shared, own, worker_queue
        self.at_site, self.site = at_site, site
        self.lease = lease
        self._leasing: asyncio.Task[None] | None = None

    async def __aenter__(self) -> GamedayWorker:
        await self.own.__aenter__()
        try:
            await self.at_site.__aenter__()
            try:
                await self.shared.__aenter__()
            except BaseException:
                await self.at_site.__aexit__(None, None, None)
                raise
        except BaseException:
            await self.own.__aexit__(None, None, None)
            raise
        if self.lease is not None:
            # Beside the pollers: renews the lease of the faults this process holds, or reverts them.
            self._leasing = asyncio.create_task(self.lease.run(self.shared.client))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.shared.__aexit__(exc_type, exc, tb)
        finally:
            try:
                try:
                    await self.at_site.__aexit__(exc_type, exc, tb)
                finally:
                    await self.own.__aexit__(exc_type, exc, tb)
            finally:
                if self._leasing is not None:
                    self._leasing.cancel()


def build_worker(
    client: Client,
    task_queue: str,
    store: Store,
    *,
    alerts: AlertActivities | None = None,
    notify: NotifyActivities | None = None,
    fail_on_workflow_bug: bool = False,
    max_cached_workflows: int = 1000,
    site: str | None = None,
    max_fault_lease: timedelta = timedelta(minutes=10),
    freeze_query_timeout: timedelta = FREEZE_QUERY_TIMEOUT,
) -> GamedayWorker:
    """A worker with every gameday workflow and activity registered on ``task_queue``, plus its own queue.

    Args:
        client: connected with the pydantic data converter (``worker.client.connect``).
        task_queue: where drills are started.
        store: the results database the ``record_run`` activity writes to.
        alerts: where alerts go (``GAMEDAY_ALERT_WEBHOOK``); log only when ``None``.
        notify: Slack and webhook notifications (``config.notify``); none configured when ``None``.
        fail_on_workflow_bug: fail a workflow whose code raises unexpectedly, instead of retrying its task
            until a fixed worker is deployed (the production behaviour). Tests set it to fail fast.
        max_cached_workflows: the SDK's workflow cache; ``0`` replays every activation from history and evicts
            the workflow after it (tests use it to prove the safe path survives evictions).
        site: the site this worker acts for (``GAMEDAY_SITE``, else the host name when ``None``).
        max_fault_lease: the longest ``fault_lease`` this worker grants (``GAMEDAY_MAX_FAULT_LEASE``).
        freeze_query_timeout: how long ``check_freeze`` waits for one read of the freeze state (tests lower it).
    """
    site = site or default_site()
    identity = worker_identity(site, probe_capabilities())
    scope = ActivityScope()  # the namespace and cluster written on ledger rows and locks
    ledger = FaultLedger(store)
    lease = FaultLease(ledger, max_lease=max_fault_lease, identity=identity)
    faults = FaultActivities(ledger, scope, site, lease)
    locks = LockActivities(TargetLocks(store), scope)
    alerts = alerts or AlertActivities()
    notify = notify or NotifyActivities()
    traffic = TrafficActivities()
    own_queue = worker_queue_name(task_queue)
    shared = Worker(
        client,
        task_queue=task_queue,
        workflows=[DrillWorkflow, GameDayWorkflow, FreezeWorkflow, SiteRevertWorkflow],
        activities=[
            check_hypothesis,
            observe,
            watch,
            verify_recovery,
            capture_target,
            faults.apply_fault,
            faults.revert_fault,
            StoreActivities(store).record_run,
            GameDayActivities(GameDays(store)).record_gameday,
            resolve_targets,
            locks.acquire_targets,
            locks.release_targets,
            alerts.alert,
            check_blackout,
            check_policy,
            SiteActivities(client, site).check_sites,
            FreezeActivities(client, freeze_query_timeout).check_freeze,
            *notify.all(),
            WorkerQueueActivities(own_queue).worker_queue,
            read_back,
        ],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        workflow_failure_exception_types=[Exception] if fail_on_workflow_bug else [],
        # A drill whose worker died resumes on another after this long, not the SDK's default 10 s: its workflow
        # tasks wait this long on the dead worker's sticky queue before the shared queue gets them.
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_cached_workflows=max_cached_workflows,
        identity=identity,
    )
    own = Worker(
        client,
        task_queue=own_queue,
        activities=[hold_proxy, proxy_ready, faults.apply_fault, faults.revert_fault, *traffic.all()],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        identity=identity,
    )
    at_site = Worker(
        client,
        task_queue=site_queue(task_queue, site),
        activities=[
            capture_target,
            faults.apply_fault,
            faults.revert_fault,
            resolve_targets,
            check_hypothesis,
            observe,
            watch,
            verify_recovery,
        ],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        identity=identity,
    )
    return GamedayWorker(shared, own, own_queue, at_site, site, lease)


async def run_worker(config: GamedayConfig, stop: asyncio.Event | None = None, *, wait_ready: float = 0.0) -> None:
    """Run a worker until ``stop`` is set or the process gets SIGTERM/SIGINT; then shut down cleanly.

    In-flight activities get the graceful-shutdown window to finish; whatever they leave, Temporal hands
    to the next worker, which is how a drill survives its worker.
    """
    stop = stop or asyncio.Event()
    wedged_after = config.wedged_after  # a bad setting fails here, in one line, before anything starts
    config.max_lease  # noqa: B018 (likewise)
    policy = config.worker_policy()  # an unusable policy file stops the worker here, in one line
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = Store(config.resolved_database_url)
    client = await connect(config, wait_ready=wait_ready)
    # Everything imported is long-lived: keep it out of the collector's way, so a full collection does not
    # stall probe ticks and the traffic (measured: 140-170 ms pauses without this, bench/observe_load.py).
    gc.collect()
    gc.freeze()
    alerts = AlertActivities(config.alert_webhook, config.ui_url, config.namespace)
    notify = NotifyConfig.from_env().activities(config.ui_url, config.namespace)
    worker = build_worker(
        client,
        config.task_queue,
        store,
        alerts=alerts,
        notify=notify,
        site=config.site or None,
        max_fault_lease=config.max_lease,
    )
    log.info(
        "worker polling task queue %r and, for site %r, %r on %s",
        config.task_queue,
        worker.site,
        site_queue(config.task_queue, worker.site),
        config.temporal_address,
    )
    # Said once, plainly: a drill runs code here with this worker's rights unless a policy narrows it.
    (log.warning if policy.unrestricted else log.info)("%s", policy.describe())
    async with worker:
        sweeping = asyncio.create_task(_sweep_at_start(store, client, wedged_after, alerts, worker.site))
        await stop.wait()
        sweeping.cancel()
        log.info("worker shutting down")


async def _sweep_at_start(
    store: Store,
    client: Client,
    wedged_after: timedelta | None,
    alerts: AlertActivities | None = None,
    site: str | None = None,
) -> None:
    """Revert faults that drills whose workflows are closed, gone or wedged left behind; a worker starting often
    replaces a dead one. Only runs of this worker's namespace and cluster, and faults of its own site (or of no
    site), are touched; the rest is logged.

    Runs beside polling, never before it: a sweep must not delay the rollback of drills that are still alive.
    """
    try:
        report = await sweep(store, client, wedged_after=wedged_after, alerts=alerts, own_site=site)
    except Exception:
        log.exception("start-up sweep failed; run `gameday sweep` by hand")
        return
    for swept in report.faults:
        outcome = "reverted" if swept.reverted else f"NOT REVERTED: {swept.error}"
        log.warning("sweep: %s of run %s (workflow %s): %s", swept.fault.label, swept.run_id, swept.workflow, outcome)
    for left in report.left:
        log.info("sweep: left %s of run %s: %s", left.what, left.run_id, left.reason)
