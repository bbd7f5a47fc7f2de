"""GKE: a new regional cluster or an existing one, with GPU node pools.

* Cluster: VPC-native, Workload Identity, a release channel (its default version unless
  ``kubernetesVersion`` pins one), the default node pool removed; GKE Dataplane V2
  (``ADVANCED_DATAPATH``: the Cilium datapath that enforces NetworkPolicies, which GKE
  Standard does not do otherwise); the Gateway API (``CHANNEL_STANDARD``) when a model or
  RayService routes through a Gateway; private nodes (plus a Cloud Router/NAT on the
  network for image pulls) and master authorized networks from ``cluster.gke``;
  or, with ``existingClusterName``, a lookup of that cluster. Either way the kubeconfig is
  built from the endpoint and CA with an ``exec`` user running ``gke-gcloud-auth-plugin``
  (the plugin must exist wherever ``pulumi up`` runs, CI included).
* Nodes: a least-privilege node service account (``roles/container.defaultNodeServiceAccount``
  + Artifact Registry reads), a CPU system pool, and one node pool per GPU pool: machine
  type + ``guest_accelerators`` (type and count from the catalog), spot, cluster-autoscaler
  limits (min 0 allowed; totals across zones), labels and the ``nvidia.com/gpu=present``
  taint from ``NodePoolFacts``, GKE metadata server for Workload Identity.
* Driver, one path per ``cluster.gke.gpuDriver`` (the GPU Operator values follow it):
  ``gke`` -> GKE-managed ``gpu_driver_version`` (``gpuDriverVersion``: DEFAULT/LATEST) on
  Container-Optimized OS (signed driver, secure boot on) with GKE's own device plugin,
  which also does time-sharing/MPS (``gpu_sharing_config``); ``operator`` -> NVIDIA's
  driver-manager path: ``INSTALLATION_DISABLED`` on Ubuntu (the only OS it supports on
  GKE; secure boot off, its module is not Google-signed) and, from the pool facts,
  ``gke-no-default-nvidia-gpu-device-plugin=true`` so only the operator's plugin runs and
  it does the sharing. ``config/drivers.py`` checks the node driver runs the images' CUDA.
* Storage: ``standard-rwo`` (pd-balanced, GKE built-in) for ReadWriteOnce caches; with
  ``filestoreModelCache`` the Filestore CSI add-on and a ``filestore-model-cache``
  StorageClass (ReadWriteMany). Filestore instances are created per volume by the CSI
  driver, not by Pulumi: with ``cluster.protect`` the class retains them (reclaimPolicy
  Retain) instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from llm_infra.config import NodePoolFacts, catalog
from llm_infra.config.cluster import ClusterConfig, GkeConfig, NodePoolConfig
from llm_infra.config.facts import GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL

from .base import ClusterHandle
from .nodes import SYSTEM_LABELS, cloud_taints, exec_kubeconfig

RWO_STORAGE_CLASS = "standard-rwo"
FILESTORE_STORAGE_CLASS = "filestore-model-cache"
DEFAULT_REGIONAL_ZONES = 3
"""Zones a regional cluster's node pools span when the pool names none (GKE's default)."""
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")
OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
"""Full scope; what nodes may do is bounded by the service account's IAM roles."""
IMAGE_TYPE = {"gke": "COS_CONTAINERD", "operator": "UBUNTU_CONTAINERD"}
"""NVIDIA's driver manager supports only Ubuntu on GKE (google-gke.html, GPU Operator v26.7.0)."""
DATAPATH_PROVIDER = "ADVANCED_DATAPATH"
"""GKE Dataplane V2: NetworkPolicies are enforced without the Calico add-on
(https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2)."""
GATEWAY_API_CHANNEL = "CHANNEL_STANDARD"
"""Installs the standard Gateway API CRDs and GKE's GatewayClasses
(https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways#enable-gateway)."""


