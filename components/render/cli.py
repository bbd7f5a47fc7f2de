"""Render a Pulumi stack of this project offline: python -m llm_infra render --stack NAME.

Runs the real __main__.py under Pulumi's unit-test mocks (no cloud, no Pulumi CLI) and writes
every Kubernetes object, Helm release and the plan to build/render/<stack>/ (or --out)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from llm_infra.config.errors import did_you_mean

from .engine import Project, RenderError, run_program, stack_config, yaml_error_line
from .output import summary, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_infra", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a stack offline (no cloud, no Pulumi CLI)")
    which = render.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="every Pulumi.*.yaml, each into OUT/<stack>/")
    render.add_argument(
        "--out", type=Path, help="output directory (default: build/render/<stack>; with --all, build/render)"
    )
    render.add_argument("--project-dir", type=Path, default=Path.cwd(), help="directory of Pulumi.yaml (default: cwd)")
    render.add_argument("--quiet", action="store_true", help="do not print the plan summary")
    render.add_argument(
        "--secret-values",
        type=Path,
        help="YAML map of secret config keys to values used instead of the placeholders for "
        "'secure:' values (which cannot be decrypted offline); they stay marked secret",
    )
    args = parser.parse_args(argv)

    try:
        project = Project.load(args.project_dir)
        secret_values = read_secret_values(args.secret_values) if args.secret_values else None
        stacks = project.stacks() if args.all else [args.stack]
        base = args.out or Path("build") / "render"
        failed = 0
        for stack in stacks:
            out = base / stack if args.all or args.out is None else args.out
            started = time.perf_counter()
            try:
                if secret_values is not None:
                    check_secret_values(project, stack, secret_values, args.secret_values)
                recording = run_program(project, stack, secret_values=secret_values)
            except RenderError as err:
                print(str(err), file=sys.stderr)
                failed += 1
                continue
            write(recording, out)
            elapsed = time.perf_counter() - started
            if not args.quiet:
                print(summary(recording))
            print(
                f"rendered stack '{stack}': {len(recording.resources)} resources in {elapsed:.1f}s -> {out}",
                file=sys.stderr,
            )
        return 2 if failed else 0
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def read_secret_values(path: Path) -> dict[str, str]:
    """The --secret-values file: a YAML map of secret keys to string values."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise RenderError(f"--secret-values: cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise RenderError(f"--secret-values: {yaml_error_line(path, err)}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise RenderError(f"--secret-values: {path} must be a map of secret config keys to string values")
    return data


def check_secret_values(project: Project, stack: str, values: dict[str, str], path: Path) -> None:
    """A key the stack does not hold as a secret would be ignored silently: reject it."""
    _, secret_keys = stack_config(project, stack)
    known = sorted(key.split(":", 1)[1] for key in secret_keys)
    for key in values:
        if key not in known:
            hint = did_you_mean(key, known)
            raise RenderError(
                f"--secret-values {path}: '{key}' is not a secret of stack '{stack}'"
                f"{hint} (its secrets: {', '.join(known) or 'none'})"
            )


if __name__ == "__main__":
    sys.exit(main())
