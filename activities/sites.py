"""Which sites have a live worker, read from Temporal's task-queue pollers; the preflight ``check_sites``.

A worker's identity names its site (``model/sites.py``), so the pollers of the shared queue list the live
sites, and the pollers of a site's queue say whether that site can act now. ``check_sites`` refuses a drill
(non-retryable ``SiteMissing`` / ``SiteNotNamed``, nothing injected) when a site it needs has no worker, or when
several sites are live and a host-local target does not say which one it is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from gameday.model.sites import (
    Capabilities,
    SitesAnswer,
    SitesCheck,
    capabilities_of_identity,
    site_of_identity,
    site_queue,
)

CAPABILITY_TIMEOUT = 2.0
"""How long a starting worker waits for the Docker engine's ping before saying it has none."""


@dataclass(frozen=True)
class Poller:
    """One worker polling a task queue, as Temporal lists it."""

    identity: str
    site: str | None
    last_poll: datetime | None

    @property
    def capabilities(self) -> Capabilities:
        """What the worker said it can do, in its identity (all unknown for an older worker)."""
        return capabilities_of_identity(self.identity)


def probe_capabilities(timeout: float = CAPABILITY_TIMEOUT) -> Capabilities:
    """What this worker can do, found once at its start (``gameday worker``) and published in its identity.

    docker: the engine ``DOCKER_HOST`` names (else the default socket) answers a ping within ``timeout``.
    proxy: always, for this version: every worker holds proxies on a queue of its own (``hold_proxy``).
    """
    import importlib.metadata

    import docker

    try:
        docker.from_env(timeout=timeout).ping()
        reachable = True
    except Exception:  # any failure (no socket, refused, TLS, timeout) means "not reachable"
        reachable = False
    try:
        version: str | None = importlib.metadata.version("gameday")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return Capabilities(docker=reachable, proxy=True, version=version)


async def pollers(client: Client, task_queue: str, *, activities: bool = False) -> list[Poller]:
    """The workers polling ``task_queue`` (its workflow tasks, or its activity tasks with ``activities``)."""
    kind = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY if activities else TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
        task_queue_type=kind,
    )
    response = await client.workflow_service.describe_task_queue(request)
    return [
        Poller(
            identity=p.identity,
            site=site_of_identity(p.identity),
            last_poll=p.last_access_time.ToDatetime() if p.HasField("last_access_time") else None,
        )
        for p in response.pollers
    ]


async def live_sites(client: Client, task_queue: str) -> list[str]:
    """The sites with a worker polling the shared ``task_queue`` now, sorted."""
    return sorted({p.site for p in await pollers(client, task_queue) if p.site})


async def site_has_worker(client: Client, task_queue: str, site: str) -> bool:
    """Whether a worker of ``site`` polls its site queue now."""
    return bool(await pollers(client, site_queue(task_queue, site), activities=True))


class SiteActivities:
    """``check_sites``, with the worker's Temporal client and its own site."""

    def __init__(self, client: Client, site: str) -> None:
        self._client, self._site = client, site

    @activity.defn(name="check_sites")
    async def check_sites(self, check: SitesCheck) -> SitesAnswer:
        """Where each host-local target runs; refuses a drill whose sites are missing or ambiguous."""
        try:
            live = await live_sites(self._client, check.task_queue)
        except RPCError as err:
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise ApplicationError(f"live sites unreadable: {err.message}", type="SitesUnknown") from err
            # Temporal's time-skipping test server lists no pollers: the one worker asking is the one site.
            live = [self._site]
        if not live:
            live = [self._site]  # the worker running this activity polls: its listing can lag a new start
        unnamed = sorted(name for name, site in check.targets.items() if site is None)
        unnamed += sorted(f"probe {name}" for name, site in check.probes.items() if site is None)
        if unnamed and len(live) > 1:
            raise ApplicationError(
                f"{', '.join(unnamed)} name no site (`site:` on a target, `from:` on a probe)"
                f" and {len(live)} sites are live ({', '.join(live)}): nothing was injected",
                type="SiteNotNamed",
                non_retryable=True,
            )
        placed = {name: site or live[0] for name, site in check.targets.items()}
        probe_sites = sorted({site or live[0] for site in check.probes.values()})
        if len(probe_sites) > 1:
            raise ApplicationError(
                f"the probes run from {len(probe_sites)} sites ({', '.join(probe_sites)}): one site per drill for now;"
                " nothing was injected",
                type="SiteNotNamed",
                non_retryable=True,
            )
        missing = []
        for site in sorted(set(placed.values()) | set(probe_sites)):
            try:
                has = await site_has_worker(self._client, check.task_queue, site)
            except RPCError as err:
                if err.status != RPCStatusCode.UNIMPLEMENTED:
                    raise ApplicationError(f"site {site} unreadable: {err.message}", type="SitesUnknown") from err
                has = site == self._site
            if not has:
                missing.append(site)
        if missing:
            needs = ", ".join(f"{name} on {placed[name]}" for name in sorted(placed) if placed[name] in missing)
            needs += "".join(f", probes from {site}" for site in probe_sites if site in missing)
            needs = needs.removeprefix(", ")
            raise ApplicationError(
                f"no live worker at site(s) {', '.join(missing)} (needed by {needs}); live sites: "
                f"{', '.join(live)}; nothing was injected",
                type="SiteMissing",
                non_retryable=True,
            )
        return SitesAnswer(live=live, placed=placed, probe_site=probe_sites[0] if probe_sites else None)
