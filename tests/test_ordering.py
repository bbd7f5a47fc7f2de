"""First ``pulumi up`` on a new cluster converges: every Helm release, every PVC and every
StatefulSet with volumeClaimTemplates waits (through the recorded dependency graph) for the
system node pool, the CSI driver add-on and the StorageClasses; GPU workloads also wait for
the GPU Operator.
"""

from __future__ import annotations

import copy

import pytest
from conftest import PROJECT, render
from stackfiles import stack_values

from llm_infra.components.render import run_program
from llm_infra.components.render.mocks import ResourceRecord
from llm_infra.config import load_stack_config
from llm_infra.config.cluster import POOL_LABEL

RELEASE = "kubernetes:helm.sh/v3:Release"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"


def closure(records: list[ResourceRecord]) -> dict[str, set[str]]:
    """URN -> every URN it waits for, directly or transitively (recorded dependsOn edges)."""
    direct = {r.urn: set(r.depends_on) for r in records}
    memo: dict[str, set[str]] = {}

    def walk(urn: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if urn in memo:
            return memo[urn]
        out: set[str] = set()
        for dep in direct.get(urn, ()):
            assert dep not in seen, f"dependency cycle through {dep}"
            out |= {dep} | walk(dep, seen | {urn})
        memo[urn] = out
        return out

    return {urn: walk(urn) for urn in direct}


def required(rec, cloud: str, new_cluster: bool) -> dict[str, str]:
    """What PVC-backed and Helm-installed things must wait for, by URN -> description."""
    need: dict[str, str] = {}
    for r in rec.resources:
        labels = (
            r.inputs.get("labels")
            if r.type.startswith(("eks:", "aws:eks/nodeGroup"))
            else (r.inputs.get("nodeConfig") or {}).get("labels")
        )
        if (
            r.type in ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool")
            and (labels or {}).get(POOL_LABEL) == "system"
        ):
            need[r.urn] = "system node pool"
        if r.type == "aws:eks/addon:Addon" and r.inputs["addonName"] in ("aws-ebs-csi-driver", "aws-efs-csi-driver"):
            need[r.urn] = r.inputs["addonName"]
        if r.type == STORAGE_CLASS:
            need[r.urn] = f"StorageClass {r.inputs['metadata']['name']}"
        if r.type == "gcp:container/cluster:Cluster":
            # the PD CSI driver (standard-rwo) is a cluster add-on
            assert r.inputs["addonsConfig"]["gcePersistentDiskCsiDriverConfig"]["enabled"] is True
            need[r.urn] = "GKE cluster (PD CSI add-on)"
    descriptions = set(need.values())
    if cloud in ("eks", "gke"):
        assert "system node pool" in descriptions
    if cloud == "eks":
        assert "StorageClass gp3" in descriptions
        assert ("aws-ebs-csi-driver" in descriptions) == new_cluster  # an existing cluster runs it already
    if cloud == "gke" and new_cluster:
        assert "GKE cluster (PD CSI add-on)" in descriptions
    return need


def dependents(rec) -> list[ResourceRecord]:
    out = [r for r in rec.resources if r.type in (RELEASE, PVC)]
    out += [
        r for r in rec.resources if r.type == STATEFULSET and (r.inputs.get("spec") or {}).get("volumeClaimTemplates")
    ]
    return out


def assert_ordered(rec, cloud: str, new_cluster: bool) -> int:
    need = required(rec, cloud, new_cluster)
    deps = closure(rec.resources)
    checked = dependents(rec)
    assert checked, "nothing to check"
    for r in checked:
        missing = sorted(desc for urn, desc in need.items() if urn not in deps[r.urn])
        assert not missing, f"{r.type} {r.name} does not wait for {missing}"
    return len(checked)


def test_every_release_and_claim_waits_for_nodes_csi_and_storage_classes(stack):
    plan = load_stack_config(stack, *stack_values(stack))
    cluster = plan.config.cluster
    rec = render(stack)
    assert assert_ordered(rec, cluster.cloud, not cluster.existing_cluster_name) >= 1
    kinds = {r.type for r in dependents(rec)}
    assert RELEASE in kinds or cluster.cloud == "existing"


@pytest.mark.parametrize(
    ("name", "stack", "edit", "new_cluster"),
    [
        (
            "eks-cluster-autoscaler",
            "prod",
            lambda c: c["eks"].update(gpuAutoscaler="clusterAutoscaler", karpenter={"enabled": False}),
            True,
        ),
        (
            "eks-existing-cluster",
            "prod",
            lambda c: c.update(existingClusterName="llm-prod-existing") or c["eks"].pop("publicAccessCidrs", None),
            False,
        ),
        ("eks-rwo-caches", "prod", lambda c: c["eks"].update(efsModelCache=False), True),
        ("gke-filestore", "dev", lambda c: c["gke"].update(filestoreModelCache=True), True),
        ("gke-existing-cluster", "dev", lambda c: c.update(existingClusterName="llm-dev-existing"), False),
    ],
)
def test_variants_are_ordered_too(name, stack, edit, new_cluster):
    values = copy.deepcopy(stack_values(stack)[0])
    edit(values["cluster"])
    overrides = {"cluster": values["cluster"]}
    if name == "eks-rwo-caches":  # RWO caches: StatefulSets with volumeClaimTemplates on gp3
        for m in values["models"]:
            m["cache"] = {k: v for k, v in m.get("cache", {}).items() if k != "accessMode"}
            # per-replica zonal disks only on single-zone pools (config check)
            pool = next(p for p in values["cluster"]["nodePools"] if p["name"] == m["nodePool"])
            pool["zones"] = [f"{values['cluster']['region']}a"]
        overrides["models"] = values["models"]
        # multi-node groups share one RWX cache (config check): none without EFS
        overrides["multiNodeModels"] = []
    rec = run_program(PROJECT, stack, config_overrides=overrides)
    assert_ordered(rec, "eks" if stack == "prod" else "gke", new_cluster)
    if name == "eks-rwo-caches":
        assert [r for r in dependents(rec) if r.type == STATEFULSET]
    if name == "gke-filestore":
        assert any(
            r.type == STORAGE_CLASS and r.inputs["metadata"]["name"] == "filestore-model-cache" for r in rec.resources
        )


def test_gpu_workloads_still_wait_for_the_gpu_operator(stack):
    rec = render(stack)
    deps = closure(rec.resources)
    operator = [r.urn for r in rec.resources if r.type == RELEASE and r.inputs["name"] == "gpu-operator"]
    if not operator:
        pytest.skip(f"{stack} does not install the GPU Operator")
    gpu = [
        r
        for r in rec.resources
        if r.type in (STATEFULSET, "kubernetes:apps/v1:Deployment", "kubernetes:ray.io/v1:RayService")
        and "nvidia.com/gpu" in str(r.inputs.get("spec"))
    ]
    assert gpu
    for r in gpu:
        assert operator[0] in deps[r.urn], f"{r.name} does not wait for the GPU Operator"
