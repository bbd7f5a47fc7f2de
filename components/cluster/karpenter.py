"""Karpenter on EKS: elastic, spot-first GPU capacity next to the managed node groups.

The managed node groups hold each pool's baseline (``desiredNodes``); Karpenter adds nodes
when pods of a pool stay Pending and removes them when they are empty or underutilized.
There is one ``NodePool`` + ``EC2NodeClass`` per GPU pool Karpenter can extend: a NodePool
launches only instance types with that pool's GPUs (and at least its vCPUs/memory) and puts
the pool's labels and taint on its nodes, so a pod sized for pool X never lands on a node
with other GPUs. Its ``nvidia.com/gpu`` limit is ``gpuLimit`` capped at the pool's
``maxNodes`` (config.cluster.karpenter_gpu_limit). Both capacity types are allowed;
Karpenter picks spot first and falls back to on-demand when spot capacity is short.

GPU nodes are only consolidated when empty (``WhenEmpty``): moving a model replica costs a
reload of minutes, and serving pods carry ``karpenter.sh/do-not-disrupt`` anyway (vllm.py,
rayservice.py). The AMI alias is pinned (config/versions.py), so AMI releases do not drift
every GPU node.

CRDs come from the ``karpenter-crd`` chart (a release of its own, installed first and
upgraded with the controller's version); the controller release skips its crds/.

IAM is upstream's (karpenter_iam.py): a controller role (IRSA) with the six managed
policies of Karpenter's getting-started CloudFormation, a node role with an EKS access
entry, and an SQS interruption queue fed by EventBridge (spot interruption, rebalance,
instance state change, scheduled health events, capacity reservation interruption) so
nodes drain before AWS reclaims them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from llm_infra.config import NodePoolFacts, versions
from llm_infra.config.cluster import KarpenterConfig, NodePoolConfig

from .base import AwsIrsa
from .irsa import irsa_role
from .karpenter_iam import (
    CONTROLLER_POLICIES,
    INTERRUPTION_EVENTS,
    NODE_MANAGED_POLICIES,
    controller_policies,
    node_trust_policy,
    policy_name,
    queue_policy,
)
from .nodes import SYSTEM_LABELS

NAMESPACE = "kube-system"
RELEASE = "karpenter"
"""Release name = chart fullname = controller ServiceAccount name (its IRSA subject)."""

CRD_RELEASE = "karpenter-crd"


@dataclass(frozen=True)
class KarpenterPool:
    """One GPU pool Karpenter extends, with the instance types it may launch for it."""

    config: NodePoolConfig
    facts: NodePoolFacts
    instance_types: list[str]
    gpu_limit: int
    """GPUs this NodePool may add (``config.cluster.karpenter_gpu_limit``)."""


@dataclass(frozen=True)
class KarpenterArgs:
    """What Karpenter needs: the EKS cluster, its IRSA facts, its config and the GPU pools it extends."""

    cluster_name: str
    """The EKS cluster's name (``karpenter.sh/discovery`` tags, the nodes' role and the controller's values)."""
    irsa: AwsIrsa
    """The cluster's OIDC provider, account, region and tags (the controller's IRSA role)."""
    url_suffix: str
    """The partition's DNS suffix (``${AWS::URLSuffix}``: amazonaws.com, amazonaws.com.cn)."""
    config: KarpenterConfig
    """``cluster.eks.karpenter``: instance types, GPU limits, consolidation, AMI versions."""
    pools: list[KarpenterPool]
    """GPU pools it launches nodes for: a NodePool and EC2NodeClass each."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster the controller is installed into."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What the controller needs first: the cluster and the system nodes it runs on."""


