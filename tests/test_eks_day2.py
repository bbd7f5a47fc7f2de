"""Day-2 behaviour of what the stacks create: NetworkPolicy enforcement, the EKS API endpoint,
Karpenter disruption and AMI pins, and CRDs that follow their chart's version.

Each check runs on every stack it concerns (prod = EKS + Karpenter, dev = GKE, onprem =
existing cluster), plus config variants for what no stack file exercises.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from conftest import STACKS, objects, render, resources_of_type
from stackfiles import assert_rejected, stack_values
from upstream import upstream_path

from llm_infra.components.cluster.karpenter import CRD_RELEASE
from llm_infra.components.cluster.karpenter import RELEASE as KARPENTER_RELEASE
from llm_infra.components.reports import plan_warnings
from llm_infra.config import load_stack_config, versions

NP_WARNING = "NetworkPolicies only isolate the model pods if the CNI enforces them"
EXPECTED_ENFORCEMENT = {"prod": True, "dev": True, "onprem": "unknown"}
"""prod: EKS cluster created with the VPC CNI's policy agent; dev: a GKE cluster created with
Dataplane V2 (datapathProvider ADVANCED_DATAPATH); onprem: an existing cluster whose stack file
states nothing."""
DO_NOT_DISRUPT = ("karpenter.sh/do-not-disrupt", "true")  # kubernetes-sigs/karpenter pkg/apis/v1/labels.go


def plan_of(stack: str, overrides: dict[str, Any] | None = None):
    values, secrets = stack_values(stack)
    values.update(copy.deepcopy(overrides or {}))
    return load_stack_config(stack, values, secrets)


def cluster_with(stack: str, **changes: Any) -> dict[str, Any]:
    cluster = copy.deepcopy(stack_values(stack)[0]["cluster"])
    cluster.update(changes)
    return cluster


def stacks_where(predicate) -> list[str]:
    return [s for s in STACKS if predicate(plan_of(s).config.cluster)]


def record(rec, urn: str):
    return next(r for r in rec.resources if r.urn == urn)


def waits_for(rec, urn: str, target: str) -> bool:
    """Whether resource ``urn`` is created after ``target``: through dependencies (on ``target``
    itself or a component that contains it) or through its parents' dependencies."""
    children: dict[str, list[str]] = {}
    for r in rec.resources:
        if r.parent:
            children.setdefault(r.parent, []).append(r.urn)

    def inside(component: str) -> set[str]:
        out, todo = set(), [component]
        while todo:
            u = todo.pop()
            out.add(u)
            todo += children.get(u, [])
        return out

    seen, todo = set(), [urn]
    by_urn = {r.urn: r for r in rec.resources}
    while todo:
        u = todo.pop()
        if u in seen or u not in by_urn:
            continue
        seen.add(u)
        r = by_urn[u]
        for dep in r.depends_on:
            if target in inside(dep):
                return True
            todo.append(dep)
        if r.parent:
            todo.append(r.parent)
    return False


# ---------------------------------------------------------------------------- NetworkPolicy enforcement
def test_every_stack_enforces_network_policies_or_warns(stack, recording):
    assert set(EXPECTED_ENFORCEMENT) == set(STACKS)
    cluster = plan_of(stack).config.cluster
    assert cluster.network_policy_enforcement() == EXPECTED_ENFORCEMENT[stack]
    warnings = [w for w in recording.outputs["warnings"] if NP_WARNING in w]
    clusters = resources_of_type(recording, "eks:index:Cluster")
    gke = resources_of_type(recording, "gcp:container/cluster:Cluster")
    if EXPECTED_ENFORCEMENT[stack] is True and gke:
        [cluster] = gke  # GKE Dataplane V2 enforces NetworkPolicies ("About GKE Dataplane V2")
        assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
        assert not warnings
    elif EXPECTED_ENFORCEMENT[stack] is True:
        [eks] = clusters
        assert eks.inputs["vpcCniOptions"]["enableNetworkPolicy"] is True
        assert not warnings
    else:
        assert not clusters
        [warning] = warnings
        assert (
            "does not enforce" if EXPECTED_ENFORCEMENT[stack] is False else "networkPolicyEnforced: unknown"
        ) in warning


