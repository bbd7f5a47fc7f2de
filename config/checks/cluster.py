"""Cross-field checks: GPU node pools and the cluster they belong to."""

from __future__ import annotations

import ipaddress
import re

from .. import catalog, drivers, k8s_support
from ..cluster import (
    POOL_LABEL,
    SYSTEM_POOL_NAME,
    desired_nodes,
    karpenter_instance_types,
)
from .. import versions
from ..errors import did_you_mean
from ..facts import DEVICE_PLUGIN_CONFIG_LABEL
from .base import CheckerBase


class ClusterChecks(CheckerBase):
    # -- cluster ---------------------------------------------------------------------
    def check_cluster(self) -> None:
        c = self.config.cluster
        for section in ("eks", "gke", "existing"):
            if getattr(c, section) is not None and c.cloud != section:
                self.add(f"cluster.{section}", f"only valid with cloud '{section}' (cloud is '{c.cloud}')")
        if c.cloud in ("eks", "gke") and not c.region:
            self.add("cluster.region", f"required for cloud '{c.cloud}'")
        if c.cloud == "gke" and c.gke is None:
            self.add("cluster.gke", "required for cloud 'gke' (at least gke.project)")
        if c.cloud == "existing":
            if c.existing_cluster_name:
                self.add(
                    "cluster.existingClusterName", "only for eks/gke; an existing cluster is reached by kubeconfig"
                )
            has_path = c.existing is not None and c.existing.kubeconfig_path
            if not has_path and "kubeconfig" not in self.secrets:
                self.add(
                    "cluster.existing.kubeconfigPath",
                    "an existing cluster needs kubeconfigPath or the secret 'kubeconfig' "
                    "(pulumi config set --secret kubeconfig < file)",
                )
        if c.created_here and "network_policy_enforced" in c.model_fields_set:
            self.add(
                "cluster.networkPolicyEnforced",
                "only for clusters this project does not create (cloud existing, existingClusterName): "
                f"a {c.cloud} cluster created here {'enforces' if c.network_policy_enforcement() is True else 'does not enforce'} them",
            )
        if c.eks is not None:
            if c.eks.gpu_autoscaler == "karpenter" and not c.eks.karpenter.enabled:
                self.add("cluster.eks.gpuAutoscaler", "karpenter needs cluster.eks.karpenter.enabled: true")
            if c.eks.gpu_autoscaler == "clusterAutoscaler" and c.eks.karpenter.enabled:
                self.add(
                    "cluster.eks.karpenter.enabled",
                    "gpuAutoscaler is clusterAutoscaler: Karpenter would add nodes for the same pending GPU pods "
                    "(one of them owns GPU capacity; disable Karpenter or set gpuAutoscaler: karpenter)",
                )
            if "cluster_autoscaler" in c.eks.model_fields_set and c.eks.gpu_autoscaler_choice != "clusterAutoscaler":
                self.add("cluster.eks.clusterAutoscaler", "only used with gpuAutoscaler: clusterAutoscaler")
        karpenter = c.eks.karpenter if c.eks and c.eks.karpenter.enabled else None
        if karpenter and c.protect:
            for field, alias in (("ami_version", "amiVersion"), ("bottlerocket_ami_version", "bottlerocketAmiVersion")):
                if getattr(karpenter, field) == "latest":
                    self.add(
                        f"cluster.eks.karpenter.{alias}",
                        "'latest' on a protected cluster: every AMI release would replace all Karpenter GPU nodes "
                        "(drift) and evict the models on them; pin a release",
                    )
        if karpenter:
            for j, name in enumerate(karpenter.instance_types):
                if catalog.lookup("eks", name) is None:
                    self.add(f"cluster.eks.karpenter.instanceTypes[{j}]", f"'{name}' is not in the EKS GPU catalog")
                elif all(catalog.lookup(c.cloud, p.instance_type or "") for p in c.node_pools) and not any(
                    name in karpenter_instance_types(karpenter, p) for p in c.node_pools
                ):  # (a pool with an unknown type was reported itself: no follow-on error here)
                    self.add(
                        f"cluster.eks.karpenter.instanceTypes[{j}]",
                        f"{name} fits no node pool (same GPUs as the pool's instance type and at least its vCPUs and "
                        f"memory): no workload selects the nodes it would launch",
                    )
        if c.cloud in ("eks", "gke"):
            system = c.system_pool.machine_type(c.cloud)
            shaped = r"^[a-z][a-z0-9-]*\.[0-9]*[a-z0-9]+$" if c.cloud == "eks" else r"^[a-z][a-z0-9]*-[a-z0-9-]+$"
            if not re.match(shaped, system):
                self.add(
                    "cluster.systemPool.instanceType",
                    f"'{system}' is not an {'EC2 instance' if c.cloud == 'eks' else 'GCE machine'} type",
                )
            elif catalog.lookup(c.cloud, system) is not None or (
                c.cloud == "eks" and re.match(r"^(g|p|inf|trn|dl|f|vt)\d", system)
            ):
                self.add(
                    "cluster.systemPool.instanceType",
                    f"{system} has accelerators; the system pool runs operators and monitoring on CPU nodes",
                )
            elif c.cloud == "eks" and re.match(r"^[a-z]+\d+[a-z]*g[a-z]*\.", system):
                self.add(
                    "cluster.systemPool.instanceType",
                    f"{system} is a Graviton (arm64) type; the system node group uses the x86_64 AL2023 AMI",
                )
            zones = sorted({z for p in c.node_pools for z in p.zones})
            for i, pool in enumerate(c.node_pools):
                for j, zone in enumerate(pool.zones):
                    if c.region and not re.match(rf"^{re.escape(c.region)}-?[a-z]$", zone):
                        self.add(f"cluster.nodePools[{i}].zones[{j}]", f"'{zone}' is not a zone of region {c.region}")
            if c.cloud == "eks" and not c.existing_cluster_name and len(zones) > 3:
                self.add(
                    "cluster.nodePools",
                    f"the new VPC spans 3 availability zones, the pools name {len(zones)}: {', '.join(zones)}",
                )
        if c.eks:
            try:
                net = ipaddress.IPv4Network(c.eks.vpc_cidr)
            except ValueError as err:
                self.add("cluster.eks.vpcCidr", f"not an IPv4 network: {err}")
            else:
                if not 16 <= net.prefixlen <= 20:
                    self.add(
                        "cluster.eks.vpcCidr",
                        f"/{net.prefixlen}: use /16../20 (3 private subnets of a quarter each hold the pods' VPC CNI addresses)",
                    )
            if c.existing_cluster_name and "vpc_cidr" in c.eks.model_fields_set:
                self.add("cluster.eks.vpcCidr", "not used with existingClusterName (the cluster's VPC is used)")
            for field, alias in (("public_endpoint", "publicEndpoint"), ("public_access_cidrs", "publicAccessCidrs")):
                if c.existing_cluster_name and field in c.eks.model_fields_set:
                    self.add(
                        f"cluster.eks.{alias}",
                        "not used with existingClusterName (the cluster's endpoint is not changed)",
                    )
            if not c.eks.public_endpoint and "public_access_cidrs" in c.eks.model_fields_set:
                self.add("cluster.eks.publicAccessCidrs", "only with publicEndpoint: true")
            elif c.eks.public_endpoint and not c.eks.public_access_cidrs:
                self.add("cluster.eks.publicAccessCidrs", "empty: set publicEndpoint false for a private-only endpoint")
        self.check_kubernetes_version()
        theirs = self.providers.get("aws:region")
        if c.cloud == "eks" and theirs is not None and c.region and theirs != c.region:
            self.add(
                "cluster.region",
                f"'{c.region}' differs from the provider setting aws:region '{theirs}': set both to the same value",
            )
        if c.cloud == "gke" and c.gke is not None:
            self.check_gke(c)
        names = [p.name for p in c.node_pools]
        for i, pool in enumerate(c.node_pools):
            path = f"cluster.nodePools[{i}]"
            if names.count(pool.name) > 1:
                self.add(f"{path}.name", f"duplicate node pool name '{pool.name}'")
            if pool.name == SYSTEM_POOL_NAME and c.cloud != "existing":
                self.add(f"{path}.name", f"'{SYSTEM_POOL_NAME}' is reserved for the CPU system pool")
            self.check_pool(path, pool)

    def check_kubernetes_version(self) -> None:
        """A pinned control-plane version must be in standard support (config/k8s_support.py)."""
        c = self.config.cluster
        version = c.control_plane_version
        if c.cloud == "existing" or c.existing_cluster_name or version is None:
            return
        found = k8s_support.check(c.cloud, version)
        if found and found[0] == "error":
            self.add("cluster.kubernetesVersion", found[1])

    def check_gke(self, c) -> None:
        gke = c.gke
        for key, mine, path in (
            ("gcp:project", gke.project, "cluster.gke.project"),
            ("gcp:region", c.region, "cluster.region"),
        ):
            theirs = self.providers.get(key)
            if theirs is not None and mine is not None and theirs != mine:
                self.add(
                    path,
                    f"'{mine}' differs from the provider setting {key} '{theirs}': the provider would create "
                    f"resources the cluster config does not describe; set both to the same value",
                )
        if not c.existing_cluster_name and c.protect and gke.public_endpoint and not gke.master_authorized_networks:
            self.add(
                "cluster.gke.masterAuthorizedNetworks",
                "a protected cluster with a public control-plane endpoint must name the CIDRs allowed to reach it "
                "(where pulumi and kubectl run), or set publicEndpoint: false",
            )
        for j, net in enumerate(gke.master_authorized_networks):
            try:
                ipaddress.IPv4Network(net.cidr)
            except ValueError as err:
                self.add(f"cluster.gke.masterAuthorizedNetworks[{j}].cidr", f"not an IPv4 network: {err}")
        if not gke.public_endpoint and not gke.private_nodes:
            self.add("cluster.gke.publicEndpoint", "a private endpoint needs privateNodes: true (GKE private clusters)")
        for field, alias in (("gpu_driver_version", "gpuDriverVersion"), ("gpu_driver_branch", "gpuDriverBranch")):
            if field in gke.model_fields_set and gke.gpu_driver != "gke":
                self.add(
                    f"cluster.gke.{alias}", "only used with gpuDriver 'gke' (the GPU Operator installs its own driver)"
                )
        # every pinned serving image must run on the node driver (CUDA minor-version compatibility)
        need, image = drivers.required_branch()
        version = c.control_plane_version
        branch = drivers.gke_node_branch(
            gke.gpu_driver,
            gke.gpu_driver_version,
            k8s_support.minor(version) if version else None,
            gke.gpu_driver_branch,
        )
        if branch is None:
            where = f"GKE {k8s_support.minor(version)}" if version else "the release channel's default GKE version"
            self.add(
                "cluster.gke.gpuDriver",
                f"{image} needs an NVIDIA driver R{need} or newer (CUDA {versions.IMAGE_CUDA_MAJOR[image]}); the branch GKE's "
                f"{gke.gpu_driver_version} driver has on {where} is not in config/drivers.py: set gpuDriver: operator "
                f"(driver {versions.GPU_OPERATOR_DRIVER_VERSION}), or gpuDriverBranch to the branch GKE's GPU "
                f"documentation lists for that version",
            )
        elif branch < need:
            self.add(
                "cluster.gke.gpuDriver",
                f"{image} needs an NVIDIA driver R{need} or newer (CUDA {versions.IMAGE_CUDA_MAJOR[image]}), the nodes get R{branch}: "
                + (
                    "set gpuDriverVersion: LATEST or gpuDriver: operator"
                    if gke.gpu_driver == "gke"
                    else "pin a newer GPU Operator"
                ),
            )

    def check_pool(self, path: str, pool) -> None:
        cloud = self.config.cluster.cloud
        explicit = pool.model_fields_set
        if cloud == "existing":
            if pool.gpu is None:
                self.add(f"{path}.gpu", "required on an existing cluster (model, count, memoryGib, productLabel)")
            if not pool.node_selector:
                self.add(
                    f"{path}.nodeSelector", "required on an existing cluster: labels that select this pool's nodes"
                )
            for field, alias in (
                ("accelerator", "accelerator"),
                ("ami_type", "amiType"),
                ("spot_instance_types", "spotInstanceTypes"),
                ("disk_size_gib", "diskSizeGib"),
                ("zones", "zones"),
                ("labels", "labels"),
            ):
                if field in explicit:
                    self.add(f"{path}.{alias}", "not used on an existing cluster (its nodes already exist)")
            return
        for field, alias in (("gpu", "gpu"), ("node_selector", "nodeSelector")):
            if field in explicit:
                self.add(f"{path}.{alias}", f"only for existing clusters; on {cloud} the GPU catalog provides it")
        if not pool.instance_type:
            self.add(f"{path}.instanceType", f"required on {cloud}")
            return
        shape = catalog.lookup(cloud, pool.instance_type)
        if shape is None:
            family = (lambda name: name.split(".")[0]) if cloud == "eks" else (lambda name: name.split("-")[0])
            known = ", ".join(sorted({family(s.name) for s in catalog.shapes_for(cloud)}))
            # suggest only within the family typed: m5.large is not a misspelt g5.xlarge
            hint = did_you_mean(
                pool.instance_type,
                [s.name for s in catalog.shapes_for(cloud) if family(s.name) == family(pool.instance_type)],
            )
            kind = "an EKS GPU instance type" if cloud == "eks" else "a GKE GPU machine type"
            self.add(
                f"{path}.instanceType", f"'{pool.instance_type}' is not {kind} in the catalog{hint} (families: {known})"
            )
            return
        for key in pool.labels:
            domain = key.split("/", 1)[0] if "/" in key else ""
            if key in (POOL_LABEL, "nvidia.com/gpu.present", "nvidia.com/gpu.product", DEVICE_PLUGIN_CONFIG_LABEL):
                self.add(
                    f"{path}.labels", f"'{key}' is set by this project or by GPU Feature Discovery; choose another key"
                )
            elif any(
                domain == d or domain.endswith("." + d)
                for d in ("kubernetes.io", "k8s.io", "karpenter.sh", "cloud.google.com", "eks.amazonaws.com")
            ):
                self.add(
                    f"{path}.labels",
                    f"'{key}': the {domain} prefix is reserved (kubelet, EKS, GKE or Karpenter own it)",
                )
        if cloud == "gke":
            if pool.accelerator and pool.accelerator != shape.accelerator:
                self.add(
                    f"{path}.accelerator",
                    f"{shape.name} carries {shape.accelerator}, not {pool.accelerator}",
                )
            for field, alias in (("ami_type", "amiType"), ("spot_instance_types", "spotInstanceTypes")):
                if field in explicit:
                    self.add(f"{path}.{alias}", "EKS only")
            if (
                pool.taint
                and pool.taint.key == "nvidia.com/gpu"
                and (pool.taint.value, pool.taint.effect) != ("present", "NoSchedule")
            ):
                self.add(
                    f"{path}.taint",
                    "GKE taints GPU nodes nvidia.com/gpu=present:NoSchedule itself; another value or effect for that key conflicts",
                )
        if cloud == "eks":
            if pool.accelerator:
                self.add(f"{path}.accelerator", "GKE only (EKS instance types imply their GPUs)")
            if pool.spot_instance_types and pool.capacity_type != "spot":
                self.add(f"{path}.spotInstanceTypes", "only used with capacityType: spot")
            for j, name in enumerate(pool.spot_instance_types):
                other = catalog.lookup("eks", name)
                if other is None:
                    self.add(f"{path}.spotInstanceTypes[{j}]", f"'{name}' is not an EKS GPU type in the catalog")
                elif (other.gpu_count, other.gpu_memory_gib) != (shape.gpu_count, shape.gpu_memory_gib):
                    self.add(
                        f"{path}.spotInstanceTypes[{j}]",
                        f"{name} has {other.gpu_count}x{other.gpu_memory_gib} GiB GPUs, "
                        f"{shape.name} has {shape.gpu_count}x{shape.gpu_memory_gib} GiB: pods sized for one would not fit the other",
                    )
                elif other.vcpus < shape.vcpus or other.memory_gib < shape.memory_gib:
                    self.add(
                        f"{path}.spotInstanceTypes[{j}]",
                        f"{name} has {other.vcpus} vCPUs / {other.memory_gib} GiB, less than the {shape.vcpus} / "
                        f"{shape.memory_gib} GiB of {shape.name} that pods on this pool are sized for",
                    )
            op = self.config.addons.gpu_operator
            if pool.ami_type.startswith("BOTTLEROCKET"):
                if op.enabled:
                    self.add(
                        f"{path}.amiType",
                        "Bottlerocket NVIDIA variants run their own driver, toolkit and device plugin and are not a "
                        "GPU Operator platform; use AL2023_x86_64_NVIDIA or set addons.gpuOperator.enabled false",
                    )
                if pool.gpu_sharing.strategy != "none":
                    self.add(
                        f"{path}.gpuSharing",
                        "sharing is configured through the GPU Operator's device plugin, which Bottlerocket nodes do not run",
                    )
            c = self.config.cluster
            eks = c.eks
            if eks is None or eks.gpu_autoscaler_choice != "karpenter":
                return  # the Cluster Autoscaler scales the node group between minNodes and maxNodes, from zero too
            extended = eks.karpenter.enabled and bool(karpenter_instance_types(eks.karpenter, pool))
            if extended:
                return
            desired = desired_nodes(pool)
            users = [
                f"models[{k}]"
                for k, m in enumerate(self.config.models)
                if m.node_pool == pool.name and m.autoscaling.min_replicas > 0
            ]
            users += [
                f"rayServices[{k}]"
                for k, r in enumerate(self.config.ray_services)
                if r.worker_pool == pool.name and r.min_workers > 0
            ]
            if desired == 0 and users:
                self.add(
                    f"{path}.desiredNodes",
                    f"the node group starts with 0 nodes and nothing adds any (gpuAutoscaler is karpenter and no Karpenter "
                    f"NodePool extends pool '{pool.name}'), but {', '.join(users)} need GPUs there: set minNodes/desiredNodes, "
                    f"add a fitting instance type to cluster.eks.karpenter.instanceTypes or use gpuAutoscaler clusterAutoscaler",
                )
            elif pool.max_nodes > desired:
                self.add(
                    f"{path}.maxNodes",
                    f"pool '{pool.name}' is meant to grow to {pool.max_nodes} nodes, but it stays at {desired}: gpuAutoscaler is "
                    f"karpenter and no Karpenter NodePool launches {pool.instance_type} (add it to cluster.eks.karpenter.instanceTypes, "
                    f"use gpuAutoscaler clusterAutoscaler, or set maxNodes to {desired})",
                )
