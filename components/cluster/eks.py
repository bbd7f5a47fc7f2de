"""EKS: a new cluster (own VPC + pulumi-eks) or an existing one, with GPU node groups.

* Network (new cluster): a VPC over three availability zones (the pools' ``zones`` first),
  private subnets for all nodes (tagged for Karpenter discovery and internal load
  balancers), public subnets for NAT gateways (one per zone) and internet-facing load
  balancers.
* Cluster: ``eks.Cluster`` with API authentication (access entries, no aws-auth), an OIDC
  provider for IRSA, no default node group, the VPC CNI's NetworkPolicy agent on, the public
  API endpoint limited to ``publicAccessCidrs`` (or off); or, with ``existingClusterName``, a lookup of
  that cluster and a kubeconfig built from its endpoint and CA.
* Nodes: a CPU system node group, and one managed node group per GPU pool with the pool's
  instance types, explicit NVIDIA AMI type, capacity type, size, labels and taint (all from
  ``NodePoolFacts``). The root volume size goes through the EKS API's ``diskSize``; no
  custom launch template is used, since EKS ignores ``diskSize`` with one.
* Scaling (``cluster.eks.gpuAutoscaler``): with ``clusterAutoscaler`` the Cluster Autoscaler
  resizes every node group between ``minNodes`` and ``maxNodes`` (autoscaler.py; Pulumi
  leaves the desired size to it after creation); with ``karpenter`` the node groups stay at
  ``desiredNodes`` (default ``minNodes``) and Karpenter adds nodes (karpenter.py).
* Storage: the EBS CSI add-on and a ``gp3`` StorageClass for ReadWriteOnce caches; with
  ``efsModelCache``, an EFS file system (mount target per zone), the EFS CSI add-on and an
  ``efs-model-cache`` StorageClass (access points) for a ReadWriteMany cache. Add-on
  controllers assume their IAM roles through IRSA.

``cluster.protect`` protects the cluster and the file system (and keeps the file system
on ``pulumi destroy``): both hold state that is slow or costly to rebuild.
"""

from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

with warnings.catch_warnings():
    # import-time deprecation notices for resources this module does not use
    # (pulumi_eks.NodeGroup's launch configurations, aws.ec2.EncryptionControl)
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_eks as eks

    aws.ec2.Vpc  # noqa: B018 (pulumi_aws loads submodules lazily, on first attribute access)

from llm_infra.config import NodePoolFacts
from llm_infra.config.cluster import ClusterConfig, EksConfig, karpenter_gpu_limit, karpenter_instance_types

from .autoscaler import AutoscaledGroup, ClusterAutoscaler, ClusterAutoscalerArgs
from .base import AwsIrsa, ClusterHandle
from .irsa import irsa_role
from .karpenter import Karpenter, KarpenterArgs, KarpenterPool
from .nodes import SYSTEM_LABELS, cloud_taints, exec_kubeconfig

NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)
"""Managed policies every EKS node role needs (kubelet, VPC CNI, ECR pulls, SSM access)."""

VPC_ZONES = 3
GP3_STORAGE_CLASS = "gp3"
EFS_STORAGE_CLASS = "efs-model-cache"
CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT"}


@dataclass(frozen=True)
class EksGpuClusterArgs:
    cluster: ClusterConfig
    """The cluster's config (``cluster`` of the stack config): cloud, names, node pools, protect."""
    pools: dict[str, NodePoolFacts]
    """GPU node-pool facts by pool name (``StackPlan.pools``)."""


