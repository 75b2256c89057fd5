"""Where a run lives: its Temporal namespace and the identity of the Temporal cluster that runs it.

Every fault ledger row and target lock carries the scope of its run, and ``gameday sweep`` acts only on rows of
its own scope: a workflow id looked up in another namespace, or on another cluster sharing the same results
database (a laptop's ``gameday dev`` pointed at the team's PostgreSQL), is "not found" there although it may be
running where it lives.

The cluster's identity is the ``cluster_id`` its frontend reports (``GetClusterInfo``): stable across restarts
of a server with a persisted database, and the same whatever address a worker or a person used to reach it. A
frontend that does not answer that call (a proxy, a hosted service) is named by the address it was reached at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity
from temporalio.api.workflowservice.v1 import GetClusterInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

CLUSTER_INFO_TIMEOUT = timedelta(seconds=10)
_NOT_ANSWERED = (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.PERMISSION_DENIED)
"""Answers that mean "this frontend will never say": the address stands in for the cluster, for good."""


@dataclass(frozen=True)
class RunScope:
    """The namespace and cluster of a run; empty strings on rows written before gameday recorded them.

    Attributes:
        namespace: the Temporal namespace of the run's workflow.
        cluster: ``cluster:<id>`` from the frontend, else ``address:<host:port>``.
    """

    namespace: str
    cluster: str

    @property
    def known(self) -> bool:
        return bool(self.namespace and self.cluster)

    def describe(self) -> str:
        if not self.known:
            return "no recorded namespace/cluster (written before gameday kept them)"
        return f"namespace {self.namespace!r} on {self.cluster}"


async def cluster_identity(client: Client) -> str:
    """``cluster:<cluster_id>`` of the cluster ``client`` talks to, else ``address:<target host>``.

    Raises:
        RPCError: the frontend could not be asked (unreachable): no identity is made up for a transient failure.
    """
    try:
        info = await client.workflow_service.get_cluster_info(GetClusterInfoRequest(), timeout=CLUSTER_INFO_TIMEOUT)
    except RPCError as err:
        if err.status not in _NOT_ANSWERED:
            raise
        return f"address:{client.service_client.config.target_host}"
    if info.cluster_id:
        return f"cluster:{info.cluster_id}"
    return f"address:{client.service_client.config.target_host}"


async def scope_of(client: Client) -> RunScope:
    """The scope of the runs ``client`` sees: its namespace on its cluster."""
    return RunScope(client.namespace, await cluster_identity(client))


class ActivityScope:
    """The scope of the workflow running the current activity, for the rows it writes (cluster asked once)."""

    def __init__(self) -> None:
        self._cluster: str | None = None

    async def current(self) -> RunScope:
        """Namespace from the activity's info; cluster from the worker's client.

        An activity run without a client (``ActivityEnvironment`` in unit tests) writes no cluster, so no sweep
        will ever act on its rows.
        """
        namespace = activity.info().workflow_namespace or ""
        if self._cluster is None:
            try:
                client = activity.client()
            except RuntimeError:
                return RunScope(namespace, "")
            self._cluster = await cluster_identity(client)
        return RunScope(namespace, self._cluster)
