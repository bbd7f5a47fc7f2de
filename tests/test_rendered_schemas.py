"""Everything the program renders validates against the schemas a real cluster would use.

* core objects: the Kubernetes OpenAPI schema in strict mode (kubernetes-validate);
* custom resources: the openAPIV3Schema of their upstream CRD, with unknown fields rejected
  as the API server's strict field validation does. ``LLM_INFRA_CRDS_DIR`` points the check
  at another folder of CRD YAML files (e.g. `kubectl get crd -o yaml` of your own cluster);
* Helm values: every key we set exists in the chart's upstream default values.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from conftest import objects
from upstream import (
    UPSTREAM,
    chart_sources,
    chart_values,
    crd_schemas,
    custom_resource_errors,
    documented_keys,
    is_custom,
    required,
    strict_structural,
)

from llm_infra.components.render import helm_releases
from llm_infra.config import versions

KUBERNETES_SCHEMA_VERSION = f"{versions.KUBERNETES_VERSION}.0"
__all__ = ["KUBERNETES_SCHEMA_VERSION", "crd_schemas", "is_custom", "strict_structural"]


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
    custom = [o for o in objects(recording) if is_custom(o)]
    assert custom, f"{recording.stack} renders no custom resources"
    errors = [e for obj in custom for e in custom_resource_errors(obj)]
    assert not errors, "\n".join(errors[:10])


K8S_STRING_MAPS = frozenset({"nodeSelector", "labels", "annotations", "podLabels", "podAnnotations", "commonLabels"})
"""Kubernetes string maps (selectors, labels, annotations): charts copy them with toYaml, so any
key is valid even where the chart's default map is not empty (Karpenter's nodeSelector has
``kubernetes.io/os: linux``)."""


def free_form(key: str, upstream: Any) -> bool:
    """Below this key the chart takes whatever it is given: an empty or non-map default, or a
    Kubernetes string map."""
    if not isinstance(upstream, dict) or not upstream:
        return True
    return key in K8S_STRING_MAPS and all(not isinstance(v, (dict, list)) for v in upstream.values())


def unknown_value_keys(
    ours: Any, upstream: Any, documented: frozenset[tuple[str, ...]] = frozenset(), path: tuple[str, ...] = ()
) -> list[str]:
    """Keys we set that the chart's values.yaml neither has nor documents in a comment."""
    if not isinstance(ours, dict) or free_form(path[-1] if path else "", upstream):
        return []
    missing = []
    for key, value in ours.items():
        here = (*path, key)
        if key in upstream:
            missing += unknown_value_keys(value, upstream[key], documented, here)
        elif here not in documented:
            missing.append(".".join(here))
    return missing


SUBCHARTS = {
    # kube-prometheus-stack 88.5.3's Chart.yaml depends on grafana 12.11.1 (SOURCES.md): the
    # keys under `grafana:` are the grafana chart's own values, plus what the parent sets
    # there itself (`grafana.enabled`, the dependency's condition).
    "kube-prometheus-stack": {"grafana": "grafana"},
    # llm-d-router v0.10.0 config/charts/llm-d-router-gateway/Chart.yaml: dependency routerlib, alias router
    "llm-d-router-gateway": {"router": "routerlib"},
}

EMBEDDED_APIS = {
    # envoyproxy/gateway v1.9.0 charts/gateway-helm/templates/envoy-gateway-config.yaml merges
    # config.envoyGateway into an EnvoyGateway object (gateway.envoyproxy.io/v1alpha1); its fields
    # are EnvoyGatewaySpec's json names in api/v1alpha1/envoygateway_types.go at that tag
    ("gateway-helm", ("config", "envoyGateway")): frozenset(
        [
            "gateway",
            "provider",
            "logging",
            "admin",
            "telemetry",
            "xdsServer",
            "rateLimit",
            "extensionManager",
            "extensionManagers",
            "extensionApis",
            "gatewayAPI",
            "runtimeFlags",
            "envoyProxy",
        ]
    ),
}
"""Values a chart embeds verbatim into an upstream API object: checked against that API's fields."""


