"""Cross-field checks: GPU node pools and the cluster they belong to."""

from __future__ import annotations

import ipaddress
import re

from .. import catalog, drivers, k8s_support, versions
from ..catalog import GpuShape
from ..cluster import (
    POOL_LABEL,
    SYSTEM_POOL_NAME,
    ClusterConfig,
    EksConfig,
    GkeConfig,
    KarpenterConfig,
    NodePoolConfig,
    desired_nodes,
    karpenter_instance_types,
)
from ..errors import did_you_mean
from ..facts import DEVICE_PLUGIN_CONFIG_LABEL
from .base import Issues, Stack

RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "cloud.google.com", "eks.amazonaws.com")
"""Label prefixes the kubelet, EKS, GKE or Karpenter own."""


# -- cluster -------------------------------------------------------------------------
def check_cluster(stack: Stack) -> Issues:
    """The cluster section, then every node pool (in the order the issues were always reported)."""
    c = stack.config.cluster
    out = check_cloud_sections(stack, c)
    if c.eks is not None:
        out += check_eks_autoscaler(c.eks)
    karpenter = c.eks.karpenter if c.eks and c.eks.karpenter.enabled else None
    if karpenter:
        out += check_karpenter(c, karpenter)
    if c.cloud in ("eks", "gke"):
        out += check_system_pool_and_zones(c)
    if c.eks:
        out += check_eks_network(c, c.eks)
    out += check_kubernetes_version(c)
    theirs = stack.providers.get("aws:region")
    if c.cloud == "eks" and theirs is not None and c.region and theirs != c.region:
        out.add(
            "cluster.region",
            f"'{c.region}' differs from the provider setting aws:region '{theirs}': set both to the same value",
        )
    if c.cloud == "gke" and c.gke is not None:
        out += check_gke(stack, c, c.gke)
    names = [p.name for p in c.node_pools]
    for i, pool in enumerate(c.node_pools):
        path = f"cluster.nodePools[{i}]"
        if names.count(pool.name) > 1:
            out.add(f"{path}.name", f"duplicate node pool name '{pool.name}'")
        if pool.name == SYSTEM_POOL_NAME and c.cloud != "existing":
            out.add(f"{path}.name", f"'{SYSTEM_POOL_NAME}' is reserved for the CPU system pool")
        out += check_pool(stack, path, pool)
    return out


def check_cloud_sections(stack: Stack, c: ClusterConfig) -> Issues:
    """Sections and settings that belong to another cloud, or that the cloud requires."""
    out = Issues()
    for section in ("eks", "gke", "existing"):
        if getattr(c, section) is not None and c.cloud != section:
            out.add(f"cluster.{section}", f"only valid with cloud '{section}' (cloud is '{c.cloud}')")
    if c.cloud in ("eks", "gke") and not c.region:
        out.add("cluster.region", f"required for cloud '{c.cloud}'")
    if c.cloud == "gke" and c.gke is None:
        out.add("cluster.gke", "required for cloud 'gke' (at least gke.project)")
    if c.cloud == "existing":
        if c.existing_cluster_name:
            out.add("cluster.existingClusterName", "only for eks/gke; an existing cluster is reached by kubeconfig")
        has_path = c.existing is not None and c.existing.kubeconfig_path
        if not has_path and "kubeconfig" not in stack.secrets:
            out.add(
                "cluster.existing.kubeconfigPath",
                "an existing cluster needs kubeconfigPath or the secret 'kubeconfig' "
                "(pulumi config set --secret kubeconfig < file)",
            )
    if c.created_here and "network_policy_enforced" in c.model_fields_set:
        enforces = "enforces" if c.network_policy_enforcement() is True else "does not enforce"
        out.add(
            "cluster.networkPolicyEnforced",
            "only for clusters this project does not create (cloud existing, existingClusterName): "
            f"a {c.cloud} cluster created here {enforces} them",
        )
    return out


def check_eks_autoscaler(eks: EksConfig) -> Issues:
    """Exactly one autoscaler owns GPU capacity."""
    out = Issues()
    if eks.gpu_autoscaler == "karpenter" and not eks.karpenter.enabled:
        out.add("cluster.eks.gpuAutoscaler", "karpenter needs cluster.eks.karpenter.enabled: true")
    if eks.gpu_autoscaler == "clusterAutoscaler" and eks.karpenter.enabled:
        out.add(
            "cluster.eks.karpenter.enabled",
            "gpuAutoscaler is clusterAutoscaler: Karpenter would add nodes for the same pending GPU pods "
            "(one of them owns GPU capacity; disable Karpenter or set gpuAutoscaler: karpenter)",
        )
    if "cluster_autoscaler" in eks.model_fields_set and eks.gpu_autoscaler_choice != "clusterAutoscaler":
        out.add("cluster.eks.clusterAutoscaler", "only used with gpuAutoscaler: clusterAutoscaler")
    return out


