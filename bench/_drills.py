"""What the time-to-safety benchmarks share: real targets, a dev server, worker processes, Chaos Toolkit runs, stats.

* :class:`Service` — a loopback HTTP server in its own process (so a ``process`` fault can SIGSTOP it), with a
  pidfile; ``POST /_fail`` makes it answer 500 from then on and returns the instant it flipped
  (``time.monotonic()``, CLOCK_MONOTONIC: the same clock in every process), ``POST /_heal`` undoes that.
* :class:`Lab` — the embedded dev server (free ports, database file in a temporary directory), a client, and
  ``gameday worker`` subprocesses that a benchmark may SIGKILL.
* :func:`chaos_run` — ``chaos run`` (Chaos Toolkit) of an experiment whose method SIGSTOPs a pid and whose
  rollback SIGCONTs it, with the pause in the method where a benchmark interrupts it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowHandle

from gameday.config.app import GamedayConfig
from gameday.model.loader import parse_drill
from gameday.model.records import DrillInput, Phase, RunRecord
from gameday.worker.client import connect
from gameday.worker.devserver import DevServer, free_port, temporal_binary
from gameday.workflows.drill_workflow import DrillWorkflow

SCRIPTS = Path(sysconfig.get_path("scripts"))
POLL = 0.001
"""How often /proc is read while waiting for a target to run again: the resolution of every figure."""

_SERVER = r"""
import os, sys, time, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
failing = threading.Event()
class H(BaseHTTPRequestHandler):
    def _send(self, status, body):
        self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self._send(500, b"failing") if failing.is_set() else self._send(200, b"ok")
    def do_POST(self):
        (failing.set if self.path == "/_fail" else failing.clear)()
        self._send(200, repr(time.monotonic()).encode())
    def log_message(self, *a): pass
class S(ThreadingHTTPServer):
    def handle_error(self, request, client_address): pass  # a probe that timed out while we were stopped
srv = S(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
with open(sys.argv[2] + ".tmp", "w") as f: f.write(str(srv.server_address[1]))
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
"""


def proc_state(pid: int) -> str:
    """The state letter of ``/proc/PID/stat``: ``T`` stopped, ``S``/``R`` running, ``?`` gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[0]


def wait_state(pid: int, stopped: bool, within: float) -> float | None:
    """Poll ``pid`` every :data:`POLL` s until it is stopped (or running); the ``time.monotonic()`` seen, else None.

    ``time.monotonic()`` is CLOCK_MONOTONIC, the clock :meth:`Service.flip` reports in the service's process.
    """
    deadline = time.monotonic() + within
    while True:
        now = time.monotonic()
        if (proc_state(pid) == "T") == stopped:
            return now
        if now > deadline:
            return None
        time.sleep(POLL)


@dataclass
class Service:
    """A loopback HTTP server in a process of its own; see the module docstring."""

    process: subprocess.Popen[bytes]
    pidfile: Path
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @classmethod
    def start(cls, workdir: Path, name: str = "service") -> Service:
        workdir.mkdir(parents=True, exist_ok=True)
        pidfile, portfile = workdir / f"{name}.pid", workdir / f"{name}.port"
        proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(pidfile), str(portfile)])
        deadline = time.monotonic() + 15
        while not portfile.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"the loopback service {name} did not start")
            time.sleep(0.01)
        return cls(proc, pidfile, int(portfile.read_text()))

    def state(self) -> str:
        return proc_state(self.pid)

    def flip(self, failing: bool) -> float:
        """Make it answer 500 (``failing``) or 200 from now on; the ``time.monotonic()`` at which it flipped."""
        path = "/_fail" if failing else "/_heal"
        with urllib.request.urlopen(urllib.request.Request(self.url + path[1:], method="POST"), timeout=5) as r:
            return float(r.read())

    def resume(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # never leave a stopped process behind
            self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class Lab:
    """A dev server of the benchmark's own, a client on it, and the worker processes started through it."""

    workdir: Path
    server: DevServer | None = None
    client: Client | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        assert self.server is not None
        return self.server.address

    async def start(self) -> Client:
        self.server = DevServer(db_file=self.workdir / "temporal.db", port=free_port(), ui_port=free_port()).start()
        config = GamedayConfig(temporal_address=self.server.address, data_dir=self.workdir)
        self.client = await connect(config, wait_ready=30)
        return self.client

    def env(self, queue: str, database: Path) -> dict[str, str]:
        """The environment that points ``gameday`` (worker or CLI) at this lab."""
        return {
            **os.environ,
            "GAMEDAY_TEMPORAL_ADDRESS": self.address,
            "GAMEDAY_TASK_QUEUE": queue,
            "GAMEDAY_DATABASE_URL": f"sqlite:///{database}",
            "GAMEDAY_DATA_DIR": str(self.workdir),
        }

    def start_worker(self, queue: str, database: Path, log: Path, site: str | None = None) -> subprocess.Popen[bytes]:
        """``gameday worker [--site SITE]`` in a process of its own (so it can be SIGKILLed), output appended to
        ``log``."""
        command = [str(SCRIPTS / "gameday"), "worker", *(["--site", site] if site else [])]
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, env=self.env(queue, database), stdout=out, stderr=out)
        self.workers.append(proc)
        return proc

    async def wait_polling(self, log: Path, proc: subprocess.Popen[bytes], within: float = 60.0) -> None:
        """Wait until the worker writing to ``log`` says it polls (a warm worker makes the first figure fair)."""
        deadline = time.monotonic() + within
        while not _says_polling(log):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {log}")
            await asyncio.sleep(0.05)

    async def start_drill(self, queue: str, yaml_text: str, name: str) -> WorkflowHandle[DrillWorkflow, RunRecord]:
        assert self.client is not None
        drill = parse_drill(yaml_text, file=f"{name}.yaml")
        run_id = f"drill-{drill.name}-{uuid.uuid4().hex[:10]}"
        inp = DrillInput(run_id=run_id, drill=drill, source="bench", started_by="bench")
        return await self.client.start_workflow(DrillWorkflow.run, inp, id=run_id, task_queue=queue)

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if self.server is not None:
            self.server.stop()