@pytest.mark.parametrize("stated, warned", [(True, False), ("true", False), (False, True), ("unknown", True)])
def test_existing_clusters_state_whether_their_cni_enforces(stated, warned):
    existing = stacks_where(lambda c: c.cloud == "existing")
    eks_created = stacks_where(lambda c: c.cloud == "eks")
    assert existing and eks_created
    for stack, cluster in [
        *[(s, cluster_with(s, networkPolicyEnforced=stated)) for s in existing],
        # an EKS cluster attached by name: its VPC CNI configuration is not ours either
        *[(s, cluster_with(s, existingClusterName="shared-gpu", networkPolicyEnforced=stated)) for s in eks_created],
    ]:
        if cluster.get("eks"):
            cluster["eks"] = {k: v for k, v in cluster["eks"].items() if k not in ("publicAccessCidrs", "vpcCidr")}
        warnings = [w for w in plan_warnings(plan_of(stack, {"cluster": cluster})) if NP_WARNING in w]
        assert bool(warnings) is warned, (stack, stated, warnings)


def test_no_warning_when_the_stack_declares_no_network_policies():
    for stack in STACKS:
        values = stack_values(stack)[0]
        security = copy.deepcopy(values.get("security") or {})
        security["networkPolicy"] = {"enabled": False}
        assert not [w for w in plan_warnings(plan_of(stack, {"security": security})) if NP_WARNING in w]


def test_network_policy_statement_is_rejected_on_clusters_created_here():
    for stack in stacks_where(lambda c: c.created_here):
        values, secrets = stack_values(stack)
        values["cluster"]["networkPolicyEnforced"] = True
        assert_rejected(
            stack, values, secrets, "cluster.networkPolicyEnforced", "only for clusters this project does not create"
        )
    stack = stacks_where(lambda c: c.cloud == "existing")[0]
    values, secrets = stack_values(stack)
    values["cluster"]["networkPolicyEnforced"] = "maybe"
    assert_rejected(stack, values, secrets, "cluster.networkPolicyEnforced", "")


# ---------------------------------------------------------------------------- EKS API endpoint
def eks_created() -> list[str]:
    return stacks_where(lambda c: c.cloud == "eks" and c.created_here)


def test_eks_public_endpoint_is_limited_in_the_stacks():
    assert eks_created()
    for stack in eks_created():
        eks = plan_of(stack).config.cluster.eks
        [cluster] = resources_of_type(render(stack), "eks:index:Cluster")
        assert cluster.inputs["endpointPrivateAccess"] is True
        assert cluster.inputs["endpointPublicAccess"] is eks.public_endpoint
        if eks.public_endpoint:
            assert cluster.inputs["publicAccessCidrs"] == eks.public_access_cidrs
        if plan_of(stack).config.cluster.protect:  # prod-like: never the whole internet
            assert "0.0.0.0/0" not in eks.public_access_cidrs or not eks.public_endpoint
        assert not [w for w in render(stack).outputs["warnings"] if "publicAccessCidrs" in w]


def test_eks_public_endpoint_defaults_open_with_a_warning_and_can_be_private():
    stack = eks_created()[0]
    cluster = cluster_with(stack)
    cluster["eks"].pop("publicAccessCidrs", None)
    assert (
        "cluster.eks.publicAccessCidrs: the API server endpoint is open to the whole internet (0.0.0.0/0)"
        in plan_warnings(plan_of(stack, {"cluster": cluster}))
    )
    cluster["eks"]["publicEndpoint"] = False
    plan = plan_of(stack, {"cluster": cluster})
    assert not [w for w in plan_warnings(plan) if "publicAccessCidrs" in w]


@pytest.mark.parametrize(
    "eks, path, words",
    [
        (
            {"publicEndpoint": False, "publicAccessCidrs": ["203.0.113.0/24"]},
            "cluster.eks.publicAccessCidrs",
            "only with publicEndpoint: true",
        ),
        ({"publicAccessCidrs": ["203.0.113.0/33"]}, "cluster.eks.publicAccessCidrs", "not an IPv4 CIDR block"),
        ({"publicAccessCidrs": []}, "cluster.eks.publicAccessCidrs", "set publicEndpoint false"),
    ],
)
def test_eks_endpoint_config_errors(eks, path, words):
    stack = eks_created()[0]
    values, secrets = stack_values(stack)
    values["cluster"]["eks"] = {k: v for k, v in values["cluster"]["eks"].items() if k != "publicAccessCidrs"} | eks
    assert_rejected(stack, values, secrets, path, words)


