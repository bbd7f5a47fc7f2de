"""``python -m components render --stack NAME --out DIR`` (or ``--all``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from .engine import Project, RenderError, run_program
from .output import summary, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render a stack offline (no cloud, no Pulumi CLI)")
    which = render.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml")
    which.add_argument("--all", action="store_true", help="every Pulumi.*.yaml, each into OUT/<stack>/")
    render.add_argument("--out", required=True, type=Path, help="output directory")
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
        secret_values = yaml.safe_load(args.secret_values.read_text()) if args.secret_values else None
        stacks = project.stacks() if args.all else [args.stack]
        failed = 0
        for stack in stacks:
            out = args.out / stack if args.all else args.out
            started = time.perf_counter()
            try:
                recording = run_program(project, stack, secret_values=secret_values)
            except RenderError as err:
                print(str(err), file=sys.stderr)
                failed += 1
                continue
            write(recording, out)
            elapsed = time.perf_counter() - started
            if not args.quiet:
                print(summary(recording))
            print(f"rendered stack '{stack}': {len(recording.resources)} resources in {elapsed:.1f}s -> {out}", file=sys.stderr)
        return 2 if failed else 0
    except RenderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
