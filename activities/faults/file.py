"""Faults on a ``file`` target: ``remove``, ``corrupt`` or ``fill`` one regular file; the revert restores it exactly.

How a file fault stays revertible whatever dies when:

1. ``capture`` (before the apply, its answer kept in workflow state): the file's size, SHA-256, mode, owner and
   times. A missing file, a symlink, anything but a regular file, or one of gameday's own (its data directory,
   its SQLite results file, the worker policy, its code, the worker's Python and venv) is refused there.
2. ``apply`` checks the file is still what was captured (else: not applied), copies it into gameday's data
   directory (``<data dir>/file-backups/<run>/<fault index>/``, never beside the target; written to a temporary
   name, synced, checked against the captured hash, then renamed), and only then changes the file.
3. ``revert`` compares the file with the capture: the same (a revert that already ran, an apply that never
   reached the change) is a no-op; a filled file is cut back to its size; anything else is replaced by the copy,
   atomically (a temporary file in the same directory, renamed over the path), with the captured mode, owner
   and times. The copy is deleted once the file is back. A worker killed between apply and revert leaves the
   copy on disk, where the next worker's revert finds it by the run id and the fault's index.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import re
import shutil
import stat
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from gameday.activities.faults import narrow
from gameday.activities.faults.errors import ApplyError, NothingChanged, RevertError, TargetNotFound
from gameday.config.app import default_data_dir
from gameday.model.kinds.base import FaultBase
from gameday.model.kinds.file import CorruptFileFault, FileTarget, FillFileFault, RemoveFileFault
from gameday.model.records import FaultInput, FaultRecord

MAX_BACKUP = 1024**3
"""The largest file a fault may touch: it is copied whole before the apply."""
CHUNK = 1024**2
BACKUPS = "file-backups"
"""Under gameday's data directory: where the copies taken before each apply live until the revert."""
FAULTS = (RemoveFileFault, CorruptFileFault, FillFileFault)


@dataclass(frozen=True)
class FileState:
    """What a revert restores: the file's content (by size and hash) and its metadata."""

    size: int
    sha256: str
    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    identity: tuple[int, int] = field(default=(0, 0), compare=False)
    """(device, inode) of the file this was read from; ``(0, 0)`` when rebuilt from facts. Not a fact: the
    operations that follow check they act on that very file (a path swapped meanwhile is not touched)."""

    def facts(self) -> dict[str, str]:
        return {
            "size": str(self.size),
            "sha256": self.sha256,
            "mode": oct(self.mode),
            "uid": str(self.uid),
            "gid": str(self.gid),
            "atime_ns": str(self.atime_ns),
            "mtime_ns": str(self.mtime_ns),
        }

    @classmethod
    def from_facts(cls, facts: dict[str, str]) -> FileState | None:
        if "sha256" not in facts:
            return None
        return cls(
            size=int(facts["size"]),
            sha256=facts["sha256"],
            mode=int(facts["mode"], 8),
            uid=int(facts["uid"]),
            gid=int(facts["gid"]),
            atime_ns=int(facts["atime_ns"]),
            mtime_ns=int(facts["mtime_ns"]),
        )

    def same_content(self, other: FileState | None) -> bool:
        return other is not None and (other.size, other.sha256) == (self.size, self.sha256)


def backup_root() -> Path:
    """``<data dir>/file-backups``: gameday's own directory, never the target's."""
    return default_data_dir() / BACKUPS


HOST_ID = "host-id"
"""Under gameday's data directory: a random id naming this worker's file system (made once). Two workers in two
containers or on two machines see two different files at one path; a revert run by the other one would find its
own, untouched file "as captured" and say REVERTED while the damaged one stays damaged."""


def host_id() -> str:
    """This worker's file-system id (``<data dir>/host-id``), created the first time it is asked for."""
    where = default_data_dir() / HOST_ID
    with contextlib.suppress(FileNotFoundError):
        return where.read_text().strip()
    where.parent.mkdir(parents=True, exist_ok=True)
    made = f"{os.uname().nodename}-{os.urandom(8).hex()}"
    try:
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:  # another worker of this data dir made it first
        return where.read_text().strip()
    with open(fd, "w") as out:
        out.write(made)
    return made


