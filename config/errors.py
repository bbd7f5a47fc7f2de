"""User-facing configuration errors: one line per problem, each naming its config path."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, order=True)
class Issue:
    path: str
    message: str

    def line(self, stack: str) -> str:
        return f"{stack}: {self.path}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a stack's configuration, reported at once."""

    def __init__(self, stack: str, issues: Sequence[Issue]):
        self.stack = stack
        self.issues = list(issues)
        super().__init__(self.render())

    def lines(self) -> list[str]:
        return [issue.line(self.stack) for issue in self.issues]

    def render(self) -> str:
        count = len(self.issues)
        head = f"{count} configuration error{'s' if count != 1 else ''} in stack '{self.stack}':"
        return "\n".join([head, *self.lines()])


def format_path(loc: Iterable[str | int]) -> str:
    """``("models", 0, "tensorParallelSize")`` -> ``models[0].tensorParallelSize``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(stack)"


def issues_from_validation_error(err: ValidationError) -> list[Issue]:
    issues = []
    for e in err.errors(include_url=False):
        # pydantic appends the tag of a failed union member or a validator name; keep the
        # user's path only (strings that are real field aliases and list indexes).
        loc = [p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or "function-" in p))]
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (not part of the stack schema)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        issues.append(Issue(format_path(loc), msg))
    return issues
