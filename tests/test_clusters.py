"""GPU compute: node pools per cloud, Karpenter, storage, protection, and GPU scheduling.

Everything is checked on what the real program declares (the offline render), for every
pool of every stack, against the stack's own config; bad combinations must be rejected
with their config path and without a traceback.
"""

from __future__ import annotations

import copy
import json
import math
from functools import cache
from typing import Any

import expected
import pytest
import yaml
from conftest import PROJECT, STACKS, objects, render, requires_upstream, resources_of_type
from stackfiles import assert_rejected, provider_values, stack_values

from llm_infra.components.cluster.karpenter import RELEASE as KARPENTER_RELEASE
from llm_infra.components.cluster.nodes import exec_kubeconfig
from llm_infra.components.render import RenderError, helm_releases, run_program
from llm_infra.config import ConfigError, StackPlan, catalog, load_stack_config, versions
from llm_infra.config.cluster import POOL_LABEL, SYSTEM_POOL_NAME, Taint, karpenter_instance_types
from llm_infra.config.facts import GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL, NodePoolFacts

EKS_NODE_GROUP = "eks:index:ManagedNodeGroup"
EKS_PLAIN_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


# --------------------------------------------------------------------------- helpers
@cache
def plan_of(stack: str) -> StackPlan:
    return load_stack_config(stack, *stack_values(stack))


def cluster_values(stack: str) -> dict[str, Any]:
    return copy.deepcopy(stack_values(stack)[0]["cluster"])


_variants: dict[str, Any] = {}


def variant(stack: str, key: str, overrides: dict[str, Any]):
    """A render of ``stack`` with config overrides (cached per test session under ``key``)."""
    if key not in _variants:
        _variants[key] = run_program(PROJECT, stack, config_overrides=overrides)
    return _variants[key]


def rejected(stack: str, values: dict[str, Any]) -> list[str]:
    """The error lines of a config variant (fails the test if it is accepted)."""
    with pytest.raises(ConfigError) as info:
        load_stack_config(stack, values, stack_values(stack)[1])
    return info.value.lines()


def gpu_node_groups(rec, token: str) -> dict[str, dict[str, Any]]:
    """Inputs of the GPU node groups/pools by pool label (the system pool left out)."""
    out = {}
    for r in resources_of_type(rec, token):
        labels = r.inputs.get("labels") if token != GKE_NODE_POOL else r.inputs["nodeConfig"].get("labels")
        name = (labels or {}).get(POOL_LABEL)
        assert name, f"{r.name}: node group without the {POOL_LABEL} label"
        assert name not in out, f"two node groups for pool {name}"
        out[name] = r.inputs
    system = out.pop(SYSTEM_POOL_NAME, None)
    assert system is not None, "no system node group"
    return out


def expected_labels(stack: str, pool_index: int) -> dict[str, str]:
    plan = plan_of(stack)
    pool = plan.config.cluster.node_pools[pool_index]
    labels = {POOL_LABEL: pool.name, "nvidia.com/gpu.present": "true", **pool.labels}
    if plan.config.cluster.cloud == "gke" and plan.config.addons.gpu_operator.enabled:
        labels[GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL] = "true"
    return labels


def cloud_taint(facts: NodePoolFacts) -> list[dict[str, str | None]]:
    return [{"key": facts.taint_key, "value": facts.taint_value, "effect": EFFECTS[facts.taint_effect or ""]}]


# ------------------------------------------------------------------- node pools per cloud
def test_every_pool_of_every_stack_is_provisioned_as_configured(stack, recording):
    plan = plan_of(stack)
    cluster = plan.config.cluster
    if cluster.cloud == "existing":
        # no cloud resources at all: the facts come from config and are reported as such
        assert not [r for r in recording.resources if r.type.startswith(("aws:", "eks:", "gcp:"))]
        reported = recording.outputs["nodePools"]
        assert set(reported) == {p.name for p in cluster.node_pools}
        for pool in cluster.node_pools:
            assert pool.gpu is not None
            assert reported[pool.name]["gpusPerNode"] == pool.gpu.count
            assert reported[pool.name]["selector"] == pool.node_selector
        return

    token = EKS_NODE_GROUP if cluster.cloud == "eks" else GKE_NODE_POOL
    groups = gpu_node_groups(recording, token)
    assert set(groups) == {p.name for p in cluster.node_pools}
    for i, pool in enumerate(cluster.node_pools):
        got, facts = groups[pool.name], plan.pools[pool.name]
        shape = catalog.lookup(cluster.cloud, pool.instance_type or "")
        labels = got["labels"] if cluster.cloud == "eks" else got["nodeConfig"]["labels"]
        taints = got["taints"] if cluster.cloud == "eks" else got["nodeConfig"]["taints"]
        assert labels == expected_labels(stack, i) == facts.node_labels, pool.name
        assert "nvidia.com/gpu.product" not in labels, "GFD owns the product label (it becomes -SHARED under sharing)"
        taint = pool.taint or Taint(value={"eks": "true", "gke": "present"}[cluster.cloud])
        assert (
            taints == [{"key": taint.key, "value": taint.value, "effect": EFFECTS[taint.effect]}] == cloud_taint(facts)
        )
        if cluster.cloud == "eks":
            spot = pool.capacity_type == "spot"
            assert got["instanceTypes"] == [pool.instance_type, *(pool.spot_instance_types if spot else [])]
            assert got["amiType"] == pool.ami_type and got["amiType"].endswith("_NVIDIA")
            assert got["capacityType"] == ("SPOT" if spot else "ON_DEMAND")
            desired = pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes
            assert got["scalingConfig"] == {
                "minSize": pool.min_nodes,
                "desiredSize": desired,
                "maxSize": pool.max_nodes,
            }
            assert got["diskSize"] == pool.disk_size_gib >= 200
            assert "launchTemplate" not in got, "EKS ignores diskSize with a launch template"
        else:
            gke = cluster.gke
            node = got["nodeConfig"]
            assert node["machineType"] == pool.instance_type
            accel = {
                "type": shape.accelerator,
                "count": shape.gpu_count,
                "gpuDriverInstallationConfig": {
                    "gpuDriverVersion": {"gke": gke.gpu_driver_version, "operator": "INSTALLATION_DISABLED"}[
                        gke.gpu_driver
                    ]
                },
            }
            assert node["guestAccelerators"] == [accel]
            assert node["spot"] is (pool.capacity_type == "spot")
            assert node["imageType"] == {"gke": "COS_CONTAINERD", "operator": "UBUNTU_CONTAINERD"}[gke.gpu_driver]
            assert node["diskSizeGb"] == pool.disk_size_gib >= 200
            assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
            assert got["autoscaling"]["totalMinNodeCount"] == pool.min_nodes
            assert got["autoscaling"]["totalMaxNodeCount"] == pool.max_nodes
            assert got.get("nodeLocations", []) == pool.zones
            zones = len(pool.zones) or 3
            start = pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes
            assert got["initialNodeCount"] == math.ceil(start / zones)