def check_karpenter(c: ClusterConfig, karpenter: KarpenterConfig) -> Issues:
    """Pinned AMIs on protected clusters; instance types that are catalogued and extend a pool."""
    out = Issues()
    if c.protect:
        for field, alias in (("ami_version", "amiVersion"), ("bottlerocket_ami_version", "bottlerocketAmiVersion")):
            if getattr(karpenter, field) == "latest":
                out.add(
                    f"cluster.eks.karpenter.{alias}",
                    "'latest' on a protected cluster: every AMI release would replace all Karpenter GPU nodes "
                    "(drift) and evict the models on them; pin a release",
                )
    # a pool with an unknown type was reported itself: no follow-on error for the types below
    pools_known = all(catalog.lookup(c.cloud, p.instance_type or "") for p in c.node_pools)
    for j, name in enumerate(karpenter.instance_types):
        if catalog.lookup("eks", name) is None:
            out.add(f"cluster.eks.karpenter.instanceTypes[{j}]", f"'{name}' is not in the EKS GPU catalog")
        elif pools_known and not any(name in karpenter_instance_types(karpenter, p) for p in c.node_pools):
            out.add(
                f"cluster.eks.karpenter.instanceTypes[{j}]",
                f"{name} fits no node pool (same GPUs as the pool's instance type and at least its vCPUs and "
                f"memory): no workload selects the nodes it would launch",
            )
    return out


def check_system_pool_and_zones(c: ClusterConfig) -> Issues:
    """The CPU system pool's machine type, and the pools' zones against the region (eks, gke)."""
    out = Issues()
    system = c.system_pool.machine_type(c.cloud)
    shaped = r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$" if c.cloud == "eks" else r"^[a-z][a-z0-9]*-[a-z0-9-]+$"
    if not re.match(shaped, system):
        out.add(
            "cluster.systemPool.instanceType",
            f"'{system}' is not an {'EC2 instance' if c.cloud == 'eks' else 'GCE machine'} type",
        )
    elif catalog.lookup(c.cloud, system) is not None or (
        c.cloud == "eks" and re.match(r"^(g|p|inf|trn|dl|f|vt)\d", system)
    ):
        out.add(
            "cluster.systemPool.instanceType",
            f"{system} has accelerators; the system pool runs operators and monitoring on CPU nodes",
        )
    elif c.cloud == "eks" and re.match(r"^[a-z]+\d+[a-z]*g[a-z]*\.", system):
        out.add(
            "cluster.systemPool.instanceType",
            f"{system} is a Graviton (arm64) type; the system node group uses the x86_64 AL2023 AMI",
        )
    zones = sorted({z for p in c.node_pools for z in p.zones})
    for i, pool in enumerate(c.node_pools):
        for j, zone in enumerate(pool.zones):
            if c.region and not re.match(rf"^{re.escape(c.region)}-?[a-z]$", zone):
                out.add(f"cluster.nodePools[{i}].zones[{j}]", f"'{zone}' is not a zone of region {c.region}")
    if c.cloud == "eks" and not c.existing_cluster_name and len(zones) > 3:
        out.add(
            "cluster.nodePools",
            f"the new VPC spans 3 availability zones, the pools name {len(zones)}: {', '.join(zones)}",
        )
    return out


def check_eks_network(c: ClusterConfig, eks: EksConfig) -> Issues:
    """The new VPC's CIDR and the control-plane endpoint's access."""
    out = Issues()
    try:
        net = ipaddress.IPv4Network(eks.vpc_cidr)
    except ValueError as err:
        out.add("cluster.eks.vpcCidr", f"not an IPv4 network: {err}")
    else:
        if not 16 <= net.prefixlen <= 20:
            out.add(
                "cluster.eks.vpcCidr",
                f"/{net.prefixlen}: use /16../20 (3 private subnets of a quarter each hold the pods' VPC CNI addresses)",
            )
    if c.existing_cluster_name and "vpc_cidr" in eks.model_fields_set:
        out.add("cluster.eks.vpcCidr", "not used with existingClusterName (the cluster's VPC is used)")
    for field, alias in (("public_endpoint", "publicEndpoint"), ("public_access_cidrs", "publicAccessCidrs")):
        if c.existing_cluster_name and field in eks.model_fields_set:
            out.add(
                f"cluster.eks.{alias}",
                "not used with existingClusterName (the cluster's endpoint is not changed)",
            )
    if not eks.public_endpoint and "public_access_cidrs" in eks.model_fields_set:
        out.add("cluster.eks.publicAccessCidrs", "only with publicEndpoint: true")
    elif eks.public_endpoint and not eks.public_access_cidrs:
        out.add("cluster.eks.publicAccessCidrs", "empty: set publicEndpoint false for a private-only endpoint")
    return out


