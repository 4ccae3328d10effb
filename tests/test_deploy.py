"""The deployment files (Containerfile, compose.yaml, deploy/systemd) parse, and the commands
they run are the ones CI runs against the built wheel (scripts/check-wheel) and that exist in
the CLI. Images cannot be pulled here, so this is what can be checked without them."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shlex
import subprocess
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import Any

import pytest
import yaml

from consensus.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
_LOADER = SourceFileLoader("check_wheel", str(ROOT / "scripts" / "check-wheel"))
CHECK_WHEEL = importlib.util.module_from_spec(
    importlib.util.spec_from_loader("check_wheel", _LOADER)
)
_LOADER.exec_module(CHECK_WHEEL)
UNITS = ROOT / "deploy" / "systemd"
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def containerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) in order; continuation lines joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Containerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).partition(" ")
        lines.append((instruction, arguments.strip()))
        pending = ""
    assert not pending, "a continuation line ends the file"
    return lines


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def flask_commands(text: str) -> list[list[str]]:
    """Every `flask --app consensus …` in a shell text, as its words after the app."""
    found = []
    for match in re.finditer(r"flask --app consensus ([a-z][a-z \-]*[a-z])", text):
        found.append(match.group(1).split())
    return found


def shell_of(command: list[str] | str) -> str:
    if isinstance(command, list):
        if command[:2] == ["sh", "-c"]:
            return command[2]
        return shlex.join(command)
    return command


def all_flask_commands() -> list[list[str]]:
    texts = [args for instruction, args in containerfile() if instruction in {"RUN", "CMD"}]
    texts += [shell_of(s["command"]) for s in compose()["services"].values() if "command" in s]
    texts += [
        value
        for path in UNITS.glob("*.service")
        for key, value in unit(path.name)["Service"].items()
        if key.startswith("Exec")
    ]
    return [command for text in texts for command in flask_commands(text)]


def test_containerfile_parses_and_runs_the_checked_gunicorn_command():
    lines = containerfile()
    assert all(instruction in INSTRUCTIONS for instruction, _ in lines), lines
    stages = [args for instruction, args in lines if instruction == "FROM"]
    assert len(stages) == 2 and all(s.startswith("docker.io/library/python:3.11") for s in stages)
    (cmd,) = [json.loads(args) for instruction, args in lines if instruction == "CMD"]
    assert cmd == CHECK_WHEEL.GUNICORN_COMMAND
    (healthcheck,) = [args for instruction, args in lines if instruction == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    user = [args for instruction, args in lines if instruction == "USER"]
    assert user and user[-1] != "root"
    # The image builds the wheel that scripts/check-wheel builds, the same way.
    assert any("pip wheel" in args and "--no-deps" in args for i, args in lines if i == "RUN")
    # The system packages WeasyPrint needs, as CI installs them.
    ci = (ROOT / ".ci" / "run").read_text()
    for package in ["libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core"]:
        assert package in ci and any(package in args for i, args in lines if i == "RUN")


def test_compose_has_the_services_and_their_order():
    services = compose()["services"]
    assert set(services) == {"migrate", "app", "cron", "notifications", "db", "redis"}
    for name in ("migrate", "app", "cron"):
        assert services[name]["build"] == {"context": ".", "dockerfile": "Containerfile"}
    assert services["app"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services
    assert services["app"]["ports"] == ["127.0.0.1:8000:8000"]  # only the proxy reaches it
    assert "/readyz" in " ".join(services["app"]["healthcheck"]["test"])
    assert "command" not in services["app"]  # the image's CMD: the checked gunicorn command
    redis = services["redis"]["command"]
    assert redis[0] == "redis-server"


def _interpolated(environment: dict[str, str]) -> dict[str, str]:
    """Compose's ${VAR:?message} and ${VAR:-default}, with a sample value for each required
    variable (what an operator's .env would hold)."""
    samples = {
        "CONSENSUS_SECRET_KEY": "s" * 64,
        "CONSENSUS_KEY_ENCRYPTION_KEY": "ABEiM0RVZneImaq7zN3u_wARIjNEVWZ3iJmqu8zd7v8=",
        "CONSENSUS_SECURITY_CONTACT": "mailto:security@gemeente.example",
        "CONSENSUS_AUDIT_ORIGIN": "consensus.gemeente.example",
        "CONSENSUS_MAIL_HOST": "smtp.gemeente.example",
        "CONSENSUS_BASE_URL": "https://consensus.gemeente.example",
        "POSTGRES_PASSWORD": "p" * 32,
    }

    def replace(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if kind == ":?":
            return samples[name]
        return rest

    return {
        key: re.sub(r"\$\{([A-Z_]+)(:\?|:-)([^}]*)\}", replace, str(value))
        for key, value in environment.items()
    }


def test_compose_environment_passes_the_production_checks(monkeypatch, tmp_path):
    environment = _interpolated(compose()["services"]["app"]["environment"])
    assert environment["CONSENSUS_ENV"] == "production"
    for name in list(os.environ):
        if name.startswith("CONSENSUS_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = load_config(str(tmp_path))
    assert config["PRODUCTION"] and config["RATELIMIT_STORAGE_URI"].startswith("redis://")
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://consensus:")


def test_the_systemd_example_environment_is_refused_until_filled_in(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("CONSENSUS_"):
            monkeypatch.delenv(name)
    for line in (UNITS / "consensus.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="CONSENSUS_SECRET_KEY must be set"):
        load_config(str(tmp_path))


def test_shell_commands_in_compose_are_valid_shell():
    for name, service in compose()["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[:2] == ["sh", "-c"]:
            script = command[2].replace("$$", "$")  # compose's escape for a literal $
            result = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
            assert result.returncode == 0, (name, result.stderr)


def test_systemd_units_parse_and_run_the_checked_commands():
    service = unit("consensus.service")
    assert {"Unit", "Service", "Install"} <= set(service.sections())
    exec_start = shlex.split(service["Service"]["ExecStart"])
    assert Path(exec_start[0]).name == "gunicorn"
    assert exec_start[1:-1][:2] == CHECK_WHEEL.GUNICORN_COMMAND[1:3]
    assert exec_start[-1] == CHECK_WHEEL.GUNICORN_COMMAND[-1]
    assert service["Service"]["RestartPreventExitStatus"] == "4"  # consensus.wsgi's refusal
    for timer, calendar in [
        ("consensus-rounds-tick.timer", "minutely"),
        ("consensus-audit-checkpoint.timer", "hourly"),
    ]:
        parsed = unit(timer)
        assert parsed["Timer"]["OnCalendar"] == calendar
        assert parsed["Install"]["WantedBy"] == "timers.target"
        job = unit(timer.replace(".timer", ".service"))
        assert job["Service"]["Type"] == "oneshot"
        assert job["Service"]["User"] == "consensus"


def test_every_deployment_command_is_one_ci_runs():
    commands = all_flask_commands()
    assert ["db", "upgrade"] in commands
    assert ["rounds", "tick"] in commands and ["audit", "checkpoint"] in commands
    for command in commands:
        assert command in CHECK_WHEEL.FLASK_COMMANDS, command


@pytest.mark.parametrize("command", CHECK_WHEEL.FLASK_COMMANDS, ids=" ".join)
def test_the_checked_commands_exist_in_the_cli(runner, command):
    result = runner.invoke(args=[*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def _apt_packages(text: str) -> set[str]:
    """The packages of the first `apt-get install` command in a shell text."""
    command = []
    for line in text[text.index("apt-get install") :].splitlines():
        command.append(line.rstrip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            break
    words = " ".join(command).split()[2:]
    return {w for w in words if re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", w)}


def test_readme_lists_the_system_packages_ci_installs():
    readme = (ROOT / "README.md").read_text()
    listed = _apt_packages(readme[readme.index("### System packages for the tests") :])
    assert listed == _apt_packages((ROOT / ".ci" / "run").read_text())
    assert {"chromium", "postgresql", "poppler-utils"} <= listed