def test_eks_endpoint_settings_are_rejected_on_an_attached_cluster():
    stack = eks_created()[0]
    values, secrets = stack_values(stack)
    values["cluster"]["existingClusterName"] = "shared-gpu"
    values["cluster"]["eks"]["publicAccessCidrs"] = ["203.0.113.0/24"]
    assert_rejected(stack, values, secrets, "cluster.eks.publicAccessCidrs", "not used with existingClusterName")


# ---------------------------------------------------------------------------- Karpenter
def karpenter_stacks() -> list[str]:
    return stacks_where(lambda c: c.cloud == "eks" and c.eks is not None and c.eks.karpenter.enabled)


def test_karpenter_gpu_nodepools_consolidate_only_when_empty_on_a_pinned_ami():
    assert karpenter_stacks()
    for stack in karpenter_stacks():
        rec = render(stack)
        pools = objects(rec, "NodePool")
        assert pools
        for pool in pools:
            assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
        for node_class in objects(rec, "EC2NodeClass"):
            [term] = node_class["spec"]["amiSelectorTerms"]
            assert re.fullmatch(r"(al2023@v20\d{6}|bottlerocket@v\d+\.\d+\.\d+)", term["alias"]), term
        assert {c["spec"]["amiSelectorTerms"][0]["alias"] for c in objects(rec, "EC2NodeClass")} == {
            f"al2023@{versions.KARPENTER_AL2023_AMI}"
        }  # prod's pools are AL2023
        assert not [w for w in rec.outputs["warnings"] if "@latest" in w]


def test_karpenter_latest_ami_is_rejected_on_protected_clusters_and_warned_elsewhere():
    stack = karpenter_stacks()[0]
    values, secrets = stack_values(stack)
    assert values["cluster"]["protect"] is True
    values["cluster"]["eks"]["karpenter"]["amiVersion"] = "latest"
    assert_rejected(stack, values, secrets, "cluster.eks.karpenter.amiVersion", "'latest' on a protected cluster")
    values["cluster"]["protect"] = False
    warnings = plan_warnings(load_stack_config(stack, values, secrets))
    assert any("al2023@latest" in w and "replaces all Karpenter GPU nodes" in w for w in warnings)
    values["cluster"]["eks"]["karpenter"]["amiVersion"] = "v2026-08-18"
    assert_rejected(stack, values, secrets, "cluster.eks.karpenter.amiVersion", "")


def test_karpenter_bottlerocket_pools_get_the_bottlerocket_pin():
    stack = karpenter_stacks()[0]
    values = stack_values(stack)[0]
    cluster = copy.deepcopy(values["cluster"])
    cluster["nodePools"][0]["amiType"] = "BOTTLEROCKET_x86_64_NVIDIA"
    addons = copy.deepcopy(values.get("addons") or {})
    addons["gpuOperator"] = {"enabled": False}
    plan = plan_of(stack, {"cluster": cluster, "addons": addons})
    karpenter = plan.config.cluster.eks.karpenter
    assert karpenter.ami_alias("BOTTLEROCKET_x86_64_NVIDIA") == f"bottlerocket@{versions.KARPENTER_BOTTLEROCKET_AMI}"
    assert karpenter.ami_alias("AL2023_x86_64_NVIDIA") == f"al2023@{versions.KARPENTER_AL2023_AMI}"


