"""Karpenter on EKS: elastic, spot-first GPU capacity next to the managed node groups.

The managed node groups hold each pool's baseline (``desiredNodes``); Karpenter adds nodes
when pods of a pool stay Pending and removes them when they are empty or underutilized.
There is one ``NodePool`` + ``EC2NodeClass`` per GPU pool Karpenter can extend: a NodePool
launches only instance types with that pool's GPUs (and at least its vCPUs/memory) and puts
the pool's labels and taint on its nodes, so a pod sized for pool X never lands on a node
with other GPUs. Both capacity types are allowed; Karpenter picks spot first and falls
back to on-demand when spot capacity is short.

IAM follows Karpenter's getting-started CloudFormation template: a controller role (IRSA,
scoped by the cluster's ``kubernetes.io/cluster/<name>`` tag), a node role with an EKS
access entry, and an SQS interruption queue fed by EventBridge (spot interruption,
rebalance, instance state change, scheduled health events) so nodes drain before AWS
reclaims them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from config import NodePoolFacts, versions
from config.cluster import KarpenterConfig, NodePoolConfig

from .nodes import SYSTEM_LABELS

NAMESPACE = "kube-system"
RELEASE = "karpenter"
"""Release name = chart fullname = controller ServiceAccount name (its IRSA subject)."""

NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)
INTERRUPTION_EVENTS = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
}


@dataclass(frozen=True)
class KarpenterPool:
    """One GPU pool Karpenter extends, with the instance types it may launch for it."""

    config: NodePoolConfig
    facts: NodePoolFacts
    instance_types: list[str]


@dataclass(frozen=True)
class KarpenterArgs:
    cluster_name: str
    region: str
    partition: str
    account_id: str
    config: KarpenterConfig
    pools: list[KarpenterPool]
    oidc_provider_arn: pulumi.Input[str]
    oidc_provider_url: pulumi.Input[str]
    provider: k8s.Provider
    tags: dict[str, str] = field(default_factory=dict)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """What the controller needs first: the cluster and the system nodes it runs on."""


def _ami_alias(pool: NodePoolConfig, version: str) -> str:
    family = "bottlerocket" if pool.ami_type.startswith("BOTTLEROCKET") else "al2023"
    return f"{family}@{version}"


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
        "amiSelectorTerms": [{"alias": _ami_alias(pool.config, config.ami_version)}],
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
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": config.consolidate_after,
            # one GPU node at a time: a replaced node costs a model load (minutes)
            "budgets": [{"nodes": "1"}],
        },
        "limits": {"nvidia.com/gpu": config.gpu_limit},
    }


class Karpenter(pulumi.ComponentResource):
    """Karpenter controller (Helm), its IAM and interruption queue, and the GPU NodePools."""

    capacity: list[pulumi.Resource]
    """NodePools and EC2NodeClasses: GPU workloads wait for them."""

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:cluster:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        p, region, account, cluster = args.partition, args.region, args.account_id, args.cluster_name
        tags = {**args.tags, "karpenter.sh/discovery": cluster}

        # -- nodes: role + access entry (API authentication mode: no aws-auth ConfigMap)
        node_role = aws.iam.Role(
            f"{name}-node",
            description=f"Karpenter GPU nodes of EKS cluster {cluster}",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                }
            ),
            tags=tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.lower().replace('_', '-')}",
                role=node_role.name,
                policy_arn=f"arn:{p}:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in NODE_POLICIES
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
            policy=queue.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Id": "EC2InterruptionPolicy",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                                "Action": "sqs:SendMessage",
                                "Resource": arn,
                            }
                        ],
                    }
                )
            ),
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

        # -- controller: IRSA role with Karpenter's scoped policy
        oidc_url = pulumi.Output.from_input(args.oidc_provider_url).apply(lambda u: u.removeprefix("https://"))
        controller_role = aws.iam.Role(
            f"{name}-controller",
            description=f"Karpenter controller of EKS cluster {cluster} (IRSA {NAMESPACE}/{RELEASE})",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, oidc_url).apply(
                lambda a: irsa_trust_policy(a[0], a[1], NAMESPACE, RELEASE)
            ),
            tags=tags,
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-controller",
            description=f"Karpenter controller policy for EKS cluster {cluster}",
            policy=pulumi.Output.all(queue.arn, node_role.arn).apply(
                lambda a: controller_policy(p, region, account, cluster, queue_arn=a[0], node_role_arn=a[1])
            ),
            tags=tags,
            opts=child,
        )
        controller_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-controller", role=controller_role.name, policy_arn=policy.arn, opts=child
        )

        chart = versions.KARPENTER
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE,
            chart=f"{chart.repository}/{chart.name}",  # OCI: the chart reference carries the registry
            version=chart.version,
            namespace=NAMESPACE,
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
                parent=self,
                provider=args.provider,
                depends_on=[controller_attachment, access, *attachments, *args.depends_on],
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
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[release]),
            )
            node_pool = k8s.apiextensions.CustomResource(
                f"{name}-{pool.facts.name}-nodepool",
                api_version="karpenter.sh/v1",
                kind="NodePool",
                metadata={"name": resource, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                spec=node_pool_spec(resource, pool, args.config),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[release, node_class]),
            )
            self.capacity += [node_class, node_pool]
        self.release = release
        self.register_outputs(
            {
                "nodePools": [f"gpu-{pool.facts.name}" for pool in args.pools],
                "interruptionQueue": queue.name,
                "controllerRoleArn": controller_role.arn,
            }
        )


def irsa_trust_policy(oidc_arn: str, oidc_url: str, namespace: str, service_account: str) -> str:
    """Trust policy letting ``namespace/service_account`` (wildcards allowed) assume a role
    through the cluster's OIDC provider (IAM Roles for Service Accounts)."""
    url = oidc_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {f"{url}:aud": "sts.amazonaws.com"},
                        "StringLike": {f"{url}:sub": f"system:serviceaccount:{namespace}:{service_account}"},
                    },
                }
            ],
        },
        sort_keys=True,
    )


