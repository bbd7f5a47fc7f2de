"""Offline render: the real program, run in-process with Pulumi's mocks, written to disk."""

from .engine import Project, Recording, RenderError, run_program
from .output import helm_releases, manifests, plan, summary, write

__all__ = [
    "Project",
    "Recording",
    "RenderError",
    "helm_releases",
    "manifests",
    "plan",
    "run_program",
    "summary",
    "write",
]
