"""Upstream data the tests check against (../shared/upstream; never copied into this repository).

* ``required(why)``: a check whose data or tool is missing fails when ``CI=true`` and skips
  with its reason elsewhere: CI never counts an unchecked object as checked.
* CRDs: ``custom_resource_errors(obj)`` validates one custom resource against the
  openAPIV3Schema of its CRD (``LLM_INFRA_CRDS_DIR`` points at another folder, e.g.
  `kubectl get crd -o yaml` of your own cluster).
* Charts: ``chart_values(name)`` and ``chart_sources()`` (the pinned chart versions and
  repositories that SOURCES.md records).
"""

from __future__ import annotations

import os
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = Path(os.environ.get("LLM_INFRA_UPSTREAM", ROOT.parent / "shared" / "upstream"))
CRDS_DIR = Path(os.environ.get("LLM_INFRA_CRDS_DIR", UPSTREAM / "crds"))
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~5 MB of YAML


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def upstream_required() -> bool:
    """On CI the upstream data must be there, except where the CI says it cannot have it
    (``LLM_INFRA_UPSTREAM_OPTIONAL=1``: GitHub runners of a fork-safe PR job, which only have
    this repository; each check they leave out is listed as a skip with its reason)."""
    return in_ci() and os.environ.get("LLM_INFRA_UPSTREAM_OPTIONAL") != "1"


def required(why: str) -> NoReturn:
    """Data a check needs is missing: fail on CI, skip (with the reason) elsewhere."""
    message = f"{why} (set LLM_INFRA_UPSTREAM to the shared/upstream folder)"
    if upstream_required():
        pytest.fail(f"CI must run this check: {message}")
    pytest.skip(message)


def upstream_path(*parts: str) -> Path:
    """Path below ../shared/upstream, or ``required`` saying which file is missing."""
    path = UPSTREAM.joinpath(*parts)
    if not path.exists():
        required(f"upstream data not found at {path}")
    return path


# ------------------------------------------------------------------------------------ CRDs
@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict openAPIV3Schema for every served version of every CRD found."""
    if not CRDS_DIR.is_dir():
        return {}
    schemas = {}
    for path in sorted(CRDS_DIR.rglob("*.y*ml")):
        for doc in yaml.load_all(path.read_text(), Loader=SafeLoader):
            docs = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for crd in docs:
                if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec["versions"]:
                    if version.get("served", True) and "schema" in version:
                        key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                        schemas[key] = strict_structural(version["schema"]["openAPIV3Schema"])
    if schemas:
        # kinds whose CRD files are not upstream yet: their documented structure (documented_crds.py)
        from documented_crds import DOCUMENTED_SCHEMAS

        for key, schema in DOCUMENTED_SCHEMAS.items():
            schemas.setdefault(key, strict_structural(schema))
    return schemas


def strict_structural(schema: Any) -> Any:
    """Make a CRD's structural schema reject unknown fields, as the API server does.

    Objects with ``properties`` and without ``x-kubernetes-preserve-unknown-fields`` or
    ``additionalProperties`` get ``additionalProperties: false``; int-or-string fields accept
    both types.
    """
    if isinstance(schema, list):
        return [strict_structural(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_structural(v) for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (
        "properties" in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in out
    ):
        out["additionalProperties"] = False
    return out


def is_custom(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return ("." in group and not group.endswith(".k8s.io")) or group in {
        "gateway.networking.k8s.io",
        "inference.networking.k8s.io",
        "inference.networking.x-k8s.io",
    }


def custom_resource_errors(obj: dict[str, Any]) -> list[str]:
    """Schema errors of one custom resource against its CRD (``required`` when no CRDs at all;
    an error when the CRD of this kind is missing: nothing is counted as checked unchecked)."""
    schemas = crd_schemas()
    if not schemas:
        required(f"no CRDs found in {CRDS_DIR} (LLM_INFRA_CRDS_DIR)")
    key = (obj["apiVersion"], obj["kind"])
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    if key not in schemas:
        return [
            f"{where}: no CRD for {key} in {CRDS_DIR}: add it to ../shared/upstream or point LLM_INFRA_CRDS_DIR at one"
        ]
    errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(obj), key=lambda e: list(e.path))
    return [f"{where}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors]


# ---------------------------------------------------------------------------------- charts
def chart_values(chart: str) -> dict[str, Any] | None:
    """The chart's upstream default values, or None when ../shared/upstream lacks them."""
    path = UPSTREAM / "helm-values" / chart / "values.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else None