def controller_policy(partition: str, region: str, account: str, cluster: str, *, queue_arn: str, node_role_arn: str) -> str:
    """Karpenter's controller policy (getting-started CloudFormation), scoped to this cluster."""
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned"}
    owned_res = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    launched = [f"{ec2}:*:{kind}/*" for kind in ("fleet", "instance", "volume", "network-interface", "launch-template")]
    statements = [
        {
            "Sid": "AllowScopedEC2InstanceActions",
            "Effect": "Allow",
            "Resource": [
                f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:spot-instances-request/*",
                f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*", f"{ec2}:*:launch-template/*",
            ],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Resource": launched,
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Condition": {"StringEquals": owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Resource": launched,
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Resource": f"{ec2}:*:instance/*",
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": owned_res,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["karpenter.sh/nodeclaim", "Name"]},
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Condition": {"StringEquals": owned_res, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": [
                "ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
                "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
            ],
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {
            "Sid": "AllowSSMReadActions",
            "Effect": "Allow",
            "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
            "Action": "ssm:GetParameter",
        },
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Resource": queue_arn,
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        },
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Resource": node_role_arn,
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Sid": "AllowScopedInstanceProfileCreationActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": ["iam:CreateInstanceProfile"],
            "Condition": {
                "StringEquals": {**owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileTagActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": ["iam:TagInstanceProfile"],
            "Condition": {
                "StringEquals": {
                    **owned_res, "aws:ResourceTag/topology.kubernetes.io/region": region,
                    **owned, "aws:RequestTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodeclass": "*", "aws:RequestTag/karpenter.sh/nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            "Condition": {
                "StringEquals": {**owned_res, "aws:ResourceTag/topology.kubernetes.io/region": region},
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodeclass": "*"},
            },
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": ["iam:GetInstanceProfile", "iam:ListInstanceProfiles"],
        },
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Resource": f"arn:{partition}:eks:{region}:{account}:cluster/{cluster}",
            "Action": "eks:DescribeCluster",
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
