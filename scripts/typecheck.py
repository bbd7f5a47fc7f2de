"""Type-check the whole repository with pyright (configuration: pyproject ``[tool.pyright]``).

The subpackages install as ``llm_infra.components`` / ``llm_infra.config`` from the top-level
``components/`` and ``config/`` (pyproject ``package-dir``); the editable install resolves
them with an import hook that no static checker follows. This script lays out the installed
package as links under ``build/typecheck/llm_infra`` (pyright's ``extraPaths``), so every
``llm_infra...`` import resolves to the very source files, then runs pyright.

    .venv/bin/python scripts/typecheck.py [pyright arguments]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def link_tree() -> Path:
    """build/typecheck/<package path>/<file> -> the package's source file, per package-dir.

    Directories are real and files are links: pyright does not enter linked directories when
    it collects the files to check."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools["package-dir"]
    if TREE.exists():
        shutil.rmtree(TREE)
    for package in sorted(setuptools["packages"]):
        parent, _, leaf = package.rpartition(".")
        source = ROOT / mapping[package] if package in mapping else ROOT / mapping[parent] / leaf
        target = TREE.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(source.glob("*.py")):
            (target / entry.name).symlink_to(os.path.relpath(entry, target))
    return TREE


def main(argv: list[str]) -> int:
    link_tree()
    pyright = Path(sys.executable).with_name("pyright")
    result = subprocess.run([str(pyright), *argv], cwd=ROOT, check=False, capture_output=True, text=True)
    # report findings at the source files, not at their links
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    out = result.stdout
    for package, source in sorted(mapping.items(), key=lambda item: -len(item[0])):
        out = out.replace(str(TREE.joinpath(*package.split("."))) + os.sep, str(ROOT / source) + os.sep)
    sys.stdout.write(out)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