def test_system_pool_is_cpu_only_and_untainted(stack, recording):
    cluster = plan_of(stack).config.cluster
    if cluster.cloud == "existing":
        pytest.skip(f"{stack}: an existing cluster's system nodes are not ours to declare")
    if cluster.cloud == "eks":
        [system] = [
            r.inputs
            for r in resources_of_type(recording, EKS_NODE_GROUP)
            if r.inputs["labels"] == {POOL_LABEL: SYSTEM_POOL_NAME}
        ]
        assert system["instanceTypes"] == [cluster.system_pool.machine_type("eks")]
        assert system["amiType"] == "AL2023_x86_64_STANDARD" and system["taints"] == []
        assert system["scalingConfig"]["minSize"] == cluster.system_pool.min_nodes
    else:
        [system] = [
            r.inputs
            for r in resources_of_type(recording, GKE_NODE_POOL)
            if r.inputs["nodeConfig"]["labels"] == {POOL_LABEL: SYSTEM_POOL_NAME}
        ]
        assert system["nodeConfig"]["machineType"] == cluster.system_pool.machine_type("gke")
        assert "guestAccelerators" not in system["nodeConfig"] and "taints" not in system["nodeConfig"]
    assert catalog.lookup(cluster.cloud, cluster.system_pool.machine_type(cluster.cloud)) is None


# ------------------------------------------------------------- GPU workloads vs. pools
def pod_specs(obj: Any, path: str = ""):
    """Every pod spec inside a rendered object (Deployments, StatefulSets, Jobs, RayService
    head/worker groups, LeaderWorkerSets, ...): any object with a list of containers."""
    if isinstance(obj, dict):
        if isinstance(obj.get("containers"), list) and all(
            isinstance(c, dict) and "image" in c for c in obj["containers"]
        ):
            yield path, obj
            return
        for key, value in obj.items():
            yield from pod_specs(value, f"{path}.{key}" if path else key)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from pod_specs(value, f"{path}[{i}]")


def gpus_of(container: dict[str, Any]) -> int:
    res = container.get("resources") or {}
    values = [(res.get(kind) or {}).get("nvidia.com/gpu") for kind in ("limits", "requests")]
    return max(int(v) for v in values if v is not None) if any(v is not None for v in values) else 0