def _says_polling(log: Path) -> bool:
    return b"worker polling task queue" in log.read_bytes()


async def phase_of(handle: WorkflowHandle[DrillWorkflow, RunRecord], within: float = 2.0) -> Phase | None:
    """The drill's phase by its ``status`` query, or None when no worker answers in time."""
    try:
        status = await asyncio.wait_for(handle.query(DrillWorkflow.status), within)
    except Exception:
        return None
    return status.phase


async def wait_observing(handle: WorkflowHandle[DrillWorkflow, RunRecord], pid: int, within: float = 30.0) -> None:
    """Wait until ``pid`` is stopped and the drill reports the observe phase."""
    deadline = time.monotonic() + within
    while not (proc_state(pid) == "T" and await phase_of(handle) == Phase.OBSERVE):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{handle.id} never reached observe with pid {pid} stopped")
        await asyncio.sleep(0.01)


# --- Chaos Toolkit ------------------------------------------------------------------------------------------


PAUSE_DRILL = """\
version: 1
name: {name}
max_duration: 5m
targets:
  svc: {{process: {{pidfile: "{pidfile}"}}}}
hypothesis:
  - name: service answers
    http: {{url: "{url}", timeout: 500ms}}
faults:
  - {{target: svc, action: pause}}
observe: {{duration: 2m, interval: 1s}}
recovery: {{within: 30s, interval: 100ms}}
"""
"""The stop benchmarks' drill: SIGSTOP the :class:`Service` (``process`` target, ``pause``) and observe it for up to
2 minutes (an http probe every second), so that a stop always comes mid-observation."""


def pause_drill(name: str, service: Service) -> str:
    """:data:`PAUSE_DRILL` named ``name``, pointed at ``service``."""
    return PAUSE_DRILL.format(name=name, pidfile=service.pidfile, url=service.url)


async def wait_running_again(run_id: str, pid: int, within: float = 30) -> float:
    """The ``time.monotonic()`` at which the stopped ``pid`` is seen running again (polled in a thread, so the
    event loop keeps serving), else :class:`RuntimeError` after ``within`` seconds."""
    running = await asyncio.to_thread(wait_state, pid, False, within)
    if running is None:
        raise RuntimeError(f"{run_id}: the target was still stopped {within:.0f} s after the stop")
    return running


