"""Which alerts are firing now: Alertmanager's API v2 or Prometheus's ``ALERTS`` series (``observe.expect.alerts``).

One read per watch tick; an unreachable or unreadable source is a ``ValueError`` in words, never a crash of the
watch (the tick is counted as not polled).
"""

from __future__ import annotations

from typing import Any

import httpx

from gameday.activities import policy
from gameday.model.drill import HttpProbe, Probe
from gameday.model.watch import AlertSource, clipped

TIMEOUT = 5.0
"""Seconds one read of the alerts may take."""
MAX_BODY = 4 * 1024 * 1024
"""Bytes of an answer parsed; a larger one is refused rather than read."""
FIRING_QUERY = 'ALERTS{alertstate="firing"}'


def refusal(source: AlertSource) -> str | None:
    """Why this worker's policy refuses reading ``source`` (its hosts rule), or ``None``."""
    worker_policy = policy.current()
    probe = Probe(name="alerts", http=HttpProbe(url=source.url))
    refusals = worker_policy.probe_refusals("observe.expect.alerts.from", probe)
    return policy.refused(refusals, worker_policy).message if refusals else None


async def firing(source: AlertSource, client: httpx.AsyncClient) -> set[str]:
    """The ``alertname`` of every alert firing now at ``source`` (active, not silenced or inhibited)."""
    base = source.url.rstrip("/")
    if source.alertmanager is not None:
        params = {"active": "true", "silenced": "false", "inhibited": "false"}
        data = await _get(client, f"{base}/api/v2/alerts", params)
        if not isinstance(data, list):
            raise ValueError("alertmanager: /api/v2/alerts did not answer a list")
        return {
            _name(alert.get("labels"))
            for alert in data
            if isinstance(alert, dict) and (alert.get("status") or {}).get("state", "active") == "active"
        } - {""}
    data = await _get(client, f"{base}/api/v1/query", {"query": FIRING_QUERY})
    result = (data.get("data") or {}).get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise ValueError("prometheus: the ALERTS query did not answer a vector")
    return {_name(series.get("metric")) for series in result if isinstance(series, dict)} - {""}


def _name(labels: Any) -> str:
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return clipped(name) if isinstance(name, str) else ""


async def _get(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> Any:
    try:
        response = await client.get(url, params=params, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ValueError(f"alerts not read from {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise ValueError(f"alerts not read from {url}: status {response.status_code}")
    if len(response.content) > MAX_BODY:
        raise ValueError(f"alerts not read from {url}: answer larger than {MAX_BODY // 1024} KiB")
    try:
        return response.json()
    except ValueError:
        raise ValueError(f"alerts not read from {url}: not JSON") from None
