"""docker-compose.yml, the team setup, as Compose itself resolves it (Debian's ``docker-compose``, v1.29).

No image registry is reachable here, so nothing is pulled or started: ``docker-compose config`` parses the file,
checks it against the Compose schema, interpolates the variables and prints the result, which is what these
tests read. The passwords are made up per test, so finding one in the output proves it came from the
environment, and not finding it in the file proves no secret is committed.
"""

from __future__ import annotations

import ast
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
WORKERS = ("worker-1", "worker-2")
SEARCH_ATTRIBUTES = ("DrillName", "DrillTeam", "DrillEnvironment", "DrillVerdict")


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    require(binary, "Debian's docker-compose (apt-get install docker-compose)")
    assert binary is not None
    # Only PATH and the given variables: a developer's own TEMPORAL_POSTGRES_PASSWORD must not leak into a test.
    # COMPOSE_PROJECT_NAME keeps the result independent of the checkout's folder name.
    environment = {"PATH": "/usr/bin:/bin", "COMPOSE_PROJECT_NAME": "gameday", **env}
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
        cwd=COMPOSE_FILE.parent,
    )


@pytest.fixture
def passwords() -> dict[str, str]:
    return {
        "TEMPORAL_POSTGRES_PASSWORD": f"temporal-{secrets.token_hex(8)}",
        "GAMEDAY_POSTGRES_PASSWORD": f"gameday-{secrets.token_hex(8)}",
    }


def resolved(passwords: dict[str, str], *profile: str) -> dict[str, Any]:
    done = compose(*profile, "config", env=passwords)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_the_team_setup_has_temporal_on_postgresql_its_ui_results_database_upgrade_and_workers(
    passwords: dict[str, str],
) -> None:
    services = resolved(passwords)["services"]

    # Compose v1's `config` lists every service whatever the profile; what keeps the demo out of a plain `up` is
    # its profile, so that is what is checked.
    always = {name for name, service in services.items() if not service.get("profiles")}
    assert always == {
        "temporal-postgresql",
        "temporal",
        "search-attributes",
        "temporal-ui",
        "results-postgresql",
        "db-upgrade",
        "console",
        *WORKERS,
    }
    assert services["demo"]["profiles"] == ["demo"]
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "temporal-postgresql"
    assert temporal["environment"]["POSTGRES_PWD"] == passwords["TEMPORAL_POSTGRES_PASSWORD"]
    assert temporal["depends_on"]["temporal-postgresql"]["condition"] == "service_healthy"
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["results-postgresql"]["environment"]["POSTGRES_DB"] == "gameday"
    # Ports are published on loopback only: nothing of a chaos tool should face the network by default.
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert {name for name, _ in published} == {"temporal", "temporal-ui", "results-postgresql", "console"}
    assert all(host_ip(port) == "127.0.0.1" for _, port in published), published


def host_ip(port: str | dict[str, Any]) -> str:
    """The address a port is published on: Compose v1 prints ``127.0.0.1:7233:7233/tcp``, v2 a mapping."""
    return str(port["host_ip"]) if isinstance(port, dict) else port.split(":")[0]


