"""The drill file as a validated model: what a drill may touch, what it checks, what it breaks.

The keys are a contract with users' files (see docs/DRILL_FORMAT.md): new keys may be added, none renamed.
Every model forbids unknown keys so a typo is an error, never a silently ignored setting. The loader
(``model.loader``) turns YAML into a :class:`Drill` and reports problems with file, line and field.

Each target, fault and probe kind is a module of its own under ``model/kinds/``: ``Target``, ``Fault`` and
``Probe`` are built from ``model.kinds.registry`` (docs/ADDING_A_KIND.md); their names are re-exported here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AliasChoices,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from gameday.model import budget
from gameday.model.base import Strict as Strict
from gameday.model.kinds import registry
from gameday.model.kinds.base import FaultBase as FaultBase
from gameday.model.kinds.command import CommandTarget as CommandTarget
from gameday.model.kinds.command import RunFault as RunFault
from gameday.model.kinds.docker import MIN_MEMORY as MIN_MEMORY
from gameday.model.kinds.docker import OPT_IN_LABEL as OPT_IN_LABEL
from gameday.model.kinds.docker import DisconnectFault as DisconnectFault
from gameday.model.kinds.docker import DockerTarget as DockerTarget
from gameday.model.kinds.docker import ExecFault as ExecFault
from gameday.model.kinds.docker import LimitCpuFault as LimitCpuFault
from gameday.model.kinds.docker import LimitMemoryFault as LimitMemoryFault
from gameday.model.kinds.docker import RestartFault as RestartFault
from gameday.model.kinds.docker import StopFault as StopFault
from gameday.model.kinds.http import CallFault as CallFault
from gameday.model.kinds.http import HttpRequest as HttpRequest
from gameday.model.kinds.http import HttpTarget as HttpTarget
from gameday.model.kinds.probe_command import CommandProbe as CommandProbe
from gameday.model.kinds.probe_http import HttpProbe as HttpProbe
from gameday.model.kinds.probe_tcp import TcpProbe as TcpProbe
from gameday.model.kinds.process import KillFault as KillFault
from gameday.model.kinds.process import PauseFault as PauseFault
from gameday.model.kinds.process import ProcessTarget as ProcessTarget
from gameday.model.kinds.proxy import BandwidthFault as BandwidthFault
from gameday.model.kinds.proxy import BlackholeFault as BlackholeFault
from gameday.model.kinds.proxy import CloseAfterFault as CloseAfterFault
from gameday.model.kinds.proxy import HostPort as HostPort
from gameday.model.kinds.proxy import LatencyFault as LatencyFault
from gameday.model.kinds.proxy import ProxyTarget as ProxyTarget
from gameday.model.kinds.proxy import ResetFault as ResetFault
from gameday.model.kinds.proxy import SliceFault as SliceFault
from gameday.model.kinds.proxy import ToxicFault as ToxicFault
from gameday.model.notify_records import Notify
from gameday.model.probe_prometheus import PrometheusProbe
from gameday.model.traffic import TRAFFIC_CONDITIONS, Expect, Traffic, TrafficGuardrail, data_loss_problems
from gameday.model.units import (
    Comparison,
    Duration,
    DurationAbove,
    DurationAtMost,
    PercentAbove,
    PercentAtLeast,
    PercentAtMost,
    PercentBelow,
    split_comparison,
    written_comparisons,
)
from gameday.model.watch import MAX_WATCH

DEFAULT_MAX_DURATION = timedelta(minutes=15)
"""A drill without ``max_duration`` is capped at 15 minutes: rollback is forced then."""

DEFAULT_START_DEADLINE = timedelta(seconds=60)
"""A drill no worker picked up within this long of its submission ends ABORTED, touching nothing."""

DEFAULT_REVERT_GRACE = timedelta(minutes=5)
"""How long past ``max_duration`` a failing revert keeps being retried before the run reports NOT REVERTED."""

DEFAULT_FAULT_LEASE = timedelta(seconds=60)
"""How long a worker holding a fault keeps it while it cannot reach Temporal before it reverts it on its own."""

MIN_FAULT_LEASE = timedelta(seconds=2)
"""Shorter leases would expire on an ordinary slow answer of the frontend (the worker checks it every second)."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


