"""Everything the program renders validates against the schemas a real cluster would use.

* core objects: the Kubernetes OpenAPI schema in strict mode (kubernetes-validate);
* custom resources: the openAPIV3Schema of their upstream CRD, with unknown fields rejected
  as the API server's strict field validation does. ``LLM_INFRA_CRDS_DIR`` points the check
  at another folder of CRD YAML files (e.g. `kubectl get crd -o yaml` of your own cluster);
* Helm values: every key we set exists in the chart's upstream default values.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.render import helm_releases
from config import versions

from conftest import UPSTREAM, objects

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~5 MB of YAML
KUBERNETES_SCHEMA_VERSION = f"{versions.KUBERNETES_VERSION}.0"
CRDS_DIR = Path(os.environ.get("LLM_INFRA_CRDS_DIR", UPSTREAM / "crds"))


@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version of every CRD found."""
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
    if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def is_custom(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return "." in group and not group.endswith(".k8s.io") or group in {
        "gateway.networking.k8s.io", "inference.networking.k8s.io", "inference.networking.x-k8s.io",
    }


def test_core_objects_match_kubernetes_openapi_strict(recording):
    checked = 0
    for obj in objects(recording):
        if is_custom(obj):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {err.message} at {list(err.path)}")
        checked += 1
    assert checked > 0


def test_custom_resources_match_upstream_crds(recording):
    schemas = crd_schemas()
    if not schemas:
        pytest.skip(f"no CRDs found in {CRDS_DIR} (set LLM_INFRA_CRDS_DIR or LLM_INFRA_UPSTREAM)")
    custom = [o for o in objects(recording) if is_custom(o)]
    for obj in custom:
        key = (obj["apiVersion"], obj["kind"])
        if key[0].startswith("gateway.networking.k8s.io/"):
            continue  # Gateway API CRDs are not among the upstream files; checked structurally in serving tests
        assert key in schemas, f"no upstream CRD for {key}: add it to ../shared/upstream or point LLM_INFRA_CRDS_DIR at one"
        errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
        )


def unknown_value_keys(ours: Any, upstream: Any, path: str = "") -> list[str]:
    """Keys we set that the chart's values.yaml does not have.

    An upstream map that is empty (``{}``) or not a map is free-form: what we put below it is
    the chart's business (nodeSelector, extra labels, lists of rules, ...).
    """
    if not isinstance(ours, dict) or not isinstance(upstream, dict) or not upstream:
        return []
    missing = []
    for key, value in ours.items():
        here = f"{path}.{key}" if path else key
        if key not in upstream:
            missing.append(here)
        else:
            missing += unknown_value_keys(value, upstream[key], here)
    return missing


SUBCHART_VALUES = {
    # kube-prometheus-stack passes `grafana:` to the grafana subchart, whose own values.yaml
    # (not among the upstream files) defines these keys.
    "kube-prometheus-stack": (
        "grafana.persistence",         # grafana chart: persistence.{enabled,type,accessModes,size,storageClassName}
        "grafana.deploymentStrategy",  # grafana chart: Recreate, so a new pod can take over the ReadWriteOnce volume
        "grafana.affinity",            # grafana chart: keep Grafana off GPU nodes like the rest of the stack
    ),
}


def test_helm_values_keys_exist_upstream(recording):
    for release in helm_releases(recording):
        values_file = UPSTREAM / "helm-values" / release["chart"] / "values.yaml"
        if not values_file.is_file():
            if release["chart"] == versions.KARPENTER.name:
                continue  # the Karpenter chart's values are not among the upstream files
            pytest.skip(f"no upstream values for chart {release['chart']} at {values_file}")
        upstream = yaml.safe_load(values_file.read_text())
        unknown = [k for k in unknown_value_keys(release["values"], upstream) if k not in SUBCHART_VALUES.get(release["chart"], ())]
        assert not unknown, f"{release['name']} ({release['chart']}): keys not in upstream values.yaml: {unknown}"


def test_helm_releases_use_the_pinned_versions(recording):
    pinned = {c.name: c for c in versions.ALL_CHARTS}
    for release in helm_releases(recording):
        chart = pinned[release["chart"]]
        assert (release["version"], release["repository"]) == (chart.version, chart.repository)


def test_images_are_pinned(recording):
    for obj in objects(recording):
        spec = obj.get("spec") or {}
        for pod in _pod_specs(spec):
            for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                image = c["image"]
                assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{obj['kind']}/{obj['metadata']['name']}: unpinned image {image}"


def _pod_specs(spec: dict[str, Any]):
    if "template" in spec:
        yield spec["template"]["spec"]
    if "jobTemplate" in spec:
        yield spec["jobTemplate"]["spec"]["template"]["spec"]
    rc = spec.get("rayClusterConfig") or spec
    if "headGroupSpec" in rc:
        yield rc["headGroupSpec"]["template"]["spec"]
        for group in rc.get("workerGroupSpecs", []):
            yield group["template"]["spec"]
