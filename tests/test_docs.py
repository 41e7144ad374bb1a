"""The docs are tested: every command has help and is in the README; the quick start is real."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from screening.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_there_are_commands() -> None:
    assert {"init", "import", "dedupe", "status", "export", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_documented(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    assert command.help and command.help.strip(), f"{name} has no help text"
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"screening {name}" in README, f"README does not document 'screening {name}'"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help text"


def test_quick_start_is_two_make_targets_and_ci_runs_the_test_one() -> None:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_examples_use_real_options() -> None:
    """Each `screening CMD [SUB] --opt` in the README names a command, and an option it has."""
    root = typer.main.get_command(app)
    for line in re.findall(r"^screening [^\n|]+", README, re.MULTILINE) + re.findall(r"`screening [^`]+`", README):
        words = line.strip("`").split()
        command, rest = root, words[1:]
        while rest and hasattr(command, "commands") and rest[0] in command.commands:
            command, rest = command.commands[rest[0]], rest[1:]
        assert command is not root, f"README uses an unknown command: {line}"
        assert not hasattr(command, "commands"), f"README names a group without a sub-command: {line}"
        opts = {o for p in command.params for o in getattr(p, "opts", [])}
        for word in rest:
            flag = word.split("=")[0].strip("[]")
            if flag.startswith("--"):
                assert flag in opts, f"README: '{line}' uses an option that does not exist: {flag}"
