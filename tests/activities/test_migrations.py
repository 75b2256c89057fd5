"""Schema migrations on real databases: an empty SQLite file and an empty PostgreSQL database reach head with
exactly the models' tables, indexes and foreign keys; a database made by the create_all code of earlier versions
is adopted with its rows; a shared database is never upgraded behind a person's back; ``gameday db``."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, ForeignKey, MetaData, String, Table, inspect, text
from sqlmodel import Session, SQLModel
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from gameday.activities import migrations
from gameday.activities.ledger import FaultLedger
from gameday.activities.locks import TargetLocks
from gameday.activities.migrations import SchemaOutOfDate, SchemaTooNew
from gameday.activities.store import Store, StoreActivities, make_engine
from gameday.activities.tables import FaultRow, ProbeRow, RunRow, UTCDateTime
from gameday.cli.main import app
from gameday.model.records import RunRecord
from tests.activities.test_store import NO_TRAFFIC, make_record
from tests.pg_support import PostgresServer

STORE_TABLES = ["runs", "phases", "faults", "probe_results"]
ALL_TABLES = [*STORE_TABLES, "fault_ledger", "target_locks"]
"""The tables of revision 0001: what gameday's ``create_all`` made before migrations."""
TRAFFIC_TABLES = ["traffic_runs", "traffic_windows"]
"""Added by revision 0002."""
GAMEDAY_TABLES = ["gamedays"]
"""Added by revision 0003."""
EVIDENCE_TABLES = ["observations"]
"""Added by revision 0004 (which also rebuilds ``phases`` keyed by position)."""
HEAD_TABLES = [*ALL_TABLES, *TRAFFIC_TABLES, *GAMEDAY_TABLES, *EVIDENCE_TABLES]


