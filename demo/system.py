"""The bundled demo system: an inventory service and the shop API in front of it, on loopback.

``gameday demo`` starts it, runs the bundled drill (``demo/drill.yaml``) against it and stops it::

    with DemoSystem(workdir) as system:
        drill_text = system.render_drill()
        ...  # run the drill; system.health() shows what the shop API reports meanwhile

Both services run as subprocesses of this Python (``sys.executable -m gameday.demo.…``) on 127.0.0.1, on free ports
(``gameday demo``) or on known ones (``gameday dev --demo``: :data:`SERVE_API_PORT`, :data:`SERVE_INVENTORY_PORT`),
with their pidfiles and logs in ``workdir``. They stop by themselves if the process that started them dies.
:meth:`DemoSystem.stop` never leaves a process
behind: it continues a paused inventory first (a stopped process cannot act on SIGTERM), then sends
SIGTERM, then SIGKILL to whatever is still alive after 3 s; it also finds an inventory that a drill's
``kill`` revert restarted, through the pidfile.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

STARTUP_TIMEOUT_S = 10.0
STOP_GRACE_S = 3.0
SERVE_DIR = Path("/tmp/gameday-demo")
"""Where ``gameday dev --demo`` puts the pidfiles and logs by default: a path the README's drills can name, that a
user who is not root can create (``/run`` needs root)."""
SERVE_API_PORT = 8000
SERVE_INVENTORY_PORT = 8001
DRILL_TEMPLATE = Path(__file__).with_name("drill.yaml")
"""The bundled drill, package data next to this module (``gameday.demo``)."""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


class DemoError(RuntimeError):
    """The demo system could not start; the message says which process and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout_s: float = 2.0) -> tuple[int, dict[str, object]]:
    """GET ``url`` without any proxy; the status and the JSON object of the body (``{}`` if not an object)."""
    try:
        with _OPENER.open(url, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    body = json.loads(raw or b"{}")
    return status, body if isinstance(body, dict) else {}


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True  # no /proc (macOS): trust kill(0)


def _check_port_free(name: str, port: int) -> None:
    """Refuse a port already bound on 127.0.0.1: our service would fail, and whatever holds it would be drilled."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the services bind: TIME_WAIT is no owner
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DemoError(
                f"port {port} (the demo {name}) is in use on 127.0.0.1: stop what holds it (an earlier "
                "'gameday dev --demo'?) and start again"
            ) from None


class DemoSystem:
    """The demo's two processes, started by :meth:`start` (or ``with``) and stopped by :meth:`stop`.

    Ports are chosen when the object is made, so :meth:`render_drill` and the URLs work before start.

    Attributes:
        workdir: where the pidfiles and the logs (``inventory.log``, ``shop_api.log``) go.
        api_url: the shop API's base URL, e.g. ``http://127.0.0.1:54321``.
        inventory_url: the inventory's base URL.
        inventory_pidfile: the inventory's pidfile, the drill's handle on the process.
        orders_db: the shop API's SQLite file of orders (``PUT /orders/ID``), kept across restarts.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        api_port: int | None = None,
        inventory_port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.startup_timeout_s = startup_timeout_s
        self.inventory_port = inventory_port or free_port()
        self.api_port = api_port or free_port()
        while self.api_port == self.inventory_port and api_port is None:
            self.api_port = free_port()
        if self.api_port == self.inventory_port:
            raise DemoError(f"the shop API and the inventory cannot share port {self.api_port}")
        self.inventory_url = f"http://127.0.0.1:{self.inventory_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.inventory_pidfile = self.workdir / "inventory.pid"
        self.api_pidfile = self.workdir / "shop_api.pid"
        self.inventory_log = self.workdir / "inventory.log"
        self.api_log = self.workdir / "shop_api.log"
        self.orders_db = self.workdir / "orders.db"
        # The services run as ``-m gameday.demo.…`` of this same Python, which has gameday installed (a wheel, or
        # an editable install from a checkout): nothing to add to PYTHONPATH, and nothing that would let a bare
        # ``workflows`` or ``cli`` shadow anything. A PYTHONPATH the caller set is passed on as it is.
        self._pythonpath = os.environ.get("PYTHONPATH", "")
        self._inventory: subprocess.Popen[bytes] | None = None
        self._api: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DemoSystem:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _inventory_args(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gameday.demo.inventory",
            "--port",
            str(self.inventory_port),
            "--pidfile",
            str(self.inventory_pidfile),
        ]

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        args = [*args, "--exit-with-parent"]  # never outlive us, holding the ports (a restart command omits it)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            # Own session: a Ctrl-C in the terminal reaches gameday, which stops these in order.
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def _wait_healthy(self, name: str, process: subprocess.Popen[bytes], url: str, log: Path, deadline: float) -> None:
        while True:
            if process.poll() is not None:
                tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-5:])
                raise DemoError(f"demo {name} exited with code {process.returncode} before answering {url}:\n{tail}")
            with contextlib.suppress(OSError, ValueError):
                if get_json(url, timeout_s=0.5)[0] == 200:
                    return
            if time.monotonic() >= deadline:
                raise DemoError(f"demo {name} did not answer {url} within {self.startup_timeout_s:g}s; see {log}")
            time.sleep(0.05)

    def start(self) -> DemoSystem:
        """Start the inventory, then the shop API (which warms its cache from it); wait until both are healthy.

        Raises:
            DemoError: a process exited or did not answer ``/health`` in time; whatever started is stopped.
        """
        self._prepare_workdir()
        for name, port in (("inventory", self.inventory_port), ("shop API", self.api_port)):
            _check_port_free(name, port)
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            self._inventory = self._spawn(self._inventory_args(), self.inventory_log)
            url = f"{self.inventory_url}/health"
            self._wait_healthy("inventory", self._inventory, url, self.inventory_log, deadline)
            api_args = [sys.executable, "-m", "gameday.demo.shop_api", "--port", str(self.api_port)]
            api_args += ["--inventory-url", self.inventory_url, "--pidfile", str(self.api_pidfile)]
            api_args += ["--orders-db", str(self.orders_db)]
            self._api = self._spawn(api_args, self.api_log)
            self._wait_healthy("shop API", self._api, f"{self.api_url}/health", self.api_log, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_workdir(self) -> None:
        """Create the directory (private to this user); refuse one someone else could plant a pidfile in.

        A drill signals whatever pid its pidfile holds: in a shared directory such as ``/tmp``, another user's
        pidfile would turn the README's drill against any process of ours.
        """
        created = not self.workdir.exists()
        try:
            self.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.workdir.stat()
        except OSError as err:
            raise DemoError(f"cannot use {self.workdir} for the demo's pidfiles: {err.strerror or err}") from None
        if not self.workdir.is_dir():
            raise DemoError(f"{self.workdir} is not a directory: the demo's pidfiles and logs go there")
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise DemoError(
                f"{self.workdir} belongs to another user (uid {info.st_uid}): a pidfile there could name any "
                "process; choose another directory"
            )
        if info.st_mode & 0o002 and not created:
            raise DemoError(f"{self.workdir} is writable by every user: make it private (chmod 700) or choose another")

    @property
    def api_pid(self) -> int | None:
        """The shop API's pid, or ``None`` before start."""
        return self._api.pid if self._api is not None else None

    def inventory_pid(self) -> int | None:
        """The pid in the inventory's pidfile (possibly stale after a SIGKILL), or ``None`` if there is none."""
        try:
            return int(self.inventory_pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def health(self) -> dict[str, object]:
        """The shop API's ``/health`` body: ``status``, ``degraded``, ``level``, ``breaker`` (``state``...),
        ``source`` and ``dependency``."""
        return get_json(f"{self.api_url}/health")[1]

    def restart_inventory_command(self) -> str:
        """A shell command that starts the inventory again in the background, same port, pidfile and log."""
        return (
            f"PYTHONPATH={shlex.quote(self._pythonpath)} " if self._pythonpath else ""
        ) + f"nohup {shlex.join(self._inventory_args())} >>{shlex.quote(str(self.inventory_log))} 2>&1 </dev/null &"

    def render_drill(self) -> str:
        """The bundled drill with this system's URL, pidfile and restart command filled in."""
        template = DRILL_TEMPLATE.read_text(encoding="utf-8")
        values = {
            "API_URL": self.api_url,
            "INVENTORY_PIDFILE": str(self.inventory_pidfile),
            "INVENTORY_RESTART": self.restart_inventory_command(),
        }
        # The placeholders sit inside YAML double quotes; a JSON string body is valid there, escapes and all.
        return string.Template(template).safe_substitute({k: json.dumps(v)[1:-1] for k, v in values.items()})

    def _children(self) -> dict[int, subprocess.Popen[bytes]]:
        """Our subprocesses not yet reaped (a reaped pid may already belong to someone else)."""
        return {p.pid: p for p in (self._inventory, self._api) if p is not None and p.poll() is None}

    def _inventory_pids(self) -> set[int]:
        """The inventory we started, and the one a ``kill`` revert may have restarted in its place."""
        pids = {self._inventory.pid} if self._inventory is not None and self._inventory.poll() is None else set()
        pid = self.inventory_pid()
        if pid is not None and is_running(pid) and self._is_inventory(pid):
            pids.add(pid)
        return pids

    def _is_inventory(self, pid: int) -> bool:
        # A stale pidfile may name a recycled pid: only signal a process whose command line is ours.
        if Path("/proc/self/cmdline").exists():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return False
        else:
            cmdline = subprocess.run(["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True).stdout
        return b"gameday.demo.inventory" in cmdline and str(self.inventory_pidfile).encode() in cmdline

    def stop(self) -> None:
        """Stop every demo process: SIGCONT to the inventory, SIGTERM to all, SIGKILL after 3 s. Idempotent."""
        inventory_pids = self._inventory_pids()
        pids = inventory_pids | set(self._children())
        for sig, targets in ((signal.SIGCONT, inventory_pids), (signal.SIGTERM, pids)):
            for pid in targets:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        remaining = self._wait_gone(pids, time.monotonic() + STOP_GRACE_S)
        for pid in remaining:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._wait_gone(remaining, time.monotonic() + STOP_GRACE_S)

    def _wait_gone(self, pids: set[int], deadline: float) -> set[int]:
        """Wait until none of ``pids`` runs (reaping our children); return those still running at ``deadline``."""
        children = {p.pid: p for p in (self._inventory, self._api) if p is not None}
        while True:
            remaining = {pid for pid in pids if (children[pid].poll() is None if pid in children else is_running(pid))}
            if not remaining or time.monotonic() >= deadline:
                return remaining
            time.sleep(0.02)
