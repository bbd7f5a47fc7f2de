"""User-facing configuration errors: one line per problem, each naming its config path."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, ValidationError


@dataclass(frozen=True, order=True)
class Issue:
    path: str
    message: str

    def line(self, stack: str) -> str:
        return f"{stack}: {self.path}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a stack's configuration, reported at once."""

    def __init__(self, stack: str, issues: Sequence[Issue], subject: str = "stack"):
        self.stack = stack
        self.issues = list(issues)
        self.subject = subject
        """What ``stack`` names: a stack, or a model planned without one (``plan_model``)."""
        super().__init__(self.render())

    def lines(self) -> list[str]:
        return [issue.line(self.stack) for issue in self.issues]

    def render(self) -> str:
        count = len(self.issues)
        head = f"{count} configuration error{'s' if count != 1 else ''} in {self.subject} '{self.stack}':"
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


def _fields_at(model: Any, loc: Sequence[str | int]) -> list[str]:
    """Aliases of the fields of the pydantic model found at ``loc`` below ``model`` (list
    indexes and optional/union wrappers are walked through); [] where it cannot be told."""
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in getattr(model, "model_fields", {}).items()}
        if part not in fields:
            return []
        model = _model_in(fields[part].annotation)
        if model is None:
            return []
    return [f.alias or n for n, f in getattr(model, "model_fields", {}).items()]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def issues_from_validation_error(err: ValidationError, root: Any = None) -> list[Issue]:
    """One issue per pydantic error; an unknown key names the closest known one of its section
    (``root`` is the model that was validated)."""
    issues = []
    for e in err.errors(include_url=False):
        # pydantic appends the tag of a failed union member or a validator name; keep the
        # user's path only (strings that are real field aliases and list indexes).
        loc = [p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or "function-" in p))]
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            known = _fields_at(root, loc[:-1]) if root is not None else []
            msg = "unknown field (not part of the stack schema)" + did_you_mean(str(loc[-1]), known)
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        issues.append(Issue(format_path(loc), msg))
    return issues


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'maxNumSeqs'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