OLD_METADATA = MetaData()
Table("runs", OLD_METADATA, Column("run_id", String, primary_key=True))  # what the foreign key names
OLD_PHASES = Table(
    "phases",
    OLD_METADATA,
    Column("run_id", String, ForeignKey("runs.run_id"), primary_key=True),
    Column("phase", String, primary_key=True),
    Column("status", String, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("detail", String, nullable=False),
)
"""``phases`` as revisions 0001-0003 had it, keyed by (run, phase)."""


def add_old_rows(session: Session, record: RunRecord) -> None:
    """The rows of ``record`` as the Store before revision 0004 wrote them."""
    header = record.model_dump(
        exclude={"steps", "faults", "probes", "stop", "traffic", "coverage", "expectations", "watch", "alerts"}
    )
    row = RunRow.model_validate(header, update={"updated_at": datetime.now(UTC)})
    columns = {c["name"] for c in inspect(session.connection()).get_columns("runs")}  # only those it had
    session.execute(RunRow.__table__.insert().values(row.model_dump(include=columns)))  # type: ignore[attr-defined]
    session.flush()
    steps = [{**step.model_dump(include={"status", "started_at", "ended_at", "detail"}), "phase": step.phase.value}
             for step in record.steps]  # fmt: skip
    session.execute(OLD_PHASES.insert(), [{**step, "run_id": record.run_id} for step in steps])
    for model, items in ((FaultRow, record.faults), (ProbeRow, record.probes)):
        table = model.__table__  # type: ignore[attr-defined]
        had = {c["name"] for c in inspect(session.connection()).get_columns(table.name)}  # only those it had
        for item in items:
            row = model.model_validate(item.model_dump(), update={"run_id": record.run_id})
            session.execute(table.insert().values(row.model_dump(include=had)))


def differences(engine: Engine) -> list[object]:
    """What Alembic's autogenerate would change to make the database match the models: tables, columns, types,
    nullability, indexes, foreign keys. Empty means the migrations create the schema exactly as the models define it.
    """
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        found: list[object] = compare_metadata(context, migrations.gameday_metadata())
        return found


def foreign_keys(engine: Engine) -> dict[str, list[tuple[list[str], str, list[str]]]]:
    inspector = inspect(engine)
    return {
        table: [
            (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
            for fk in inspector.get_foreign_keys(table)
        ]
        for table in HEAD_TABLES
    }


def assert_schema_at_head(engine: Engine) -> None:
    assert migrations.status(engine).current == migrations.head()
    assert differences(engine) == []
    assert set(HEAD_TABLES) <= set(inspect(engine).get_table_names())
    assert foreign_keys(engine) == {
        "runs": [],
        "phases": [(["run_id"], "runs", ["run_id"])],
        "faults": [(["run_id"], "runs", ["run_id"])],
        "probe_results": [(["run_id"], "runs", ["run_id"])],
        "fault_ledger": [],
        "target_locks": [],
        "traffic_runs": [(["run_id"], "runs", ["run_id"])],
        "traffic_windows": [(["run_id"], "runs", ["run_id"])],
        "gamedays": [],
        "observations": [(["run_id"], "runs", ["run_id"])],
    }


def old_create_all_database(path: Path, tables: list[str]) -> str:
    """A SQLite file as gameday made it before migrations: ``create_all`` of ``tables``, one run saved in it."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[name] for name in tables if name != "phases"])
    OLD_PHASES.create(engine)
    record = make_record("old-run")
    with Session(engine) as session, session.begin():
        # The rows as the old Store.save wrote them (the same models, minus the upsert logic).
        add_old_rows(session, record)
    engine.dispose()
    return url


def sqlite_ddl(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall())


# --- up from empty --------------------------------------------------------------------------------------------


def test_an_empty_sqlite_file_is_migrated_to_head_on_first_use(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'new' / 'gameday.db'}")

    assert_schema_at_head(store.engine)
    store.save(make_record())
    assert store.get("run-1") == make_record()


def test_an_empty_postgresql_database_is_migrated_to_head_by_upgrade(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    assert migrations.status(engine).current is None

    before, after = migrations.upgrade(engine)

    assert (before.current, after.current) == (None, migrations.head())
    assert_schema_at_head(engine)
    store = Store(postgres_url)
    # The ledger and the locks use the migrated tables as they are.
    assert FaultLedger(store).unreverted() == {}
    assert TargetLocks(store).holders() == []
    store.save(make_record())
    assert store.get("run-1") == make_record()


def test_upgrading_a_database_at_head_changes_nothing(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    migrations.upgrade(engine)

    before, after = migrations.upgrade(engine)

    assert before.current == after.current == migrations.head()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrades_started_at_once_migrate_once(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engines = [make_engine(url) for _ in range(4)]  # one engine each, as four worker processes would have
    start, errors = threading.Barrier(len(engines)), list[BaseException]()

    def upgrade(engine: Engine) -> None:
        start.wait()
        try:
            migrations.upgrade(engine)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=upgrade, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert_schema_at_head(engines[0])
    with engines[0].connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_at_0001_gains_the_traffic_tables_and_keeps_its_runs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'at-0001.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    config = migrations.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    record = make_record("run-at-0001")
    with Session(engine) as session, session.begin():
        # The rows as the Store of revision 0001 wrote them.
        add_old_rows(session, record)
    assert not set(TRAFFIC_TABLES) & set(inspect(engine).get_table_names())

    before, after = migrations.upgrade(engine)

    assert (before.current, after.current) == ("0001", migrations.head())
    assert_schema_at_head(engine)
    store = Store(url)
    assert store.get("run-at-0001") == record
    assert store.counts("run-at-0001") == {"runs": 1, "phases": 5, "faults": 2, "probe_results": 3, **NO_TRAFFIC}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_at_0007_gains_a_nullable_ledger_site_and_its_ledger_rows_keep_null(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'at-0007.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    config = migrations.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        connection.execute(
            text(
                'INSERT INTO fault_ledger (run_id, "index", state, spec, registered_at, updated_at, namespace,'
                " cluster, lock_key) VALUES ('old', 0, 'applied', '{}', '2026-12-01', '2026-12-01', '', '', '')"
            )
        )
    assert "site" not in {c["name"] for c in inspect(engine).get_columns("fault_ledger")}

    before, after = migrations.upgrade(engine)

    assert (before.current, after.current) == ("0007", "0011") and after.current == migrations.head()
    assert_schema_at_head(engine)
    [site] = [c for c in inspect(engine).get_columns("fault_ledger") if c["name"] == "site"]
    assert site["nullable"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT site FROM fault_ledger WHERE run_id = 'old'")).scalar_one() is None


# --- adopting a database made before migrations -----------------------------------------------------------


def test_an_old_create_all_sqlite_file_is_adopted_without_touching_its_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = old_create_all_database(path, ALL_TABLES)
    ddl_before = sqlite_ddl(path)

    store = Store(url)

    assert_schema_at_head(store.engine)
    added = {"alembic_version", *TRAFFIC_TABLES, *GAMEDAY_TABLES, "ix_gamedays_name", "ix_gamedays_team"}
    added |= {*EVIDENCE_TABLES, "phases"}  # 0004 rebuilds phases keyed by position, its rows kept
    assert {name: sql for name, sql in sqlite_ddl(path).items() if name not in added} == {
        name: sql for name, sql in ddl_before.items() if name != "phases"
    }
    assert store.get("old-run") == make_record("old-run")


def test_an_older_sqlite_file_gains_the_columns_and_tables_it_lacks_and_keeps_its_rows(tmp_path: Path) -> None:
    # Before the ledger and the locks, and before time_to_safe / time_to_healthy: what a CLI-only user may have.
    path = tmp_path / "older.db"
    url = old_create_all_database(path, STORE_TABLES)
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE runs DROP COLUMN time_to_safe")
        connection.execute("ALTER TABLE runs DROP COLUMN time_to_healthy")

    store = Store(url)

    assert_schema_at_head(store.engine)
    assert store.get("old-run") == make_record("old-run")
    assert store.counts("old-run") == {"runs": 1, "phases": 5, "faults": 2, "probe_results": 3, **NO_TRAFFIC}


def test_an_old_create_all_postgresql_database_is_adopted_by_upgrade(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[name] for name in ALL_TABLES])

    before, after = migrations.upgrade(engine)

    assert (before.current, after.current) == (None, migrations.head())
    assert_schema_at_head(engine)


# --- who upgrades ---------------------------------------------------------------------------------------------


async def test_a_postgresql_database_behind_is_never_upgraded_by_the_store_and_names_the_command(
    postgres_url: str,
) -> None:
    store = Store(postgres_url)  # a worker starts anyway: it must still be able to revert faults

    with pytest.raises(SchemaOutOfDate, match="run `gameday db upgrade`"):
        store.get("run-1")
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(StoreActivities(store).record_run, make_record())
    assert caught.value.type == "SchemaOutOfDate"
    assert not caught.value.non_retryable  # the record waits in Temporal until someone upgrades
    assert "gameday db upgrade" in str(caught.value)
    assert inspect(make_engine(postgres_url)).get_table_names() == []

    migrations.upgrade(make_engine(postgres_url))

    # The same store, not restarted, works at once: a long-lived worker recovers by itself.
    await ActivityEnvironment().run(StoreActivities(store).record_run, make_record())
    assert store.get("run-1") == make_record()


def test_a_schema_newer_than_this_gameday_is_refused_with_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gameday.db'}"
    Store(url)
    with make_engine(url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(SchemaTooNew, match="upgrade gameday on this machine"):
        Store(url).get("run-1")
    with pytest.raises(SchemaTooNew):
        migrations.upgrade(make_engine(url))


# --- gameday db ----------------------------------------------------------------------------------------------


def gameday(url: str) -> Callable[..., tuple[int, str]]:
    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["db", *args], env={"GAMEDAY_DATABASE_URL": url})
        # A clean exit or one through typer.Exit: never an exception escaping with its traceback.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    return invoke


def test_gameday_db_current_and_upgrade_on_postgresql(postgres_url: str, postgres_server: PostgresServer) -> None:
    db = gameday(postgres_url)

    code, out = db("current")
    assert code == 1
    assert "schema revision none" in out and "run `gameday db upgrade`" in out

    code, out = db("upgrade")
    assert code == 0, out
    assert f"upgraded from nothing to {migrations.head()}" in out

    code, out = db("upgrade")
    assert code == 0 and f"already at revision {migrations.head()}" in out
    code, out = db("current")
    assert code == 0 and "up to date" in out
    assert postgres_server.password not in out
    assert "gameday:***@127.0.0.1" in out  # which database, password hidden


def test_commands_reading_a_postgresql_database_behind_name_the_upgrade_command(postgres_url: str) -> None:
    for args in (["list"], ["report", "run-1"]):
        result = CliRunner().invoke(app, args, env={"GAMEDAY_DATABASE_URL": postgres_url})

        assert result.exit_code == 1
        assert isinstance(result.exception, SystemExit), result.exception  # one line, not a traceback
        assert "run `gameday db upgrade`" in result.output


def test_gameday_db_with_postgresql_down_says_so_in_one_line_without_the_password(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    postgres_server.stop()
    try:
        code, out = gameday(postgres_url)("current")
    finally:
        postgres_server.start()

    assert code == 1
    assert "error: results database postgresql+psycopg://gameday:***@" in out
    assert "Connection refused" in out or "connection failed" in out
    assert postgres_server.password not in out
    assert "Traceback" not in out


def test_gameday_db_upgrade_refuses_a_schema_newer_than_itself(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gameday.db'}"
    Store(url)
    with make_engine(url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    code, out = gameday(url)("upgrade")

    assert code == 1
    assert "schema revision 9999 is newer than this gameday knows" in out


def test_the_alembic_command_line_renders_the_ddl_for_review(monkeypatch: pytest.MonkeyPatch) -> None:
    # `alembic -c activities/migrations/alembic.ini upgrade head --sql`: what a DBA reviews before applying.
    monkeypatch.setenv("GAMEDAY_DATABASE_URL", "postgresql+psycopg://gameday:secret@db.invalid/gameday")
    out = StringIO()
    config = migrations.alembic_config()
    config.output_buffer = out
    command.upgrade(config, "head", sql=True)

    ddl = out.getvalue()
    for table in HEAD_TABLES:
        assert f"CREATE TABLE {table} (" in ddl
    assert "CREATE INDEX ix_runs_started_at ON runs (started_at)" in ddl
    assert "INSERT INTO alembic_version (version_num) VALUES ('0001')" in ddl
    assert "UPDATE alembic_version SET version_num='0002' WHERE alembic_version.version_num = '0001'" in ddl
    assert "UPDATE alembic_version SET version_num='0003' WHERE alembic_version.version_num = '0002'" in ddl
