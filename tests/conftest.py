"""Shared fixtures: every stack is rendered once per test session through the real program."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from upstream import UPSTREAM, upstream_path

from llm_infra.components.render import Project, Recording, manifests, run_program

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["UPSTREAM"]

PROJECT = Project.load(ROOT)
STACKS = PROJECT.stacks()

_renders: dict[str, Recording] = {}


def render(stack: str) -> Recording:
    """The stack's recording, rendered once per session (the same program as `pulumi up`)."""
    if stack not in _renders:
        _renders[stack] = run_program(PROJECT, stack)
    return _renders[stack]


@pytest.fixture(scope="session", params=STACKS)
def stack(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def recording(stack: str) -> Recording:
    return render(stack)


def objects(recording: Recording, kind: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
    out = []
    for obj in manifests(recording):
        if kind and obj["kind"] != kind:
            continue
        if namespace and (obj.get("metadata") or {}).get("namespace") != namespace:
            continue
        out.append(obj)
    return out


def find(recording: Recording, kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects(recording, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
    return matches[0]


def resources_of_type(recording: Recording, type_token: str):
    return [r for r in recording.resources if r.type == type_token]


def iter_all_renders() -> Iterator[tuple[str, Recording]]:
    for s in STACKS:
        yield s, render(s)


def requires_upstream(*parts: str) -> Path:
    """Path below ../shared/upstream; when it is missing the test fails on CI and skips elsewhere."""
    return upstream_path(*parts)