# --- targets and faults: one module per kind under model/kinds/, listed by model/kinds/registry.py ---------


class _TargetRoot(Strict):
    """Exactly one kind key: ``{process: {...}}``, ``{command: {}}``, ``{http: {...}}``…"""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> _TargetRoot:
        kinds = [k for k in TargetKind if getattr(self, k.value) is not None]
        if len(kinds) != 1:
            names = ", ".join(k.value for k in TargetKind)
            raise ValueError(f"a target needs exactly one kind key, one of: {names}")
        return self

    @property
    def kind(self) -> TargetKind:
        return next(k for k in TargetKind if getattr(self, k.value) is not None)

    @property
    def spec(self) -> Strict:
        """The model under the target's one kind key (a ``ProcessTarget``, a ``FileTarget``…)."""
        spec: Strict = getattr(self, self.kind.value)
        return spec


if TYPE_CHECKING:
    # What the type checker sees. At run time both are built from the registry, so a new kind needs no line here;
    # code that reads a new kind's target goes through ``Target.spec``.

    class TargetKind(StrEnum):
        PROCESS = "process"
        COMMAND = "command"
        HTTP = "http"
        DOCKER = "docker"
        PROXY = "proxy"

    class Target(_TargetRoot):
        process: ProcessTarget | None = None
        command: CommandTarget | None = None
        http: HttpTarget | None = None
        docker: DockerTarget | None = None
        proxy: ProxyTarget | None = None
        lock: str | None = None
        site: str | None = None

    Fault = FaultBase
else:
    TargetKind = StrEnum("TargetKind", [(kind.key.upper(), kind.key) for kind in registry.TARGET_KINDS])
    TargetKind.__module__ = __name__
    Target = create_model(
        "Target",
        __base__=_TargetRoot,
        __module__=__name__,
        **{kind.key: (kind.model | None, None) for kind in registry.TARGET_KINDS},
        # Name of the shared resource this target is, for target locks; defaults to the target's address.
        lock=(str | None, None),
        # The site (a host, a VM, a PID namespace) whose workers act on this target (``model/sites.py``).
        site=(str | None, None),
    )
    Fault = Annotated[Union[registry.fault_models()], Field(discriminator="action")]  # noqa: UP007

ACTIONS_BY_KIND: dict[TargetKind, frozenset[str]] = {
    TargetKind(key): actions for key, actions in registry.actions_by_kind().items()
}
DOCKER_ACTIONS = ACTIONS_BY_KIND[TargetKind.DOCKER]
TOXICS = ACTIONS_BY_KIND[TargetKind.PROXY]


# --- probes: the steady-state hypothesis ----------------------------------------------------------------


class Tolerance(Strict):
    """What a probe's samples must satisfy. Without a tolerance every sample must succeed.

    Each bound is written bare (``1%``, ``300ms``: at most) or as a comparison (``"< 1%"``, ``"<= 300ms"``).
    """

    error_rate: PercentAtMost = 0.0
    latency_p95: DurationAtMost | None = None
    latency_max: DurationAtMost | None = None
    comparisons: dict[str, Comparison] = Field(default_factory=dict)
    """The operator written for each bound (``{"latency_p95": "<"}``), filled in from the forms above."""

    @model_validator(mode="before")
    @classmethod
    def _note_comparisons(cls, data: object) -> object:
        return written_comparisons(data, ("error_rate", "latency_p95", "latency_max"))


class ProbeMode(StrEnum):
    """When a hypothesis probe runs (LitmusChaos users know these as SOT, EOT, Continuous and Edge)."""

    ALWAYS = "always"
    """Before the faults (preflight), during them (observe) and after rollback (verify): the default."""
    BEFORE = "before"
    """Preflight only: a precondition."""
    DURING = "during"
    """Observation only, every ``observe.interval``: an expectation under fault."""
    AFTER = "after"
    """Verification only: part of recovery."""
    EDGE = "edge"
    """Before and after, not during: the system may degrade under fault but must come back."""


