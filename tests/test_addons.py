"""Cluster add-ons: which Helm releases each stack installs, how they are ordered, what their
values say (driver/toolkit per node image, DCGM honorLabels, Prometheus selectors, Grafana
secret, time-slicing), that each add-on can be turned off, and that a serving stack needing
a disabled add-on is rejected.

Rendered stacks go through the real program (``render``/``run_program``); the AddonsHandle
contract is checked on a tiny program that builds only ``ClusterAddons``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

import expected
import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from conftest import PROJECT, STACKS, objects, render
from pulumi.runtime import settings
from pulumi.runtime.stack import run_in_stack
from stackfiles import assert_rejected, stack_values

from llm_infra.components.addons import AddonsArgs, ClusterAddons
from llm_infra.components.addons.handles import (
    EXTERNAL_SECRETS_GROUP,
    KEDA_GROUP,
    MONITORING_GROUP,
    RAY_GROUP,
    AddonsHandle,
)
from llm_infra.components.cluster.base import AwsIrsa, ClusterHandle
from llm_infra.components.render import Recording, RenderError, helm_releases, run_program
from llm_infra.components.render.mocks import (
    FAKE_ACCOUNT,
    RecordingMonitor,
    RenderMocks,
    ResourceRecord,
    oidc_issuer_host,
)
from llm_infra.config import StackPlan, load_stack_config, versions
from llm_infra.config.facts import DEVICE_PLUGIN_CONFIG_LABEL, GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
GPU_OPERATOR, KEDA, KUBERAY, KPS, ADAPTER = (
    versions.GPU_OPERATOR.name,
    versions.KEDA.name,
    versions.KUBERAY_OPERATOR.name,
    versions.KUBE_PROMETHEUS_STACK.name,
    versions.PROMETHEUS_ADAPTER.name,
)
ADDON_CHARTS = {GPU_OPERATOR, KEDA, KUBERAY, KPS, ADAPTER}
"""Releases this component owns (the cluster component may add others, e.g. Karpenter)."""
EXPECTED_RELEASES = {
    "dev": {GPU_OPERATOR, KEDA, KPS},
    "prod": {GPU_OPERATOR, KEDA, KUBERAY, KPS},
    "onprem": {GPU_OPERATOR, ADAPTER},
}
"""Spelled out per stack file, so a default that silently changes shows up here."""
ADDON_NAMESPACE = {GPU_OPERATOR: "gpu-operator", KEDA: "keda", KUBERAY: "kuberay-system", ADAPTER: "prometheus-adapter"}
GKE_NVIDIA_DIR = "/home/kubernetes/bin/nvidia"
SENTINEL = "GRAFANA-SENTINEL-123"


# -- helpers -------------------------------------------------------------------------------
def plan_of(stack: str, mutate: Callable[[dict, dict], None] | None = None) -> StackPlan:
    values, secrets = stack_values(stack)
    if mutate:
        mutate(values, secrets)
    return load_stack_config(stack, values, secrets)


def releases(rec: Recording) -> dict[str, dict[str, Any]]:
    """The add-on Helm releases by release name."""
    return {r["name"]: r for r in helm_releases(rec) if r["chart"] in ADDON_CHARTS}


def release_records(rec: Recording) -> dict[str, ResourceRecord]:
    return {r.inputs["name"]: r for r in rec.resources if r.type == RELEASE and r.inputs.get("chart") in ADDON_CHARTS}


def namespace_urns(rec: Recording) -> dict[str, str]:
    return {r.inputs["metadata"]["name"]: r.urn for r in rec.resources if r.type == NAMESPACE}


def expected_monitor_labels(plan: StackPlan) -> dict[str, str]:
    mon = plan.config.addons.monitoring
    return {"release": KPS} if mon.mode == "install" else dict(mon.selector_labels)


def expected_prometheus_url(plan: StackPlan) -> str | None:
    mon = plan.config.addons.monitoring
    if mon.mode == "install":
        return f"http://kube-prometheus-stack-prometheus.{mon.namespace}.svc:9090"
    return mon.prometheus_url


def with_addons(stack: str, **changes: Any) -> dict[str, Any]:
    """config_overrides replacing ``addons`` with the stack's own, deep-merged with changes."""
    addons = copy.deepcopy(stack_values(stack)[0].get("addons", {}))
    for key, value in changes.items():
        if isinstance(value, dict):
            addons[key] = {**addons.get(key, {}), **value}
        else:
            addons[key] = value
    return {"addons": addons}


_variants: dict[str, Recording] = {}


def variant(stack: str, key: str, overrides: dict[str, Any], secret_values: dict[str, str] | None = None) -> Recording:
    """A rendered variant of a stack, once per session."""
    cache_key = f"{stack}/{key}"
    if cache_key not in _variants:
        _variants[cache_key] = run_program(PROJECT, stack, config_overrides=overrides, secret_values=secret_values)
    return _variants[cache_key]