def check_kubernetes_version(c: ClusterConfig) -> Issues:
    """A pinned control-plane version must be in standard support (config/k8s_support.py)."""
    out = Issues()
    version = c.control_plane_version
    if c.cloud == "existing" or c.existing_cluster_name or version is None:
        return out
    found = k8s_support.check(c.cloud, version)
    if found and found[0] == "error":
        out.add("cluster.kubernetesVersion", found[1])
    return out


# -- gke -------------------------------------------------------------------------------
def check_gke(stack: Stack, c: ClusterConfig, gke: GkeConfig) -> Issues:
    """Provider settings, the control-plane endpoint, and the node driver against the serving images."""
    out = Issues()
    for key, mine, path in (
        ("gcp:project", gke.project, "cluster.gke.project"),
        ("gcp:region", c.region, "cluster.region"),
    ):
        theirs = stack.providers.get(key)
        if theirs is not None and mine is not None and theirs != mine:
            out.add(
                path,
                f"'{mine}' differs from the provider setting {key} '{theirs}': the provider would create "
                f"resources the cluster config does not describe; set both to the same value",
            )
    if not c.existing_cluster_name and c.protect and gke.public_endpoint and not gke.master_authorized_networks:
        out.add(
            "cluster.gke.masterAuthorizedNetworks",
            "a protected cluster with a public control-plane endpoint must name the CIDRs allowed to reach it "
            "(where pulumi and kubectl run), or set publicEndpoint: false",
        )
    for j, net in enumerate(gke.master_authorized_networks):
        try:
            ipaddress.IPv4Network(net.cidr)
        except ValueError as err:
            out.add(f"cluster.gke.masterAuthorizedNetworks[{j}].cidr", f"not an IPv4 network: {err}")
    if not gke.public_endpoint and not gke.private_nodes:
        out.add("cluster.gke.publicEndpoint", "a private endpoint needs privateNodes: true (GKE private clusters)")
    for field, alias in (("gpu_driver_version", "gpuDriverVersion"), ("gpu_driver_branch", "gpuDriverBranch")):
        if field in gke.model_fields_set and gke.gpu_driver != "gke":
            out.add(f"cluster.gke.{alias}", "only used with gpuDriver 'gke' (the GPU Operator installs its own driver)")
    out += check_gke_driver(c, gke)
    return out


def check_gke_driver(c: ClusterConfig, gke: GkeConfig) -> Issues:
    """Every pinned serving image must run on the node driver (CUDA minor-version compatibility)."""
    out = Issues()
    need, image = drivers.required_branch()
    version = c.control_plane_version
    branch = drivers.gke_node_branch(
        gke.gpu_driver,
        gke.gpu_driver_version,
        k8s_support.minor(version) if version else None,
        gke.gpu_driver_branch,
    )
    if branch is not None and branch >= need:
        return out
    cuda = versions.IMAGE_CUDA_MAJOR[image]
    if branch is None:
        where = f"GKE {k8s_support.minor(version)}" if version else "the release channel's default GKE version"
        out.add(
            "cluster.gke.gpuDriver",
            f"{image} needs an NVIDIA driver R{need} or newer (CUDA {cuda}); the branch GKE's "
            f"{gke.gpu_driver_version} driver has on {where} is not in config/drivers.py: set gpuDriver: operator "
            f"(driver {versions.GPU_OPERATOR_DRIVER_VERSION}), or gpuDriverBranch to the branch GKE's GPU "
            f"documentation lists for that version",
        )
    else:
        fix = (
            "set gpuDriverVersion: LATEST or gpuDriver: operator"
            if gke.gpu_driver == "gke"
            else "pin a newer GPU Operator"
        )
        out.add(
            "cluster.gke.gpuDriver",
            f"{image} needs an NVIDIA driver R{need} or newer (CUDA {cuda}), the nodes get R{branch}: {fix}",
        )
    return out