_KEY = re.compile(r"^(\s*)([A-Za-z_][\w.-]*):(\s|$)")
_COMMENTED_KEY = re.compile(r"^(\s*)#\s?([A-Za-z_][\w.-]*):(\s|$)")


@cache
def documented_keys(chart: str) -> frozenset[tuple[str, ...]]:
    """Keys a chart documents as commented-out examples (``  # storageClassName: default``
    under ``persistence:``), each with the path of the map it belongs to: settable, just not
    set by default. Paths follow the indentation of the real keys around the comment."""
    path = UPSTREAM / "helm-values" / chart / "values.yaml"
    if not path.is_file():
        return frozenset()
    found: set[tuple[str, ...]] = set()
    parents: list[tuple[int, str]] = []  # (indent, key) of the enclosing real keys
    for line in path.read_text().splitlines():
        real, commented = _KEY.match(line), _COMMENTED_KEY.match(line)
        if real:
            indent = len(real.group(1))
            parents = [(i, k) for i, k in parents if i < indent] + [(indent, real.group(2))]
        elif commented:
            indent = len(commented.group(1))
            enclosing = tuple(k for i, k in parents if i < indent)
            found.add((*enclosing, commented.group(2)))
    return frozenset(found)


@lru_cache(maxsize=1)
def chart_sources() -> dict[str, dict[str, str]]:
    """chart name -> {"version", "repository"?} as SOURCES.md and the charts' Chart.yaml record them.

    SOURCES.md's chart table gives "chart version" and "Helm repository" columns; where the
    upstream folder also holds the chart's Chart.yaml, its ``version`` is the reference.
    """
    sources = UPSTREAM / "SOURCES.md"
    if not sources.is_file():
        return {}
    found: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in sources.read_text().splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(header, cells, strict=False))  # a short row leaves the last columns out
        match = re.fullmatch(r"`helm-values/([^/]+)/values\.yaml`", row.get("local file", ""))
        if match and "chart version (chart.yaml at tag)" not in row:
            # the later tables name the version in their "what" cell: "... (chart 2.9.0 at tag ...)"
            what = row.get("what", "")
            stated = re.search(r"\(chart (\d+\.\d+\.\d+)\b", what)
            if stated is None and "the published chart is versioned with the release" in what:
                # lws: git's Chart.yaml says 0.1.0; the release publishes the chart as its appVersion
                stated = re.search(r"appVersion v(\d+\.\d+\.\d+)\b", what)
            # or "chart `gateway-helm` v1.9.0", "cert-manager chart values v1.21.1": the chart is
            # released with the repository's tag ("tag / ref" column)
            tagged = re.fullmatch(r"v\d+\.\d+\.\d+", row.get("tag / ref", ""))
            if stated:
                found.setdefault(match.group(1), {"version": stated.group(1)})
            elif tagged and (f"chart `{match.group(1)}`" in what or f"{match.group(1)} chart values" in what):
                found.setdefault(match.group(1), {"version": tagged.group(0)})
            continue
        if not match:
            continue
        version = re.search(r"v?\d+\.\d+\.\d+", row["chart version (chart.yaml at tag)"].replace("*", ""))
        repository = re.search(
            r"`((?:https|oci)://[^`]+)`", row.get("helm repository (as the readme documents it)", "")
        )
        entry = {"version": version.group(0)} if version else {}
        if repository:
            entry["repository"] = repository.group(1)
        found[match.group(1)] = entry
    for chart_yaml in (UPSTREAM / "helm-values").glob("*/Chart.yaml"):
        meta = yaml.safe_load(chart_yaml.read_text())
        found.setdefault(meta["name"], {})["version"] = str(meta["version"])
    return found