def build_addons(plan: StackPlan) -> tuple[AddonsHandle, dict[str, pulumi.Resource]]:
    """Only ``ClusterAddons`` (the AddonsHandle contract), with a stand-in cluster handle."""
    mocks = RenderMocks()
    monitor = RecordingMonitor(mocks)
    box: dict[str, Any] = {}

    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        c = plan.config.cluster
        issuer = oidc_issuer_host(c.name)
        irsa = (
            AwsIrsa(
                f"arn:aws:iam::{FAKE_ACCOUNT}:oidc-provider/{issuer}",
                f"https://{issuer}",
                "aws",
                str(c.region),
                FAKE_ACCOUNT,
            )
            if c.cloud == "eks"
            else None
        )
        cluster = ClusterHandle(
            provider=provider, pools=plan.pools, kubeconfig=pulumi.Output.secret("{}"), aws_irsa=irsa
        )
        addons = ClusterAddons(
            "addons",
            AddonsArgs(
                addons=plan.config.addons,
                cluster=cluster,
                cluster_config=plan.config.cluster,
                credentials=plan.config.credentials,
                ray_services=bool(plan.config.ray_services),
                serving_namespaces=[plan.config.namespace],
                grafana_admin_password=pulumi.Output.secret(SENTINEL)
                if "grafanaAdminPassword" in plan.secrets
                else None,
            ),
            opts=pulumi.ResourceOptions(providers={"kubernetes": provider}),
        )
        box["handle"] = addons.handle
        box["releases"] = addons.releases

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_mocks(mocks, project=PROJECT.name, stack=plan.stack, preview=False, monitor=monitor)
        settings.ROOT.set(None)
        loop.run_until_complete(run_in_stack(program))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return box["handle"], box["releases"]


# -- what each stack installs ----------------------------------------------------------------
def test_each_stack_installs_exactly_the_addons_it_enables(recording):
    plan = plan_of(recording.stack)
    addons = plan.config.addons
    expected = set()
    if addons.gpu_operator.enabled:
        expected.add(GPU_OPERATOR)
    if addons.keda.enabled:
        expected.add(KEDA)
    if plan.needs_kuberay and not addons.kuberay.already_installed:
        expected.add(KUBERAY)
    if addons.monitoring.mode == "install":
        expected.add(KPS)
    if addons.prometheus_adapter.enabled:
        expected.add(ADAPTER)
    got = releases(recording)
    assert set(got) == expected
    if recording.stack in EXPECTED_RELEASES:
        assert set(got) == EXPECTED_RELEASES[recording.stack]
    pinned = {c.name: c for c in versions.ALL_CHARTS}
    for name, r in got.items():
        assert (r["chart"], r["version"], r["repository"]) == (name, pinned[name].version, pinned[name].repository)
        expected_ns = ADDON_NAMESPACE.get(name, addons.monitoring.namespace)
        assert r["namespace"] == expected_ns, name


def test_every_release_depends_on_its_namespace(recording):
    namespaces = namespace_urns(recording)
    records = release_records(recording)
    assert records
    for name, rec in records.items():
        ns = rec.inputs["namespace"]
        assert ns in namespaces, f"{name}: no Namespace {ns} declared"
        assert namespaces[ns] in rec.depends_on, f"{name} does not depend on Namespace {ns}"
        assert not rec.inputs.get("createNamespace"), f"{name}: Helm must not create (and orphan) the namespace"


def test_releases_with_monitors_wait_for_the_prometheus_operator_crds(recording):
    records = release_records(recording)
    if KPS not in records:
        pytest.skip(f"{recording.stack} does not install kube-prometheus-stack")
    kps = records[KPS].urn
    for name in (GPU_OPERATOR, KEDA, KUBERAY, ADAPTER):
        if name in records:
            assert kps in records[name].depends_on, (
                f"{name} creates ServiceMonitors (or queries Prometheus) before the CRDs exist"
            )
    assert kps not in records[KPS].depends_on


def test_custom_resources_depend_on_the_release_that_installs_their_crd(recording):
    records = release_records(recording)
    owners = {
        KEDA_GROUP: KEDA,
        RAY_GROUP: KUBERAY,
        MONITORING_GROUP: KPS,
        EXTERNAL_SECRETS_GROUP: versions.EXTERNAL_SECRETS.name,
    }
    checked = 0
    for rec in recording.resources:
        if not rec.custom or not rec.type.startswith("kubernetes:"):
            continue
        group = rec.type.split(":")[1].split("/")[0]
        owner = owners.get(group)
        if owner is None or owner not in records:
            continue
        assert records[owner].urn in rec.depends_on, (
            f"{rec.type} {rec.name} may be created before {owner} installs its CRD"
        )
        checked += 1
    if checked == 0:
        pytest.skip(f"{recording.stack}: no custom resources of add-on groups rendered")