PROBE_PHASES: dict[str, frozenset[ProbeMode]] = {
    "before": frozenset({ProbeMode.ALWAYS, ProbeMode.BEFORE, ProbeMode.EDGE}),
    "during": frozenset({ProbeMode.ALWAYS, ProbeMode.DURING}),
    "after": frozenset({ProbeMode.ALWAYS, ProbeMode.AFTER, ProbeMode.EDGE}),
}
"""Which probe modes run in each part of the drill."""


class _ProbeRoot(Strict):
    @model_validator(mode="before")
    @classmethod
    def _record_beside_http(cls, data: Any) -> Any:
        """``record: PATH`` beside ``http:`` (issue 15's form) means ``http: {record: PATH}``."""
        if not isinstance(data, dict) or "record" not in data:
            return data
        data = dict(data)
        path = data.pop("record")
        http = data.get("http")
        if not isinstance(http, dict):
            raise ValueError("record keeps a JSON value of an http probe's answer: it needs 'http'")
        if "record" in http:
            raise ValueError("record is given twice: beside 'http' and inside it")
        data["http"] = {**http, "record": path}
        return data

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> _ProbeRoot:
        kinds = [k for k in ProbeKind if getattr(self, k.value) is not None]
        if len(kinds) != 1:
            names = ", ".join(k.value for k in ProbeKind)
            raise ValueError(f"a probe needs exactly one kind key, one of: {names}")
        return self

    @property
    def kind(self) -> ProbeKind:
        return next(k for k in ProbeKind if getattr(self, k.value) is not None)

    @property
    def spec(self) -> Strict:
        """The model under the probe's one kind key (an ``HttpProbe``, a ``TcpProbe``…)."""
        spec: Strict = getattr(self, self.kind.value)
        return spec


if TYPE_CHECKING:

    class ProbeKind(StrEnum):
        HTTP = "http"
        TCP = "tcp"
        COMMAND = "command"
        PROMETHEUS = "prometheus"

    class Probe(_ProbeRoot):
        name: str
        http: HttpProbe | None = None
        tcp: TcpProbe | None = None
        command: CommandProbe | None = None
        prometheus: PrometheusProbe | None = None
        samples: int = 1
        tolerance: Tolerance = Tolerance()
        mode: ProbeMode = ProbeMode.ALWAYS
        from_: str | None = None
else:
    ProbeKind = StrEnum("ProbeKind", [(kind.key.upper(), kind.key) for kind in registry.PROBE_KINDS])
    ProbeKind.__module__ = __name__
    Probe = create_model(
        "Probe",
        __base__=_ProbeRoot,
        __module__=__name__,
        name=(str, ...),
        **{kind.key: (kind.model | None, None) for kind in registry.PROBE_KINDS},
        samples=(int, Field(default=1, ge=1, le=10_000)),
        tolerance=(Tolerance, Field(default_factory=Tolerance)),
        # When it runs: ``always`` (default), ``before``, ``during``, ``after`` or ``edge`` (before and after).
        mode=(ProbeMode, ProbeMode.ALWAYS),
        # The site whose worker takes the samples (``from:`` in the file; ``model/sites.py``); default anywhere.
        from_=(str | None, Field(default=None, alias="from", validation_alias=AliasChoices("from", "from_"))),
    )


# --- observation and recovery ---------------------------------------------------------------------------


def _at_least_10ms(value: timedelta) -> timedelta:
    if value < timedelta(milliseconds=10):
        raise ValueError("expected an interval of at least 10ms")
    return value


Interval = Annotated[Duration, AfterValidator(_at_least_10ms)]
"""A repeat interval: a duration of at least 10ms, so a typo cannot turn probing into a busy loop."""


class StopWhen(Strict):
    """A kill switch: a probe whose *success* means stop (a flag file, a feature-flag endpoint…)."""

    http: HttpProbe | None = None
    command: CommandProbe | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> StopWhen:
        if (self.http is None) == (self.command is None):
            raise ValueError("stop_when needs exactly one kind key: http or command")
        return self