def chaos_experiment(pid: int, hold: float) -> dict[str, object]:
    """A Chaos Toolkit experiment: SIGSTOP ``pid`` then pause ``hold`` s (the method); rollback: SIGCONT it."""
    return {
        "version": "1.0.0",
        "title": f"pause pid {pid}",
        "description": "The same fault as the gameday drill: SIGSTOP a loopback service, SIGCONT on rollback.",
        "steady-state-hypothesis": {"title": "nothing checked", "probes": []},
        "method": [
            {
                "type": "action",
                "name": "pause-target",
                "provider": {"type": "process", "path": "kill", "arguments": ["-STOP", str(pid)]},
                "pauses": {"after": hold},
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "resume-target",
                "provider": {"type": "process", "path": "kill", "arguments": ["-CONT", str(pid)]},
            }
        ],
    }


def chaos_run(workdir: Path, pid: int, hold: float, strategy: str) -> subprocess.Popen[bytes]:
    """Start ``chaos run --rollback-strategy STRATEGY`` of :func:`chaos_experiment` in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    experiment = workdir / "experiment.json"
    experiment.write_text(json.dumps(chaos_experiment(pid, hold)))
    command = [
        str(SCRIPTS / "chaos"),
        "--no-version-check",
        "--log-file",
        str(workdir / "chaostoolkit.log"),
        "run",
        "--rollback-strategy",
        strategy,
        "--journal-path",
        str(workdir / "journal.json"),
        str(experiment),
    ]
    with open(workdir / "chaos.out", "ab") as out:
        return subprocess.Popen(command, cwd=workdir, stdout=out, stderr=out)


def chaos_version() -> str | None:
    """``chaostoolkit`` and ``chaostoolkit-lib`` versions, or None when ``chaos`` is not installed."""
    if not (SCRIPTS / "chaos").exists():
        return None
    from importlib.metadata import version

    return f"chaostoolkit {version('chaostoolkit')}, chaostoolkit-lib {version('chaostoolkit-lib')}"


# --- report -------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method), or the one value."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def stats_line(label: str, seconds: list[float]) -> str:
    """``label  n  min  p50  p95  max`` in milliseconds."""
    if not seconds:
        return f"  {label:<52}{'no samples':>12}"
    cells = (min(seconds), statistics.median(seconds), percentile(seconds, 95), max(seconds))
    return f"  {label:<52}{len(seconds):>5}" + "".join(f"{v * 1000:10.1f}" for v in cells)


def stats_header(title: str) -> str:
    return f"  {title:<52}{'n':>5}{'min':>10}{'p50':>10}{'p95':>10}{'max':>10}   (ms)"


def machine() -> list[str]:
    """The lines that say where and when a figure was measured (load average included: the machine is shared)."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    server = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return [
        f"nproc {len(os.sched_getaffinity(0))}, CPU {cpu}, {platform.platform()}, python {platform.python_version()}",
        f"{server}; {chaos_version() or 'chaostoolkit not installed'}",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load}",
    ]


def print_stop_report(
    title: str,
    setup: str,
    a: tuple[str, list[float]],
    b: tuple[str, list[float]],
    verdicts: dict[str, int],
    target: float,
) -> None:
    """The stop benchmarks' report: the machine, (a) and (b)'s latencies, the verdicts, (a)'s p95 against ``target``."""
    print()
    print(f"== {title} → SIGSTOPped target running again (/proc polled every 1 ms) ==")
    for line in machine():
        print("  " + line)
    print(stats_header(setup))
    print(stats_line(*a))
    print(stats_line(*b))
    print(f"  verdicts: {verdicts}")
    if a[1]:
        p95 = percentile(a[1], 95)
        print(f"  target (a) p95 < {target * 1000:.0f} ms: {'met' if p95 < target else 'NOT met'}")


def stop_bench_main(
    name: str,
    doc: str,
    measure: Callable[[Path, int], Awaitable[tuple[list[float], list[float], dict[str, int]]]],
    title: str,
    setup: str,
    labels: tuple[str, str],
    target: float,
) -> int:
    """The stop benchmarks' ``main``: ``--runs``, ``measure(tmp, runs)`` in a scratch directory, the report."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="measured drills of each of (a) and (b), alternating")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix=f"gameday-bench-{name}-") as tmp:
            a, b, verdicts = asyncio.run(measure(Path(tmp), args.runs))
    except Exception:
        traceback.print_exc()
        print(f"{name}: could not run (see above)", file=sys.stderr)
        return 1
    print_stop_report(title, setup, (labels[0], a), (labels[1], b), verdicts, target)
    return 0
