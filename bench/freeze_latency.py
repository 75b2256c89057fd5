"""Freeze latency: from ``gameday freeze`` launched to the last of N faults reverted (issue 14, the kill switch).

What runs: the embedded dev server (free ports, a temporary database file), ``--workers`` ``gameday worker``
subprocesses on one task queue (the worker set), and N real sleeping processes (``sleep``), each with a pidfile.
Each round starts N drills at once, each pausing its own process (``process`` target, ``pause``: SIGSTOP) and
observing for 10 minutes. Once every process is stopped (``/proc/PID/stat`` state ``T``), ``gameday freeze
--reason ...`` is launched as a subprocess (the clock starts before the launch: Python start-up, imports, the
freeze signal, the visibility listing and the N stop signals are included). Measured: until the last of the N
processes runs again, every pid read every 1 ms; and until the command exits (it looks again for late runs 1 s
after the first stops, then waits for every rollback and prints the count of faults reverted). Every drill must
end ``ABORTED`` by the freeze. ``gameday unfreeze`` ends the round. With ``--sites K`` (issue 14's "across 3
sites"), K workers ``gameday worker --site s0..``, one per site (plain processes), replace ``--workers``, and drill
``n`` names site ``n mod K`` on its target: its pause and revert run on that site's queue.

    .venv/bin/python bench/freeze_latency.py [--drills 30] [--rounds 5] [--workers 1 | --sites 3]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _drills import SCRIPTS, Lab, machine, proc_state, stats_header, stats_line

from gameday.model.records import Verdict

TARGET = 2.0
"""Issue 14's target for the p95 of launch → last fault reverted (there: 30 drills across 3 sites)."""

DRILL = """\
version: 1
name: bench-freeze-{n}
team: bench
max_duration: 15m
targets:
  proc: {{process: {{pidfile: "{pidfile}"}}{site}}}
faults:
  - {{target: proc, action: pause}}
observe: {{duration: 10m, interval: 1s}}
recovery: {{within: 30s, interval: 100ms}}
"""


def all_running_at(pids: list[int], within: float) -> tuple[float, float] | None:
    """Poll every pid each 1 ms until none is stopped; the ``time.monotonic()`` the first and the last one was seen
    running."""
    left = set(pids)
    deadline = time.monotonic() + within
    first = last = 0.0
    while left:
        now = time.monotonic()
        for pid in list(left):
            if proc_state(pid) != "T":
                left.discard(pid)
                first, last = first or now, now
        if now > deadline:
            return None
        time.sleep(0.001)
    return first, last


async def wait_all_stopped(pids: list[int], within: float) -> None:
    deadline = time.monotonic() + within
    while any(proc_state(pid) != "T" for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError("not every drill paused its process in time")
        await asyncio.sleep(0.05)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drills", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sites", type=int, default=0, help="one worker per site, drills spread over them")
    args = parser.parse_args()
    for line in machine():
        print(line)
    workdir = Path(tempfile.mkdtemp(prefix="bench-freeze-"))
    lab = Lab(workdir)
    sleepers: list[subprocess.Popen[bytes]] = []
    reverted: list[float] = []
    first_reverted: list[float] = []
    exited: list[float] = []
    failures = 0
    try:
        await lab.start()
        queue = "bench-freeze"
        database = workdir / "results.db"
        sites = [f"s{k}" for k in range(args.sites)]
        for w in range(args.sites or args.workers):
            log = workdir / f"worker-{w}.log"
            proc = lab.start_worker(queue, database, log, site=sites[w] if sites else None)
            await lab.wait_polling(log, proc)
        env = lab.env(queue, database)
        for round_no in range(1, args.rounds + 1):
            sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(args.drills)]  # noqa: ASYNC220
            pids = [p.pid for p in sleepers]
            handles = []
            for n, pid in enumerate(pids):
                pidfile = workdir / f"sleeper-{round_no}-{n}.pid"
                pidfile.write_text(str(pid))
                site = f", site: {sites[n % len(sites)]}" if sites else ""
                drill = DRILL.format(n=n, pidfile=pidfile, site=site)
                handles.append(lab.start_drill(queue, drill, f"bench-freeze-{n}"))
            started = await asyncio.gather(*handles)
            await wait_all_stopped(pids, within=180)
            await asyncio.sleep(0.5)  # every drill in its observation, none mid-apply
            launched = time.monotonic()
            # Spawned right here, not through a thread: the clock started on the line above.
            command = subprocess.Popen(  # noqa: ASYNC220
                [str(SCRIPTS / "gameday"), "freeze", "--reason", f"bench round {round_no}"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            seen = await asyncio.to_thread(all_running_at, pids, 60.0)
            last = seen[1] if seen else None
            out, _ = await asyncio.to_thread(command.communicate, None, 180)
            done = time.monotonic()
            text = out.decode()
            count = re.search(r"(\d+) fault\(s\) reverted in (\d+) drill", text)
            records = await asyncio.gather(*(h.result() for h in started))
            aborted = sum(1 for r in records if r.verdict == Verdict.ABORTED and r.stop and r.stop.by == "freeze")
            ok = last is not None and command.returncode == 0 and aborted == args.drills
            ok = ok and count is not None and int(count[1]) == args.drills
            if seen is not None:
                first_reverted.append(seen[0] - launched)
                reverted.append(seen[1] - launched)
            exited.append(done - launched)
            failures += 0 if ok else 1
            print(
                f"round {round_no}: launch → last of {args.drills} faults reverted "
                f"{(last - launched) * 1000 if last else float('nan'):.1f} ms; command exited after "
                f"{(done - launched) * 1000:.1f} ms (exit {command.returncode}); {aborted}/{args.drills} ABORTED by "
                f"freeze; command says: {count[0] if count else '?'}" + ("" if ok else "  <-- FAILED"),
                flush=True,
            )
            if not ok:
                print(text)
            unfreeze = [str(SCRIPTS / "gameday"), "unfreeze"]
            unfrozen = await asyncio.to_thread(subprocess.run, unfreeze, env=env, capture_output=True)
            if unfrozen.returncode != 0:
                raise RuntimeError(unfrozen.stdout.decode() + unfrozen.stderr.decode())
            for proc in sleepers:
                proc.kill()
                proc.wait()
            sleepers = []
        print()
        where = f"{args.sites} sites, 1 worker each" if args.sites else f"{args.workers} worker(s)"
        print(stats_header(f"{args.drills} drills, {where}, {args.rounds} rounds"))
        print(stats_line("gameday freeze launched → first fault reverted", first_reverted))
        print(stats_line("gameday freeze launched → last fault reverted", reverted))
        print(stats_line("gameday freeze launched → command exited", exited))
        print(f"target (issue 14): p95 < {TARGET:.0f} s; rounds failed: {failures}")
        return 1 if failures else 0
    finally:
        for proc in sleepers:
            proc.kill()
        lab.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