class Guardrail(Strict):
    """An abort condition; a breach stops the drill like ``gameday stop``. Three forms:

    - on the traffic's measurements (no ``probe``): ``{error_rate: "> 50%", for: 10s}``, also ``availability``,
      ``latency_p95``, ``latency_p99``; judged second by second while a fault is in place, it trips once its
      condition has held for ``for``. Needs ``observe.traffic``.
    - on a hypothesis probe (``probe`` plus at least one of ``failing``, ``error_rate``, ``latency_p95``,
      ``latency_p99``), judged over its last ``window`` observation samples at every tick;
    - a probe of its own (``stop_when``) that breaches when it succeeds.

    Thresholds are written bare (``50%``: trips above it) or as comparisons (``"> 50%"``, ``">= 50%"``; for
    availability ``"< 90%"``). Without a ``name``, one is derived from the condition (``error_rate > 50% for 10s``).
    """

    model_config = ConfigDict(populate_by_name=True)  # frozen, no extra keys: Strict

    name: str
    probe: str | None = None
    """Name of the hypothesis probe whose observation samples this guardrail watches."""
    failing: int | None = Field(default=None, ge=1, le=10_000)
    """Breach after this many failed samples in a row."""
    error_rate: PercentAbove | None = None
    """Breach when the share of failures rises above this (of the last ``window`` samples, or of the traffic)."""
    latency_p95: DurationAbove | None = None
    """Breach when the p95 is slower than this (of the last ``window`` samples: failed ones count as slow)."""
    latency_p99: DurationAbove | None = None
    """As ``latency_p95``, for the 99th percentile."""
    availability: PercentBelow | None = None
    """Traffic only: breach when the share of requests answered below 400 falls under this."""
    window: int = Field(default=10, ge=1, le=10_000)
    """Samples the rate and percentile conditions of a probe guardrail look back over."""
    for_: Duration | None = Field(default=None, alias="for")
    """Traffic only: how long the condition must hold, second after second, before it trips (default 0s)."""
    stop_when: StopWhen | None = None
    """A probe of the guardrail's own, run every tick: a successful sample is a breach."""
    comparisons: dict[str, Comparison] = Field(default_factory=dict)
    """The operator written for each threshold (``{"error_rate": ">="}``), filled in from the forms above."""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        data = written_comparisons(data, (*TRAFFIC_CONDITIONS, "failing"))
        if isinstance(data, dict) and "name" not in data:
            data = {**data, "name": _derived_name(data)}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Guardrail:
        conditions = [self.failing, self.error_rate, self.latency_p95, self.latency_p99, self.availability]
        if self.probe is not None and self.stop_when is not None:
            raise ValueError("a guardrail takes 'probe' (with conditions) or 'stop_when', not both")
        if self.stop_when is not None:
            if any(c is not None for c in conditions) or self.for_ is not None:
                raise ValueError("a stop_when guardrail takes no failing/error_rate/latency/availability/for")
            return self
        if self.probe is not None:
            if all(c is None for c in conditions[:4]):
                raise ValueError("a guardrail on a probe needs one of: failing, error_rate, latency_p95, latency_p99")
            if self.availability is not None or self.for_ is not None:
                raise ValueError(
                    "'availability' and 'for' apply to guardrails on the traffic (without 'probe'); "
                    "a probe guardrail counts samples: use error_rate with window, or failing"
                )
            return self
        if self.failing is not None:
            raise ValueError("'failing' counts a probe's samples: name the hypothesis probe with 'probe'")
        if all(c is None for c in conditions):
            raise ValueError(
                "a guardrail needs a condition: on the traffic (error_rate, availability, latency_p95, latency_p99, "
                "with an optional 'for'), on a hypothesis probe ('probe' with failing/error_rate/latency), "
                "or 'stop_when'"
            )
        return self

    @property
    def on_traffic(self) -> bool:
        """Whether this guardrail watches the traffic's measurements (no probe, no stop_when)."""
        return self.probe is None and self.stop_when is None

    def for_traffic(self) -> TrafficGuardrail:
        """This guardrail in the form the traffic engine judges."""
        return TrafficGuardrail(
            name=self.name,
            error_rate=self.error_rate,
            availability=self.availability,
            latency_p95=self.latency_p95,
            latency_p99=self.latency_p99,
            for_=self.for_ or timedelta(0),
            comparisons={k: v for k, v in self.comparisons.items() if k in TRAFFIC_CONDITIONS},
        )