# -- monitoring ----------------------------------------------------------------------------
def test_every_monitor_and_rule_is_selected_by_prometheus(recording):
    plan = plan_of(recording.stack)
    mon = plan.config.addons.monitoring
    labels = expected_monitor_labels(plan)
    kps = releases(recording).get(KPS)
    selected_ns = None
    if kps:
        spec = kps["values"]["prometheus"]["prometheusSpec"]
        selected_ns = set(spec["serviceMonitorNamespaceSelector"]["matchExpressions"][0]["values"])
    found = 0
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        for obj in objects(recording, kind):
            meta = obj["metadata"]
            assert labels.items() <= (meta.get("labels") or {}).items(), f"{kind}/{meta['name']} lacks {labels}"
            if selected_ns is not None:
                assert meta["namespace"] in selected_ns, f"{kind}/{meta['name']} in a namespace Prometheus ignores"
            found += 1
    if mon.mode == "none":
        assert found == 0


def test_kube_prometheus_stack_selects_our_monitors_in_our_namespaces(recording):
    plan = plan_of(recording.stack)
    kps = releases(recording).get(KPS)
    if not kps:
        pytest.skip(f"{recording.stack} does not install kube-prometheus-stack")
    values = kps["values"]
    assert values["fullnameOverride"] == "kube-prometheus-stack"
    spec = values["prometheus"]["prometheusSpec"]
    mon = plan.config.addons.monitoring
    wanted_ns = {plan.config.namespace, mon.namespace} | {
        ADDON_NAMESPACE[name] for name in releases(recording) if name in ADDON_NAMESPACE
    }
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {"matchLabels": {"release": KPS}}
        (expr,) = spec[f"{kind}NamespaceSelector"]["matchExpressions"]
        assert (expr["key"], expr["operator"]) == ("kubernetes.io/metadata.name", "In")
        assert set(expr["values"]) == wanted_ns
    assert spec["retention"] == mon.retention
    storage = spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    assert storage == f"{mon.storage_gib}Gi"
    assert int(spec["retentionSize"].removesuffix("GiB")) < mon.storage_gib
    managed = plan.config.cluster.cloud in ("eks", "gke")
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert (values.get(component) == {"enabled": False}) == managed


def test_grafana_reads_its_password_from_a_secret(recording):
    plan = plan_of(recording.stack)
    kps = releases(recording).get(KPS)
    if not kps or not plan.config.addons.monitoring.grafana.enabled:
        pytest.skip(f"{recording.stack} installs no Grafana")
    grafana = kps["values"]["grafana"]
    assert "adminPassword" not in grafana
    admin = grafana["admin"]
    assert admin == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    ns = plan.config.addons.monitoring.namespace
    if plan.config.credentials.grafana_admin_password.source == "secretManager":
        # ESO writes the Secret; the chart reads the same name and keys
        assert not [o for o in objects(recording, "Secret", ns) if o["metadata"]["name"] == "grafana-admin"]
        kind, name = "ExternalSecret", "grafana-admin"
    else:
        (secret,) = [o for o in objects(recording, "Secret", ns) if o["metadata"]["name"] == admin["existingSecret"]]
        data = secret["stringData"]
        if isinstance(data, dict):  # the render masks either the whole field or each value
            assert data[admin["passwordKey"]] == "[secret]" and admin["userKey"] in data
        else:
            assert data == "[secret]"
        kind, name = "Secret", admin["existingSecret"]
    secret_rec = next(
        r
        for r in recording.resources
        if (r.inputs.get("kind") == kind or r.type == f"kubernetes:core/v1:{kind}")
        and r.inputs["metadata"]["name"] == name
        and r.inputs["metadata"].get("namespace") == ns
    )
    assert secret_rec.urn in release_records(recording)[KPS].depends_on
    dashboards = grafana["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True
    assert {dashboards["label"]: dashboards["labelValue"]} == {"grafana_dashboard": "1"}
    assert set(dashboards["searchNamespace"]) == {ns, plan.config.namespace}
    for obj in objects(recording, "ConfigMap"):
        if "grafana_dashboard" in (obj["metadata"].get("labels") or {}):
            assert obj["metadata"]["namespace"] in dashboards["searchNamespace"]


def pulumi_grafana_password(stack: str) -> dict[str, Any]:
    """Overrides that take the stack's Grafana password from a Pulumi secret (SENTINEL)."""
    values, _ = stack_values(stack)
    creds = copy.deepcopy(values.get("credentials") or {})
    creds.pop("grafanaAdminPassword", None)
    synced = any((c or {}).get("source") == "secretManager" for k, c in creds.items() if k == "hfToken")
    if not synced:
        creds = {}
    return {"credentials": creds or None, "grafanaAdminPassword": {"secure": SENTINEL}}


@pytest.mark.parametrize("stack", [s for s in STACKS if s in ("dev", "prod")])
def test_grafana_password_never_appears_in_values_or_inputs(stack):
    rec = variant(stack, "sentinel", pulumi_grafana_password(stack))
    assert SENTINEL not in json.dumps([r["values"] for r in helm_releases(rec)])
    assert SENTINEL not in json.dumps([r.inputs for r in rec.resources])
    assert SENTINEL not in json.dumps(rec.outputs)
    assert any(
        r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] == "grafana-admin" for r in rec.resources
    )


