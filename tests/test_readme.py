"""The README's examples run as written."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_first_screen_example_runs() -> None:
    """The ten-line example on the README's first screen polls the simulated fleet."""
    example = python_blocks()[0]
    assert len([line for line in example.splitlines() if line.strip()]) <= 16
    result = subprocess.run(  # noqa: S603 - our own interpreter on our own README
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("Target(")
        assert line.split()[-1] in {
            "pending",
            "running",
            "success",
            "failed",
            "canceled",
            "skipped",
            "timedout",
        }


def test_every_python_block_parses() -> None:
    """Every Python block of the README is valid Python (the API sketch included)."""
    for block in python_blocks():
        ast.parse(block)