def required_labels(pod: dict[str, Any]) -> dict[str, set[str]]:
    """Label -> allowed values from nodeSelector and required node affinity."""
    out = {k: {v} for k, v in (pod.get("nodeSelector") or {}).items()}
    terms = (
        ((pod.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        or {}
    ).get("nodeSelectorTerms") or []
    if len(terms) == 1:
        for expr in terms[0].get("matchExpressions") or []:
            if expr["operator"] == "In":
                out.setdefault(expr["key"], set(expr["values"]))
    return out


def workload_pods(rec):
    for obj in objects(rec):
        for path, pod in pod_specs(obj.get("spec") or {}, "spec"):
            yield f"{obj['kind']}/{obj['metadata']['name']} {path}", pod


def test_gpu_workloads_tolerate_and_select_exactly_their_pool(stack, recording):
    plan = plan_of(stack)
    pools = plan.pools
    gpu_taint_keys = {p.taint_key for p in pools.values() if p.taint_key}
    gpu_pods = 0
    for where, pod in workload_pods(recording):
        gpus = sum(gpus_of(c) for c in pod["containers"])
        if not gpus and where.startswith("DaemonSet/"):
            # node daemons (the serving-image pre-pull) belong on GPU nodes; DaemonSet pods never
            # hold a node (Cluster Autoscaler and Karpenter ignore them when removing nodes). Only
            # the GPU pools' own taints, never a blanket toleration.
            allowed = [t for p in pools.values() for t in p.tolerations()]
            assert all(t in allowed for t in pod.get("tolerations") or []), where
            continue
        if not gpus:
            assert not [
                t
                for t in pod.get("tolerations") or []
                if t.get("key") in gpu_taint_keys or (not t.get("key") and t.get("operator") == "Exists")
            ], f"{where}: requests no GPU but tolerates the GPU taint (it would hold GPU nodes)"
            continue
        gpu_pods += 1
        selected = required_labels(pod)
        matches = [
            p for p in pools.values() if p.selector and all(selected.get(k) == {v} for k, v in p.selector.items())
        ]
        assert len(matches) == 1, f"{where}: selects {selected}, which matches {len(matches)} pools (want exactly one)"
        pool = matches[0]
        want = expected.pool(stack, pool.name)
        assert pod.get("nodeSelector") == want["selector"], (
            f"{where}: nodeSelector {pod.get('nodeSelector')} != {want['selector']}"
        )
        assert pod.get("tolerations") == want["tolerations"], (
            f"{where}: tolerations {pod.get('tolerations')} != pool {pool.name}'s taint"
        )
        assert gpus <= pool.gpus_per_node, f"{where}: {gpus} GPUs > {pool.gpus_per_node} per {pool.instance_type} node"
        for c in pod["containers"]:
            args = [str(a) for a in [*(c.get("command") or []), *(c.get("args") or [])]]
            for flag in ("--tensor-parallel-size", "-tp"):
                if flag in args:
                    tp = int(args[args.index(flag) + 1])
                    assert tp <= pool.gpus_per_node, f"{where}: TP {tp} > {pool.gpus_per_node} GPUs per node"
                    assert tp == gpus_of(c), f"{where}: TP {tp} but the container requests {gpus_of(c)} GPUs"
    for key, model in [*plan.models.items(), *plan.ray_models.items()]:
        assert model.tensor_parallel_size <= model.pool.gpus_per_node, key
    serving = len(plan.config.models) + len(plan.config.ray_services)
    assert gpu_pods >= serving, f"{serving} serving stacks configured but only {gpu_pods} GPU pod specs rendered"


def test_gpu_workloads_wait_for_gpu_capacity(stack, recording):
    """Serving components depend on every node group / NodePool that creates GPU nodes."""
    cloud = plan_of(stack).config.cluster.cloud
    capacity = {
        r.urn
        for r in recording.resources
        if r.type in (EKS_NODE_GROUP, EKS_PLAIN_NODE_GROUP, GKE_NODE_POOL)
        and ((r.inputs.get("labels") or r.inputs.get("nodeConfig", {}).get("labels") or {}).get(POOL_LABEL))
        != SYSTEM_POOL_NAME
    }
    capacity |= {
        r.urn
        for r in recording.resources
        if r.type in ("kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    }
    assert bool(capacity) == (cloud != "existing")
    serving = [
        r for r in recording.resources if r.type in ("llm-infra:serving:VllmService", "llm-infra:serving:RayLlmService")
    ]
    assert serving
    for r in serving:
        assert capacity <= set(r.depends_on), f"{r.name} does not wait for {sorted(capacity - set(r.depends_on))}"


def test_storage_classes_used_by_caches_exist(stack, recording):
    plan = plan_of(stack)
    cluster = plan.config.cluster
    provided = {o["metadata"]["name"] for o in objects(recording, "StorageClass")}
    if cluster.cloud == "gke":
        provided.add("standard-rwo")  # GKE built-in (pd-balanced CSI)
    if cluster.existing:
        provided |= {c for c in (cluster.existing.storage_class, cluster.existing.rwx_storage_class) if c}
    provided |= {m.cache.storage_class for m in plan.config.models if m.cache.storage_class}
    claims = [*objects(recording, "PersistentVolumeClaim")]
    for obj in objects(recording):
        claims += (obj.get("spec") or {}).get("volumeClaimTemplates") or []
    for claim in claims:
        sc = claim["spec"].get("storageClassName")
        assert sc is None or sc in provided, (
            f"PVC {claim['metadata']['name']} uses StorageClass {sc}, not one of {sorted(provided)}"
        )
        if "ReadWriteMany" in claim["spec"].get("accessModes", []):
            assert sc is not None and sc not in ("gp3", "standard-rwo"), (
                f"{claim['metadata']['name']}: RWX on a block StorageClass"
            )


def test_kubeconfig_is_exported_as_a_secret(recording):
    assert recording.outputs["kubeconfig"] == "[secret]"


# ---------------------------------------------------------------------------- EKS extras
def eks_stacks() -> list[str]:
    return [s for s in STACKS if plan_of(s).config.cluster.cloud == "eks"]


def test_eks_cluster_settings_and_node_iam():
    assert eks_stacks(), "no EKS stack to check"
    for stack in eks_stacks():
        rec, cfg = render(stack), plan_of(stack).config.cluster
        [cluster] = resources_of_type(rec, "eks:index:Cluster")
        i = cluster.inputs
        assert (i["authenticationMode"], i["skipDefaultNodeGroup"], i["createOidcProvider"]) == ("API", True, True)
        assert i["name"] == cfg.name and i["version"] == cfg.control_plane_version == (
            cfg.kubernetes_version or versions.KUBERNETES_VERSION
        )
        assert i["nodeAssociatePublicIpAddress"] is False and len(i["privateSubnetIds"]) == 3
        attached = {
            r.inputs["policyArn"].rsplit("/", 1)[-1]
            for r in resources_of_type(rec, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if r.name.startswith("llm-node-")
        }
        assert attached == {
            "AmazonEKSWorkerNodePolicy",
            "AmazonEKS_CNI_Policy",
            "AmazonEC2ContainerRegistryReadOnly",
            "AmazonSSMManagedInstanceCore",
        }
        private = [r for r in resources_of_type(rec, "aws:ec2/subnet:Subnet") if "private" in r.name]
        assert all(r.inputs["tags"]["karpenter.sh/discovery"] == cfg.name for r in private) and len(private) == 3
        assert len(resources_of_type(rec, "aws:ec2/natGateway:NatGateway")) == 3


def test_karpenter_extends_the_pools_its_instance_types_fit():
    stacks = [s for s in eks_stacks() if plan_of(s).config.cluster.eks.karpenter.enabled]
    assert stacks, "no stack enables Karpenter"
    for stack in stacks:
        rec, plan = render(stack), plan_of(stack)
        kcfg = plan.config.cluster.eks.karpenter
        node_pools = {o["metadata"]["name"]: o for o in objects(rec, "NodePool")}
        classes = {o["metadata"]["name"]: o for o in objects(rec, "EC2NodeClass")}
        extended = {p.name: karpenter_instance_types(kcfg, p) for p in plan.config.cluster.node_pools}
        extended = {k: v for k, v in extended.items() if v}
        assert extended and set(node_pools) == {f"gpu-{name}" for name in extended}
        for name, types in extended.items():
            facts, pool_cfg = plan.pools[name], next(p for p in plan.config.cluster.node_pools if p.name == name)
            spec = node_pools[f"gpu-{name}"]["spec"]
            req = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
            assert req["node.kubernetes.io/instance-type"]["values"] == types
            for t in types:  # same GPUs as the pool, at least its vCPUs and memory
                shape, own = catalog.lookup("eks", t), catalog.lookup("eks", facts.instance_type or "")
                assert (shape.gpu_count, shape.gpu_memory_gib) == (own.gpu_count, own.gpu_memory_gib)
                assert shape.vcpus >= own.vcpus and shape.memory_gib >= own.memory_gib
            assert req["karpenter.sh/capacity-type"] == {
                "key": "karpenter.sh/capacity-type",
                "operator": "In",
                "values": ["spot", "on-demand"],
            }
            assert [{k: t[k] for k in ("key", "value", "effect")} for t in spec["template"]["spec"]["taints"]] == [
                {"key": facts.taint_key, "value": facts.taint_value, "effect": facts.taint_effect}
            ]
            assert spec["template"]["metadata"]["labels"] == facts.node_labels
            # GPU nodes only go when empty: repacking replicas costs model reloads (Karpenter 1.x NodePool
            # disruption.consolidationPolicy: WhenEmpty | WhenEmptyOrUnderutilized)
            assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty"
            assert spec["disruption"]["consolidateAfter"] == kcfg.consolidate_after
            # gpuLimit, but no further than maxNodes beyond the managed node group's desired size
            desired = pool_cfg.desired_nodes if pool_cfg.desired_nodes is not None else pool_cfg.min_nodes
            assert spec["limits"] == {
                "nvidia.com/gpu": min(kcfg.gpu_limit, (pool_cfg.max_nodes - desired) * facts.gpus_per_node)
            }
            node_class = classes[spec["template"]["spec"]["nodeClassRef"]["name"]]["spec"]
            family = "bottlerocket" if pool_cfg.ami_type.startswith("BOTTLEROCKET") else "al2023"
            version = kcfg.bottlerocket_ami_version if family == "bottlerocket" else kcfg.ami_version
            assert node_class["amiSelectorTerms"] == [{"alias": f"{family}@{version}"}]
            sizes = [int(b["ebs"]["volumeSize"].removesuffix("Gi")) for b in node_class["blockDeviceMappings"]]
            assert max(sizes) == pool_cfg.disk_size_gib >= 200
            assert node_class["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": plan.config.cluster.name}}]
        [release] = [r for r in helm_releases(rec) if r["name"] == KARPENTER_RELEASE]
        assert (release["chart"], release["version"], release["repository"]) == (
            versions.KARPENTER.name,
            versions.KARPENTER.version,
            versions.KARPENTER.repository,
        )
        assert release["values"]["settings"]["clusterName"] == plan.config.cluster.name
        assert release["values"]["settings"]["interruptionQueue"]
        assert release["values"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert release["values"]["nodeSelector"] == {POOL_LABEL: SYSTEM_POOL_NAME}
        [entry] = resources_of_type(rec, "aws:eks/accessEntry:AccessEntry")
        assert entry.inputs["type"] == "EC2_LINUX"
        rules = {
            json.loads(r.inputs["eventPattern"])["detail-type"][0]
            for r in resources_of_type(rec, "aws:cloudwatch/eventRule:EventRule")
        }
        assert "EC2 Spot Instance Interruption Warning" in rules and len(rules) == 5
        [controller] = [
            r for r in resources_of_type(rec, "aws:iam/role:Role") if r.name.endswith("karpenter-controller")
        ]
        trust = json.loads(controller.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringLike"]
        assert list(trust.values()) == ["system:serviceaccount:kube-system:karpenter"]


def test_eks_efs_model_cache_and_irsa():
    stacks = [s for s in eks_stacks() if plan_of(s).config.cluster.eks.efs_model_cache]
    assert stacks, "no stack enables efsModelCache"
    for stack in stacks:
        rec = render(stack)
        [fs] = resources_of_type(rec, "aws:efs/fileSystem:FileSystem")
        assert fs.inputs["encrypted"] is True
        mounts = resources_of_type(rec, "aws:efs/mountTarget:MountTarget")
        assert len(mounts) == 3 and len({m.inputs["subnetId"] for m in mounts}) == 3
        [sc] = [o for o in objects(rec, "StorageClass") if o["provisioner"] == "efs.csi.aws.com"]
        assert sc["parameters"]["provisioningMode"] == "efs-ap" and sc["parameters"]["fileSystemId"] == f"{fs.name}-id"
        addons = {r.inputs["addonName"]: r for r in resources_of_type(rec, "aws:eks/addon:Addon")}
        assert {"aws-efs-csi-driver", "aws-ebs-csi-driver"} <= set(addons)
        roles = {r.urn.rsplit("::", 1)[-1]: r for r in resources_of_type(rec, "aws:iam/role:Role")}
        efs_role = next(r for n, r in roles.items() if n.endswith("efs-csi"))
        assert addons["aws-efs-csi-driver"].inputs["serviceAccountRoleArn"].endswith(efs_role.name)
        cond = json.loads(efs_role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]
        assert list(cond["StringLike"].values()) == ["system:serviceaccount:kube-system:efs-csi-*"]
        assert list(cond["StringEquals"].values()) == ["sts.amazonaws.com"]
        [gp3] = [o for o in objects(rec, "StorageClass") if o["provisioner"] == "ebs.csi.aws.com"]
        assert gp3["parameters"]["type"] == "gp3" and gp3["volumeBindingMode"] == "WaitForFirstConsumer"


def test_existing_eks_cluster_gets_node_groups_not_a_cluster():
    stack = eks_stacks()[0]
    cluster = cluster_values(stack)
    cluster["existingClusterName"] = "shared-gpu"
    cluster["eks"].pop("publicAccessCidrs", None)  # the attached cluster's endpoint is not ours to set
    rec = variant(stack, "eks-existing", {"cluster": cluster})
    assert not resources_of_type(rec, "eks:index:Cluster") and not resources_of_type(rec, "aws:ec2/vpc:Vpc")
    assert not resources_of_type(rec, EKS_NODE_GROUP)
    plan = plan_of(stack)
    groups = gpu_node_groups(rec, EKS_PLAIN_NODE_GROUP)
    assert set(groups) == set(plan.pools)
    for name, got in groups.items():
        assert got["clusterName"] == "shared-gpu"
        assert got["labels"] == plan.pools[name].node_labels
        assert got["taints"] == cloud_taint(plan.pools[name])
        # private subnets of the cluster only (the public one maps public IPs)
        assert sorted(got["subnetIds"]) == [
            "subnet-0a11111111111111a",
            "subnet-0b22222222222222b",
            "subnet-0c33333333333333c",
        ]
    assert not [
        r for r in resources_of_type(rec, "aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-ebs-csi-driver"
    ]
    assert {r.inputs["clusterName"] for r in resources_of_type(rec, "aws:eks/accessEntry:AccessEntry")} == {
        "shared-gpu"
    }
    assert rec.outputs["kubeconfig"] == "[secret]"


def test_existing_cluster_kubeconfig_uses_short_lived_tokens():
    cfg = json.loads(
        exec_kubeconfig("c", "https://x", "Y2E=", "aws", ["eks", "get-token", "--cluster-name", "c"], "hint")
    )
    user = cfg["users"][0]["user"]
    assert set(user) == {"exec"} and user["exec"]["command"] == "aws"
    assert cfg["clusters"][0]["cluster"] == {"server": "https://x", "certificate-authority-data": "Y2E="}


# ---------------------------------------------------------------------------- GKE extras
def gke_stacks() -> list[str]:
    return [s for s in STACKS if plan_of(s).config.cluster.cloud == "gke"]


def test_gke_cluster_settings():
    assert gke_stacks(), "no GKE stack to check"
    for stack in gke_stacks():
        rec, cfg = render(stack), plan_of(stack).config.cluster
        [cluster] = resources_of_type(rec, "gcp:container/cluster:Cluster")
        i = cluster.inputs
        assert i["removeDefaultNodePool"] is True
        assert i["workloadIdentityConfig"] == {"workloadPool": f"{cfg.gke.project}.svc.id.goog"}
        assert i["releaseChannel"] == {"channel": cfg.gke.release_channel}
        assert i["addonsConfig"]["gcpFilestoreCsiDriverConfig"] == {"enabled": cfg.gke.filestore_model_cache}
        roles = {r.inputs["role"] for r in resources_of_type(rec, "gcp:projects/iAMMember:IAMMember")}
        assert roles == {"roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"}
        # the nodes' account (the External Secrets Operator has its own, tests/test_external_secrets.py)
        [account] = [
            a
            for a in resources_of_type(rec, "gcp:serviceaccount/account:Account")
            if a.inputs["accountId"].endswith("-nodes")
        ]
        for pool in resources_of_type(rec, GKE_NODE_POOL):
            assert pool.inputs["nodeConfig"]["serviceAccount"].startswith(account.inputs["accountId"] + "@")


def test_gke_driver_by_the_operator_and_filestore_cache():
    stack = gke_stacks()[0]
    cluster = cluster_values(stack)
    cluster["gke"].update(gpuDriver="operator", filestoreModelCache=True)
    rec = variant(stack, "gke-operator", {"cluster": cluster})
    for pool in gpu_node_groups(rec, GKE_NODE_POOL).values():
        node = pool["nodeConfig"]
        assert node["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {
            "gpuDriverVersion": "INSTALLATION_DISABLED"
        }
        assert node["imageType"] == "UBUNTU_CONTAINERD"
        assert node["shieldedInstanceConfig"]["enableSecureBoot"] is False  # the operator's module is not Google-signed
        assert node["labels"][GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL] == "true"
    [cl] = resources_of_type(rec, "gcp:container/cluster:Cluster")
    assert cl.inputs["addonsConfig"]["gcpFilestoreCsiDriverConfig"] == {"enabled": True}
    [sc] = [o for o in objects(rec, "StorageClass") if o["provisioner"] == "filestore.csi.storage.gke.io"]
    assert sc["parameters"]["network"] == "default" and sc["reclaimPolicy"] == "Delete"


def test_gke_gpu_stack_is_one_coherent_path_per_gpu_driver_mode():
    """gke: GKE-managed driver + GKE's device plugin (it shares the GPUs), the operator adds
    only GFD/DCGM; operator: NVIDIA's driver manager on Ubuntu, GKE's plugin off (NVIDIA
    "GPU Operator with Google GKE", GPU Operator v26.7.0)."""
    stack = gke_stacks()[0]
    cluster = cluster_values(stack)
    cluster["nodePools"][0]["gpuSharing"] = {"strategy": "time-slicing", "clientsPerGpu": 2}
    cluster["gke"].update(gpuDriver="gke", gpuDriverBranch=580)
    for operator in (False, True):
        addons = {"gpuOperator": {"enabled": operator}}
        rec = variant(
            stack,
            f"gke-managed-{operator}",
            {"cluster": cluster, "addons": addons, "models": None, "rayServices": None},
        )
        [pool] = gpu_node_groups(rec, GKE_NODE_POOL).values()
        accel = pool["nodeConfig"]["guestAccelerators"][0]
        assert accel["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
        assert pool["nodeConfig"]["imageType"] == "COS_CONTAINERD"
        assert accel["gpuSharingConfig"] == {"gpuSharingStrategy": "TIME_SHARING", "maxSharedClientsPerGpu": 2}
        assert GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL not in pool["nodeConfig"]["labels"]
        assert "nvidia.com/device-plugin.config" not in pool["nodeConfig"]["labels"]
        op = {r["chart"]: r for r in helm_releases(rec)}.get(versions.GPU_OPERATOR.name)
        if operator:
            v = op["values"]
            assert v["devicePlugin"] == {"enabled": False} and v["driver"] == {"enabled": False}
            assert v["hostPaths"] == {"driverInstallDir": "/home/kubernetes/bin/nvidia"}
            assert v["toolkit"]["installDir"] == "/home/kubernetes/bin/nvidia" and v["cdi"] == {"enabled": True}
        else:
            assert op is None
    # operator mode: the operator's plugin does the sharing (config picked by node label)
    cluster["gke"] = {k: v for k, v in cluster["gke"].items() if k not in ("gpuDriverBranch",)} | {
        "gpuDriver": "operator"
    }
    rec = variant(
        stack, "gke-sharing-operator", {"cluster": cluster, "addons": {}, "models": None, "rayServices": None}
    )
    [pool] = gpu_node_groups(rec, GKE_NODE_POOL).values()
    accel = pool["nodeConfig"]["guestAccelerators"][0]
    assert "gpuSharingConfig" not in accel
    assert accel["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "INSTALLATION_DISABLED"}
    assert pool["nodeConfig"]["imageType"] == "UBUNTU_CONTAINERD"
    assert pool["nodeConfig"]["labels"][GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL] == "true"
    assert pool["nodeConfig"]["labels"]["nvidia.com/device-plugin.config"] == cluster["nodePools"][0]["name"]
    v = {r["chart"]: r for r in helm_releases(rec)}[versions.GPU_OPERATOR.name]["values"]
    assert v["driver"] == {"enabled": True} and v["devicePlugin"]["config"]["name"] == "device-plugin-config"


def test_operator_driver_pin_matches_the_chart_values():
    """The driver the driver manager installs is the chart's own default (what the CUDA check uses)."""
    path = requires_upstream("helm-values", "gpu-operator", "values.yaml")
    chart = yaml.safe_load(path.read_text())
    assert chart["driver"]["version"] == versions.GPU_OPERATOR_DRIVER_VERSION


# NVIDIA CUDA Compatibility guide, Minor Version Compatibility, Table 1: CUDA 13.x >= 580, 12.x >= 525
@pytest.mark.parametrize(
    "mode,branch,ok", [("gke", 570, False), ("gke", 580, True), ("gke", None, False), ("operator", None, True)]
)
def test_node_driver_must_run_the_cuda_13_serving_images(mode, branch, ok):
    stack = gke_stacks()[0]
    values, secrets = stack_values(stack)
    values["cluster"]["gke"]["gpuDriver"] = mode
    if branch is not None:
        values["cluster"]["gke"]["gpuDriverBranch"] = branch
    if ok:
        load_stack_config(stack, values, secrets)
        return
    lines = assert_rejected(stack, values, secrets, "cluster.gke.gpuDriver", "R580 or newer")
    assert any("gpuDriver: operator" in line or "set gpuDriverVersion" in line for line in lines)


def test_gke_network_policy_enforcement_gateway_api_and_private_nodes():
    for stack in gke_stacks():
        rec, plan = render(stack), plan_of(stack)
        cfg = plan.config.cluster
        if cfg.existing_cluster_name:
            continue
        [cluster] = resources_of_type(rec, "gcp:container/cluster:Cluster")
        i = cluster.inputs
        # GKE Dataplane V2 enforces NetworkPolicies (GKE docs, "About GKE Dataplane V2")
        assert i["datapathProvider"] == "ADVANCED_DATAPATH"
        assert ("gatewayApiConfig" in i) == plan.uses_gateway_api
        assert "minMasterVersion" not in i or i["minMasterVersion"] == cfg.kubernetes_version
        if cfg.gke.private_nodes:
            assert i["privateClusterConfig"]["enablePrivateNodes"] is True
            [nat] = resources_of_type(rec, "gcp:compute/routerNat:RouterNat")
            assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    stack = gke_stacks()[0]
    models = copy.deepcopy(stack_values(stack)[0]["models"])
    models[0]["httpRoute"] = {"gatewayName": "inference", "gatewayNamespace": "gateways"}
    rec = variant(stack, "gke-gateway", {"models": models})
    [cluster] = resources_of_type(rec, "gcp:container/cluster:Cluster")
    assert cluster.inputs["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}


def test_protected_gke_cluster_needs_authorized_networks_and_provider_settings_agree():
    stack = gke_stacks()[0]
    values, secrets = stack_values(stack)
    values["cluster"]["protect"] = True
    assert_rejected(stack, values, secrets, "cluster.gke.masterAuthorizedNetworks", "must name the CIDRs")
    values["cluster"]["gke"]["masterAuthorizedNetworks"] = [{"cidr": "203.0.113.0/24", "name": "office"}]
    load_stack_config(stack, values, secrets)
    rec = variant(stack, "gke-authorized", {"cluster": values["cluster"]})
    [cluster] = resources_of_type(rec, "gcp:container/cluster:Cluster")
    assert cluster.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"] == [
        {"cidrBlock": "203.0.113.0/24", "displayName": "office"}
    ]
    values, secrets = stack_values(stack)
    providers = provider_values(stack)
    assert providers["gcp:project"] == values["cluster"]["gke"]["project"]  # the stack file agrees
    load_stack_config(stack, values, secrets, providers)
    assert_rejected(
        stack,
        values,
        secrets,
        "cluster.gke.project",
        "differs from the provider setting gcp:project",
        providers={**providers, "gcp:project": "other"},
    )
    assert_rejected(
        stack, values, secrets, "cluster.region", "gcp:region", providers={**providers, "gcp:region": "europe-west4"}
    )


def test_existing_gke_cluster_gets_node_pools_not_a_cluster():
    stack = gke_stacks()[0]
    cluster = cluster_values(stack)
    cluster["existingClusterName"] = "shared-gke"
    rec = variant(stack, "gke-existing", {"cluster": cluster})
    assert not resources_of_type(rec, "gcp:container/cluster:Cluster")
    groups = gpu_node_groups(rec, GKE_NODE_POOL)
    assert set(groups) == set(plan_of(stack).pools)
    assert {g["cluster"] for g in groups.values()} == {"shared-gke"}


# ------------------------------------------------------------------------------ protect
def test_prod_protects_cluster_and_file_systems_dev_does_not():
    for stack in STACKS:
        cfg = plan_of(stack).config.cluster
        rec = render(stack)
        stateful = [
            r
            for r in rec.resources
            if r.type in ("eks:index:Cluster", "gcp:container/cluster:Cluster", "aws:efs/fileSystem:FileSystem")
        ]
        assert bool(stateful) == (cfg.cloud != "existing")
        for r in stateful:
            assert r.protect is cfg.protect, f"{stack}: {r.type} protect={r.protect}, cluster.protect={cfg.protect}"
            if r.type == "aws:efs/fileSystem:FileSystem":
                assert r.retain_on_delete is cfg.protect
            if "deletionProtection" in r.inputs:
                assert r.inputs["deletionProtection"] is cfg.protect
        for o in objects(rec, "StorageClass"):
            if o["provisioner"] in ("efs.csi.aws.com", "filestore.csi.storage.gke.io"):
                assert o["reclaimPolicy"] == ("Retain" if cfg.protect else "Delete")
    assert plan_of("prod").config.cluster.protect and not plan_of("dev").config.cluster.protect


# ------------------------------------------------------------------------- bad configs
def test_a100_accelerator_on_a_g2_machine_type_is_rejected():
    values, _ = stack_values("dev")
    values = copy.deepcopy(values)
    values["cluster"]["nodePools"][0]["accelerator"] = "nvidia-tesla-a100"
    lines = rejected("dev", values)
    assert any("cluster.nodePools[0].accelerator" in line and "nvidia-l4" in line for line in lines), lines


@pytest.mark.parametrize(
    ("stack", "edit", "path"),
    [
        ("prod", lambda c: c["nodePools"][0].update(instanceType="g5.3xlarge"), "cluster.nodePools[0].instanceType"),
        ("dev", lambda c: c["nodePools"][0].update(instanceType="n1-standard-8"), "cluster.nodePools[0].instanceType"),
        ("prod", lambda c: c["nodePools"][1].update(minNodes=5), "cluster.nodePools[1].maxNodes"),
        ("prod", lambda c: c["nodePools"][0].update(desiredNodes=10), "cluster.nodePools[0].desiredNodes"),
        (
            "prod",
            lambda c: c["nodePools"][2].update(spotInstanceTypes=["g5.2xlarge"]),
            "cluster.nodePools[2].spotInstanceTypes[0]",
        ),
        (
            "prod",
            lambda c: c["nodePools"][2].update(spotInstanceTypes=["g6e.xlarge"]),
            "cluster.nodePools[2].spotInstanceTypes[0]",
        ),
        ("prod", lambda c: c["nodePools"][0].update(accelerator="nvidia-l4"), "cluster.nodePools[0].accelerator"),
        ("prod", lambda c: c.update(gke={"project": "p"}), "cluster.gke"),
        ("dev", lambda c: c.update(eks={"efsModelCache": True}), "cluster.eks"),
        (
            "prod",
            lambda c: c["eks"]["karpenter"].update(instanceTypes=["p5.48xlarge"]),
            "cluster.eks.karpenter.instanceTypes[0]",
        ),
        (
            "prod",
            lambda c: c["eks"]["karpenter"].update(instanceTypes=["g9.xlarge"]),
            "cluster.eks.karpenter.instanceTypes[0]",
        ),
        (
            "prod",
            lambda c: c["nodePools"][0].update(amiType="BOTTLEROCKET_x86_64_NVIDIA"),
            "cluster.nodePools[0].amiType",
        ),
        ("prod", lambda c: c["nodePools"][0].update(zones=["eu-west-1a"]), "cluster.nodePools[0].zones[0]"),
        ("dev", lambda c: c["nodePools"][0].update(zones=["us-east1-b"]), "cluster.nodePools[0].zones[0]"),
        (
            "prod",
            lambda c: c["nodePools"][0].update(labels={"kubernetes.io/role": "gpu"}),
            "cluster.nodePools[0].labels",
        ),
        (
            "prod",
            lambda c: c["nodePools"][0].update(labels={"nvidia.com/gpu.product": "NVIDIA-A10G"}),
            "cluster.nodePools[0].labels",
        ),
        (
            "dev",
            lambda c: c["nodePools"][0].update(taint={"key": "nvidia.com/gpu", "value": "true"}),
            "cluster.nodePools[0].taint",
        ),
        ("prod", lambda c: c["nodePools"][0].update(name="system"), "cluster.nodePools[0].name"),
        ("prod", lambda c: c["systemPool"].update(instanceType="e2-standard-4"), "cluster.systemPool.instanceType"),
        ("prod", lambda c: c["systemPool"].update(instanceType="g5.xlarge"), "cluster.systemPool.instanceType"),
        ("prod", lambda c: c["systemPool"].update(instanceType="g4dn.xlarge"), "cluster.systemPool.instanceType"),
        ("prod", lambda c: c["systemPool"].update(instanceType="m7g.xlarge"), "cluster.systemPool.instanceType"),
        ("dev", lambda c: c["systemPool"].update(instanceType="m6i.xlarge"), "cluster.systemPool.instanceType"),
        ("prod", lambda c: c["eks"].update(vpcCidr="10.0.0.0/24"), "cluster.eks.vpcCidr"),
        # without Karpenter nothing starts the l40s nodes the RayService needs (desired 0, no autoscaler)
        ("prod", lambda c: c["eks"]["karpenter"].update(enabled=False), "cluster.nodePools[2].desiredNodes"),
    ],
)
def test_wrong_cluster_combinations_are_rejected_with_their_path(stack, edit, path):
    values, _ = stack_values(stack)
    values = copy.deepcopy(values)
    edit(values["cluster"])
    lines = rejected(stack, values)
    assert any(line.startswith(f"{stack}: {path}: ") for line in lines), f"{path} not in {lines}"


def test_bad_cluster_config_stops_the_render_without_a_traceback():
    cases = [
        ("prod", lambda c: c["nodePools"][0].update(instanceType="g5.3xlarge"), "cluster.nodePools[0].instanceType"),
        ("prod", lambda c: c["nodePools"][1].update(minNodes=5), "cluster.nodePools[1].maxNodes"),
        (
            "dev",
            lambda c: c["nodePools"][0].update(accelerator="nvidia-tesla-a100"),
            "cluster.nodePools[0].accelerator",
        ),
    ]
    for stack, edit, path in cases:
        cluster = cluster_values(stack)
        edit(cluster)
        with pytest.raises(RenderError) as info:
            run_program(PROJECT, stack, config_overrides={"cluster": cluster})
        message = str(info.value)
        assert f"{stack}: {path}: " in message and "Traceback" not in message, message


def test_the_stack_files_themselves_validate():
    for stack in STACKS:
        assert plan_of(stack).pools


def test_existing_cluster_reads_a_kubeconfig_file(tmp_path):
    stack = next(s for s in STACKS if plan_of(s).config.cluster.cloud == "existing")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(exec_kubeconfig("onprem", "https://10.0.0.1:6443", "Y2E=", "kubelogin", [], "hint"))
    cluster = cluster_values(stack)
    cluster.setdefault("existing", {})["kubeconfigPath"] = str(kubeconfig)
    rec = run_program(PROJECT, stack, config_overrides={"cluster": cluster, "kubeconfig": None})
    [provider] = [r for r in rec.resources if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert rec.outputs["kubeconfig"] == "[secret]"


def test_existing_eks_cluster_without_subnets_in_a_pools_zone_fails_cleanly():
    stack = eks_stacks()[0]
    cluster = cluster_values(stack)
    cluster["existingClusterName"] = "shared-gpu"
    cluster["eks"].pop("publicAccessCidrs", None)  # the attached cluster's endpoint is not ours to set
    cluster["nodePools"][0]["zones"] = ["us-east-1f"]  # the fake cluster has subnets in a, b, c
    with pytest.raises(RenderError) as info:
        run_program(PROJECT, stack, config_overrides={"cluster": cluster})
    assert "no private subnet in us-east-1f" in str(info.value) and "Traceback" not in str(info.value)
