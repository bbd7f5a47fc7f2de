"""Cluster Autoscaler on EKS: grows and shrinks the managed node groups between their
``minNodes`` and ``maxNodes`` when pods stay Pending or nodes stay idle.

* Discovery: ``--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,
  k8s.io/cluster-autoscaler/<cluster>`` (the chart's ``autoDiscovery.clusterName``). EKS
  managed node groups do not copy their tags to the Auto Scaling group behind them, so the
  tags are put on each ASG with ``aws.autoscaling.Tag``.
* Scale from zero: a pool at 0 nodes has no node to look at, so its ASG also carries
  node-template tags (cluster-autoscaler/cloudprovider/aws/README.md, "Auto-Discovery
  Setup"): the pool's labels (``.../node-template/label/<key>``), its taint
  (``.../node-template/taint/<key>: <value>:<effect>``) and its GPUs
  (``.../node-template/resources/nvidia.com/gpu``), so a Pending pod that selects the pool,
  tolerates its taint and requests GPUs triggers a scale-up of exactly that pool.
* IAM: the README's "Full Cluster Autoscaler Features Policy" (README lines 41-68 at tag
  cluster-autoscaler-chart-9.59.0), the actions that change capacity limited to ASGs
  tagged for this cluster (the README's recommended tag condition) and DescribeNodegroup to
  this cluster's node groups; the role is assumed through IRSA by
  ``kube-system/cluster-autoscaler``.
* Settings for GPU serving (FAQ "What are the parameters to CA?"): ``least-waste`` expander,
  empty GPU nodes kept ``scaleDownUnneededTime`` before removal, a longer provisioning
  window for GPU instances, similar node groups balanced across zones, and nodes whose pods
  use emptyDir (vLLM's ``/dev/shm``, ``$HOME`` and ``/tmp``) still removable.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from llm_infra.config import NodePoolFacts, versions
from llm_infra.config.cluster import ClusterAutoscalerConfig

from .base import AwsIrsa
from .irsa import irsa_role
from .nodes import SYSTEM_LABELS

NAMESPACE = "kube-system"
RELEASE = "cluster-autoscaler"
"""Release name, fullname (``fullnameOverride``) and ServiceAccount name (its IRSA subject)."""
TAG_PREFIX = "k8s.io/cluster-autoscaler"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class AutoscaledGroup:
    """One managed node group the Cluster Autoscaler may resize."""

    name: str
    asg_name: pulumi.Input[str]
    labels: dict[str, str]
    facts: NodePoolFacts | None = None
    """GPU pools only (GPUs and taint of a node); None for the CPU system group."""


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    """What the Cluster Autoscaler needs: the EKS cluster, its IRSA facts, its config and the node groups it resizes."""

    cluster_name: str
    """The EKS cluster's name (ASG auto-discovery tags and the controller's IAM policy)."""
    irsa: AwsIrsa
    """The cluster's OIDC provider, account, region and tags (the controller's IRSA role)."""
    config: ClusterAutoscalerConfig
    """``cluster.eks.clusterAutoscaler``: expander, scale-down timings."""
    groups: list[AutoscaledGroup]
    """The managed node groups it may resize: the system group and every GPU pool's."""
    provider: k8s.Provider
    """Kubernetes provider of the cluster the controller is installed into."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What the controller needs first: the cluster and the system nodes it runs on."""


def discovery_tags(cluster_name: str) -> dict[str, str]:
    """Tags auto-discovery looks for (only their keys matter; the value is ours)."""
    return {f"{TAG_PREFIX}/enabled": "true", f"{TAG_PREFIX}/{cluster_name}": "owned"}


def node_template_tags(labels: dict[str, str], facts: NodePoolFacts | None) -> dict[str, str]:
    """Scale-from-zero hints: the labels, taint and GPUs a new node of the group will have."""
    tags = {f"{TAG_PREFIX}/node-template/label/{k}": v for k, v in sorted(labels.items())}
    if facts is not None:
        for t in facts.tolerations():
            tags[f"{TAG_PREFIX}/node-template/taint/{t['key']}"] = f"{t['value']}:{t['effect']}"
        tags[f"{TAG_PREFIX}/node-template/resources/{GPU_RESOURCE}"] = str(
            facts.gpus_per_node * max(1, facts.clients_per_gpu)
        )
    return tags


