"""What flows between the workflow and the proxy activities: holding a ``proxy`` target's proxy for a drill.

Plain data, safe to import inside the workflow sandbox (pydantic only). The toxic faults themselves go
through ``apply_fault`` / ``revert_fault`` with the usual :class:`~model.records.FaultInput`, sent to
the task queue :class:`WorkerQueue` names.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gameday.model.drill import ProxyTarget
from gameday.model.records import Record


class WorkerQueueRequest(Record):
    """Argument of ``worker_queue`` (run on the shared task queue)."""

    run_id: str


class WorkerQueue(Record):
    """The task queue only the worker process that answered polls: where its proxies live.

    Attributes:
        task_queue: send ``hold_proxy``, ``proxy_ready`` and the proxy targets' ``apply_fault`` /
            ``revert_fault`` here.
        host: that worker's host name, for the record (a proxy listens on that host).
    """

    task_queue: str
    host: str


class ProxyHoldInput(Record):
    """Argument of ``hold_proxy`` and ``proxy_ready``: one proxy target of one run."""

    run_id: str
    target_name: str
    target: ProxyTarget
    seed: int | None = None
    """Seeds the proxy's random draws (toxicity, jitter, slice sizes) for a reproducible run."""


class ProxyStatus(Record):
    """A held proxy: where it listens and what passed through it (the result of ``hold_proxy``/``proxy_ready``)."""

    run_id: str
    target_name: str
    listen: str
    """The bound address (the target's ``listen``; the real port when it asked for port 0)."""
    upstream: str
    task_queue: str
    host: str
    started_at: datetime
    stopped_at: datetime | None = None
    connections: int = 0
    open_connections: int = 0
    failed_upstream: int = 0
    """Connections closed because the upstream could not be reached."""
    bytes_upstream: int = 0
    bytes_downstream: int = 0
    toxics: list[str] = Field(default_factory=list)
    """Names of the toxics on the proxy at the time of this status."""