_BREACH_OPS = {"availability": "<"}
"""How a bare threshold reads in a derived name: every condition trips above it, availability below."""


def _derived_name(data: dict[str, object]) -> str:
    """A guardrail's default name, from its condition as written: ``error_rate > 50% for 10s``."""
    parts: list[str] = []
    if data.get("stop_when") is not None:
        parts.append("stop_when")
    if isinstance(data.get("probe"), str):
        parts.append(str(data["probe"]))
    for key in ("failing", *TRAFFIC_CONDITIONS):
        value = data.get(key)
        if value is None:
            continue
        op, rest = split_comparison(value)
        if key == "failing":
            parts.append(f"failing {rest}")
        else:
            parts.append(f"{key} {op or _BREACH_OPS.get(key, '>')} {rest}")
    if data.get("for") is not None or data.get("for_") is not None:
        parts.append(f"for {data.get('for', data.get('for_'))}")
    return " ".join(parts) or "guardrail"


class Observe(Strict):
    duration: Duration = timedelta(seconds=30)
    """How long the faults are held while the hypothesis probes run."""
    interval: Interval = timedelta(seconds=1)
    """How often each hypothesis probe (and each guardrail) runs during observation."""
    guardrails: list[Guardrail] = Field(default_factory=list)
    """Abort conditions: the first breach stops the drill and reverts every fault."""
    traffic: Traffic | None = None
    """Load sent from the steady state until verification ends, measured per window (``before``, ``during …``,
    ``rollback``, ``after``) and per second."""
    expect: Expect | None = None
    """Service levels the traffic must keep under fault, and the ``sequence``, ``detect`` and ``alerts`` judged on
    the watch; a miss makes the verdict DEVIATED."""
    watch: list[Probe] = Field(default_factory=list, max_length=MAX_WATCH)
    """Probes sampled every ``interval`` from the first fault to the end of verify, recorded, never judged as the
    hypothesis: what ``expect.sequence`` and ``expect.detect`` read."""
    min_coverage: PercentAtLeast = 0.8
    """Share of the observation the probes must actually cover (no gap from a lost worker or an unreachable
    Temporal) for the run to be RESILIENT; below it the verdict is INCONCLUSIVE."""

    @model_validator(mode="after")
    def _traffic_guardrails(self) -> Observe:
        """Hand the guardrails on the traffic's measurements to the traffic, which judges them second by second."""
        if self.traffic is None:
            return self
        wanted = [g.for_traffic() for g in self.guardrails if g.on_traffic]
        merged = [*self.traffic.guardrails, *(g for g in wanted if g not in self.traffic.guardrails)]
        if merged != self.traffic.guardrails:
            # Frozen model, still being built: the one place its field is set (idempotent on every re-validation).
            object.__setattr__(self, "traffic", self.traffic.model_copy(update={"guardrails": merged}))
        return self


class Recovery(Strict):
    within: Duration = timedelta(seconds=60)
    """After rollback, the hypothesis must hold again within this window."""
    interval: Interval = timedelta(milliseconds=500)
    """How often the hypothesis is checked while waiting for recovery."""
    consecutive: int = Field(default=1, ge=1, le=1000)
    """Checks in a row the hypothesis must pass to count as recovered (a flapping system is not recovered)."""


class Approval(Strict):
    """A go/no-go gate: after preflight the drill waits for ``gameday approve RUN_ID`` before injecting."""

    before: Literal["inject"] = "inject"
    timeout: Duration = timedelta(minutes=10)
    """Without an approval this long after the steady state held, the drill ends ABORTED, nothing injected."""