@dataclass
class _Target:
    """The cluster node groups attach to, created here or looked up."""

    name: str
    kubeconfig: pulumi.Output[str]
    oidc_arn: pulumi.Input[str]
    oidc_url: pulumi.Input[str]
    subnets_by_zone: dict[str, list[pulumi.Input[str]]]
    """Private subnets per availability zone (node groups, EFS mount targets)."""
    efs_ingress: dict
    """Who may reach EFS on 2049: the VPC CIDR or the cluster security group."""
    vpc_id: pulumi.Input[str]
    cluster: eks.Cluster | None = None
    ready: list[pulumi.Resource] = field(default_factory=list)

    def subnets(self, zones: list[str]) -> list[pulumi.Input[str]]:
        picked = zones or sorted(self.subnets_by_zone)
        return [s for z in picked for s in self.subnets_by_zone.get(z, [])]


class EksVpc(pulumi.ComponentResource):
    """VPC for a new EKS cluster: private node subnets behind per-zone NAT gateways."""

    def __init__(
        self,
        name: str,
        cluster_name: str,
        cidr: str,
        zones: list[str],
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("llm-infra:cluster:EksVpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        net = ipaddress.IPv4Network(cidr)
        quarters = list(net.subnets(new_prefix=net.prefixlen + 2))
        private_cidrs = quarters[: len(zones)]  # large: the VPC CNI gives every pod a VPC address
        public_cidrs = list(quarters[3].subnets(new_prefix=net.prefixlen + 4))[: len(zones)]
        owned = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
        self.vpc = aws.ec2.Vpc(
            f"{name}",
            cidr_block=cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": cluster_name},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={**tags, "Name": cluster_name}, opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**tags, "Name": f"{cluster_name}-public"},
            opts=child,
        )
        self.private_subnets: dict[str, aws.ec2.Subnet] = {}
        self.public_subnets: dict[str, aws.ec2.Subnet] = {}
        self.ready: list[pulumi.Resource] = []
        for zone, private_cidr, public_cidr in zip(zones, private_cidrs, public_cidrs, strict=True):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=str(public_cidr),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, **owned, "Name": f"{cluster_name}-public-{zone}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            self.ready.append(
                aws.ec2.RouteTableAssociation(
                    f"{name}-public-{zone}",
                    subnet_id=public.id,
                    route_table_id=public_rt.id,
                    opts=child,
                )
            )
            eip = aws.ec2.Eip(
                f"{name}-nat-{zone}", domain="vpc", tags={**tags, "Name": f"{cluster_name}-nat-{zone}"}, opts=child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=eip.id,
                subnet_id=public.id,
                tags={**tags, "Name": f"{cluster_name}-{zone}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={**tags, "Name": f"{cluster_name}-private-{zone}"},
                opts=child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=str(private_cidr),
                availability_zone=zone,
                tags={
                    **tags,
                    **owned,
                    "Name": f"{cluster_name}-private-{zone}",
                    "kubernetes.io/role/internal-elb": "1",
                    "karpenter.sh/discovery": cluster_name,
                },
                opts=child,
            )
            self.ready.append(
                aws.ec2.RouteTableAssociation(
                    f"{name}-private-{zone}",
                    subnet_id=private.id,
                    route_table_id=private_rt.id,
                    opts=child,
                )
            )
            self.private_subnets[zone] = private
            self.public_subnets[zone] = public
        self.register_outputs({"vpcId": self.vpc.id, "zones": zones})


class EksGpuCluster(pulumi.ComponentResource):
    """An EKS cluster (new or existing) with a system node group and GPU node groups."""

    handle: ClusterHandle
    """Provider, node-pool facts, StorageClasses, readiness (frozen): what the other components take."""
    kubeconfig: pulumi.Output[str]
    """Secret: the kubeconfig of the cluster."""

    def __init__(self, name: str, args: EksGpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:EksGpuCluster", name, None, opts)
        cfg = args.cluster
        eks_cfg = cfg.eks or EksConfig()
        assert cfg.region
        self._name = name
        self._cfg = cfg
        partition = aws.get_partition()
        self._partition, self._url_suffix = partition.partition, partition.dns_suffix
        self._account = aws.get_caller_identity().account_id
        self._tags = {"llm-infra.io/cluster": cfg.name, "llm-infra.io/stack": pulumi.get_stack()}
        child = pulumi.ResourceOptions(parent=self)

        self._node_role = aws.iam.Role(
            f"{name}-node",
            description=f"Managed node groups of EKS cluster {cfg.name}",
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            tags=self._tags,
            opts=child,
        )
        self._node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.lower().replace('_', '-')}",
                role=self._node_role.name,
                policy_arn=f"arn:{self._partition}:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_POLICIES
        ]

        target = self._attach(cfg.existing_cluster_name) if cfg.existing_cluster_name else self._create(eks_cfg)
        self._autoscaled = eks_cfg.gpu_autoscaler_choice == "clusterAutoscaler"
        self.target = target
        self._irsa = AwsIrsa(
            target.oidc_arn, target.oidc_url, self._partition, str(cfg.region), self._account, dict(self._tags)
        )
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=target.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=target.ready),
        )

        sp = cfg.system_pool
        self.system_nodes = self._node_group(
            f"{name}-system",
            target,
            instance_types=[sp.machine_type("eks")],
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            sizes=(sp.min_nodes, sp.min_nodes, sp.max_nodes),
            disk_size=sp.disk_size_gib,
            labels=dict(SYSTEM_LABELS),
            taints=[],
            zones=[],
        )
        self.gpu_node_groups: dict[str, pulumi.Resource] = {}
        for pool in cfg.node_pools:
            facts = args.pools[pool.name]
            assert facts.instance_type is not None  # an EKS pool's type is in the catalog (config checks)
            self.gpu_node_groups[pool.name] = self._node_group(
                f"{name}-{pool.name}",
                target,
                instance_types=[facts.instance_type, *pool.spot_instance_types]
                if pool.capacity_type == "spot"
                else [facts.instance_type],
                ami_type=pool.ami_type,
                capacity_type=CAPACITY_TYPES[pool.capacity_type],
                sizes=(
                    pool.min_nodes,
                    pool.desired_nodes if pool.desired_nodes is not None else pool.min_nodes,
                    pool.max_nodes,
                ),
                disk_size=pool.disk_size_gib,
                labels=dict(facts.node_labels),
                taints=cloud_taints(facts),
                zones=list(pool.zones),
            )

        storage_class, rwx_storage_class, storage = self._storage(target, eks_cfg, provider)
        platform_ready = [self.system_nodes, *storage]

        capacity: list[pulumi.Resource] = list(self.gpu_node_groups.values())
        self.cluster_autoscaler: ClusterAutoscaler | None = None
        if self._autoscaled:
            groups = [AutoscaledGroup("system", _asg_name(self.system_nodes), dict(SYSTEM_LABELS))]
            groups += [
                AutoscaledGroup(pool, _asg_name(group), dict(args.pools[pool].node_labels), args.pools[pool])
                for pool, group in self.gpu_node_groups.items()
            ]
            self.cluster_autoscaler = ClusterAutoscaler(
                f"{name}-cluster-autoscaler",
                ClusterAutoscalerArgs(
                    cluster_name=target.name,
                    irsa=self._irsa,
                    config=eks_cfg.cluster_autoscaler,
                    groups=groups,
                    provider=provider,
                    depends_on=[*target.ready, *platform_ready],
                ),
                opts=child,
            )
            capacity.append(self.cluster_autoscaler.release)
        self.karpenter: Karpenter | None = None
        if eks_cfg.karpenter.enabled:
            pools = [
                KarpenterPool(pool, args.pools[pool.name], types, limit)
                for pool in cfg.node_pools
                if (types := karpenter_instance_types(eks_cfg.karpenter, pool))
                and (limit := karpenter_gpu_limit(eks_cfg.karpenter, pool, args.pools[pool.name].gpus_per_node))
            ]
            self.karpenter = Karpenter(
                f"{name}-karpenter",
                KarpenterArgs(
                    cluster_name=target.name,
                    irsa=self._irsa,
                    url_suffix=self._url_suffix,
                    config=eks_cfg.karpenter,
                    pools=pools,
                    provider=provider,
                    depends_on=[*target.ready, *platform_ready],
                ),
                opts=child,
            )
            capacity += self.karpenter.capacity

        self.handle = ClusterHandle(
            provider=provider,
            pools=args.pools,
            kubeconfig=pulumi.Output.secret(target.kubeconfig),
            storage_class=storage_class,
            rwx_storage_class=rwx_storage_class,
            gpu_capacity=capacity,
            platform_ready=platform_ready,
            aws_irsa=self._irsa,
        )
        self.kubeconfig = self.handle.kubeconfig
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "clusterName": target.name,
                "nodePools": sorted(args.pools),
                "storageClass": storage_class,
                "rwxStorageClass": rwx_storage_class,
            }
        )

    # -- where the nodes go ------------------------------------------------------------
    def _create(self, eks_cfg: EksConfig) -> _Target:
        cfg, name = self._cfg, self._name
        configured = sorted({z for pool in cfg.node_pools for z in pool.zones})
        available = aws.get_availability_zones(state="available").names
        zones = (configured + [z for z in available if z not in configured])[:VPC_ZONES]
        vpc = EksVpc(
            f"{name}-vpc", cfg.name, eks_cfg.vpc_cidr, zones, self._tags, opts=pulumi.ResourceOptions(parent=self)
        )
        cluster = eks.Cluster(
            f"{name}-eks",
            name=cfg.name,
            version=cfg.control_plane_version,
            vpc_id=vpc.vpc.id,
            public_subnet_ids=[s.id for s in vpc.public_subnets.values()],
            private_subnet_ids=[s.id for s in vpc.private_subnets.values()],
            node_associate_public_ip_address=False,
            endpoint_public_access=eks_cfg.public_endpoint,
            public_access_cidrs=eks_cfg.public_access_cidrs if eks_cfg.public_endpoint else None,
            endpoint_private_access=True,
            # the VPC CNI add-on's network policy agent: without it NetworkPolicies are inert
            # (EKS user guide, "Limit pod traffic with Kubernetes network policies")
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
            authentication_mode=eks.AuthenticationMode.API,
            skip_default_node_group=True,
            create_oidc_provider=True,
            deletion_protection=cfg.protect,
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, depends_on=vpc.ready),
        )
        return _Target(
            name=cfg.name,
            kubeconfig=cluster.kubeconfig_json,
            oidc_arn=cluster.oidc_provider_arn,
            oidc_url=cluster.oidc_provider_url,
            subnets_by_zone={z: [s.id] for z, s in vpc.private_subnets.items()},
            efs_ingress={"cidr_blocks": [eks_cfg.vpc_cidr]},
            vpc_id=vpc.vpc.id,
            cluster=cluster,
            ready=[cluster, *vpc.ready],
        )

    def _attach(self, cluster_name: str) -> _Target:
        """An existing cluster: looked up at deploy (and preview) time, never modified."""
        info = aws.eks.get_cluster(name=cluster_name)
        ca = info.certificate_authorities[0].data
        issuer = info.identities[0].oidcs[0].issuer
        oidc = aws.iam.get_open_id_connect_provider(url=issuer)
        subnets = [aws.ec2.get_subnet(id=sid) for sid in sorted(info.vpc_config.subnet_ids)]
        private = [s for s in subnets if not s.map_public_ip_on_launch] or subnets
        by_zone: dict[str, list[pulumi.Input[str]]] = {}
        for s in private:
            by_zone.setdefault(s.availability_zone, []).append(s.id)
        kubeconfig = exec_kubeconfig(
            cluster_name,
            info.endpoint,
            ca,
            command="aws",
            args=[
                "eks",
                "get-token",
                "--cluster-name",
                cluster_name,
                "--region",
                self._cfg.region or "",
                "--output",
                "json",
            ],
            install_hint="install the AWS CLI v2 where pulumi runs: https://docs.aws.amazon.com/cli/",
        )
        return _Target(
            name=cluster_name,
            kubeconfig=pulumi.Output.secret(kubeconfig),
            oidc_arn=oidc.arn,
            oidc_url=issuer,
            subnets_by_zone=by_zone,
            efs_ingress={"security_groups": [info.vpc_config.cluster_security_group_id]},
            vpc_id=info.vpc_config.vpc_id,
        )

    def _node_group(
        self,
        resource_name: str,
        target: _Target,
        *,
        instance_types: list[str],
        ami_type: str,
        capacity_type: str,
        sizes: tuple[int, int, int],
        disk_size: int,
        labels: dict[str, str],
        taints: list[dict[str, str]],
        zones: list[str],
    ) -> pulumi.Resource:
        """A managed node group: pulumi-eks's ManagedNodeGroup on a cluster we create (it needs the
        pulumi-eks Cluster), the plain EKS NodeGroup resource on an existing one."""
        min_size, desired, max_size = sizes
        if not target.subnets(zones):
            # only possible on an existing cluster: its subnets are looked up, not configured
            raise pulumi.RunError(
                f"{resource_name}: EKS cluster {target.name} has no private subnet in {', '.join(zones) or 'any zone'} "
                f"(its subnets are in {', '.join(sorted(target.subnets_by_zone)) or 'no zone'}); fix the pool's zones"
            )
        scaling = aws.eks.NodeGroupScalingConfigArgs(min_size=min_size, desired_size=desired, max_size=max_size)
        taint_args = [aws.eks.NodeGroupTaintArgs(**t) for t in taints]
        tags = {**self._tags, "llm-infra.io/node-pool": labels.get("llm-infra.io/node-pool", "")}
        opts = pulumi.ResourceOptions(parent=self, depends_on=[*self._node_policies, *target.ready])
        common: dict[str, Any] = dict(
            instance_types=instance_types,
            ami_type=ami_type,
            capacity_type=capacity_type,
            scaling_config=scaling,
            disk_size=disk_size,
            labels=labels,
            taints=taint_args,
            subnet_ids=target.subnets(zones),
            tags=tags,
        )
        if target.cluster is not None:
            if self._autoscaled:  # the Cluster Autoscaler owns the desired size once the group exists
                common["ignore_scaling_changes"] = True
            return eks.ManagedNodeGroup(
                resource_name, cluster=target.cluster, node_role=self._node_role, opts=opts, **common
            )
        if self._autoscaled:
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"])
            )
        return aws.eks.NodeGroup(
            resource_name,
            cluster_name=target.name,
            node_role_arn=self._node_role.arn,
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            opts=opts,
            **common,
        )

    # -- storage -----------------------------------------------------------------------
    def _irsa_role(
        self, name: str, target: _Target, service_account: str, policy: str
    ) -> tuple[aws.iam.Role, pulumi.Resource]:
        child = pulumi.ResourceOptions(parent=self)
        role = irsa_role(
            name,
            self._irsa,
            "kube-system",
            service_account,
            f"IRSA role of kube-system/{service_account} on EKS cluster {target.name}",
            child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            name, role=role.name, policy_arn=f"arn:{self._partition}:iam::aws:policy/{policy}", opts=child
        )
        return role, attachment

    def _addon(
        self, name: str, addon: str, target: _Target, role: aws.iam.Role, attachment: pulumi.Resource
    ) -> aws.eks.Addon:
        return aws.eks.Addon(
            name,
            cluster_name=target.name,
            addon_name=addon,
            service_account_role_arn=role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=self._tags,
            # the controller Deployment needs the (untainted) system nodes to become ready
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment, self.system_nodes, *target.ready]),
        )

    def _storage(
        self, target: _Target, eks_cfg: EksConfig, provider: k8s.Provider
    ) -> tuple[str, str | None, list[pulumi.Resource]]:
        """RWO and RWX StorageClass names, and the resources PVCs need first (CSI add-ons, classes)."""
        cfg, name = self._cfg, self._name
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        depends: list[pulumi.Resource] = []
        if target.cluster is not None:
            # new clusters get the EBS CSI driver (EBS volumes need it since Kubernetes 1.23);
            # an existing cluster is expected to run it already (the add-on cannot exist twice)
            role, attachment = self._irsa_role(
                f"{name}-ebs-csi", target, "ebs-csi-controller-sa", "service-role/AmazonEBSCSIDriverPolicy"
            )
            depends.append(self._addon(f"{name}-ebs-csi", "aws-ebs-csi-driver", target, role, attachment))
        gp3 = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": GP3_STORAGE_CLASS, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
            reclaim_policy="Delete",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=depends)),
        )
        ready: list[pulumi.Resource] = [*depends, gp3]
        if not eks_cfg.efs_model_cache:
            return GP3_STORAGE_CLASS, None, ready

        child = pulumi.ResourceOptions(parent=self)
        sg = aws.ec2.SecurityGroup(
            f"{name}-efs",
            description=f"NFS from the nodes of EKS cluster {target.name} to the model cache",
            vpc_id=target.vpc_id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=2049, to_port=2049, **target.efs_ingress)
            ],
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"])],
            tags={**self._tags, "Name": f"{target.name}-efs"},
            opts=child,
        )
        fs = aws.efs.FileSystem(
            f"{name}-model-cache",
            encrypted=True,
            performance_mode="generalPurpose",
            throughput_mode="elastic",  # model loads are bursts of GB/s, idle otherwise
            tags={**self._tags, "Name": f"{target.name}-model-cache"},
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.protect, retain_on_delete=cfg.protect),
        )
        mounts = [
            aws.efs.MountTarget(
                f"{name}-model-cache-{zone}",
                file_system_id=fs.id,
                subnet_id=subnets[0],
                security_groups=[sg.id],
                opts=child,
            )
            for zone, subnets in sorted(target.subnets_by_zone.items())
            if subnets
        ]
        role, attachment = self._irsa_role(
            f"{name}-efs-csi", target, "efs-csi-*", "service-role/AmazonEFSCSIDriverPolicy"
        )
        addon = self._addon(f"{name}-efs-csi", "aws-efs-csi-driver", target, role, attachment)
        efs = k8s.storage.v1.StorageClass(
            f"{name}-efs",
            metadata={"name": EFS_STORAGE_CLASS, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
            provisioner="efs.csi.aws.com",
            parameters={
                "provisioningMode": "efs-ap",  # one access point (own directory, own POSIX id) per volume
                "fileSystemId": fs.id,
                "directoryPerms": "700",
                "basePath": "/model-cache",
            },
            mount_options=["tls"],
            reclaim_policy="Retain" if cfg.protect else "Delete",
            volume_binding_mode="Immediate",
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[addon, *mounts])),
        )
        return GP3_STORAGE_CLASS, EFS_STORAGE_CLASS, [*ready, addon, efs]


def _asg_name(group: pulumi.Resource) -> pulumi.Output[str]:
    """Name of the Auto Scaling group EKS created for a managed node group (the Cluster
    Autoscaler discovers groups by ASG tags, which EKS does not copy from the node group)."""
    if isinstance(group, eks.ManagedNodeGroup):
        node_group = group.node_group
    else:
        assert isinstance(group, aws.eks.NodeGroup)
        node_group = pulumi.Output.from_input(group)

    def first(resources: Any) -> str:
        """``resources[0].autoscalingGroups[0].name`` (optional in the API; EKS sets it for every group it creates)."""
        return resources[0].autoscaling_groups[0].name

    return node_group.apply(lambda ng: ng.resources).apply(first)


__all__ = ["EksGpuCluster", "EksGpuClusterArgs", "EksVpc"]