def driver_version(gke: GkeConfig) -> str:
    """``gpu_driver_version`` of a GPU pool: GKE installs DEFAULT/LATEST, or nothing when the
    GPU Operator's driver manager does (NVIDIA's GKE page: ``gpu-driver-version=disabled``)."""
    return gke.gpu_driver_version if gke.gpu_driver == "gke" else "INSTALLATION_DISABLED"


SHARING_STRATEGY = {"time-slicing": "TIME_SHARING", "mps": "MPS"}


@dataclass(frozen=True)
class GkeGpuClusterArgs:
    cluster: ClusterConfig
    """The cluster's config (``cluster`` of the stack config): cloud, names, node pools, protect."""
    pools: dict[str, NodePoolFacts]
    """GPU node-pool facts by pool name (``StackPlan.pools``)."""
    gateway_api: bool = False
    """Something routes through a Gateway: enable GKE's Gateway API."""


def _account_id(cluster_name: str) -> str:
    """A service account id (6-30 chars) derived from the cluster name."""
    return f"{cluster_name[:23].rstrip('-')}-nodes"


class GkeGpuCluster(pulumi.ComponentResource):
    """A GKE cluster (new or existing) with a system pool and GPU node pools."""

    handle: ClusterHandle
    """Provider, node-pool facts, StorageClasses, readiness (frozen): what the other components take."""
    kubeconfig: pulumi.Output[str]
    """Secret: the kubeconfig of the cluster."""

    def __init__(self, name: str, args: GkeGpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:GkeGpuCluster", name, None, opts)
        cfg = args.cluster
        gke = cfg.gke
        assert gke is not None and cfg.region
        child = pulumi.ResourceOptions(parent=self)
        labels = {"llm-infra-cluster": cfg.name, "llm-infra-stack": pulumi.get_stack().lower()}

        account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=_account_id(cfg.name),
            display_name=f"GKE nodes of {cfg.name}",
            description="Least-privilege node identity: logging, monitoring, image pulls; workloads use Workload Identity",
            project=gke.project,
            opts=child,
        )
        grants = [
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.split('/')[-1].lower().replace('.', '-')}",
                project=gke.project,
                role=role,
                member=account.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=child,
            )
            for role in NODE_ROLES
        ]

        if cfg.existing_cluster_name:
            info = gcp.container.get_cluster(name=cfg.existing_cluster_name, location=cfg.region, project=gke.project)
            cluster_name: pulumi.Input[str] = cfg.existing_cluster_name
            location: pulumi.Input[str] = cfg.region
            endpoint: pulumi.Input[str] = info.endpoint
            ca: pulumi.Input[str] = info.master_auths[0].cluster_ca_certificate
            ready: list[pulumi.Resource] = []
            self.cluster = None
        else:
            self.cluster = gcp.container.Cluster(
                f"{name}-gke",
                name=cfg.name,
                project=gke.project,
                location=cfg.region,
                network=gke.network,
                subnetwork=gke.subnetwork,
                networking_mode="VPC_NATIVE",
                ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(),
                remove_default_node_pool=True,
                initial_node_count=1,
                node_config=gcp.container.ClusterNodeConfigArgs(
                    service_account=account.email,
                    oauth_scopes=OAUTH_SCOPES,
                    workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(
                        mode="GKE_METADATA"
                    ),
                ),
                min_master_version=cfg.control_plane_version,  # None: the channel's default
                release_channel=gcp.container.ClusterReleaseChannelArgs(channel=gke.release_channel),
                datapath_provider=DATAPATH_PROVIDER,
                gateway_api_config=gcp.container.ClusterGatewayApiConfigArgs(channel=GATEWAY_API_CHANNEL)
                if args.gateway_api
                else None,
                private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                    enable_private_nodes=True,
                    # no masterIpv4CidrBlock: new clusters reach their control plane through
                    # Private Service Connect, without a peered /28 to plan
                    enable_private_endpoint=not gke.public_endpoint,
                )
                if gke.private_nodes
                else None,
                master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                    cidr_blocks=[
                        gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                            cidr_block=n.cidr, display_name=n.name or None
                        )
                        for n in gke.master_authorized_networks
                    ]
                )
                if gke.master_authorized_networks or not gke.public_endpoint
                else None,
                workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(
                    workload_pool=f"{gke.project}.svc.id.goog"
                ),
                addons_config=gcp.container.ClusterAddonsConfigArgs(
                    gce_persistent_disk_csi_driver_config=gcp.container.ClusterAddonsConfigGcePersistentDiskCsiDriverConfigArgs(
                        enabled=True
                    ),
                    gcp_filestore_csi_driver_config=gcp.container.ClusterAddonsConfigGcpFilestoreCsiDriverConfigArgs(
                        enabled=gke.filestore_model_cache
                    ),
                ),
                enable_shielded_nodes=True,
                deletion_protection=cfg.protect,
                resource_labels=labels,
                opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, depends_on=grants),
            )
            if gke.private_nodes:
                # private nodes have no external IPs: Docker Hub / Hugging Face need a NAT
                router = gcp.compute.Router(
                    f"{name}-router",
                    name=f"{cfg.name}-nat-router",
                    project=gke.project,
                    region=cfg.region,
                    network=gke.network,
                    opts=child,
                )
                gcp.compute.RouterNat(
                    f"{name}-nat",
                    name=f"{cfg.name}-nat",
                    project=gke.project,
                    region=cfg.region,
                    router=router.name,
                    nat_ip_allocate_option="AUTO_ONLY",
                    source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
                    opts=child,
                )
            cluster_name = self.cluster.name
            location = self.cluster.location
            endpoint = self.cluster.endpoint
            ca = self.cluster.master_auth.cluster_ca_certificate
            ready = [self.cluster]

        kubeconfig = pulumi.Output.all(cluster_name, endpoint, ca).apply(
            lambda a: exec_kubeconfig(
                f"gke_{gke.project}_{cfg.region}_{a[0]}",
                f"https://{a[1]}",
                a[2],
                command="gke-gcloud-auth-plugin",
                args=[],
                install_hint="gcloud components install gke-gcloud-auth-plugin (needed wherever pulumi runs)",
            )
        )
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(kubeconfig),
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )

        pool_opts = pulumi.ResourceOptions(parent=self, depends_on=[*ready, *grants])
        sp = cfg.system_pool
        self.system_pool = gcp.container.NodePool(
            f"{name}-system",
            cluster=cluster_name,
            location=location,
            project=gke.project,
            initial_node_count=math.ceil(sp.min_nodes / DEFAULT_REGIONAL_ZONES),
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=sp.min_nodes, total_max_node_count=sp.max_nodes, location_policy="BALANCED"
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=sp.machine_type("gke"),
                image_type="COS_CONTAINERD",
                disk_size_gb=sp.disk_size_gib,
                disk_type="pd-balanced",
                labels=dict(SYSTEM_LABELS),
                service_account=account.email,
                oauth_scopes=OAUTH_SCOPES,
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                metadata={"disable-legacy-endpoints": "true"},
                resource_labels=labels,
            ),
            opts=pulumi.ResourceOptions.merge(pool_opts, pulumi.ResourceOptions(ignore_changes=["initialNodeCount"])),
        )
        self.gpu_node_pools = {
            pool.name: self._gpu_pool(
                f"{name}-{pool.name}",
                pool,
                args.pools[pool.name],
                gke,
                cluster_name,
                location,
                account.email,
                labels,
                pulumi.ResourceOptions.merge(pool_opts, pulumi.ResourceOptions(ignore_changes=["initialNodeCount"])),
            )
            for pool in cfg.node_pools
        }

        rwx = None
        # the PD CSI driver (standard-rwo) is a cluster add-on: the cluster is its resource
        platform_ready: list[pulumi.Resource] = [self.system_pool, *ready]
        if gke.filestore_model_cache:
            platform_ready.append(
                k8s.storage.v1.StorageClass(
                    f"{name}-filestore",
                    metadata={"name": FILESTORE_STORAGE_CLASS, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                    provisioner="filestore.csi.storage.gke.io",
                    parameters={"tier": gke.filestore_tier, "network": gke.network},
                    reclaim_policy="Retain" if cfg.protect else "Delete",
                    volume_binding_mode="WaitForFirstConsumer",
                    allow_volume_expansion=True,
                    opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=ready),
                )
            )
            rwx = FILESTORE_STORAGE_CLASS

        self.handle = ClusterHandle(
            provider=provider,
            pools=args.pools,
            kubeconfig=pulumi.Output.secret(kubeconfig),
            storage_class=RWO_STORAGE_CLASS,
            rwx_storage_class=rwx,
            gpu_capacity=list(self.gpu_node_pools.values()),
            platform_ready=platform_ready,
        )
        self.kubeconfig = self.handle.kubeconfig
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "clusterName": cluster_name,
                "nodePools": sorted(args.pools),
                "storageClass": RWO_STORAGE_CLASS,
                "rwxStorageClass": rwx,
            }
        )

    def _gpu_pool(
        self,
        resource_name: str,
        pool: NodePoolConfig,
        facts: NodePoolFacts,
        gke: GkeConfig,
        cluster_name: pulumi.Input[str],
        location: pulumi.Input[str],
        service_account: pulumi.Input[str],
        labels: dict[str, str],
        opts: pulumi.ResourceOptions,
    ) -> gcp.container.NodePool:
        shape = catalog.lookup("gke", facts.instance_type or "")
        assert shape is not None and shape.accelerator
        gke_plugin = GKE_NO_DEFAULT_DEVICE_PLUGIN_LABEL not in facts.node_labels
        sharing = None
        if gke_plugin and facts.sharing_strategy != "none":
            sharing = gcp.container.NodePoolNodeConfigGuestAcceleratorGpuSharingConfigArgs(
                gpu_sharing_strategy=SHARING_STRATEGY[facts.sharing_strategy],
                max_shared_clients_per_gpu=facts.clients_per_gpu,
            )
        zones = len(pool.zones) or DEFAULT_REGIONAL_ZONES
        start = pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes
        return gcp.container.NodePool(
            resource_name,
            cluster=cluster_name,
            location=location,
            project=gke.project,
            node_locations=list(pool.zones) or None,
            initial_node_count=math.ceil(start / zones),  # per zone
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=pool.min_nodes,
                total_max_node_count=pool.max_nodes,
                # spot: take capacity in whichever zone has it
                location_policy="ANY" if pool.capacity_type == "spot" else "BALANCED",
            ),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            # a GPU node replaced in place costs a model load; surge one at a time, never drop capacity first
            upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(max_surge=1, max_unavailable=0),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=shape.name,
                spot=pool.capacity_type == "spot",
                image_type=IMAGE_TYPE[gke.gpu_driver],
                disk_size_gb=pool.disk_size_gib,
                disk_type="pd-balanced",
                guest_accelerators=[
                    gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                        type=shape.accelerator,
                        count=shape.gpu_count,
                        gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                            gpu_driver_version=driver_version(gke)
                        ),
                        gpu_sharing_config=sharing,
                    )
                ],
                labels=dict(facts.node_labels),
                taints=[gcp.container.NodePoolNodeConfigTaintArgs(**t) for t in cloud_taints(facts)],
                service_account=service_account,
                oauth_scopes=OAUTH_SCOPES,
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=gke.gpu_driver == "gke", enable_integrity_monitoring=True
                ),
                metadata={"disable-legacy-endpoints": "true"},
                resource_labels={**labels, "llm-infra-node-pool": pool.name},
            ),
            opts=opts,
        )