# -- node pools ------------------------------------------------------------------------
def check_pool(stack: Stack, path: str, pool: NodePoolConfig) -> Issues:
    """One GPU node pool: existing-cluster facts, or a catalogued instance type and what the cloud allows."""
    cloud = stack.config.cluster.cloud
    if cloud == "existing":
        return check_existing_pool(path, pool)
    out = Issues()
    for field, alias in (("gpu", "gpu"), ("node_selector", "nodeSelector")):
        if field in pool.model_fields_set:
            out.add(f"{path}.{alias}", f"only for existing clusters; on {cloud} the GPU catalog provides it")
    if not pool.instance_type:
        out.add(f"{path}.instanceType", f"required on {cloud}")
        return out
    shape = catalog.lookup(cloud, pool.instance_type)
    if shape is None:
        out += unknown_instance_type(cloud, path, pool.instance_type)
        return out
    out += check_pool_labels(path, pool)
    if cloud == "gke":
        out += check_gke_pool(path, pool, shape)
    if cloud == "eks":
        out += check_eks_pool(stack, path, pool, shape)
        out += check_pool_reachable(stack, path, pool)
    return out


def check_existing_pool(path: str, pool: NodePoolConfig) -> Issues:
    """On an existing cluster the nodes exist: the pool describes them, it does not shape them."""
    out = Issues()
    if pool.gpu is None:
        out.add(f"{path}.gpu", "required on an existing cluster (model, count, memoryGib, productLabel)")
    if not pool.node_selector:
        out.add(f"{path}.nodeSelector", "required on an existing cluster: labels that select this pool's nodes")
    for field, alias in (
        ("accelerator", "accelerator"),
        ("ami_type", "amiType"),
        ("spot_instance_types", "spotInstanceTypes"),
        ("disk_size_gib", "diskSizeGib"),
        ("zones", "zones"),
        ("labels", "labels"),
    ):
        if field in pool.model_fields_set:
            out.add(f"{path}.{alias}", "not used on an existing cluster (its nodes already exist)")
    return out


def unknown_instance_type(cloud: str, path: str, instance_type: str) -> Issues:
    """An instance type outside the GPU catalog, with a suggestion from the same family."""
    out = Issues()

    def family(name: str) -> str:
        return name.split(".")[0] if cloud == "eks" else name.split("-")[0]

    known = ", ".join(sorted({family(s.name) for s in catalog.shapes_for(cloud)}))
    # suggest only within the family typed: m5.large is not a misspelt g5.xlarge
    hint = did_you_mean(
        instance_type, [s.name for s in catalog.shapes_for(cloud) if family(s.name) == family(instance_type)]
    )
    kind = "an EKS GPU instance type" if cloud == "eks" else "a GKE GPU machine type"
    out.add(f"{path}.instanceType", f"'{instance_type}' is not {kind} in the catalog{hint} (families: {known})")
    return out


def check_pool_labels(path: str, pool: NodePoolConfig) -> Issues:
    """Labels this project, GPU Feature Discovery or the platform set themselves."""
    out = Issues()
    for key in pool.labels:
        domain = key.split("/", 1)[0] if "/" in key else ""
        if key in (POOL_LABEL, "nvidia.com/gpu.present", "nvidia.com/gpu.product", DEVICE_PLUGIN_CONFIG_LABEL):
            out.add(f"{path}.labels", f"'{key}' is set by this project or by GPU Feature Discovery; choose another key")
        elif any(domain == d or domain.endswith("." + d) for d in RESERVED_LABEL_DOMAINS):
            out.add(
                f"{path}.labels",
                f"'{key}': the {domain} prefix is reserved (kubelet, EKS, GKE or Karpenter own it)",
            )
    return out


def check_gke_pool(path: str, pool: NodePoolConfig, shape: GpuShape) -> Issues:
    out = Issues()
    if pool.accelerator and pool.accelerator != shape.accelerator:
        out.add(
            f"{path}.accelerator",
            f"{shape.name} carries {shape.accelerator}, not {pool.accelerator}",
        )
    for field, alias in (("ami_type", "amiType"), ("spot_instance_types", "spotInstanceTypes")):
        if field in pool.model_fields_set:
            out.add(f"{path}.{alias}", "EKS only")
    if (
        pool.taint
        and pool.taint.key == "nvidia.com/gpu"
        and (pool.taint.value, pool.taint.effect) != ("present", "NoSchedule")
    ):
        out.add(
            f"{path}.taint",
            "GKE taints GPU nodes nvidia.com/gpu=present:NoSchedule itself; another value or effect for that key conflicts",
        )
    return out


