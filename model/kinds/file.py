"""The ``file`` target kind: one regular file, removed, corrupted or filled; every revert puts it back exactly.

``targets.<name>.file: {path: /srv/app/config.yaml}``. Before the apply, ``capture_target`` reads the file's
identity (size, SHA-256, mode, owner, modification time); the apply refuses a file that changed since, copies it
into gameday's data directory (never beside the target), and only then changes it. The revert restores that
copy, atomically, with its mode, owner and modification time, whenever the file differs from what was captured;
it is a no-op on a file that is already as it was. Faults: ``activities/faults/file.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator

from gameday.model.base import Strict
from gameday.model.kinds.base import DEFAULT_APPLY_BUDGET, FaultBase, TargetKindSpec
from gameday.model.kinds.docker import memory_bytes

MAX_FILL = 10 * 1024**3
"""The most a ``fill`` may add: 10 GiB."""
FILL_RATE = 50 * 1024**2
"""Bytes per second a ``fill`` is budgeted to write (its apply budget grows with its size)."""


class FileTarget(Strict):
    """A regular file on the worker's host, by absolute path (a symlink or a directory is refused at capture)."""

    path: str
    """Absolute path of the file."""

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("expected an absolute path (starting with /)")
        if "\0" in value:
            raise ValueError("a path cannot hold a NUL character")
        return value


class RemoveFileFault(FaultBase):
    """Delete the file; revert puts the captured copy back (content, mode, owner, modification time)."""

    action: Literal["remove"]


class CorruptFileFault(FaultBase):
    """Invert ``bytes`` bytes of the file from ``offset`` (each bit flipped); revert restores the captured copy."""

    action: Literal["corrupt"]
    offset: int = Field(default=0, ge=0)
    """Where the corruption starts, in bytes from the start of the file."""
    bytes: int = Field(default=64, ge=1, le=1024**2)
    """How many bytes to corrupt (cut at the end of the file)."""


class FillFileFault(FaultBase):
    """Append ``size`` zero bytes to the file (a disk filling up); revert cuts it back to its captured size."""

    action: Literal["fill"]
    size: Annotated[int, BeforeValidator(memory_bytes), Field(ge=1, le=MAX_FILL)]
    """Bytes to add, written like ``64m``, ``512MiB`` or ``1g`` (binary units)."""

    def apply_budget(self) -> timedelta:
        return DEFAULT_APPLY_BUDGET + timedelta(seconds=self.size / FILL_RATE)


def describe(spec: FileTarget) -> str:
    return f"file {spec.path}"


def describe_fault(fault: FaultBase) -> tuple[str, str]:
    restore = "restore the copy taken before (content, mode, owner, mtime) if the file differs"
    if isinstance(fault, CorruptFileFault):
        return f"invert {fault.bytes} byte(s) from offset {fault.offset}", restore
    if isinstance(fault, FillFileFault):
        return f"append {fault.size} zero byte(s)", "cut the file back to its size before, else " + restore
    return "delete the file", restore


def lock_key(spec: FileTarget) -> str:
    return f"file:{spec.path}"


def policy_paths(spec: FileTarget) -> list[tuple[str, str]]:
    return [("path", spec.path)]


KIND = TargetKindSpec(
    key="file",
    model=FileTarget,
    faults=(RemoveFileFault, CorruptFileFault, FillFileFault),
    describe=describe,
    describe_fault=describe_fault,
    lock_key=lock_key,
    provider="gameday.activities.faults.file",
    policy_paths=policy_paths,
    host_local=True,
)