def block_devices(pool: NodePoolConfig) -> list[dict]:
    """Root (AL2023) or data (Bottlerocket, /dev/xvdb) volume of the pool's disk size:
    images and the weights cache live there."""
    ebs = {
        "volumeSize": f"{pool.disk_size_gib}Gi",
        "volumeType": "gp3",
        "encrypted": True,
        "deleteOnTermination": True,
    }
    if pool.ami_type.startswith("BOTTLEROCKET"):
        os_volume = {"volumeSize": "4Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
        return [{"deviceName": "/dev/xvda", "ebs": os_volume}, {"deviceName": "/dev/xvdb", "ebs": ebs}]
    return [{"deviceName": "/dev/xvda", "ebs": ebs, "rootVolume": True}]


def node_class_spec(cluster_name: str, role: pulumi.Input[str], pool: KarpenterPool, config: KarpenterConfig) -> dict:
    return {
        "role": role,
        "amiSelectorTerms": [{"alias": config.ami_alias(pool.config.ami_type)}],
        # private subnets carry the discovery tag (ours, or tag them on an existing VPC);
        # the EKS-created cluster security group is the one the managed node groups use
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {"aws:eks:cluster-name": cluster_name}}],
        "blockDeviceMappings": block_devices(pool.config),
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 1,  # pods use IRSA, not the node role
        },
        "tags": {"llm-infra.io/node-pool": pool.facts.name, "karpenter.sh/discovery": cluster_name},
    }


def node_pool_spec(node_class: str, pool: KarpenterPool, config: KarpenterConfig) -> dict:
    facts = pool.facts
    return {
        "template": {
            "metadata": {"labels": dict(facts.node_labels)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(pool.instance_types)},
                    # both allowed: Karpenter launches spot first, on-demand when spot is short
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
                "taints": [{"key": t["key"], "value": t["value"], "effect": t["effect"]} for t in facts.tolerations()],
                "expireAfter": "720h",
            },
        },
        "disruption": {
            # never repack running replicas onto fewer nodes: each move is a model reload
            # (minutes); empty GPU nodes still go after consolidateAfter
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": config.consolidate_after,
            # one GPU node at a time (drift, expiry): a replaced node costs a model load
            "budgets": [{"nodes": "1"}],
        },
        "limits": {"nvidia.com/gpu": pool.gpu_limit},
    }


