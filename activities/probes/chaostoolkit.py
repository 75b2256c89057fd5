"""Chaos Toolkit hypothesis probe: one sample runs the steady-state hypothesis's probes in order (issue 16).

Each probe's output is judged against its tolerance as chaoslib does; the first probe that fails or is out of
tolerance ends the sample (the steady state is not met, and chaoslib runs no further probe). The problem names
that probe (``probe 'NAME' ...``), which ``report/journal.py`` reads back.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from gameday.activities.ctk.runner import ActivityFailed, judge, resolve_context, run_activity
from gameday.activities.probes.judge import Sample
from gameday.model.ctk_format import Activity
from gameday.model.kinds.probe_chaostoolkit import ChaosToolkitProbe


async def take_sample(spec: ChaosToolkitProbe, client: object = None) -> Sample:
    started = time.perf_counter()
    try:
        resolution = resolve_context(spec.context)
    except ActivityFailed as exc:
        return Sample(ok=False, latency=0.0, problem=f"not run: {exc}")
    http = client if isinstance(client, httpx.AsyncClient) else None
    for probe in spec.probes:
        entry = await run_activity(probe, resolution, client=None if not probe.provider.verify_tls else http)
        if isinstance(probe.tolerance, dict) and probe.tolerance.get("type") == "probe" and entry.status != "failed":
            checker = _tolerance_probe(probe.tolerance, entry.output)
            verdict = await run_activity(checker, resolution, client=http)
            entry.tolerance_met = verdict.status == "succeeded" and bool(verdict.output)
        else:
            entry = judge(probe, entry, resolution)
        if not entry.tolerance_met:
            if entry.status == "failed":
                why = f"failed: {entry.exception}"
            else:
                why = f"out of tolerance {probe.tolerance!r}: output {str(entry.output)[:200]!r}"
                why += f" ({entry.exception})" if entry.exception else ""
            return Sample(ok=False, latency=time.perf_counter() - started, problem=f"probe {probe.name!r} {why}")
    return Sample(ok=True, latency=time.perf_counter() - started)


def _tolerance_probe(tolerance: dict[str, Any], value: Any) -> Activity:
    spec = dict(tolerance)
    provider = dict(spec.get("provider", {}))
    provider["arguments"] = {**(provider.get("arguments") or {}), "value": value}
    spec["provider"] = provider
    spec.pop("type", None)
    return Activity.model_validate({"type": "probe", **spec})