def test_the_schema_is_upgraded_once_before_any_worker_starts(passwords: dict[str, str]) -> None:
    services = resolved(passwords)["services"]

    upgrade = services["db-upgrade"]
    assert upgrade["command"] == ["db", "upgrade"]
    assert upgrade["depends_on"]["results-postgresql"]["condition"] == "service_healthy"
    assert upgrade["restart"] == "no"
    url = f"postgresql+psycopg://gameday:{passwords['GAMEDAY_POSTGRES_PASSWORD']}@results-postgresql:5432/gameday"
    assert upgrade["environment"]["GAMEDAY_DATABASE_URL"] == url
    for name in WORKERS:
        worker = services[name]
        assert worker["build"]["context"] == str(COMPOSE_FILE.parent)  # the repository's Dockerfile
        assert worker["command"] == ["worker"]
        assert worker["depends_on"]["db-upgrade"]["condition"] == "service_completed_successfully"
        assert worker["depends_on"]["search-attributes"]["condition"] == "service_completed_successfully"
        environment = worker["environment"]
        assert environment["GAMEDAY_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert environment["GAMEDAY_DATABASE_URL"] == url
        assert environment["GAMEDAY_ENVIRONMENT"] == "staging"


def test_each_worker_is_a_site_of_its_own_and_only_the_docker_site_mounts_the_engine(passwords: dict[str, str]) -> None:
    services = resolved(passwords)["services"]
    sites = {name: services[name]["environment"]["GAMEDAY_SITE"] for name in WORKERS}
    assert sites == {"worker-1": "app", "worker-2": "docker-host"}
    mounts = {name: str(services[name].get("volumes", "")) for name in WORKERS}
    assert "docker.sock" in mounts["worker-2"] and "docker.sock" not in mounts["worker-1"]


def test_the_search_attributes_are_registered_as_keywords_by_a_one_off(passwords: dict[str, str]) -> None:
    registrar = resolved(passwords)["services"]["search-attributes"]

    assert registrar["image"].startswith("temporalio/admin-tools:")
    assert registrar["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    script = "\n".join(registrar["command"])
    assert "temporal operator search-attribute create" in script and "--type Keyword" in script
    for name in SEARCH_ATTRIBUTES:
        assert name in script, name


def test_the_demo_profile_adds_the_shop_api_with_a_worker_of_its_own(passwords: dict[str, str]) -> None:
    services = resolved(passwords, "--profile", "demo")["services"]

    demo = services["demo"]
    assert demo["environment"]["GAMEDAY_TASK_QUEUE"] == "gameday-demo"
    assert "DemoSystem" in "\n".join(demo["command"]) and demo["entrypoint"] == ["python", "-c"]
    assert demo["depends_on"]["db-upgrade"]["condition"] == "service_completed_successfully"


def test_the_demo_command_imports_the_installed_package_not_the_image_s_source_copy(
    passwords: dict[str, str], tmp_path: Path
) -> None:
    # The image's WORKDIR /app holds a copy of the source folders, so a bare ``from demo.system import ...``
    # in ``python -c`` (cwd first on sys.path) happened to work there and nowhere else (issue 13: one namespace).
    # The command's imports are run here from a directory without the source: only ``gameday.*`` resolves.
    script = "\n".join(resolved(passwords, "--profile", "demo")["services"]["demo"]["command"])
    imports = [node for node in ast.parse(script).body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imports
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(ast.unparse(node) for node in imports)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr


def test_no_secret_is_written_in_the_file_and_none_has_a_default(passwords: dict[str, str]) -> None:
    text = COMPOSE_FILE.read_text()
    resolved_text = compose("config", env=passwords).stdout

    for value in passwords.values():
        assert value in resolved_text and value not in text
    # Every password, token and URL carrying one is a variable in the file as written (anchors expanded by the
    # YAML loader): the passwords mandatory (":?"), the optional worker secrets empty by default, which the
    # worker reads as "not configured".
    written: dict[str, Any] = yaml.safe_load(text)
    for name, service in written["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "PWD", "TOKEN", "WEBHOOK", "DATABASE_URL")):
                assert "${" in value, (name, key)
    for variable in passwords:
        missing = {k: v for k, v in passwords.items() if k != variable}
        done = compose("config", env=missing)
        assert done.returncode != 0 and f"set {variable}" in done.stderr, done.stderr
    for secret in ("GAMEDAY_SLACK_TOKEN", "GAMEDAY_SLACK_WEBHOOK_URL", "GAMEDAY_WEBHOOK_URL", "GAMEDAY_ALERT_WEBHOOK"):
        assert f"{secret}: ${{{secret}:-}}" in text, secret


def test_the_worker_image_is_built_from_the_repository_alone_and_runs_as_a_user() -> None:
    dockerfile = (COMPOSE_FILE.parent / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line.startswith("#")]
    copied = [args.split()[0] for op, args in (i for i in instructions if len(i) == 2) if op == "COPY"]

    # Every source a COPY names is in the repository; `pip install .` needs nothing else.
    assert all((COMPOSE_FILE.parent / path).exists() for path in copied), copied
    assert ".env" not in copied and "." not in copied
    # and every folder setup.py installs as gameday.<folder>, with setup.py itself
    setup = (COMPOSE_FILE.parent / "setup.py").read_text()
    folders = ast.literal_eval(setup.split("FOLDERS = ", 1)[1].split("\n", 1)[0])
    copies = [args.split() for op, args in (i for i in instructions if len(i) == 2) if op == "COPY"]
    sources = {src for args in copies for src in args[:-1]}
    assert {"setup.py", "pyproject.toml", *folders} <= sources, sources
    assert any(op == "RUN" and "pip install --no-cache-dir ." in args for op, args in instructions if op == "RUN")
    [user] = [args for op, args in instructions if op == "USER"]
    assert user.strip() not in ("root", "0")
    assert ["ENTRYPOINT", '["gameday"]'] in instructions and ["CMD", '["worker"]'] in instructions


def test_workers_take_their_policy_and_drill_secrets_from_the_environment(passwords: dict[str, str]) -> None:
    services = resolved(
        {**passwords, "GAMEDAY_POLICY": "/etc/gameday/policy.yaml", "GAMEDAY_DRILL_SECRETS": "DRILL_*"}
    )["services"]

    for name in WORKERS:
        environment = services[name]["environment"]
        assert environment["GAMEDAY_POLICY"] == "/etc/gameday/policy.yaml", name
        assert environment["GAMEDAY_DRILL_SECRETS"] == "DRILL_*", name


AGENT_FILE = COMPOSE_FILE.parent / "docker-compose.agent.yml"
AGENT_ENV = {"GAMEDAY_SITE": "db-host-1", "GAMEDAY_TEMPORAL_ADDRESS": "t:7233", "GAMEDAY_DATABASE_URL": "sqlite:///x"}


def agent_config(env: dict[str, str], *profile: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    require(binary, "Debian's docker-compose (apt-get install docker-compose)")
    assert binary is not None
    return subprocess.run(
        [binary, "-f", str(AGENT_FILE), *profile, "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COMPOSE_PROJECT_NAME": "gameday-agent", **env},
        cwd=AGENT_FILE.parent,
    )


def test_a_site_agent_is_the_worker_image_on_the_hosts_pids_and_only_its_docker_variant_mounts_the_engine() -> None:
    done = agent_config(AGENT_ENV, "--profile", "docker")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    for name in ("agent", "agent-docker"):
        agent = services[name]
        assert agent["build"]["context"] == str(COMPOSE_FILE.parent)  # the repository's Dockerfile
        assert agent["command"] == ["worker"]
        assert agent["pid"] == "host" and agent["network_mode"] == "host"
        assert agent["environment"]["GAMEDAY_SITE"] == "db-host-1"
        assert agent["user"] not in ("root", "0")
    assert "docker.sock" not in str(services["agent"].get("volumes", ""))
    assert "docker.sock" in str(services["agent-docker"]["volumes"])
    # Without a site, nothing starts: a container's host name (its id) would be a new site at every restart.
    missing = agent_config({k: v for k, v in AGENT_ENV.items() if k != "GAMEDAY_SITE"})
    assert missing.returncode != 0 and "set GAMEDAY_SITE" in missing.stderr, missing.stderr


def test_the_console_is_published_on_loopback_and_takes_its_users_and_actions_from_the_environment(
    passwords: dict[str, str],
) -> None:
    users = f"alice:{secrets.token_hex(8)}"
    done = compose("config", env={**passwords, "GAMEDAY_CONSOLE_USERS": users, "GAMEDAY_CONSOLE_ACTIONS": "stop"})
    assert done.returncode == 0, done.stderr
    console = yaml.safe_load(done.stdout)["services"]["console"]
    assert console["command"][0] == "console"
    assert [host_ip(p) for p in console["ports"]] == ["127.0.0.1"]
    assert console["environment"]["GAMEDAY_CONSOLE_USERS"] == users
    assert console["environment"]["GAMEDAY_CONSOLE_ACTIONS"] == "stop"
    assert users not in COMPOSE_FILE.read_text()
    # Without them it is read-only: empty, not a default.
    plain = resolved(passwords)["services"]["console"]["environment"]
    assert plain["GAMEDAY_CONSOLE_USERS"] == "" and plain["GAMEDAY_CONSOLE_ACTIONS"] == ""