class Karpenter(pulumi.ComponentResource):
    """Karpenter controller (Helm), its IAM and interruption queue, and the GPU NodePools."""

    capacity: list[pulumi.Resource]
    """NodePools and EC2NodeClasses: GPU workloads wait for them."""

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        irsa, cluster = args.irsa, args.cluster_name
        p, region, account = irsa.partition, irsa.region, irsa.account_id
        tags = {**irsa.tags, "karpenter.sh/discovery": cluster}

        # -- nodes: role + access entry (API authentication mode: no aws-auth ConfigMap)
        node_role = aws.iam.Role(
            f"{name}-node",
            description=f"Karpenter GPU nodes of EKS cluster {cluster}",
            assume_role_policy=node_trust_policy(args.url_suffix),
            tags=tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.lower().replace('_', '-')}",
                role=node_role.name,
                policy_arn=f"arn:{p}:iam::aws:policy/{policy}",
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # upstream moved from ECR ReadOnly to PullOnly: same attachment, new policy
                    aliases=[pulumi.Alias(name=f"{name}-node-amazonec2containerregistryreadonly")]
                    if policy == "AmazonEC2ContainerRegistryPullOnly"
                    else None,
                ),
            )
            for policy in NODE_MANAGED_POLICIES
        ]
        access = aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=cluster,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )

        # -- interruption queue
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=f"{cluster}-karpenter",
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=queue.arn.apply(queue_policy),
            opts=child,
        )
        for rule_name, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{rule_name}",
                description=f"Karpenter interruption handling for {cluster}: {pattern['detail-type'][0]}",
                event_pattern=json.dumps(pattern),
                tags=tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{rule_name}",
                rule=rule.name,
                target_id="KarpenterInterruptionQueueTarget",
                arn=queue.arn,
                opts=child,
            )

        # -- controller: IRSA role with upstream's six managed policies
        controller_role = irsa_role(
            f"{name}-controller",
            irsa,
            NAMESPACE,
            RELEASE,
            f"Karpenter controller of EKS cluster {cluster} (IRSA {NAMESPACE}/{RELEASE})",
            child,
            tags=tags,
        )
        documents = pulumi.Output.all(queue.arn, node_role.arn).apply(
            lambda a: controller_policies(p, region, account, cluster, queue_arn=a[0], node_role_arn=a[1])
        )
        controller_attachments = []
        for kind in CONTROLLER_POLICIES:
            # the former single hand-written policy lives on as NodeLifecycle (no URN lost)
            former = [pulumi.Alias(name=f"{name}-controller")] if kind == "NodeLifecycle" else None
            policy = aws.iam.Policy(
                f"{name}-controller-{kind.lower()}",
                name=policy_name(kind, cluster),
                path="/",
                description=f"Karpenter controller {kind} policy for EKS cluster {cluster}",
                policy=documents.apply(lambda d, kind=kind: d[kind]),
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, aliases=former),
            )
            controller_attachments.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-controller-{kind.lower()}",
                    role=controller_role.name,
                    policy_arn=policy.arn,
                    opts=pulumi.ResourceOptions(parent=self, aliases=former),
                )
            )

        # -- CRDs first, from their own chart: Helm upgrades templates/, never crds/
        k8s_opts: dict[str, Any] = dict(parent=self, provider=args.provider)
        crd_chart = versions.KARPENTER_CRD
        crds = k8s.helm.v3.Release(
            f"{name}-crd-release",
            name=CRD_RELEASE,
            chart=f"{crd_chart.repository}/{crd_chart.name}",
            version=crd_chart.version,
            namespace=NAMESPACE,
            # CRDs that the karpenter chart's crds/ installed earlier carry no Helm ownership
            # metadata: take them over instead of failing on "exists and cannot be imported"
            take_ownership=True,
            max_history=10,
            opts=pulumi.ResourceOptions(**k8s_opts, depends_on=args.depends_on),
        )

        chart = versions.KARPENTER
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE,
            chart=f"{chart.repository}/{chart.name}",  # OCI: the chart reference carries the registry
            version=chart.version,
            namespace=NAMESPACE,
            skip_crds=True,  # karpenter-crd owns them
            values={
                "settings": {"clusterName": cluster, "interruptionQueue": queue.name},
                "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": controller_role.arn}},
                "replicas": 2,
                "nodeSelector": dict(SYSTEM_LABELS),
                "controller": {
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"memory": "1Gi"},
                    }
                },
            },
            opts=pulumi.ResourceOptions(
                **k8s_opts,
                depends_on=[crds, *controller_attachments, access, *attachments, *args.depends_on],
            ),
        )

        # -- one EC2NodeClass + NodePool per extended GPU pool
        self.capacity = []
        for pool in args.pools:
            resource = f"gpu-{pool.facts.name}"
            node_class = k8s.apiextensions.CustomResource(
                f"{name}-{pool.facts.name}-nodeclass",
                api_version="karpenter.k8s.aws/v1",
                kind="EC2NodeClass",
                metadata={"name": resource, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                spec=node_class_spec(cluster, node_role.name, pool, args.config),
                opts=pulumi.ResourceOptions(**k8s_opts, depends_on=[crds, release]),
            )
            node_pool = k8s.apiextensions.CustomResource(
                f"{name}-{pool.facts.name}-nodepool",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": resource, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                spec=node_pool_spec(resource, pool, args.config),
                opts=pulumi.ResourceOptions(**k8s_opts, depends_on=[crds, release, node_class]),
            )
            self.capacity += [node_class, node_pool]
        self.release = release
        self.crd_release = crds
        self.register_outputs(
            {
                "nodePools": [f"gpu-{pool.facts.name}" for pool in args.pools],
                "interruptionQueue": queue.name,
                "controllerRoleArn": controller_role.arn,
            }
        )