class Pause(Strict):
    """What ``gameday pause RUN_ID`` does to the faults while the drill is held between phases."""

    faults: Literal["hold", "revert"] = "hold"
    """``hold``: faults stay in place while paused; ``revert``: they are reverted, and applied again on resume."""


class Drill(Strict):
    """A whole drill file. See docs/DRILL_FORMAT.md for every key."""

    version: Literal[1] = 1
    name: str
    description: str = ""
    team: str = ""
    max_duration: Duration = DEFAULT_MAX_DURATION
    revert_grace: Duration = DEFAULT_REVERT_GRACE
    """A failing revert is retried until ``max_duration`` plus this grace; then the run ends ERROR, NOT REVERTED."""
    lock_wait: Duration = timedelta(0)
    """How long to wait for a target another drill holds; 0 refuses at once, naming the holder."""
    start_deadline: Duration = DEFAULT_START_DEADLINE
    """A drill not in preflight this long after it was submitted (no worker picked it up) ends ABORTED, touching
    nothing; ``max_duration`` also counts from the submission."""
    fault_lease: Duration = DEFAULT_FAULT_LEASE
    """A worker holding this drill's faults reverts them on its own once it has not reached Temporal for this long
    (at most the worker's ``GAMEDAY_MAX_FAULT_LEASE``); the run then ends ABORTED by ``lease``."""
    targets: dict[str, Target] = Field(default_factory=dict)
    hypothesis: list[Probe] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    observe: Observe = Field(default_factory=Observe)
    recovery: Recovery = Field(default_factory=Recovery)
    notify: Notify | None = None
    """Who hears about the drill as it happens: ``{slack: {channel: "#gameday"}, webhook: true}``."""
    approval: Approval | None = None
    """A go/no-go gate before the faults: ``{before: inject, timeout: 10m}``."""
    pause: Pause = Field(default_factory=Pause)
    """The policy of ``gameday pause``: faults held (default) or reverted while paused."""

    @field_validator("name")
    @classmethod
    def _name_is_an_id(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                "expected 1-63 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("max_duration", "start_deadline")
    @classmethod
    def _positive_cap(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration")
        if value > budget.MAX_DURATION:
            raise ValueError("expected at most 24h (see Limits in docs/DRILL_FORMAT.md)")
        return value

    @field_validator("fault_lease")
    @classmethod
    def _lease_range(cls, value: timedelta) -> timedelta:
        if value < MIN_FAULT_LEASE:
            raise ValueError(f"expected at least {MIN_FAULT_LEASE.total_seconds():g}s")
        if value > budget.MAX_DURATION:
            raise ValueError("expected at most 24h (see Limits in docs/DRILL_FORMAT.md)")
        return value

    def probes_for(self, part: str) -> list[Probe]:
        """The hypothesis probes that run ``before`` (preflight), ``during`` (observe) or ``after`` (verify)."""
        return [probe for probe in self.hypothesis if probe.mode in PROBE_PHASES[part]]

    def cross_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems that need the whole drill to see: each as (field path, message)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for i, fault in enumerate(self.faults):
            target = self.targets.get(fault.target)
            if target is None:
                declared = ", ".join(sorted(self.targets)) or "none"
                problems.append(
                    (
                        ("faults", i, "target"),
                        f"unknown target {fault.target!r}; declared targets: {declared}",
                    )
                )
                continue
            allowed = ACTIONS_BY_KIND[target.kind]
            if fault.action_name not in allowed:
                choice = ", ".join(sorted(allowed)) or "none yet in this version"
                problems.append(
                    (
                        ("faults", i, "action"),
                        f"action {fault.action_name!r} does not apply to {target.kind.value} target "
                        f"{fault.target!r}; expected one of: {choice}",
                    )
                )
            kind = registry.target_kind(target.kind.value)
            if kind is not None and fault.action_name in allowed:
                for where, message in kind.problems(target.spec, fault):
                    problems.append((("targets", fault.target, target.kind.value, *where), message))
            if fault.duration is not None and fault.duration > self.observe.duration:
                problems.append((("faults", i, "duration"), "a fault's duration cannot exceed observe.duration"))
        listening: dict[str, str] = {}
        for target_name, proxy_target in ((n, t.proxy) for n, t in self.targets.items()):
            if proxy_target is None:
                continue
            if (first := listening.setdefault(proxy_target.listen, target_name)) != target_name:
                problems.append(
                    (
                        ("targets", target_name, "proxy", "listen"),
                        f"{proxy_target.listen} is already the listen address of proxy target {first!r}",
                    )
                )
        problems += self._expect_problems()
        problems.extend(data_loss_problems(self.observe.traffic, self.observe.expect))
        if self.observe.duration >= self.max_duration:
            problems.append(
                (
                    ("max_duration",),
                    f"max_duration ({self.max_duration.total_seconds():g}s) must be longer than "
                    f"observe.duration ({self.observe.duration.total_seconds():g}s): it caps the time faults are held",
                )
            )
        names = [p.name for p in self.hypothesis]
        for i, name in enumerate(names):
            if names.index(name) != i:
                problems.append((("hypothesis", i, "name"), f"probe name {name!r} is used twice"))
        during = [p.name for p in self.probes_for("during")]
        guard_names = [g.name for g in self.observe.guardrails]
        for i, guard in enumerate(self.observe.guardrails):
            if guard_names.index(guard.name) != i:
                problems.append((("observe", "guardrails", i, "name"), f"guardrail name {guard.name!r} is used twice"))
            if guard.on_traffic and self.observe.traffic is None:
                problems.append(
                    (
                        ("observe", "guardrails", i),
                        f"guardrail {guard.name!r} watches the traffic's measurements: it needs observe.traffic "
                        "(or name a hypothesis probe with 'probe')",
                    )
                )
            if guard.probe is not None and guard.probe in names and guard.probe not in during:
                problems.append(
                    (
                        ("observe", "guardrails", i, "probe"),
                        f"probe {guard.probe!r} does not run during the observation (its mode); "
                        "use a probe with mode always or during",
                    )
                )
            if guard.probe is not None and guard.probe not in names:
                declared = ", ".join(names) or "none"
                problems.append(
                    (
                        ("observe", "guardrails", i, "probe"),
                        f"unknown probe {guard.probe!r}; hypothesis probes: {declared}",
                    )
                )
        return problems

    def _expect_problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """``observe.expect``'s service levels need traffic; ``sequence`` and ``detect`` name a watch probe."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        expect, observe = self.observe.expect, self.observe
        watched = [p.name for p in observe.watch]
        for i, name in enumerate(watched):
            if watched.index(name) != i:
                problems.append((("observe", "watch", i, "name"), f"watch probe name {name!r} is used twice"))
            if observe.watch[i].from_ is not None:
                problems.append(
                    (
                        ("observe", "watch", i, "from"),
                        "watch probes run where the hypothesis probes run: 'from' is not supported here",
                    )
                )
        if expect is None:
            return problems
        if expect.on_traffic and observe.traffic is None:
            keys = ", ".join(expect.on_traffic)
            problems.append(
                (
                    ("observe", "expect"),
                    f"observe.expect's service levels ({keys}) judge the traffic: they need observe.traffic",
                )
            )
        declared = ", ".join(watched) or "none"
        for key in ("sequence", "detect"):
            wanted = getattr(expect, key)
            if wanted is None:
                continue
            if wanted.probe not in watched:
                problems.append(
                    (("observe", "expect", key, "probe"), f"unknown probe {wanted.probe!r}; watch probes: {declared}")
                )
                continue
            probe = observe.watch[watched.index(wanted.probe)]
            if key == "sequence" and (probe.http is None or probe.http.record is None):
                problems.append(
                    (
                        ("observe", "expect", key, "probe"),
                        f"watch probe {wanted.probe!r} records no value: give it an http probe with 'record: PATH'",
                    )
                )
        return problems

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Drill:
        if info.context and info.context.get("defer_cross_checks"):
            return self  # the loader reports these itself, one located problem each
        problems = self.cross_problems()
        if problems:
            raise ValueError("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))
        return self
