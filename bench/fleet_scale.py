"""Fleet scale (issue 14): 3 sites, 1 worker each, N concurrent drills across them on one dev server.

What runs: the embedded dev server (free ports, a temporary database file), three ``gameday worker --site``
processes (sites ``a``, ``b``, ``c``; plain processes: each drill's target names its site, so the figure needs no
PID namespaces, which ``tests/cli/test_sites.py`` covers), one SQLite results database, and one real ``sleep``
process per drill with a pidfile. Drill ``n`` pauses its own sleeper (``process`` target, ``site:`` the n-th site
round robin, action ``pause``: SIGSTOP).

1. Completion: N drills started at once, each observing ``--observe`` s then reverting. Measured: drills ending
   RESILIENT, processes left stopped (``/proc/PID/stat`` state ``T``), unreverted fault-ledger rows, and the
   three workers' CPU (utime + stime of ``/proc/PID/stat``, children reaped included) over the phase, per drill.
2. Stop everything: N drills observing for 10 minutes plus ``--gamedays`` game days (``gameday run`` of a file
   with one inline drill pausing a sleeper of its own); once every sleeper is stopped, ``gameday stop --all
   --wait`` is launched (the clock starts before the launch). Measured: launch → the last of the sleepers running
   again (each pid read every 1 ms) and → the command's exit; then every drill ABORTED, ledger rows left, and
   processes left stopped.

    .venv/bin/python bench/fleet_scale.py [--drills 100] [--observe 20] [--gamedays 3]
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

from _drills import SCRIPTS, Lab, machine, proc_state

from gameday.activities.ledger import FaultLedger
from gameday.activities.store import Store
from gameday.model.records import Verdict

SITES = ("a", "b", "c")
TICK = os.sysconf("SC_CLK_TCK")

DRILL = """\
version: 1
name: bench-fleet-{n}
team: bench
max_duration: 15m
targets:
  proc: {{process: {{pidfile: "{pidfile}"}}, site: {site}}}
faults:
  - {{target: proc, action: pause}}
observe: {{duration: {observe}, interval: 1s}}
recovery: {{within: 60s, interval: 200ms}}
"""

GAMEDAY = """\
version: 1
gameday: bench-fleet-day-{n}
team: bench
drills:
  - drill:
      name: bench-fleet-day-{n}-drill
      team: bench
      max_duration: 15m
      targets:
        proc: {{process: {{pidfile: "{pidfile}"}}, site: {site}}}
      faults:
        - {{target: proc, action: pause}}
      observe: {{duration: 10m, interval: 1s}}
      recovery: {{within: 60s, interval: 200ms}}
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid``, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICK


def sleepers(workdir: Path, tag: str, count: int) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    procs, pidfiles = [], []
    for n in range(count):
        proc = subprocess.Popen(["sleep", "3600"])
        pidfile = workdir / f"{tag}-{n}.pid"
        pidfile.write_text(str(proc.pid))
        procs.append(proc)
        pidfiles.append(pidfile)
    return procs, pidfiles


