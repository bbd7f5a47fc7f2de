#!/usr/bin/env python3
"""Write docs/configuration.md: every stack-file key, generated from the pydantic models.

The reference cannot drift from the code: tests/test_readme.py regenerates it and fails when
the committed file differs.

    python scripts/config_reference.py            # rewrite docs/configuration.md
    python scripts/config_reference.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_infra.config.stack import SECRET_KEYS, StackConfig  # noqa: E402

OUT = ROOT / "docs" / "configuration.md"
HEADER = """# Stack configuration reference

Generated from the pydantic models in `config/` by `scripts/config_reference.py`; do not edit.
Every key lives under the `llm-infra:` namespace of `Pulumi.<stack>.yaml`; unknown keys are
errors. Credentials ({secrets}) are not part of this schema: set them with
`pulumi config set --secret <key> <value>`.

| key | type | default | description |
|---|---|---|---|
"""


def type_name(annotation: typing.Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names) + (" (optional)" if type(None) in args else "")
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}" if args else "map"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def nested_model(annotation: typing.Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def default_text(field: typing.Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    if value is None:
        return ""
    if value in ([], {}):
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`".replace("|", "\\|")


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        sub = nested_model(field.annotation)
        is_list = typing.get_origin(field.annotation) is list or any(
            typing.get_origin(a) is list for a in typing.get_args(field.annotation)
        )
        description = " ".join(
            (
                field.description or (sub.__doc__ or "").strip().split("\n\n")[0] if sub else field.description or ""
            ).split()
        )
        out.append(
            f"| `{key}{'[]' if is_list and sub else ''}` | {type_name(field.annotation)} | {default_text(field)} | {description.replace('|', '/')} |"
        )
        if sub is not None:
            out += rows(sub, f"{key}{'[]' if is_list else ''}.")
    return out


def reference() -> str:
    return HEADER.format(secrets=", ".join(f"`{k}`" for k in SECRET_KEYS)) + "\n".join(rows(StackConfig)) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/configuration.md is out of date")
    args = parser.parse_args()
    text = reference()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python scripts/config_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