def autoscaler_policy(partition: str, region: str, account: str, cluster_name: str) -> str:
    """cluster-autoscaler/cloudprovider/aws/README.md (tag cluster-autoscaler-chart-9.59.0),
    "Full Cluster Autoscaler Features Policy", lines 41-68: its actions, narrowed as the README
    recommends. Read-only discovery stays on ``*`` except ``eks:DescribeNodegroup`` (this
    cluster's node groups); the capacity-changing actions apply to Auto Scaling groups (ARN
    form of the README's minimal policy, lines 90-107) tagged for this cluster ("using tag
    based conditionals")."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                    ],
                    "Resource": ["*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["eks:DescribeNodegroup"],
                    "Resource": [f"arn:{partition}:eks:{region}:{account}:nodegroup/{cluster_name}/*/*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Resource": [
                        f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/*"
                    ],
                    "Condition": {"StringEquals": {f"aws:ResourceTag/{TAG_PREFIX}/{cluster_name}": "owned"}},
                },
            ],
        },
        sort_keys=True,
    )


def chart_values(args: ClusterAutoscalerArgs, role_arn: pulumi.Input[str]) -> dict:
    cfg = args.config
    return {
        "cloudProvider": "aws",
        "awsRegion": args.irsa.region,
        "autoDiscovery": {"clusterName": args.cluster_name},
        "fullnameOverride": RELEASE,
        "rbac": {"serviceAccount": {"name": RELEASE, "annotations": {"eks.amazonaws.com/role-arn": role_arn}}},
        "nodeSelector": dict(SYSTEM_LABELS),
        "resources": {"requests": {"cpu": "100m", "memory": "600Mi"}, "limits": {"memory": "600Mi"}},
        "extraArgs": {
            "expander": cfg.expander,
            "scale-down-unneeded-time": cfg.scale_down_unneeded_time,
            "scale-down-delay-after-add": cfg.scale_down_delay_after_add,
            "max-node-provision-time": cfg.max_node_provision_time,
            "balance-similar-node-groups": True,
            # vLLM pods mount emptyDirs (/dev/shm, $HOME, /tmp): with the default (true) no
            # GPU node running one could ever be scaled down
            "skip-nodes-with-local-storage": False,
        },
    }


class ClusterAutoscaler(pulumi.ComponentResource):
    """Cluster Autoscaler (Helm), its IRSA role and policy, and the ASG tags it discovers."""

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster_name

        self.asg_tags: list[aws.autoscaling.Tag] = []
        for group in args.groups:
            tags = {**discovery_tags(cluster), **node_template_tags(group.labels, group.facts)}
            for key, value in sorted(tags.items()):
                slug = re.sub(r"[^a-z0-9]+", "-", key.removeprefix(f"{TAG_PREFIX}/").lower()).strip("-")
                self.asg_tags.append(
                    aws.autoscaling.Tag(
                        f"{name}-{group.name}-{slug}",
                        autoscaling_group_name=group.asg_name,
                        # discovery hints for the autoscaler, not instance tags
                        tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                        opts=child,
                    )
                )

        irsa = args.irsa
        role = irsa_role(
            f"{name}-role",
            irsa,
            NAMESPACE,
            RELEASE,
            f"Cluster Autoscaler of EKS cluster {cluster} (IRSA {NAMESPACE}/{RELEASE})",
            child,
        )
        policy = aws.iam.Policy(
            f"{name}-policy",
            description=f"Cluster Autoscaler policy for EKS cluster {cluster}",
            policy=autoscaler_policy(irsa.partition, irsa.region, irsa.account_id, cluster),
            tags=irsa.tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(f"{name}-policy", role=role.name, policy_arn=policy.arn, opts=child)

        chart = versions.CLUSTER_AUTOSCALER
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE,
            chart=chart.name,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
            namespace=NAMESPACE,
            values=chart_values(args, role.arn),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[attachment, *self.asg_tags, *args.depends_on],
            ),
        )
        self.register_outputs({"release": RELEASE, "roleArn": role.arn, "groups": [g.name for g in args.groups]})


__all__ = ["AutoscaledGroup", "ClusterAutoscaler", "ClusterAutoscalerArgs", "autoscaler_policy", "node_template_tags"]
