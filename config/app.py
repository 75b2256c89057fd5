"""Configuration from one place: the environment (``GAMEDAY_*``), overridable by CLI flags.

Secrets (a database password inside ``GAMEDAY_DATABASE_URL``) are read here, on the worker or CLI side,
and never put into workflow inputs, so they never reach Temporal history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gameday.activities.policy import WorkerPolicy

DEFAULT_TASK_QUEUE = "gameday"
DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_UI_PORT = 8233
DEFAULT_SWEEP_WEDGED_AFTER = "2m"
DEFAULT_MAX_FAULT_LEASE = "10m"
DEFAULT_HOST_MAX_MEMORY = "50%"
DEFAULT_HOST_FILL_ROOTS = "/tmp:/var/tmp"
DEFAULT_HOST_MAX_CONNECTIONS = "1000"
DEFAULT_HOST_MAX_HOLD = "1h"


def default_data_dir() -> Path:
    """``$GAMEDAY_DATA_DIR``, else ``$XDG_DATA_HOME/gameday``, else ``~/.local/share/gameday``."""
    if explicit := os.environ.get("GAMEDAY_DATA_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gameday"


@dataclass(frozen=True)
class GamedayConfig:
    """Where Temporal and the results database are.

    Attributes:
        temporal_address: host:port of the Temporal frontend (``GAMEDAY_TEMPORAL_ADDRESS``).
        namespace: Temporal namespace (``GAMEDAY_NAMESPACE``).
        task_queue: task queue of the workers (``GAMEDAY_TASK_QUEUE``); one per environment.
        data_dir: where the SQLite results file and the dev server's database live (``GAMEDAY_DATA_DIR``).
        database_url: SQLAlchemy URL of the results database (``GAMEDAY_DATABASE_URL``);
            SQLite in ``data_dir`` by default.
        ui_url: base URL of the Temporal Web UI for links (``GAMEDAY_UI_URL``).
        environment: the environment drills run in (``GAMEDAY_ENVIRONMENT``, e.g. ``staging``): a search
            attribute, so the Web UI can tell a staging drill from a production one.
        alert_webhook: URL the worker POSTs alerts to, e.g. a fault NOT REVERTED (``GAMEDAY_ALERT_WEBHOOK``);
            a secret of the worker's, never put in workflow inputs.
        sweep_wedged_after: how long a drill's workflow task may keep failing before the sweep declares the drill
            lost and reverts its faults (``GAMEDAY_SWEEP_WEDGED_AFTER``, a duration like ``2m``; ``off``: never).
        policy_file: the worker policy, a YAML file (``GAMEDAY_POLICY``): what this worker does for drills
            (``activities/policy.py``); ``""`` runs every drill unrestricted. Never read from a drill.
        site: the site a worker acts for (``GAMEDAY_SITE``; ``gameday worker --site``): a host, a VM, a PID
            namespace. ``""``: the host name (``model/sites.py``).
        max_fault_lease: the longest ``fault_lease`` this worker grants a drill (``GAMEDAY_MAX_FAULT_LEASE``, a
            duration like ``10m``): a fault it holds is reverted here once Temporal has been unreachable for the
            drill's lease or this, whichever is shorter.
        host_max_memory: the most a ``host`` ``memory`` fault may hold on this worker's host
            (``GAMEDAY_HOST_MAX_MEMORY``: a size like ``2GiB`` or a share of the host's memory like ``50%``).
        host_fill_roots: the directories (and below) where ``disk_fill`` and ``io`` may write
            (``GAMEDAY_HOST_FILL_ROOTS``, ``:``-separated; ``""``: nowhere).
        host_max_connections: the most connections one ``connections`` fault may hold
            (``GAMEDAY_HOST_MAX_CONNECTIONS``).
        host_max_hold: a host fault's load ends itself after this long whatever happens (``GAMEDAY_HOST_MAX_HOLD``,
            a duration; a fault with a ``duration`` ends a minute after it).
    """

    temporal_address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_TASK_QUEUE
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str = ""
    ui_url: str = f"http://127.0.0.1:{DEFAULT_UI_PORT}"
    environment: str = "dev"
    alert_webhook: str = field(default="", repr=False)
    sweep_wedged_after: str = DEFAULT_SWEEP_WEDGED_AFTER
    policy_file: str = ""
    site: str = ""
    max_fault_lease: str = DEFAULT_MAX_FAULT_LEASE
    host_max_memory: str = DEFAULT_HOST_MAX_MEMORY
    host_fill_roots: str = DEFAULT_HOST_FILL_ROOTS
    host_max_connections: str = DEFAULT_HOST_MAX_CONNECTIONS
    host_max_hold: str = DEFAULT_HOST_MAX_HOLD

    @classmethod
    def from_env(cls) -> GamedayConfig:
        env = os.environ
        data_dir = default_data_dir()
        return cls(
            temporal_address=env.get("GAMEDAY_TEMPORAL_ADDRESS", DEFAULT_ADDRESS),
            namespace=env.get("GAMEDAY_NAMESPACE", DEFAULT_NAMESPACE),
            task_queue=env.get("GAMEDAY_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            data_dir=data_dir,
            database_url=env.get("GAMEDAY_DATABASE_URL", ""),
            ui_url=env.get("GAMEDAY_UI_URL", f"http://127.0.0.1:{DEFAULT_UI_PORT}"),
            environment=env.get("GAMEDAY_ENVIRONMENT", "dev"),
            alert_webhook=env.get("GAMEDAY_ALERT_WEBHOOK", ""),
            sweep_wedged_after=env.get("GAMEDAY_SWEEP_WEDGED_AFTER", DEFAULT_SWEEP_WEDGED_AFTER),
            policy_file=env.get("GAMEDAY_POLICY", "").strip(),
            site=env.get("GAMEDAY_SITE", "").strip(),
            max_fault_lease=env.get("GAMEDAY_MAX_FAULT_LEASE", DEFAULT_MAX_FAULT_LEASE),
            host_max_memory=env.get("GAMEDAY_HOST_MAX_MEMORY", DEFAULT_HOST_MAX_MEMORY).strip(),
            host_fill_roots=env.get("GAMEDAY_HOST_FILL_ROOTS", DEFAULT_HOST_FILL_ROOTS).strip(),
            host_max_connections=env.get("GAMEDAY_HOST_MAX_CONNECTIONS", DEFAULT_HOST_MAX_CONNECTIONS).strip(),
            host_max_hold=env.get("GAMEDAY_HOST_MAX_HOLD", DEFAULT_HOST_MAX_HOLD).strip(),
        )

    @property
    def wedged_after(self) -> timedelta | None:
        """:attr:`sweep_wedged_after` as a duration; ``None`` when ``off``.

        Raises:
            GamedayError: the value is not a duration (one line naming the setting).
        """
        from gameday.model.errors import GamedayError
        from gameday.model.units import DURATION_HINT, parse_duration

        text = self.sweep_wedged_after.strip()
        if text.lower() in ("off", "never", "none"):
            return None
        try:
            value = parse_duration(text)
        except ValueError:
            value = None
        if not isinstance(value, timedelta):
            raise GamedayError(f"GAMEDAY_SWEEP_WEDGED_AFTER={text!r}: expected {DURATION_HINT}, or off")
        return value

    @property
    def max_lease(self) -> timedelta:
        """:attr:`max_fault_lease` as a duration.

        Raises:
            GamedayError: the value is not a duration of at least ``MIN_FAULT_LEASE`` (one line naming the setting).
        """
        from gameday.model.drill import MIN_FAULT_LEASE
        from gameday.model.errors import GamedayError
        from gameday.model.units import DURATION_HINT, parse_duration

        text = self.max_fault_lease.strip()
        try:
            value = parse_duration(text)
        except ValueError:
            value = None
        if not isinstance(value, timedelta) or value < MIN_FAULT_LEASE:
            least = f"{MIN_FAULT_LEASE.total_seconds():g}s"
            raise GamedayError(f"GAMEDAY_MAX_FAULT_LEASE={text!r}: expected {DURATION_HINT}, at least {least}")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gameday.db'}"

    @property
    def database_label(self) -> str:
        """The results database URL as it may be printed or logged: password hidden."""
        from sqlalchemy.engine import make_url

        return make_url(self.resolved_database_url).render_as_string(hide_password=True)

    def worker_policy(self) -> WorkerPolicy:
        """The worker policy in :attr:`policy_file`, checked at start (with ``GAMEDAY_DRILL_SECRETS``).

        The activities read the same file again at each check (``activities.policy.current``), so an edit applies
        without a restart.

        Raises:
            PolicyError: the file is unusable, or the secrets allowlist has an entry that is not a name.
        """
        from gameday.activities.policy import at_start

        return at_start(self.policy_file)

    def with_overrides(self, **changes: object) -> GamedayConfig:
        """A copy with the non-``None`` values replaced (CLI flags win over the environment)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    def workflow_url(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/namespaces/{self.namespace}/workflows/{run_id}"
