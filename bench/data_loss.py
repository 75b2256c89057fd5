"""The data-loss check's cost (issue 15): 10,000 acknowledged writes at 200/s against a loopback order store, the
size of their ids in the traffic's heartbeat, the read-back time, and a planted loss of 17 writes reported exactly.

What runs: an order store (stdlib ``ThreadingHTTPServer``, its own process, pinned to core 0: PUT
``/orders/<id>`` keeps the order and answers 201, except 17 planted ids it acknowledges without keeping; GET
``/orders/<id>`` 200 or 404) and gameday's traffic engine (``TrafficRun``, this process, pinned to core 1) with one
endpoint ``PUT /orders/{{id}}`` at 200/s until 10,000 writes are acknowledged. Then the ``read_back`` activity
itself (in temporalio's ``ActivityEnvironment``, heartbeats included) reads every acknowledged id back. A second,
synthetic part measures the bound: ranges of the worst shape (every other write failing) past 4,096 ranges.

    .venv/bin/python bench/data_loss.py [--writes 10000] [--rate 200] [--planted 17] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from temporalio.testing import ActivityEnvironment  # noqa: E402

from gameday.activities.traffic import TrafficRun  # noqa: E402
from gameday.activities.traffic.read_back import read_back  # noqa: E402
from gameday.model.data_loss import AckedIds, IdRanges, ReadBack, ReadBackInput  # noqa: E402
from gameday.model.traffic import Traffic  # noqa: E402

_STORE = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
DROP = set()
ORDERS = set()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status):
        self.send_response(status); self.send_header("Content-Length", "0"); self.end_headers()
    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ident = int(self.path.rsplit("/", 1)[1])
        if ident not in DROP:
            ORDERS.add(ident)
        self.answer(201)
    def do_POST(self):  # /plant/<id>,<id>...: acknowledge these writes without keeping them
        DROP.update(int(i) for i in self.path.rsplit("/", 1)[1].split(",") if i)
        self.answer(200)
    def do_GET(self):
        self.answer(200 if int(self.path.rsplit("/", 1)[1]) in ORDERS else 404)
    def log_message(self, *a): pass
ThreadingHTTPServer.daemon_threads = True
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1], "w") as f: f.write(str(srv.server_address[1]))
srv.serve_forever()
"""


def start_store() -> tuple[subprocess.Popen[bytes], int]:
    portfile = Path(tempfile.mkdtemp()) / "port"
    command = ["taskset", "-c", "0", sys.executable, "-c", _STORE, str(portfile)]
    process = subprocess.Popen(command)
    for _ in range(200):
        if portfile.exists() and portfile.read_text().strip():
            return process, int(portfile.read_text())
        time.sleep(0.05)
    raise RuntimeError("order store did not start")


async def send_writes(port: int, writes: int, rate: float, planted: list[int]) -> tuple[AckedIds, list[int]]:
    """Send the writes; the ``planted``-th ones (1 is the first) are acknowledged and not kept: their ids."""
    traffic = Traffic.model_validate(
        {"rate": rate, "url": f"http://127.0.0.1:{port}/orders/{{{{id}}}}", "method": "PUT", "json": {"qty": 1}}
    )
    run = TrafficRun(traffic, phase="bench")
    first = run.snapshot().ids
    assert first is not None  # a run's first id is its start in ms x 1000: known once the run exists
    dropped = [first.first_id + n - 1 for n in planted]
    plant = urllib.request.Request(f"http://127.0.0.1:{port}/plant/{','.join(map(str, dropped))}", method="POST")
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(plant, timeout=10).close()
    until = datetime.now(UTC) + timedelta(seconds=writes / rate * 2 + 30)
    sending = asyncio.create_task(run.run(until=until))
    while True:
        await asyncio.sleep(0.5)
        ids = run.snapshot().ids
        assert ids is not None
        if ids.acknowledged >= writes:
            break
    run.stop()
    summary = await sending
    assert summary.ids is not None
    return summary.ids, dropped


def shaped(writes: int, failing: float, seed: int = 1) -> tuple[int, IdRanges]:
    """``writes`` writes, each failing with chance ``failing`` (random gaps: what compresses worst)."""
    chance = random.Random(seed)
    ranges = IdRanges()
    for ident in range(1, writes + 1):
        if chance.random() >= failing:
            ranges.add(ident)
    return len(ranges.encode()), ranges


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--planted", type=int, default=17)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    planted = sorted(random.Random(15).sample(range(1, args.writes + 1), args.planted))
    store, port = start_store()
    try:
        started = time.monotonic()
        acked, planted = await send_writes(port, args.writes, args.rate, planted)
        sending = time.monotonic() - started
        spec = ReadBack(url=f"http://127.0.0.1:{port}/orders/{{{{id}}}}", status=200, concurrency=args.concurrency)
        inp = ReadBackInput(run_id="bench", read_back=spec, acked=acked)
        heartbeats: list[object] = []
        env = ActivityEnvironment()
        env.on_heartbeat = lambda *details: heartbeats.append(details)
        started = time.monotonic()
        loss = await env.run(read_back, inp)
        reading = time.monotonic() - started
    finally:
        store.kill()
        store.wait()
    planted_acked = [i for i in planted if i < acked.next_id]
    print(f"machine: {platform.node()} {platform.machine()} nproc={os.cpu_count()} python {platform.python_version()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"writes sent for {sending:.1f}s at {args.rate:g}/s: ids {acked.first_id}..{acked.next_id - 1}, "
        f"acknowledged {acked.acknowledged}"
    )
    print(
        f"ids in the heartbeat: ranges {len(acked.id_ranges().ranges)}, encoded {len(acked.ranges)} B, "
        f"AckedIds as JSON {len(acked.model_dump_json())} B (bound 65536 B)"
    )
    print(
        f"read-back: {loss.checked} ids in {reading:.2f}s ({loss.checked / reading:.0f}/s, concurrency "
        f"{args.concurrency}), {len(heartbeats)} heartbeats, largest {max(len(str(h)) for h in heartbeats)} B"
    )
    print(
        f"planted {len(planted_acked)} lost writes: reported lost {loss.lost}, duplicated {loss.duplicated}, "
        f"lost ids {'match' if loss.lost_ids == planted_acked[:20] else 'DIFFER: ' + str(loss.lost_ids)}"
    )
    for writes, failing in ((10_000, 0.5), (100_000, 0.5), (1_000_000, 0.5), (100_000, 0.01)):
        size, ranges = shaped(writes, failing)
        print(
            f"{writes} writes, {failing:.0%} failing at random: {ranges.acknowledged} acknowledged, encoded {size} B, "
            f"{len(ranges.ranges)} ranges kept, level {ranges.level}, kept {ranges.kept} (sampled {ranges.sampled})"
        )
    exact = loss.lost == len(planted_acked) and loss.lost_ids == planted_acked[:20]
    print("RESULT:", "exact" if exact else "NOT exact")


if __name__ == "__main__":
    asyncio.run(main())
