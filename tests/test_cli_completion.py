"""Shell completion written from the argparse definition: every subcommand and option is in
it, bash and fish complete commands, options, option values and configured pipeline names when
the shells run the scripts, and zsh accepts its script. A shell that is not installed fails its
tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipestatus.cli.commands import COMMANDS, build_parser
from pipestatus.cli.completion import describe, script
from pipestatus.vendors import REGISTRY

BIN = str(Path(sys.executable).parent)  # where the `pipestatus` script is installed


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def needs(shell: str) -> str:
    path = shutil.which(shell)
    # Not a skip: .ci/run installs bash, zsh and fish, and a skipped proof is no proof.
    assert path is not None, f"{shell} is not installed (apt-get install {shell})"
    return path


@pytest.fixture
def names_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        '[accounts.a]\nvendor = "yunxiao"\nendpoint = "https://x.example"\ntoken_env = "T"\n'
        '[[pipelines]]\naccount = "a"\nname = "backend"\npipeline_id = "1"\n'
        '[[pipelines]]\naccount = "a"\nname = "billing"\npipeline_id = "2"\n',
        encoding="utf-8",
    )
    return path


def test_every_command_and_option_is_described() -> None:
    """The description of the parser names every subcommand and every flag of each."""
    parser = build_parser()
    described = {command.name: command for command in describe(parser)}
    assert len(described) == len(COMMANDS)
    for name, command in described.items():
        assert parser.parse_args(_minimal(name)).command == name
        flags = {flag for option in command.options for flag in option.flags}
        assert {"-h", "--help"} <= flags
    assert {"--json", "--status", "--vendor", "--branch", "--wide"} <= {
        flag for option in described["status"].options for flag in option.flags
    }
    vendor = next(o for o in described["status"].options if "--vendor" in o.flags)
    assert vendor.choices == tuple(REGISTRY)
    assert described["wait"].positional == "names"
    assert described["completion"].choices == ("bash", "zsh", "fish")


def _minimal(name: str) -> list[str]:
    return {
        "view": [name, "x"],
        "wait": [name, "x"],
        "runs": [name, "x"],
        "log": [name, "x"],
        "events": [name, "--redis", "redis://127.0.0.1:6379/0", "--group", "g"],
    }.get(name, [name])


def bash_complete(words: list[str]) -> list[str]:
    bash = needs("bash")
    code = (
        f"{script('bash', build_parser())}\n"
        f"COMP_WORDS=({' '.join(repr(word) for word in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        '_pipestatus\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(  # noqa: S603 - a shell of the system on our own script
        [bash, "-c", code], capture_output=True, text=True, env=env(), timeout=60, check=True
    )
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_options_and_values(names_config: Path) -> None:
    """bash completes a command, a command's options, an option's choices and the names of
    the pipelines of the file given with -c."""
    assert bash_complete(["pipestatus", "st"]) == ["status"]
    assert bash_complete(["pipestatus", "status", "--ve"]) == ["--vendor", "--verbose"]
    assert bash_complete(["pipestatus", "status", "--color", ""]) == ["auto", "always", "never"]
    assert bash_complete(["pipestatus", "status", "--vendor", ""]) == list(REGISTRY)
    words = ["pipestatus", "wait", "-c", str(names_config), "b"]
    assert bash_complete(words) == ["backend", "billing"]


def test_fish_completes_commands_and_names(names_config: Path) -> None:
    """fish accepts its script and completes commands, choices and pipeline names."""
    fish = needs("fish")

    def complete(line: str) -> list[str]:
        code = f"{script('fish', build_parser())}\ncomplete -C {line!r}\n"
        done = subprocess.run(  # noqa: S603 - a shell of the system on our own script
            [fish, "-c", code], capture_output=True, text=True, env=env(), timeout=60, check=True
        )
        return [entry.split("\t")[0] for entry in done.stdout.splitlines()]

    assert "status" in complete("pipestatus st")
    assert set(complete("pipestatus completion ")) == {"bash", "zsh", "fish"}
    assert set(complete(f"pipestatus view -c {names_config} ")) == {"backend", "billing"}


def test_zsh_accepts_its_script() -> None:
    """zsh parses its script, which defines the completion function of every command."""
    zsh = needs("zsh")
    text = script("zsh", build_parser())
    done = subprocess.run(  # noqa: S603 - a shell of the system on our own script
        [zsh, "-n"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert text.startswith("#compdef pipestatus\n")
    for command in COMMANDS:
        assert f"            {command.__name__.rsplit('.', 1)[1]})" in text


def test_completion_names_lists_the_configured_pipelines(names_config: Path) -> None:
    """`pipestatus completion --names -c FILE` prints each configured name on its own line,
    reading no token."""
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "pipestatus", "completion", "--names", "-c", str(names_config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == ["backend", "billing"]