def test_dcgm_exporter_monitor_keeps_the_workload_pod_and_namespace(recording):
    plan = plan_of(recording.stack)
    op = releases(recording).get(GPU_OPERATOR)
    if not op:
        pytest.skip(f"{recording.stack} does not install the GPU Operator")
    dcgm = op["values"]["dcgmExporter"]
    assert dcgm["enabled"] is plan.config.addons.gpu_operator.dcgm_exporter
    monitor = dcgm["serviceMonitor"]
    if plan.config.addons.monitoring.mode == "none":
        assert monitor == {"enabled": False}
        return
    assert monitor["enabled"] is True
    assert monitor["honorLabels"] is True
    assert monitor["additionalLabels"] == expected_monitor_labels(plan)


def test_prometheus_address_comes_from_the_monitoring_component(recording):
    plan = plan_of(recording.stack)
    url = expected_prometheus_url(plan)
    adapter = releases(recording).get(ADAPTER)
    if adapter:
        p = adapter["values"]["prometheus"]
        assert f"{p['url']}:{p['port']}{p['path']}" == url
    for obj in objects(recording, "ScaledObject"):
        for trigger in obj["spec"]["triggers"]:
            if trigger["type"] == "prometheus":
                assert trigger["metadata"]["serverAddress"] == url, obj["metadata"]["name"]


