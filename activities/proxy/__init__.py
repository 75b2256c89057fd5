"""The TCP fault proxy gameday holds for ``proxy`` targets, its toxics, and the registry of running proxies.

A proxy lives in the worker process whose ``hold_proxy`` activity started it; fault activities find it in
:data:`HELD` by run id and target name (Temporal routes them to this process through the worker's own
task queue). When the worker dies the proxy dies with it: no proxy, never a stuck fault.
"""

from gameday.activities.proxy._proxy import FaultProxy, ProxyStats, split_host_port
from gameday.activities.proxy._registry import HELD, HeldProxy, ProxyRegistry
from gameday.activities.proxy._toxics import (
    BandwidthToxic,
    BlackholeToxic,
    Chunk,
    CloseAfterToxic,
    LatencyToxic,
    ResetToxic,
    SliceToxic,
    Stream,
    Toxic,
)

__all__ = [
    "HELD",
    "BandwidthToxic",
    "BlackholeToxic",
    "Chunk",
    "CloseAfterToxic",
    "FaultProxy",
    "HeldProxy",
    "LatencyToxic",
    "ProxyRegistry",
    "ProxyStats",
    "ResetToxic",
    "SliceToxic",
    "Stream",
    "Toxic",
    "split_host_port",
]