def check_eks_pool(stack: Stack, path: str, pool: NodePoolConfig, shape: GpuShape) -> Issues:
    """Spot alternatives of the same shape; Bottlerocket versus the GPU Operator."""
    out = Issues()
    if pool.accelerator:
        out.add(f"{path}.accelerator", "GKE only (EKS instance types imply their GPUs)")
    if pool.spot_instance_types and pool.capacity_type != "spot":
        out.add(f"{path}.spotInstanceTypes", "only used with capacityType: spot")
    for j, name in enumerate(pool.spot_instance_types):
        out += check_spot_alternative(f"{path}.spotInstanceTypes[{j}]", name, shape)
    if pool.ami_type.startswith("BOTTLEROCKET"):
        if stack.config.addons.gpu_operator.enabled:
            out.add(
                f"{path}.amiType",
                "Bottlerocket NVIDIA variants run their own driver, toolkit and device plugin and are not a "
                "GPU Operator platform; use AL2023_x86_64_NVIDIA or set addons.gpuOperator.enabled false",
            )
        if pool.gpu_sharing.strategy != "none":
            out.add(
                f"{path}.gpuSharing",
                "sharing is configured through the GPU Operator's device plugin, which Bottlerocket nodes do not run",
            )
    return out


def check_spot_alternative(path: str, name: str, shape: GpuShape) -> Issues:
    """A spot instance type must hold the pods sized for the pool's own type."""
    out = Issues()
    other = catalog.lookup("eks", name)
    if other is None:
        out.add(path, f"'{name}' is not an EKS GPU type in the catalog")
    elif (other.gpu_count, other.gpu_memory_gib) != (shape.gpu_count, shape.gpu_memory_gib):
        out.add(
            path,
            f"{name} has {other.gpu_count}x{other.gpu_memory_gib} GiB GPUs, "
            f"{shape.name} has {shape.gpu_count}x{shape.gpu_memory_gib} GiB: pods sized for one would not fit the other",
        )
    elif other.vcpus < shape.vcpus or other.memory_gib < shape.memory_gib:
        out.add(
            path,
            f"{name} has {other.vcpus} vCPUs / {other.memory_gib} GiB, less than the {shape.vcpus} / "
            f"{shape.memory_gib} GiB of {shape.name} that pods on this pool are sized for",
        )
    return out


def check_pool_reachable(stack: Stack, path: str, pool: NodePoolConfig) -> Issues:
    """With Karpenter as the GPU autoscaler, a node group no Karpenter NodePool extends stays at its
    desired size: it must start with the nodes its users need and cannot grow to maxNodes."""
    out = Issues()
    eks = stack.config.cluster.eks
    if eks is None or eks.gpu_autoscaler_choice != "karpenter":
        return out  # the Cluster Autoscaler scales the node group between minNodes and maxNodes, from zero too
    if eks.karpenter.enabled and karpenter_instance_types(eks.karpenter, pool):
        return out
    desired = desired_nodes(pool)
    users = [
        f"models[{k}]"
        for k, m in enumerate(stack.config.models)
        if m.node_pool == pool.name and m.autoscaling.min_replicas > 0
    ]
    users += [
        f"rayServices[{k}]"
        for k, r in enumerate(stack.config.ray_services)
        if r.worker_pool == pool.name and r.min_workers > 0
    ]
    if desired == 0 and users:
        out.add(
            f"{path}.desiredNodes",
            f"the node group starts with 0 nodes and nothing adds any (gpuAutoscaler is karpenter and no Karpenter "
            f"NodePool extends pool '{pool.name}'), but {', '.join(users)} need GPUs there: set minNodes/desiredNodes, "
            f"add a fitting instance type to cluster.eks.karpenter.instanceTypes or use gpuAutoscaler clusterAutoscaler",
        )
    elif pool.max_nodes > desired:
        out.add(
            f"{path}.maxNodes",
            f"pool '{pool.name}' is meant to grow to {pool.max_nodes} nodes, but it stays at {desired}: gpuAutoscaler is "
            f"karpenter and no Karpenter NodePool launches {pool.instance_type} (add it to cluster.eks.karpenter.instanceTypes, "
            f"use gpuAutoscaler clusterAutoscaler, or set maxNodes to {desired})",
        )
    return out