def test_prometheus_adapter_serves_vllm_queue_depth_and_kv_cache(recording):
    plan = plan_of(recording.stack)
    adapter = releases(recording).get(ADAPTER)
    if not adapter:
        pytest.skip(f"{recording.stack} does not install prometheus-adapter")
    rules = adapter["values"]["rules"]
    ns = plan.config.namespace
    overrides = {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    # literal rules, with the series names vLLM 0.31 emits (vllm/v1/metrics/loggers.py): a pod's
    # queue is the sum over its engines, its KV-cache fill the fullest engine's (max, not sum:
    # two half-full engines are not one full cache)
    assert rules == {
        "default": False,
        "external": [],
        "custom": [
            {
                "seriesQuery": f'vllm:num_requests_waiting{{namespace=~"{ns}",pod!=""}}',
                "resources": {"overrides": overrides},
                "name": {"matches": "^vllm:num_requests_waiting$", "as": "vllm_num_requests_waiting"},
                "metricsQuery": "sum(vllm:num_requests_waiting{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
            },
            {
                "seriesQuery": f'vllm:kv_cache_usage_perc{{namespace=~"{ns}",pod!=""}}',
                "resources": {"overrides": overrides},
                "name": {"matches": "^vllm:kv_cache_usage_perc$", "as": "vllm_kv_cache_usage_perc"},
                "metricsQuery": "max(vllm:kv_cache_usage_perc{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
            },
        ],
    }
    served = {r["name"]["as"] for r in rules["custom"]}
    for obj in objects(recording, "HorizontalPodAutoscaler"):
        for m in obj["spec"].get("metrics", []):
            if m["type"] == "Pods":
                assert m["pods"]["metric"]["name"] in served


# -- GPU Operator --------------------------------------------------------------------------
def test_gpu_operator_driver_and_toolkit_follow_the_node_image(recording):
    plan = plan_of(recording.stack)
    op = releases(recording).get(GPU_OPERATOR)
    if not op:
        pytest.skip(f"{recording.stack} does not install the GPU Operator")
    v = op["values"]
    cluster = plan.config.cluster
    quota = [o for o in objects(recording, "ResourceQuota", "gpu-operator")]
    assert v["cdi"] == {"enabled": v["toolkit"]["enabled"]}, "CDI needs the toolkit that configures it"
    assert v["gfd"] == {"enabled": True}
    assert v["mig"] == {"strategy": plan.config.addons.gpu_operator.mig_strategy}
    if cluster.cloud == "eks":
        assert v["driver"] == {"enabled": False} and v["toolkit"] == {"enabled": False}
        assert "hostPaths" not in v and not quota
    elif cluster.cloud == "gke":
        assert cluster.gke is not None
        by_gke = cluster.gke.gpu_driver == "gke"
        assert v["driver"] == {"enabled": not by_gke}
        assert v["toolkit"]["enabled"] is True
        assert {"name": "RUNTIME_CONFIG_SOURCE", "value": "file"} in v["toolkit"]["env"]
        if by_gke:
            assert v["hostPaths"] == {"driverInstallDir": GKE_NVIDIA_DIR}
            assert v["toolkit"]["installDir"] == GKE_NVIDIA_DIR
        (q,) = quota
        scope = q["spec"]["scopeSelector"]["matchExpressions"][0]
        assert scope["scopeName"] == "PriorityClass" and "system-node-critical" in scope["values"]
        for pool in plan.pools.values():
            assert pool.node_labels[GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL] == "true"
    else:
        driver = plan.config.addons.gpu_operator.driver
        assert v["driver"] == {"enabled": driver != "disabled"}
        assert not quota


def test_gpu_operator_daemonsets_tolerate_every_gpu_pool(recording):
    plan = plan_of(recording.stack)
    op = releases(recording).get(GPU_OPERATOR)
    if not op:
        pytest.skip(f"{recording.stack} does not install the GPU Operator")
    ds = op["values"]["daemonsets"]["tolerations"]
    nfd = op["values"]["node-feature-discovery"]["worker"]["tolerations"]
    for pool in plan.pools.values():
        for t in expected.pool(recording.stack, pool.name)["tolerations"]:
            assert t in ds, f"GPU Operator daemonsets would not run on pool {pool.name}"
            assert t in nfd, f"NFD worker would not label pool {pool.name}"


def test_system_addons_stay_off_gpu_nodes(recording):
    got = releases(recording)
    for name in (KEDA, KUBERAY, ADAPTER):
        if name in got:
            assert got[name]["values"]["affinity"] == expected.SYSTEM_AFFINITY
            assert "tolerations" not in got[name]["values"]
    if KPS in got:
        v = got[KPS]["values"]
        for component in (
            v["prometheus"]["prometheusSpec"],
            v["alertmanager"]["alertmanagerSpec"],
            v["prometheusOperator"],
            v["grafana"],
        ):
            assert component["affinity"] == expected.SYSTEM_AFFINITY
        assert "tolerations" not in v["prometheus"]["prometheusSpec"]


# -- variants: sharing, MIG, GKE operator-managed driver --------------------------------------
def _add_pool(pool: dict[str, Any]) -> Callable[[dict, dict], None]:
    def mutate(values: dict, secrets: dict) -> None:
        values["cluster"]["nodePools"].append(pool)

    return mutate


SHARED_POOLS = {
    "dev": {
        "name": "l4-shared",
        "instanceType": "g2-standard-8",
        "maxNodes": 2,
        "gpuSharing": {"strategy": "time-slicing", "clientsPerGpu": 4},
    },
    "prod": {
        "name": "a10g-mps",
        "instanceType": "g5.2xlarge",
        "maxNodes": 2,
        "gpuSharing": {"strategy": "mps", "clientsPerGpu": 2},
    },
}


@pytest.mark.parametrize("stack", [s for s in STACKS if s in SHARED_POOLS])
def test_shared_pool_gets_its_device_plugin_config(stack):
    pool = SHARED_POOLS[stack]
    values, _ = stack_values(stack)
    cluster = copy.deepcopy(values["cluster"])
    cluster["nodePools"].append(pool)
    rec = variant(stack, "shared-pool", {"cluster": cluster})
    plan = plan_of(stack, _add_pool(pool))
    facts = plan.pools[pool["name"]]
    assert facts.node_labels[DEVICE_PLUGIN_CONFIG_LABEL] == pool["name"]
    v = releases(rec)[GPU_OPERATOR]["values"]
    assert v["devicePlugin"]["config"] == {"name": "device-plugin-config", "default": "default"}
    (cm,) = [o for o in objects(rec, "ConfigMap", "gpu-operator") if o["metadata"]["name"] == "device-plugin-config"]
    entries = {k: yaml.safe_load(text) for k, text in cm["data"].items()}
    assert set(entries) == {"default", pool["name"]}, "one entry per shared pool plus the default"
    strategy = "timeSlicing" if pool["gpuSharing"]["strategy"] == "time-slicing" else "mps"
    sharing = entries[pool["name"]]["sharing"][strategy]
    assert sharing["resources"] == [{"name": "nvidia.com/gpu", "replicas": pool["gpuSharing"]["clientsPerGpu"]}]
    assert sharing["renameByDefault"] is False
    assert entries["default"] == {"version": "v1", "flags": {"migStrategy": "none"}}
    assert {"name": "KUBERNETES_VIRTUAL_GPUS", "value": "true"} in v["dcgmExporter"]["env"]
    cm_rec = next(
        r
        for r in rec.resources
        if r.type == "kubernetes:core/v1:ConfigMap" and r.inputs["metadata"]["name"] == "device-plugin-config"
    )
    assert cm_rec.urn in release_records(rec)[GPU_OPERATOR].depends_on
    # the node pool we create carries the label that selects the entry
    labelled = [
        r
        for r in rec.resources
        if not r.type.startswith("kubernetes:")
        and f'"{DEVICE_PLUGIN_CONFIG_LABEL}": "{pool["name"]}"' in json.dumps(r.inputs)
    ]
    assert labelled, f"no cloud node pool puts {DEVICE_PLUGIN_CONFIG_LABEL}={pool['name']} on its nodes"


def test_unshared_stacks_have_no_device_plugin_config(recording):
    op = releases(recording).get(GPU_OPERATOR)
    plan = plan_of(recording.stack)
    if not op or any(p.sharing_strategy != "none" for p in plan.pools.values()):
        pytest.skip("needs a GPU Operator without shared pools")
    assert "devicePlugin" not in op["values"]
    assert not [o for o in objects(recording, "ConfigMap", "gpu-operator")]


def test_mig_strategy_reaches_the_operator_and_runs_mig_manager():
    if "onprem" not in STACKS:
        pytest.skip("needs the onprem stack (MIG-capable A100 pool)")
    rec = variant("onprem", "mig", with_addons("onprem", gpuOperator={"migStrategy": "single"}))
    v = releases(rec)[GPU_OPERATOR]["values"]
    assert v["mig"] == {"strategy": "single"}
    assert v["migManager"]["enabled"] is True
    assert releases(render("onprem"))[GPU_OPERATOR]["values"]["migManager"] == {"enabled": False}


def test_gke_operator_managed_driver():
    if "dev" not in STACKS:
        pytest.skip("needs the dev (GKE) stack")
    values, _ = stack_values("dev")
    cluster = copy.deepcopy(values["cluster"])
    cluster["gke"]["gpuDriver"] = "operator"
    rec = variant("dev", "gke-operator-driver", {"cluster": cluster})
    v = releases(rec)[GPU_OPERATOR]["values"]
    assert v["driver"] == {"enabled": True}
    assert "hostPaths" not in v and "installDir" not in v["toolkit"]


def gke_managed_driver(stack: str) -> dict[str, Any]:
    """The stack's cluster with GKE-managed drivers on a stated R580 branch (CUDA 13 images)."""
    cluster = copy.deepcopy(stack_values(stack)[0]["cluster"])
    cluster["gke"].update(gpuDriver="gke", gpuDriverBranch=580)
    return cluster


# -- every add-on can be turned off ----------------------------------------------------------
OFF_SWITCHES: list[tuple[str, str, Callable[[str], dict[str, Any]], set[str], set[str]]] = [
    # (stack, id, overrides, releases that disappear, releases that appear)
    (
        "dev",
        "gpu-operator",
        lambda s: {**with_addons(s, gpuOperator={"enabled": False}), "cluster": gke_managed_driver(s)},
        {GPU_OPERATOR},
        set(),
    ),
    (
        "dev",
        "keda-to-adapter",
        lambda s: with_addons(s, keda={"enabled": False}, prometheusAdapter={"enabled": True}),
        {KEDA},
        {ADAPTER},
    ),
    (
        "dev",
        "keda-already-installed",
        lambda s: with_addons(s, keda={"enabled": False, "alreadyInstalled": True}),
        {KEDA},
        set(),
    ),
    (
        "dev",
        "monitoring-existing",
        lambda s: with_addons(
            s,
            monitoring={
                "mode": "existing",
                "prometheusUrl": "http://prometheus-operated.monitoring.svc:9090",
                "selectorLabels": {"prometheus": "main"},
            },
        ),
        {KPS},
        set(),
    ),
    (
        "prod",
        "kuberay-already-installed",
        lambda s: with_addons(s, kuberay={"alreadyInstalled": True}),
        {KUBERAY},
        set(),
    ),
    ("prod", "gpu-operator", lambda s: with_addons(s, gpuOperator={"enabled": False}), {GPU_OPERATOR}, set()),
    (
        "onprem",
        "adapter-to-keda",
        lambda s: with_addons(s, prometheusAdapter={"enabled": False}, keda={"enabled": True}),
        {ADAPTER},
        {KEDA},
    ),
    ("onprem", "gpu-operator", lambda s: with_addons(s, gpuOperator={"enabled": False}), {GPU_OPERATOR}, set()),
]


@pytest.mark.parametrize(
    "stack,case_id,overrides,gone,added",
    [c for c in OFF_SWITCHES if c[0] in STACKS],
    ids=[f"{c[0]}-{c[1]}" for c in OFF_SWITCHES if c[0] in STACKS],
)
def test_an_addon_can_be_turned_off(stack, case_id, overrides, gone, added):
    before = set(releases(render(stack)))
    assert gone <= before
    rec = variant(stack, f"off-{case_id}", overrides(stack))
    after = set(releases(rec))
    assert after == (before - gone) | added
    ns = namespace_urns(rec)
    for name in gone:
        if name in ADDON_NAMESPACE:
            assert ADDON_NAMESPACE[name] not in ns, f"{name} is off but its namespace is still declared"
    if KPS in gone:
        assert not [
            r
            for r in rec.resources
            if r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] == "grafana-admin"
        ]
        for name in after & {GPU_OPERATOR}:
            labels = releases(rec)[name]["values"]["dcgmExporter"]["serviceMonitor"]["additionalLabels"]
            assert labels == {"prometheus": "main"}


