"""File faults on real files: each action applied and reverted exactly, reverts idempotent, a crashed apply undone.

The activities run as Temporal activities (``ActivityEnvironment``) through the same boundary the worker uses:
``capture_target`` first (its answer kept as ``before``, as the workflow keeps it), then ``apply_fault`` and
``revert_fault``. gameday's data directory is a temporary one, apart from the targets' directory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from gameday.activities import policy
from gameday.activities.faults import file as file_faults
from gameday.activities.faults.activities import apply_fault, capture_target, revert_fault
from gameday.activities.resolve import resolve_target
from gameday.model.drill import Target
from gameday.model.kinds.file import CorruptFileFault, FileTarget, FillFileFault, RemoveFileFault
from gameday.model.records import FaultInput, FaultState

if TYPE_CHECKING:
    from conftest import FaultInputFactory

CONTENT = b"name: shop\nport: 8000\n" * 50


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "gameday-data"
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(where))
    return where


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target_dir = tmp_path / "srv"
    target_dir.mkdir()
    path = target_dir / "config.yaml"
    path.write_bytes(CONTENT)
    os.chmod(path, 0o640)
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return path


def _state(path: Path) -> tuple[bytes, int, int]:
    info = os.stat(path)
    return path.read_bytes(), info.st_mode & 0o7777, info.st_mtime_ns


async def _captured(env: ActivityEnvironment, inp: FaultInput) -> FaultInput:
    """What the workflow does before an apply: capture, and keep the answer with the fault."""
    state = await env.run(capture_target, inp)
    return inp.model_copy(update={"before": state.facts})


FAULTS = {
    "remove": RemoveFileFault(action="remove", target="config"),
    "corrupt": CorruptFileFault(action="corrupt", target="config", offset=5, bytes=12),
    "fill": FillFileFault(action="fill", target="config", size=3 * 1024 * 1024 + 7),
}


@pytest.mark.parametrize("action", sorted(FAULTS))
async def test_each_action_changes_the_file_and_its_revert_restores_content_mode_and_mtime_exactly(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, data_dir: Path, config: Path, action: str
) -> None:
    before = _state(config)
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS[action]))

    record = await activity_env.run(apply_fault, inp)

    assert record.state == FaultState.APPLIED
    if action == "remove":
        assert not config.exists()
    elif action == "corrupt":
        damaged = config.read_bytes()
        assert len(damaged) == len(CONTENT) and damaged[5:17] == bytes(b ^ 0xFF for b in CONTENT[5:17])
        assert damaged[:5] == CONTENT[:5] and damaged[17:] == CONTENT[17:]
    else:
        assert config.stat().st_size == len(CONTENT) + 3 * 1024 * 1024 + 7
    copies = list(data_dir.rglob("content"))
    assert [c.read_bytes() for c in copies] == [CONTENT]  # the copy is in gameday's data dir
    assert sorted(p.name for p in config.parent.iterdir()) == (["config.yaml"] if action != "remove" else [])

    reverted = await activity_env.run(revert_fault, inp.model_copy(update={"record": record}))

    assert reverted.state == FaultState.REVERTED
    assert _state(config) == before
    assert not list(data_dir.rglob("content"))  # the copy is gone once the file is back
    assert sorted(p.name for p in config.parent.iterdir()) == ["config.yaml"]  # no restore file left beside it


@pytest.mark.parametrize("action", sorted(FAULTS))
async def test_a_revert_run_twice_is_a_no_op_the_second_time(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, data_dir: Path, config: Path, action: str
) -> None:
    before = _state(config)
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS[action]))
    record = await activity_env.run(apply_fault, inp)
    applied = inp.model_copy(update={"record": record})

    await activity_env.run(revert_fault, applied)
    again = await activity_env.run(revert_fault, applied)

    assert "as captured" in again.output
    assert _state(config) == before


async def test_a_revert_without_an_apply_changes_nothing(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, data_dir: Path, config: Path
) -> None:
    before = _state(config)
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS["remove"]))

    await activity_env.run(revert_fault, inp)

    assert _state(config) == before


async def test_a_crashed_apply_whose_record_never_came_back_is_reverted_from_the_copy(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, data_dir: Path, config: Path
) -> None:
    """The worker died after the apply changed the file: the workflow has only the capture and a bare record."""
    before = _state(config)
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS["corrupt"]))
    await file_faults.apply(inp)  # what the dead worker did; its FaultRecord never reached the workflow
    assert config.read_bytes() != CONTENT

    reverted = await activity_env.run(revert_fault, inp)  # the record is still REGISTERED, ``changed`` empty

    assert _state(config) == before
    assert "restored" in reverted.output


async def test_a_file_changed_between_capture_and_apply_is_not_touched(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, data_dir: Path, config: Path
) -> None:
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS["remove"]))
    config.write_bytes(b"someone else's edit\n")

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, inp)

    assert raised.value.type == "FaultApplyError" and "not applied: " in raised.value.message
    assert config.read_bytes() == b"someone else's edit\n"


@pytest.mark.parametrize("make", ["missing", "symlink", "directory", "own", "kernel", "kernel by symlink"])
async def test_capture_refuses_what_is_not_a_regular_file_of_the_drill(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    data_dir: Path,
    config: Path,
    tmp_path: Path,
    make: str,
) -> None:
    paths: dict[str, Any] = {
        "missing": tmp_path / "nope",
        "symlink": tmp_path / "link",
        "directory": tmp_path / "srv",
        "own": data_dir / "gameday.db",
        "kernel": Path("/proc/sys/kernel/hostname"),  # a "regular file" to stat: writing it renames the host
        "kernel by symlink": tmp_path / "host" / "hostname",
    }
    if make == "kernel by symlink":
        (tmp_path / "host").symlink_to("/proc/sys/kernel")
    if make == "symlink":
        paths["symlink"].symlink_to(config)
    if make == "own":
        data_dir.mkdir(parents=True)
        paths["own"].write_bytes(b"results")
    inp = fault_input(Target(file=FileTarget(path=str(paths[make]))), FAULTS["remove"])

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(capture_target, inp)

    assert raised.value.type == "FaultCaptureError" and raised.value.non_retryable
    assert config.read_bytes() == CONTENT


@pytest.mark.parametrize("own", ["database", "journal", "policy", "code", "site-packages"])
async def test_a_drill_never_touches_gameday_s_own_files_wherever_they_are(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    own: str,
) -> None:
    """Beyond the data dir: a results database and a policy set elsewhere, gameday's code, the worker's Python."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "results.db").write_bytes(b"results")
    (elsewhere / "results.db-journal").write_bytes(b"journal")
    (elsewhere / "policy.yaml").write_text("kinds: [file]\n")
    monkeypatch.setenv("GAMEDAY_DATABASE_URL", f"sqlite:///{elsewhere / 'results.db'}")
    monkeypatch.setenv("GAMEDAY_POLICY", str(elsewhere / "policy.yaml"))
    paths = {
        "database": elsewhere / "results.db",
        "journal": elsewhere / "results.db-journal",
        "policy": elsewhere / "policy.yaml",
        "code": Path(file_faults.__file__),
        "site-packages": Path(pytest.__file__),
    }
    before = paths[own].read_bytes()
    inp = fault_input(Target(file=FileTarget(path=str(paths[own]))), FAULTS["corrupt"])

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(capture_target, inp)
    assert raised.value.type == "FaultCaptureError" and raised.value.non_retryable
    assert "never touches gameday itself" in raised.value.message

    with pytest.raises(ApplicationError):  # an apply reached without a capture refuses the same way
        await activity_env.run(apply_fault, inp)
    assert paths[own].read_bytes() == before


