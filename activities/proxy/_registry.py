"""Which proxies this worker process holds, by run id and target name.

This is process state on purpose: a proxy is sockets in this process, and the fault activities that add
and remove its toxics run here too (sent to this worker's own task queue). Nothing else keeps a proxy
alive: its entry goes when its ``hold_proxy`` activity ends, however it ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gameday.activities.proxy._proxy import FaultProxy

Key = tuple[str, str]
"""(run id, target name)."""


@dataclass
class HeldProxy:
    """A running proxy and who holds it.

    Attributes:
        proxy: the proxy, accepting connections.
        task_queue: the task queue of the ``hold_proxy`` activity holding it (this worker's own).
        started_at: when it started listening.
    """

    proxy: FaultProxy
    task_queue: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class ProxyRegistry:
    """The proxies held in this process, and why the last attempt to start one failed."""

    def __init__(self) -> None:
        self._held: dict[Key, HeldProxy] = {}
        self._failures: dict[Key, str] = {}

    def get(self, run_id: str, target_name: str) -> HeldProxy | None:
        return self._held.get((run_id, target_name))

    def holds(self, run_id: str, target_name: str) -> bool:
        return (run_id, target_name) in self._held

    def hold(self, run_id: str, target_name: str, proxy: FaultProxy, task_queue: str) -> HeldProxy:
        """Record a started proxy as held.

        Raises:
            KeyError: this process already holds a proxy for that run and target.
        """
        key = (run_id, target_name)
        if key in self._held:
            raise KeyError(f"a proxy for target {target_name!r} of run {run_id} is already held here")
        self._failures.pop(key, None)
        held = self._held[key] = HeldProxy(proxy, task_queue)
        return held

    def release(self, run_id: str, target_name: str) -> None:
        self._held.pop((run_id, target_name), None)

    def fail(self, run_id: str, target_name: str, reason: str) -> None:
        """Remember why a proxy could not start, for ``proxy_ready`` to report."""
        self._failures[(run_id, target_name)] = reason

    def failure(self, run_id: str, target_name: str) -> str | None:
        return self._failures.get((run_id, target_name))

    async def wait(self, run_id: str, target_name: str, within: float, *, poll: float = 0.02) -> HeldProxy | str | None:
        """The held proxy once it is there, the reason it failed, or ``None`` after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            held = self.get(run_id, target_name)
            if held is not None:
                return held
            failure = self.failure(run_id, target_name)
            if failure is not None:
                return failure
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(poll)


HELD = ProxyRegistry()
"""The one registry of this process (see the module docstring for why it is process state)."""