def test_grafana_can_be_turned_off():
    if "dev" not in STACKS:
        pytest.skip("needs the dev stack")
    rec = variant("dev", "no-grafana", with_addons("dev", monitoring={"grafana": {"enabled": False}}))
    assert releases(rec)[KPS]["values"]["grafana"] == {"enabled": False}
    assert not [
        r
        for r in rec.resources
        if r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] == "grafana-admin"
    ]


# -- a serving stack that needs a disabled add-on is rejected --------------------------------
def test_keda_autoscaling_without_keda_or_adapter_stops_the_render_with_the_path():
    if "dev" not in STACKS:
        pytest.skip("needs the dev stack")
    with pytest.raises(RenderError) as info:
        run_program(PROJECT, "dev", config_overrides=with_addons("dev", keda={"enabled": False}))
    message = str(info.value)
    assert "models[0].autoscaling" in message and "needs KEDA" in message
    assert "Traceback" not in message


def _set(path: str, value: Any) -> Callable[[dict, dict], None]:
    def mutate(values: dict, secrets: dict) -> None:
        node = values
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return mutate


def _pool_update(i: int, **changes: Any) -> Callable[[dict, dict], None]:
    return lambda v, s: v["cluster"]["nodePools"][i].update(changes)


REJECTED: list[tuple[str, str, Callable[[dict, dict], object], str, str]] = [
    ("keda-off-no-adapter", "dev", _set("addons.keda", {"enabled": False}), "models[0].autoscaling", "needs KEDA"),
    (
        "ray-without-kuberay",
        "prod",
        _set("addons.kuberay", {"enabled": False}),
        "addons.kuberay.enabled",
        "KubeRay operator",
    ),
    (
        "kuberay-both",
        "prod",
        _set("addons.kuberay", {"enabled": True, "alreadyInstalled": True}),
        "addons.kuberay",
        "either enabled",
    ),
    (
        "adapter-without-prometheus",
        "onprem",
        _set("addons.monitoring", {"mode": "none"}),
        "addons.prometheusAdapter.enabled",
        "mode is 'none'",
    ),
    (
        "existing-without-selector",
        "onprem",
        lambda v, s: v["addons"]["monitoring"].pop("selectorLabels"),
        "addons.monitoring.selectorLabels",
        "silently ignored",
    ),
    (
        "selector-labels-on-install",
        "dev",
        _set("addons.monitoring", {"selectorLabels": {"release": "x"}}),
        "addons.monitoring.selectorLabels",
        "only used with mode 'existing'",
    ),
    (
        "prometheus-in-other-namespace",
        "onprem",
        lambda v, s: v["addons"]["monitoring"].update(namespace="observability"),
        "addons.monitoring.namespace",
        "'monitoring'",
    ),
    (
        "monitoring-namespace-clash",
        "dev",
        _set("addons.monitoring", {"namespace": "keda"}),
        "addons.monitoring.namespace",
        "another add-on",
    ),
    ("models-in-addon-namespace", "dev", _set("namespace", "gpu-operator"), "namespace", "add-on's namespace"),
    (
        "driver-on-eks-ami",
        "prod",
        _set("addons.gpuOperator", {"driver": "enabled"}),
        "addons.gpuOperator.driver",
        "ship the driver",
    ),
    (
        "driver-on-gke-managed",
        "dev",
        lambda v, s: (
            v["cluster"]["gke"].update(gpuDriver="gke", gpuDriverBranch=580),
            v.setdefault("addons", {}).update(gpuOperator={"driver": "enabled"}),
        ),
        "addons.gpuOperator.driver",
        "GKE installs the driver",
    ),
    (
        "nobody-installs-gke-driver",
        "dev",
        lambda v, s: (
            v["cluster"]["gke"].update(gpuDriver="operator"),
            v.setdefault("addons", {}).update(gpuOperator={"driver": "disabled"}),
        ),
        "addons.gpuOperator.driver",
        "must install it",
    ),
    (
        "gke-operator-driver-without-operator",
        "dev",
        lambda v, s: (
            v["cluster"]["gke"].update(gpuDriver="operator"),
            v.setdefault("addons", {}).update(gpuOperator={"enabled": False}),
        ),
        "cluster.gke.gpuDriver",
        "addons.gpuOperator.enabled is false",
    ),
    (
        "existing-shared-pool-unlabelled",
        "onprem",
        _pool_update(0, gpuSharing={"strategy": "time-slicing", "clientsPerGpu": 2}),
        "cluster.nodePools[0].nodeSelector",
        DEVICE_PLUGIN_CONFIG_LABEL,
    ),
    (
        "grafana-without-password",
        "dev",
        lambda v, s: v["credentials"].pop("grafanaAdminPassword"),
        "grafanaAdminPassword",
        "admin password",
    ),
]