async def test_two_spellings_of_one_file_resolve_to_one_lock_key(config: Path) -> None:
    twisted = str(config.parent) + "/../" + config.parent.name + "//" + config.name
    one = await resolve_target("a", Target(file=FileTarget(path=str(config))))
    other = await resolve_target("b", Target(file=FileTarget(path=twisted)))
    assert one.keys == other.keys
    assert one.keys[0] == f"file:{os.path.realpath(config)}"


async def test_two_hard_links_to_one_file_share_a_lock_key(config: Path, tmp_path: Path) -> None:
    """Else two drills lock one file: the second captures the first one's damage, and its revert puts it back."""
    linked = tmp_path / "linked.yaml"
    os.link(config, linked)
    one = await resolve_target("a", Target(file=FileTarget(path=str(config))))
    other = await resolve_target("b", Target(file=FileTarget(path=str(linked))))
    assert set(one.keys) & set(other.keys)
    assert hashlib.sha256(config.read_bytes()).hexdigest()  # untouched by resolution


async def test_a_worker_policy_paths_rule_refuses_a_file_outside_it_before_anything_is_touched(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    data_dir: Path,
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    rules = tmp_path / "policy.yaml"
    rules.write_text(f"paths: [{allowed}]\n")
    monkeypatch.setenv(policy.POLICY_SETTING, str(rules))
    target = Target(file=FileTarget(path=str(config)))
    [refusal] = policy.current().target_refusals("conf", target)
    assert refusal.field == "targets.conf.file.path" and "is not under an allowed path" in refusal.message

    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(apply_fault, fault_input(target, FAULTS["remove"]))

    assert raised.value.type == "PolicyRefused"
    assert config.read_bytes() == CONTENT


async def test_a_symlink_planted_at_the_restore_name_is_not_written_through(
    activity_env: ActivityEnvironment, fault_input: FaultInputFactory, data_dir: Path, config: Path, tmp_path: Path
) -> None:
    """In a directory others can write to, the revert's temporary file must not follow a planted symlink."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"not yours\n")
    before = _state(config)
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS["remove"]))
    record = await activity_env.run(apply_fault, inp)
    (config.parent / f".{config.name}.gameday-restore").symlink_to(victim)

    reverted = await activity_env.run(revert_fault, inp.model_copy(update={"record": record}))

    assert reverted.state == FaultState.REVERTED
    assert victim.read_bytes() == b"not yours\n"
    assert _state(config) == before and not config.is_symlink()
    assert sorted(p.name for p in config.parent.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize("swap", ["symlink", "other file"])
async def test_a_path_swapped_after_it_was_read_is_refused_not_followed(
    data_dir: Path, config: Path, tmp_path: Path, swap: str
) -> None:
    """Between the read and the write, the path becomes a symlink to another file, or another file."""
    victim = tmp_path / "victim"
    victim.write_bytes(CONTENT)
    state = file_faults._read(str(config))
    assert state is not None
    config.rename(tmp_path / "kept")  # still there: its inode cannot be reused by what takes its place
    if swap == "symlink":
        config.symlink_to(victim)
    else:
        config.write_bytes(CONTENT)

    with pytest.raises(file_faults.ApplyError):
        file_faults._open_target(str(config), os.O_RDWR, state.identity)
    assert victim.read_bytes() == CONTENT


def test_a_path_with_a_nul_character_is_refused_when_the_drill_is_read() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="NUL"):
        FileTarget(path="/tmp/a\0b")


async def test_a_revert_run_by_a_worker_on_another_file_system_is_retried_not_reported_done(
    activity_env: ActivityEnvironment,
    fault_input: FaultInputFactory,
    data_dir: Path,
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers on one task queue, each in its own container: the one that did not apply the fault has its own
    untouched file at the path, and said 'as captured', REVERTED, while the removed one stayed removed."""
    before = _state(config)
    inp = await _captured(activity_env, fault_input(Target(file=FileTarget(path=str(config))), FAULTS["remove"]))
    record = await activity_env.run(apply_fault, inp)
    applied = inp.model_copy(update={"record": record})
    removed = config.read_bytes() if config.exists() else None
    assert removed is None

    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(tmp_path / "other-worker"))  # its own data dir and host id
    config.write_bytes(CONTENT)  # what the other worker sees at that path: its own file, as captured
    with pytest.raises(ApplicationError) as raised:
        await activity_env.run(revert_fault, applied)
    assert raised.value.type == "FaultRevertError" and not raised.value.non_retryable
    assert "another worker's file system" in raised.value.message

    config.unlink()  # back on the worker that removed it
    monkeypatch.setenv("GAMEDAY_DATA_DIR", str(data_dir))
    reverted = await activity_env.run(revert_fault, applied)
    assert reverted.state == FaultState.REVERTED
    assert _state(config) == before