def merged(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: merged(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {*a, *b}}
    return b


def test_helm_values_keys_exist_upstream(recording):
    """Every values key of every release exists in its chart's defaults (subcharts in their
    own chart's); a chart whose values are missing upstream is reported after the others are
    checked, never silently passed."""
    unknown, missing = [], []
    for release in helm_releases(recording):
        chart, values = release["chart"], json.loads(json.dumps(release["values"]))
        upstream = chart_values(chart)
        for (api_chart, path), fields in EMBEDDED_APIS.items():
            parent = values
            for key in path[:-1] if api_chart == chart else ():
                parent = parent.get(key, {})
            if api_chart == chart and isinstance(parent.get(path[-1]), dict):
                embedded = parent.pop(path[-1])
                unknown += [f"{release['name']} ({chart}): {'.'.join(path)}.{k}" for k in embedded if k not in fields]
        if upstream is None:
            if values:  # a release that sets no values has no key to check
                missing.append(chart)
            continue
        for key, subchart in SUBCHARTS.get(chart, {}).items():
            if key in values:
                sub = chart_values(subchart)
                if sub is None:
                    missing.append(f"{subchart} (subchart of {chart})")
                    continue
                reference = merged(sub, upstream.get(key) or {})
                documented = frozenset((key, *p) for p in documented_keys(subchart)) | documented_keys(chart)
                unknown += [
                    f"{release['name']} ({subchart} subchart): {k}"
                    for k in unknown_value_keys({key: values.pop(key)}, {key: reference}, documented)
                ]
        unknown += [
            f"{release['name']} ({chart}): {k}" for k in unknown_value_keys(values, upstream, documented_keys(chart))
        ]
    assert not unknown, f"keys not in the upstream values.yaml: {unknown}"
    if missing:
        required(f"no upstream values.yaml for {missing} under {UPSTREAM / 'helm-values'}")


AWAITING_UPSTREAM_CHARTS = {
    # installed with no values (nothing of ours to check), not yet recorded in SOURCES.md: the
    # files to add are envoyproxy/ai-gateway v1.1.0 manifests/charts/ai-gateway-helm/{Chart,values}.yaml
    # and manifests/charts/ai-gateway-crds-helm/{Chart,values}.yaml
    "ai-gateway-helm",
    "ai-gateway-crds-helm",
}

SAME_SOURCE = {
    # released together with (same branch, version and OCI registry as) the chart it names;
    # SOURCES.md records only that one: aws/karpenter-provider-aws charts/karpenter-crd
    "karpenter-crd": "karpenter",
}


def test_chart_pins_match_upstream_sources():
    """config/versions.py pins the chart versions (and repositories) that ../shared/upstream
    recorded in SOURCES.md, so the values checked above are the values of the chart deployed."""
    sources = chart_sources()
    if not sources:
        required(f"no SOURCES.md in {UPSTREAM}")
    unlisted = []
    for chart in versions.ALL_CHARTS:
        if chart.name in SAME_SOURCE:
            pinned = next(c for c in versions.ALL_CHARTS if c.name == SAME_SOURCE[chart.name])
            assert (chart.version, chart.repository) == (pinned.version, pinned.repository), chart.name
            continue
        if chart.name not in sources:
            if chart.name not in AWAITING_UPSTREAM_CHARTS:
                unlisted.append(chart.name)
            continue
        recorded = sources[chart.name]
        assert chart.version == recorded["version"], (
            f"{chart.name}: pinned {chart.version}, upstream files are {recorded['version']}"
        )
        if "repository" in recorded:
            ours = f"{chart.repository}/{chart.name}" if chart.repository.startswith("oci://") else chart.repository
            assert ours == recorded["repository"], f"{chart.name}: repository {ours} != {recorded['repository']}"
    if unlisted:
        required(f"SOURCES.md records no upstream files for the pinned charts {unlisted}")


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
                assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), (
                    f"{obj['kind']}/{obj['metadata']['name']}: unpinned image {image}"
                )


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


def test_values_key_check_catches_unknown_keys_and_accepts_documented_ones():
    """The check above can fail: typos are caught at any depth, while label maps with a
    non-empty default and keys a chart documents in a comment are accepted."""
    karpenter, grafana = chart_values("karpenter"), chart_values("grafana")
    if karpenter is None or grafana is None:
        required("no upstream values for karpenter or grafana")
    assert karpenter["nodeSelector"] == {"kubernetes.io/os": "linux"}  # a non-empty free-form default
    ours = {
        "nodeSelector": {"llm-infra.io/node-pool": "system"},
        "replicas": 2,
        "replica": 2,
        "controller": {"resources": {"requests": {"cpu": "1"}}, "resourcez": {}},
    }
    assert unknown_value_keys(ours, karpenter, documented_keys("karpenter")) == ["replica", "controller.resourcez"]
    assert ("persistence", "storageClassName") in documented_keys("grafana")
    assert unknown_value_keys(
        {"persistence": {"storageClassName": "gp3", "storageClass": "gp3"}}, grafana, documented_keys("grafana")
    ) == ["persistence.storageClass"]