@pytest.mark.parametrize(
    "case_id,stack,mutate,path,words",
    [c for c in REJECTED if c[1] in STACKS],
    ids=[c[0] for c in REJECTED if c[1] in STACKS],
)
def test_addon_misconfiguration_is_rejected_with_its_path(case_id, stack, mutate, path, words):
    values, secrets = stack_values(stack)
    mutate(values, secrets)
    assert_rejected(stack, values, secrets, path, words)


def test_labelled_existing_shared_pool_is_accepted():
    if "onprem" not in STACKS:
        pytest.skip("needs the onprem stack")

    def mutate(v: dict, s: dict) -> None:
        pool = v["cluster"]["nodePools"][0]
        pool["gpuSharing"] = {"strategy": "time-slicing", "clientsPerGpu": 2}
        pool["nodeSelector"][DEVICE_PLUGIN_CONFIG_LABEL] = "a100-ts"
        v["models"][0]["tensorParallelSize"] = 1
        v["models"][0].update(model="Qwen/Qwen2.5-7B-Instruct", maxModelLen=8192, gpuMemoryUtilization=0.5)

    plan = plan_of("onprem", mutate)
    assert plan.pools["a100"].device_plugin_config == "a100-ts"


# -- the AddonsHandle contract ----------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_addons_handle_contract(stack):
    plan = plan_of(stack)
    addons = plan.config.addons
    handle, installed = build_addons(plan)
    mon = handle.monitoring
    assert mon.prometheus_url == expected_prometheus_url(plan)
    assert mon.monitor_labels == (expected_monitor_labels(plan) if addons.monitoring.mode != "none" else {})
    grafana = addons.monitoring.mode == "install" and addons.monitoring.grafana.enabled
    assert mon.dashboard_labels == ({"grafana_dashboard": "1"} if grafana else dict(addons.monitoring.dashboard_labels))
    assert mon.operator_crds is (addons.monitoring.mode != "none")
    assert mon.gpu_metrics is (
        addons.gpu_operator.enabled and addons.gpu_operator.dcgm_exporter and addons.monitoring.mode != "none"
    )
    expected_autoscaler = "keda" if addons.keda.available else "hpa" if addons.prometheus_adapter.enabled else "none"
    assert handle.autoscaler == expected_autoscaler

    def release_names(resources: Sequence[pulumi.Resource]) -> list[str]:
        return [next(name for name, release in installed.items() if release is res) for res in resources]

    if addons.keda.enabled:
        assert release_names(handle.depends_for(KEDA_GROUP)) == [KEDA]
    elif addons.keda.already_installed:
        assert KEDA_GROUP in handle.crd_owners and handle.depends_for(KEDA_GROUP) == []
    if plan.needs_kuberay:
        expected = [] if addons.kuberay.already_installed else [KUBERAY]
        assert release_names(handle.depends_for(RAY_GROUP)) == expected
    else:
        assert RAY_GROUP not in handle.crd_owners
    if addons.monitoring.mode == "install":
        assert release_names(handle.depends_for(MONITORING_GROUP)) == [KPS]
    elif addons.monitoring.mode == "existing":
        assert handle.depends_for(MONITORING_GROUP) == []
    assert release_names(handle.gpu_ready) == ([GPU_OPERATOR] if addons.gpu_operator.enabled else [])
    if plan.config.credentials.from_secret_manager():
        assert release_names(handle.depends_for("external-secrets.io")) == ["external-secrets"]
        assert handle.secret_sync is not None
    else:
        assert "external-secrets.io" not in handle.crd_owners and handle.secret_sync is None