async def wait_all(pids: list[int], stopped: bool, within: float) -> bool:
    deadline = time.monotonic() + within
    while any((proc_state(pid) == "T") != stopped for pid in pids):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def last_running(pids: list[int], within: float) -> float | None:
    left, deadline, last = set(pids), time.monotonic() + within, 0.0
    while left:
        now = time.monotonic()
        for pid in list(left):
            if proc_state(pid) != "T":
                left.discard(pid)
                last = now
        if now > deadline:
            return None
        time.sleep(0.001)
    return last


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drills", type=int, default=100)
    parser.add_argument("--observe", type=int, default=20, help="seconds each drill of phase 1 holds its fault")
    parser.add_argument("--gamedays", type=int, default=3)
    args = parser.parse_args()
    for line in machine():
        print(line)
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    lab = Lab(workdir)
    held: list[subprocess.Popen[bytes]] = []
    ok = True
    try:
        await lab.start()
        queue, database = "bench-fleet", workdir / "results.db"
        env = lab.env(queue, database)
        workers = []
        for site in SITES:
            log = workdir / f"worker-{site}.log"
            proc = lab.start_worker(queue, database, log, site=site)
            await lab.wait_polling(log, proc)
            workers.append(proc.pid)
        ledger = FaultLedger(Store(f"sqlite:///{database}"))

        # 1. completion
        procs, pidfiles = sleepers(workdir, "done", args.drills)
        held += procs
        pids = [p.pid for p in procs]
        cpu0 = sum(cpu_seconds(pid) for pid in workers)
        began = time.monotonic()
        handles = await asyncio.gather(
            *(
                lab.start_drill(
                    queue,
                    DRILL.format(n=n, pidfile=pidfile, site=SITES[n % 3], observe=f"{args.observe}s"),
                    f"bench-fleet-{n}",
                )
                for n, pidfile in enumerate(pidfiles)
            )
        )
        paused = await wait_all(pids, stopped=True, within=300)
        records = await asyncio.gather(*(h.result() for h in handles))
        wall = time.monotonic() - began
        cpu = sum(cpu_seconds(pid) for pid in workers) - cpu0
        resilient = sum(1 for r in records if r.verdict == Verdict.RESILIENT)
        stopped_left = sum(1 for pid in pids if proc_state(pid) == "T")
        ledger_left = len(await asyncio.to_thread(ledger.pending))
        ok = ok and paused and resilient == args.drills and stopped_left == 0 and ledger_left == 0
        print(
            f"1. {args.drills} drills across 3 sites ({args.observe} s observe each): every target paused at once: "
            f"{paused}; {resilient}/{args.drills} RESILIENT; wall {wall:.1f} s; processes left stopped "
            f"{stopped_left}; ledger rows unreverted {ledger_left}; workers' CPU {cpu:.1f} s = "
            f"{cpu / args.drills * 1000:.0f} ms per drill",
            flush=True,
        )
        for proc in procs:
            proc.kill()
            proc.wait()
        held = []

        # 2. stop --all
        procs, pidfiles = sleepers(workdir, "stop", args.drills + args.gamedays)
        held += procs
        pids = [p.pid for p in procs]
        handles = await asyncio.gather(
            *(
                lab.start_drill(
                    queue, DRILL.format(n=n, pidfile=pidfile, site=SITES[n % 3], observe="10m"), f"bench-fleet-{n}"
                )
                for n, pidfile in enumerate(pidfiles[: args.drills])
            )
        )
        for g in range(args.gamedays):
            path = workdir / f"day-{g}.yaml"
            path.write_text(GAMEDAY.format(n=g, pidfile=pidfiles[args.drills + g], site=SITES[g % 3]))
            done = await asyncio.to_thread(
                subprocess.run, [str(SCRIPTS / "gameday"), "run", str(path)], env=env, capture_output=True
            )
            if done.returncode != 0:
                raise RuntimeError(done.stdout.decode() + done.stderr.decode())
        if not await wait_all(pids, stopped=True, within=300):
            raise RuntimeError("not every drill paused its process in time")
        await asyncio.sleep(1.0)  # every drill in its observation, none mid-apply
        cpu0 = sum(cpu_seconds(pid) for pid in workers)
        launched = time.monotonic()
        command = subprocess.Popen(  # noqa: ASYNC220
            [str(SCRIPTS / "gameday"), "stop", "--all", "--wait", "--reason", "bench"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        last = await asyncio.to_thread(last_running, pids, 300.0)
        out, _ = await asyncio.to_thread(command.communicate, None, 600)
        exited = time.monotonic()
        records = await asyncio.gather(*(h.result() for h in handles))
        aborted = sum(1 for r in records if r.verdict == Verdict.ABORTED)
        cpu = sum(cpu_seconds(pid) for pid in workers) - cpu0
        stopped_left = sum(1 for pid in pids if proc_state(pid) == "T")
        await asyncio.sleep(2.0)  # the game days' records
        ledger_left = len(await asyncio.to_thread(ledger.pending))
        ok = ok and last is not None and command.returncode == 0 and aborted == args.drills
        ok = ok and stopped_left == 0 and ledger_left == 0
        print(
            f"2. gameday stop --all --wait with {args.drills} drills + {args.gamedays} game days running "
            f"({len(pids)} faults): launch → last fault reverted "
            f"{(last - launched) if last else float('nan'):.2f} s; → command exited {exited - launched:.2f} s "
            f"(exit {command.returncode}); {aborted}/{args.drills} drills ABORTED; processes left stopped "
            f"{stopped_left}; ledger rows unreverted {ledger_left}; workers' CPU during the stop {cpu:.1f} s",
            flush=True,
        )
        if command.returncode != 0 or not ok:
            print(out.decode()[-3000:])
        print("all checks passed" if ok else "SOME CHECK FAILED")
        return 0 if ok else 1
    finally:
        for proc in held:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)  # never leave a stopped process behind
                proc.kill()
        lab.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