def _pod_templates(rec) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for kind in ("Deployment", "StatefulSet"):
        for obj in objects(rec, kind):
            if obj["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "vllm":
                out.append((f"{kind}/{obj['metadata']['name']}", obj["spec"]["template"]))
    for ray in objects(rec, "RayService"):
        for group in ray["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
            out.append((f"RayService/{ray['metadata']['name']}/{group['groupName']}", group["template"]))
    return out


def test_serving_pods_are_not_disrupted_by_karpenter(stack, recording):
    plan = plan_of(stack)
    templates = _pod_templates(recording)
    canaries = sum(1 for m in plan.config.models if m.canary is not None)  # <model>-canary workloads
    expected = len(plan.config.models) + canaries + sum(1 for _ in plan.config.ray_services)
    assert len(templates) == expected and templates
    for name, template in templates:
        key, value = DO_NOT_DISRUPT
        assert (template["metadata"].get("annotations") or {}).get(key) == value, name


# ---------------------------------------------------------------------------- CRDs follow the chart
def releases_by_name(rec) -> dict[str, Any]:
    return {r.inputs["name"]: r for r in resources_of_type(rec, "kubernetes:helm.sh/v3:Release")}


def test_karpenter_crds_come_from_their_own_chart_first():
    for stack in karpenter_stacks():
        rec = render(stack)
        releases = releases_by_name(rec)
        crd, controller = releases[CRD_RELEASE], releases[KARPENTER_RELEASE]
        assert (
            crd.inputs["chart"]
            == f"{versions.KARPENTER_CRD.repository}/{versions.KARPENTER_CRD.name}"
            == "oci://public.ecr.aws/karpenter/karpenter-crd"
        )
        assert crd.inputs["version"] == controller.inputs["version"] == versions.KARPENTER.version
        assert crd.inputs["namespace"] == controller.inputs["namespace"]
        assert crd.inputs.get("takeOwnership") is True  # adopts CRDs the karpenter chart's crds/ installed
        assert controller.inputs.get("skipCrds") is True
        assert crd.urn in controller.depends_on
        assert not waits_for(rec, crd.urn, controller.urn)
        for obj in resources_of_type(rec, "kubernetes:karpenter.sh/v1:NodePool") + resources_of_type(
            rec, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
        ):
            assert crd.urn in obj.depends_on and controller.urn in obj.depends_on, obj.name


def test_kuberay_crds_are_applied_from_the_release_before_the_chart(stack, recording):
    releases = releases_by_name(recording)
    if "kuberay-operator" not in releases:
        assert not objects(recording, "RayService") or plan_of(stack).config.addons.kuberay.already_installed
        pytest.skip(f"{stack} does not install the KubeRay operator")
    release = releases["kuberay-operator"]
    [crds] = [r for r in resources_of_type(recording, "kubernetes:yaml/v2:ConfigGroup") if "kuberay" in r.name]
    tag = f"v{versions.KUBERAY_OPERATOR.version}"
    assert crds.inputs["files"] == [
        f"https://raw.githubusercontent.com/ray-project/kuberay/{tag}/ray-operator/config/crd/bases/ray.io_{kind}.yaml"
        for kind in ("rayclusters", "rayjobs", "rayservices")
    ]
    # the files ../shared/upstream/crds/ray.io holds: SOURCES.md records each path at that tag
    sources = upstream_path("SOURCES.md").read_text().splitlines()
    for url in crds.inputs["files"]:
        path = url.split(f"/{tag}/", 1)[1]
        rows = [line for line in sources if f"`{path}`" in line and "ray-project/kuberay" in line]
        assert rows and all(f"| {tag}" in row for row in rows), (path, rows)
        upstream_path("crds", "ray.io", path.rsplit("_", 1)[-1])
    assert release.inputs.get("skipCrds") is True
    assert crds.urn in release.depends_on
    for ray in resources_of_type(recording, "kubernetes:ray.io/v1:RayService"):
        assert waits_for(recording, ray.urn, crds.urn) and waits_for(recording, ray.urn, release.urn), ray.name


def test_kube_prometheus_stack_upgrades_its_crds_with_the_chart(stack, recording):
    releases = releases_by_name(recording)
    if "kube-prometheus-stack" not in releases:
        pytest.skip(f"{stack} does not install kube-prometheus-stack")
    values = releases["kube-prometheus-stack"].inputs["values"]
    job = values["crds"]["upgradeJob"]
    assert job["enabled"] is True
    assert job["image"]["busybox"]["tag"] == versions.KPS_CRD_UPGRADE_BUSYBOX_TAG != "latest"
    upstream = yaml.safe_load(upstream_path("helm-values", "kube-prometheus-stack", "values.yaml").read_text())
    # the chart's own default: off, and busybox unpinned
    assert (
        upstream["crds"]["upgradeJob"]["enabled"] is False
        and upstream["crds"]["upgradeJob"]["image"]["busybox"]["tag"] == "latest"
    )
    assert set(job) <= set(upstream["crds"]["upgradeJob"])
    # monitors of the add-ons wait for the release, whose pre-upgrade hook applies the CRDs
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        for r in resources_of_type(recording, f"kubernetes:monitoring.coreos.com/v1:{kind}"):
            assert waits_for(recording, r.urn, releases["kube-prometheus-stack"].urn), r.name
