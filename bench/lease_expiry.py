"""Lease expiry: from the control plane becoming unreachable to the fault reverted by its worker (issue 14).

What runs: the embedded dev server (free ports, a temporary database file), one ``gameday worker`` subprocess,
and per round one real sleeping process (``sleep``) with a pidfile. Each round starts a drill that pauses it
(``process`` target, ``pause``: SIGSTOP), ``fault_lease: --lease``, observing for 10 minutes. Once the process is
stopped and the drill observes, the dev server is SIGSTOPped (unreachable: its port still accepts, nothing
answers) and the clock starts. Measured: until the process runs again (``/proc/PID/stat`` read every 1 ms), while
the server is still stopped; the figure minus the lease is what the lease adds (the worker asks the frontend every
second with a 1 s RPC timeout, so up to ~2 s past the lease by design). Then SIGCONT, and the drill must end
``ABORTED`` by ``lease``.

    .venv/bin/python bench/lease_expiry.py [--rounds 5] [--lease 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _drills import Lab, machine, proc_state, stats_header, stats_line, wait_observing, wait_state

from gameday.model.records import Verdict

DRILL = """\
version: 1
name: bench-lease-{n}
max_duration: 15m
fault_lease: {lease}s
targets:
  proc: {{process: {{pidfile: "{pidfile}"}}}}
faults:
  - {{target: proc, action: pause}}
observe: {{duration: 10m}}
"""


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lease", type=float, default=3.0)
    args = parser.parse_args()
    for line in machine():
        print(line)
    workdir = Path(tempfile.mkdtemp(prefix="bench-lease-"))
    lab = Lab(workdir)
    unreachable_to_reverted: list[float] = []
    past_lease: list[float] = []
    failures = 0
    try:
        await lab.start()
        assert lab.server is not None and lab.server.process is not None
        server_pid = lab.server.process.pid
        queue = "bench-lease"
        database = workdir / "results.db"
        log = workdir / "worker.log"
        await lab.wait_polling(log, lab.start_worker(queue, database, log))
        for round_no in range(1, args.rounds + 1):
            sleeper = subprocess.Popen(["sleep", "3600"])  # noqa: ASYNC220
            pidfile = workdir / f"sleeper-{round_no}.pid"
            pidfile.write_text(str(sleeper.pid))
            handle = await lab.start_drill(
                queue, DRILL.format(n=round_no, lease=f"{args.lease:g}", pidfile=pidfile), f"bench-lease-{round_no}"
            )
            await wait_observing(handle, sleeper.pid)
            await asyncio.sleep(1.5)  # a renewal or two under way, as in a drill that has been running
            os.kill(server_pid, signal.SIGSTOP)
            gone = time.monotonic()
            try:
                seen = await asyncio.to_thread(wait_state, sleeper.pid, False, args.lease + 30)
                still_stopped = proc_state(server_pid) == "T"
            finally:
                os.kill(server_pid, signal.SIGCONT)
            record = await asyncio.wait_for(handle.result(), 120)
            ok = seen is not None and still_stopped
            ok = ok and record.verdict == Verdict.ABORTED and record.stop is not None and record.stop.by == "lease"
            if seen is not None:
                unreachable_to_reverted.append(seen - gone)
                past_lease.append(seen - gone - args.lease)
            failures += 0 if ok else 1
            took = f"{(seen - gone) * 1000:.1f} ms" if seen is not None else "never"
            print(
                f"round {round_no}: server stopped → fault reverted {took} (lease {args.lease:g} s; server still "
                f"stopped: {still_stopped}); verdict {record.verdict} by {record.stop.by if record.stop else '-'}"
                + ("" if ok else "  <-- FAILED"),
                flush=True,
            )
            sleeper.kill()
            sleeper.wait()
        print()
        print(stats_header(f"fault_lease {args.lease:g} s, 1 worker, {args.rounds} rounds"))
        print(stats_line("server SIGSTOPped → fault reverted by the worker", unreachable_to_reverted))
        print(stats_line("… minus the lease", past_lease))
        print(f"rounds failed: {failures}")
        return 1 if failures else 0
    finally:
        if lab.server is not None and lab.server.process is not None and lab.server.process.poll() is None:
            os.kill(lab.server.process.pid, signal.SIGCONT)
        lab.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
