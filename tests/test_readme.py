"""The README is exactly right: its offline commands run as written, its reference is generated.

Shell blocks preceded by ``<!-- runs offline: tests/test_readme.py -->`` are run here, line by
line, from the repository root; ``make test`` is the command CI itself runs, so it is not run
again from inside the suite.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

MARKER = "<!-- runs offline: tests/test_readme.py -->"
RUN_BY_CI = {"make test"}


def offline_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(re.escape(MARKER) + r"\s*```(?:bash|sh)\n(.*?)```", text, re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_readme_marks_its_offline_commands():
    commands = offline_commands()
    assert "make render" in commands and "make test" in commands, commands


@pytest.mark.parametrize("command", [c for c in offline_commands() if c not in RUN_BY_CI])
def test_readme_command_runs_as_written(command):
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stdout + result.stderr


def test_configuration_reference_is_generated_from_the_models():
    result = subprocess.run(
        [sys.executable, "scripts/config_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
