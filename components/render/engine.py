"""Run the real Pulumi program in-process against recording mocks.

Same ``__main__.py`` as ``pulumi up``: the stack file is read the way the Pulumi CLI would
pass it to the program (structured values as JSON, ``secure:`` values as secrets), and the
program runs under ``pulumi.runtime.set_mocks``. Encrypted values cannot be decrypted
without the stack's key, so each is replaced by a placeholder that stays marked secret.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings
from pulumi.runtime.stack import run_in_stack

from .mocks import RecordingMonitor, RenderMocks, ResourceRecord


class RenderError(Exception):
    """The program stopped with a user-facing error (for example invalid configuration)."""


@dataclass(frozen=True)
class Project:
    directory: Path
    name: str

    @classmethod
    def load(cls, directory: Path) -> Project:
        manifest = directory / "Pulumi.yaml"
        if not manifest.is_file():
            raise RenderError(f"no Pulumi.yaml in {directory}")
        data = yaml.safe_load(manifest.read_text()) or {}
        return cls(directory.resolve(), str(data["name"]))

    def stacks(self) -> list[str]:
        return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in self.directory.glob("Pulumi.*.yaml"))

    def stack_file(self, stack: str) -> Path:
        return self.directory / f"Pulumi.{stack}.yaml"


def placeholder(key: str) -> str:
    return f"offline-placeholder-for-{key}"


def stack_config(
    project: Project, stack: str, secret_values: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The stack file as Pulumi passes it to a program: ``{"ns:key": str}`` plus secret keys."""
    path = project.stack_file(stack)
    if not path.is_file():
        raise RenderError(f"no stack file {path.name} in {project.directory} (stacks: {', '.join(project.stacks())})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RenderError(yaml_error_line(path, err)) from None
    if not isinstance(data, dict) or not isinstance(data.get("config") or {}, dict):
        raise RenderError(f"{path.name}: expected a map with a 'config:' map of keys to values")
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{project.name}:{key}"
        if _contains_secure(value):
            secret_keys.append(full)
            short = full.split(":", 1)[1]
            value = _decrypt_offline(value, (secret_values or {}).get(short, placeholder(short)))
        values[full] = value if isinstance(value, str) else json.dumps(value)
    return values, secret_keys


def yaml_error_line(path: Path, err: yaml.YAMLError) -> str:
    """``Pulumi.dev.yaml:12:5: mapping values are not allowed here`` (1-based, like editors)."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path.name
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context = getattr(err, "context", None)
    return f"{where}: {problem}" + (f" ({context})" if context else "")


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def _decrypt_offline(value: Any, replacement: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return replacement
        return {k: _decrypt_offline(v, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [_decrypt_offline(v, replacement) for v in value]
    return value


@dataclass
class Recording:
    project: str
    stack: str
    resources: list[ResourceRecord] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)


def _run_program(main: Path) -> None:
    """The Pulumi program, as ``pulumi up`` runs it (its module globals are not needed after)."""
    runpy.run_path(str(main), run_name="__main__")


@contextmanager
def _fresh_event_loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def run_program(
    project: Project,
    stack: str,
    *,
    secret_values: Mapping[str, str] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> Recording:
    """Run ``project/__main__.py`` for ``stack`` under mocks and return what it declared.

    ``config_overrides`` replaces project-namespace keys (tests use it to feed variants of a
    stack without writing files; ``{"secure": value}`` sets a secret). Raises ``RenderError`` for user-facing program errors.
    """
    import logging

    values, secret_keys = stack_config(project, stack, secret_values)
    for key, value in (config_overrides or {}).items():
        full = f"{project.name}:{key}"
        if value is None:
            values.pop(full, None)
        elif isinstance(value, dict) and set(value) == {"secure"}:
            # a credential set as with `pulumi config set --secret` (tests feed Pulumi secrets this way)
            values[full] = str(value["secure"])
            secret_keys.append(full)
        else:
            values[full] = value if isinstance(value, str) else json.dumps(value)
    mocks = RenderMocks()
    monitor = RecordingMonitor(mocks)
    logger = logging.getLogger(f"llm-infra.render.{stack}")
    records: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(f"{record.levelname.lower()}: {record.getMessage()}")

    handler = _Keep()
    logger.addHandler(handler)
    logger.propagate = False
    main = project.directory / "__main__.py"
    sys.path.insert(0, str(project.directory))
    try:
        with _fresh_event_loop() as loop:
            pulumi.runtime.set_mocks(
                mocks, project=project.name, stack=stack, preview=False, logger=logger, monitor=monitor
            )
            pulumi.runtime.set_all_config(values, secret_keys)
            # set_mocks installs a root stack for unit tests; the program gets its own, as under
            # `pulumi up`, so its exports are registered as stack outputs.
            settings.ROOT.set(None)
            try:
                loop.run_until_complete(run_in_stack(lambda: _run_program(main)))
            except pulumi.RunError as err:
                raise RenderError(str(err)) from None
    finally:
        sys.path.remove(str(project.directory))
        logger.removeHandler(handler)
    return Recording(project.name, stack, monitor.records, monitor.stack_outputs, records)