def backup_dir(inp: FaultInput) -> Path:
    """Where the copy of this fault's file lives: by run id and fault index, so any worker's revert finds it."""
    run = re.sub(r"[^A-Za-z0-9._-]", "_", inp.run_id)[:100] + "-" + hashlib.sha256(inp.run_id.encode()).hexdigest()[:8]
    return backup_root() / run / str(inp.index)


def _sha256(path: Path | str | int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", closefd=not isinstance(path, int)) as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


NOT_REGULAR = "is not a regular file (a symlink, a directory or a device): refused"


def _open_target(path: str, flags: int, identity: tuple[int, int] = (0, 0)) -> int:
    """A descriptor on the regular file at ``path``, never through a symlink (``O_NOFOLLOW``) and, given its
    ``identity``, only that very file: a path swapped for a symlink or another file after it was read (to have a
    drill write through it to, say, /etc/shadow) is refused, not followed.

    Raises:
        ApplyError: a symlink, not a regular file, or not the file read before.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ApplyError(f"{path} {NOT_REGULAR}") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or identity not in ((0, 0), (info.st_dev, info.st_ino)):
        os.close(fd)
        what = NOT_REGULAR if not stat.S_ISREG(info.st_mode) else "was replaced by another file since it was read"
        raise ApplyError(f"{path} {what}")
    return fd


def _read(path: str) -> FileState | None:
    """The file's state; ``None`` when there is no file at ``path``.

    Raises:
        ApplyError: something that is not a regular file is there (a symlink, a directory…), or it is too large.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise ApplyError(f"{path} {NOT_REGULAR}")
    if info.st_size > MAX_BACKUP:
        raise ApplyError(f"{path} is {info.st_size} bytes: file faults copy the file first, up to {MAX_BACKUP}")
    fd = _open_target(path, os.O_RDONLY, (info.st_dev, info.st_ino))
    try:
        return FileState(
            size=info.st_size,
            sha256=_sha256(fd),
            mode=stat.S_IMODE(info.st_mode),
            uid=info.st_uid,
            gid=info.st_gid,
            atime_ns=info.st_atime_ns,
            mtime_ns=info.st_mtime_ns,
            identity=(info.st_dev, info.st_ino),
        )
    finally:
        os.close(fd)


def _own_files() -> list[tuple[str, str]]:
    """What a drill must never touch, as (real path, what it is): gameday's data directory, its SQLite results
    file (wherever ``GAMEDAY_DATABASE_URL`` puts it, with its journal), the worker policy, gameday's own code and
    the Python the worker runs on (its venv, standard library and site-packages)."""
    from gameday.config.app import GamedayConfig

    found = [(default_data_dir(), "gameday's data directory")]
    config = GamedayConfig.from_env()
    url = config.resolved_database_url
    if url.startswith("sqlite") and "///" in url:
        database = url.split("///", 1)[1].split("?", 1)[0]
        if database and database != ":memory:":
            found += [(Path(database + suffix), "gameday's results database") for suffix in ("", "-journal", "-wal")]
    if config.policy_file:
        found.append((Path(config.policy_file), "the worker policy"))
    for folder in ("activities", "workflows", "worker", "cli", "model", "config", "report", "demo"):
        spec = importlib.util.find_spec(f"gameday.{folder}")
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            found.append((Path(location), "gameday's own code"))
    paths = sysconfig.get_paths()
    found += [(Path(paths[key]), "the Python the worker runs on") for key in ("stdlib", "purelib", "platlib")]
    if sys.prefix != sys.base_prefix:
        found.append((Path(sys.prefix), "the worker's virtual environment"))
    return [(os.path.realpath(where), what) for where, what in found]


KERNEL = ("/proc", "/sys", "/dev")
"""Files there are the kernel's, not data: a write is a setting changed (or a device written), with no exact revert."""


def _refuse_own_files(path: str) -> None:
    real = os.path.realpath(path)
    for root in KERNEL:
        if real == root or real.startswith(root + os.sep):
            raise ApplyError(f"{path} is under {root} (resolves to {real}): file faults act on data files only")
    for own, what in _own_files():
        if real == own or real.startswith(own.rstrip(os.sep) + os.sep):
            raise ApplyError(f"{path} is {what} or inside it ({own}): a drill never touches gameday itself")


def _capture(spec: FileTarget) -> dict[str, str]:
    _refuse_own_files(spec.path)
    state = _read(spec.path)
    if state is None:
        raise TargetNotFound(f"no file at {spec.path}")
    return state.facts()


async def capture(inp: FaultInput) -> dict[str, str]:
    """Read the file's size, hash, mode, owner and times (changes nothing).

    Raises:
        TargetNotFound: no file at the path. ApplyError: not a regular file, too large, or one of gameday's own.
    """
    spec, _ = narrow(inp, FileTarget, *FAULTS)
    return await asyncio.to_thread(_capture, spec)


def _write_backup(inp: FaultInput, path: str, state: FileState, identity: tuple[int, int]) -> Path:
    """Copy the file into the data directory (synced, checked), unless a good copy is there already."""
    where = backup_dir(inp)
    content, meta = where / "content", where / "meta.json"
    if content.exists() and _sha256(content) == state.sha256:
        return where
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = where / "content.partial"
    with open(_open_target(path, os.O_RDONLY, identity), "rb") as source, open(partial, "wb") as written:
        shutil.copyfileobj(source, written, CHUNK)
        written.flush()
        os.fsync(written.fileno())
    if _sha256(partial) != state.sha256:
        partial.unlink()
        raise NothingChanged(f"{path} changed while it was being copied: not touched")
    os.replace(partial, content)
    meta.write_text(json.dumps({"path": path, **state.facts()}))
    return where


def _drop_backup(inp: FaultInput) -> None:
    where = backup_dir(inp)
    shutil.rmtree(where, ignore_errors=True)
    with contextlib.suppress(OSError):
        where.parent.rmdir()  # only when empty: other faults of the run may still hold copies


def _apply(inp: FaultInput, spec: FileTarget, fault: FaultBase) -> FaultRecord:
    _refuse_own_files(spec.path)
    try:
        now = _read(spec.path)
    except ApplyError as err:
        raise NothingChanged(str(err)) from err
    if now is None:
        raise NothingChanged(f"no file at {spec.path}")
    before = FileState.from_facts(inp.before) or now
    if not before.same_content(now):
        raise NothingChanged(f"{spec.path} changed since it was captured ({now.size} bytes, was {before.size})")
    where = _write_backup(inp, spec.path, before, now.identity)
    changed = {"path": spec.path, "backup": str(where), "host": host_id(), **before.facts()}
    if isinstance(fault, RemoveFileFault):
        found = os.lstat(spec.path)
        if (found.st_dev, found.st_ino) != now.identity:
            _drop_backup(inp)
            raise NothingChanged(f"{spec.path} was replaced by another file since it was read: not touched")
        os.unlink(spec.path)
        output = f"removed {spec.path} ({before.size} bytes; copy in {where})"
    elif isinstance(fault, CorruptFileFault):
        with open(_open_target(spec.path, os.O_RDWR, now.identity), "r+b") as target:
            target.seek(fault.offset)
            original = target.read(fault.bytes)
            if not original:
                _drop_backup(inp)
                raise NothingChanged(f"offset {fault.offset} is past the end of {spec.path} ({before.size} bytes)")
            target.seek(fault.offset)
            target.write(bytes(b ^ 0xFF for b in original))
            target.flush()
            os.fsync(target.fileno())
        changed["corrupted"] = f"{len(original)}@{fault.offset}"
        output = f"inverted {len(original)} byte(s) of {spec.path} from offset {fault.offset}"
    else:
        assert isinstance(fault, FillFileFault)  # narrow() let only the three file faults through
        with open(_open_target(spec.path, os.O_WRONLY | os.O_APPEND, now.identity), "ab") as target:
            left, zeros = fault.size, bytes(CHUNK)
            while left > 0:
                left -= target.write(zeros[: min(CHUNK, left)])
            target.flush()
            os.fsync(target.fileno())
        changed["added"] = str(fault.size)
        output = f"appended {fault.size} zero byte(s) to {spec.path}"
    return inp.record.model_copy(update={"changed": changed, "output": output})


async def apply(inp: FaultInput) -> FaultRecord:
    """Copy the file into the data directory, then remove, corrupt or fill it.

    Raises:
        NothingChanged: the file is gone, changed since capture, or the corruption starts past its end.
    """
    spec, fault = narrow(inp, FileTarget, *FAULTS)
    return await asyncio.to_thread(_apply, inp, spec, fault)


def _restore_metadata(target: str | int, state: FileState) -> None:
    """Mode, owner and times, on a descriptor, or on a path that is then never followed if it is a symlink."""
    if isinstance(target, str):
        try:
            fd = _open_target(target, os.O_RDONLY)
        except PermissionError:  # a mode without read for us: by path, once more checked not to be a symlink
            if not stat.S_ISREG(os.lstat(target).st_mode):
                raise ApplyError(f"{target} {NOT_REGULAR}") from None
            os.chmod(target, state.mode)
            with contextlib.suppress(PermissionError):
                os.chown(target, state.uid, state.gid, follow_symlinks=False)
            os.utime(target, ns=(state.atime_ns, state.mtime_ns), follow_symlinks=False)
            return
        try:
            _restore_metadata(fd, state)
        finally:
            os.close(fd)
        return
    os.chmod(target, state.mode)
    with contextlib.suppress(PermissionError):  # not root: the file keeps this user as owner, as it was written
        os.chown(target, state.uid, state.gid)
    os.utime(target, ns=(state.atime_ns, state.mtime_ns))


def _restore(inp: FaultInput, path: str, state: FileState) -> str:
    content = backup_dir(inp) / "content"
    if not content.exists() or _sha256(content) != state.sha256:
        raise RevertError(f"{path} differs from what was captured and its copy ({content}) is missing or damaged")
    directory = os.path.dirname(path) or "."
    restoring = os.path.join(directory, f".{os.path.basename(path)}.gameday-restore")
    # Created here, exclusively and never through a symlink: in a directory others write to, a symlink planted
    # at this name would otherwise have the copy written wherever it points.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(restoring)  # a leftover of a revert that died here (a symlink itself is removed, not followed)
    fd = os.open(restoring, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as written, open(content, "rb") as source:
        shutil.copyfileobj(source, written, CHUNK)
        written.flush()
        os.fsync(fd)
        _restore_metadata(fd, state)
    os.replace(restoring, path)  # atomic: a reader sees the damaged file or the restored one, never half of it
    _restore_metadata(path, state)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return f"restored {path} from its copy ({state.size} bytes)"


def _revert(inp: FaultInput, spec: FileTarget) -> FaultRecord:
    meta = backup_dir(inp) / "meta.json"
    known = inp.before or inp.record.changed or (json.loads(meta.read_text()) if meta.exists() else {})
    applied_on = inp.record.changed.get("host")
    if applied_on is not None and applied_on != host_id():
        raise RevertError(
            f"{spec.path} was changed on another worker's file system ({applied_on}), this one is {host_id()}: "
            "left to a worker there (retried)"
        )
    state = FileState.from_facts(known)
    if state is None:
        # The apply copies the file before it changes anything: no capture and no copy means it never got there.
        return inp.record.model_copy(update={"output": f"{spec.path}: never changed (no copy was taken)"})
    now = _read(spec.path)
    if state.same_content(now):
        output = f"{spec.path} is as captured"
    elif now is not None and now.size > state.size:
        fd = _open_target(spec.path, os.O_WRONLY, now.identity)
        try:
            os.ftruncate(fd, state.size)
            os.fsync(fd)
        finally:
            os.close(fd)
        now = _read(spec.path)
        output = f"cut {spec.path} back to {state.size} bytes"
        if not state.same_content(now):
            output = _restore(inp, spec.path, state)
    else:
        output = _restore(inp, spec.path, state)
    _restore_metadata(spec.path, state)
    _drop_backup(inp)
    return inp.record.model_copy(update={"output": output})


async def revert(inp: FaultInput) -> FaultRecord:
    """Put the file back as captured; a no-op when it already is (idempotent, harmless if never applied).

    Raises:
        RevertError: the file differs and its copy is missing or damaged (retried: a fault must not stay).
    """
    spec, _ = narrow(inp, FileTarget, *FAULTS)
    return await asyncio.to_thread(_revert, inp, spec)


def _keys(path: str) -> list[str]:
    keys = [f"file:{os.path.realpath(path)}"]
    with contextlib.suppress(OSError):  # no file yet: the capture refuses it before anything is applied
        info = os.stat(path)
        keys.append(f"file-inode:{info.st_dev}:{info.st_ino}")
    return keys


async def resolve_keys(spec: FileTarget) -> list[str]:
    """The file's lock keys: its real path, so two spellings of one file collide (``resolve_targets``), and its
    device and inode, so two hard links to one file collide too: a second drill capturing a file the first one
    damaged would revert it to the damage."""
    return await asyncio.to_thread(_keys, spec.path)
