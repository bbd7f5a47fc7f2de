"""Karpenter's IAM, as upstream publishes it for the pinned release.

Source: aws/karpenter-provider-aws, branch release-v1.14.1,
``website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml``
(the getting-started CloudFormation; a copy is in ../shared/upstream/iam/karpenter/ and
tests/test_iam.py compares every statement below with it, Sid by Sid). The split is
upstream's: a node role with four AWS managed policies, and six controller policies
(NodeLifecycle, IAMIntegration, EKSIntegration, Interruption, ZonalShift, ResourceDiscovery)
named ``KarpenterController<Kind>Policy-<cluster>``; plus the interruption queue's policy and
the EventBridge rules that feed it. Karpenter 1.14 tags what it creates with
``kubernetes.io/cluster/<cluster>: owned``, ``eks:eks-cluster-name: <cluster>`` and
``karpenter.sh/nodepool`` (instances) or ``karpenter.k8s.aws/ec2nodeclass`` (instance
profiles); the conditions below scope every mutating action to those tags.

Bumping Karpenter: take the new release's CloudFormation into ../shared/upstream and run
tests/test_iam.py; it names every statement that differs.
"""

from __future__ import annotations

import json
from typing import Any

NODE_MANAGED_POLICIES = (
    "AmazonEKS_CNI_Policy",
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
"""``KarpenterNodeRole.ManagedPolicyArns`` (ECR pull-only, not ReadOnly, since 1.x)."""

CONTROLLER_POLICIES = (
    "NodeLifecycle",
    "IAMIntegration",
    "EKSIntegration",
    "Interruption",
    "ZonalShift",
    "ResourceDiscovery",
)
"""The controller's managed policies, in upstream's order (``<Kind>Policy`` resources)."""

INTERRUPTION_EVENTS = {
    # ScheduledChangeRule, SpotInterruptionRule, RebalanceRule, InstanceStateChangeRule,
    # CapacityReservationInterruptionRule
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}


def policy_name(kind: str, cluster: str) -> str:
    """Upstream's ``ManagedPolicyName``: ``KarpenterController<Kind>Policy-<cluster>``."""
    return f"KarpenterController{kind}Policy-{cluster}"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def node_trust_policy(url_suffix: str) -> str:
    """``KarpenterNodeRole.AssumeRolePolicyDocument``: EC2 (``ec2.${AWS::URLSuffix}``) assumes the node role."""
    return json.dumps(
        _doc({"Effect": "Allow", "Principal": {"Service": f"ec2.{url_suffix}"}, "Action": ["sts:AssumeRole"]}),
        sort_keys=True,
    )


def queue_policy(queue_arn: str) -> str:
    """``KarpenterInterruptionQueuePolicy``: EventBridge (and SQS) may send; plain HTTP is denied."""
    doc = {
        "Version": "2012-10-17",
        "Id": "EC2InterruptionPolicy",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": False}},
                "Principal": "*",
            },
        ],
    }
    return json.dumps(doc, sort_keys=True)


def controller_policies(
    partition: str, region: str, account: str, cluster: str, *, queue_arn: str, node_role_arn: str
) -> dict[str, str]:
    """The six controller policy documents by kind (see ``CONTROLLER_POLICIES``), as JSON."""
    ec2 = f"arn:{partition}:ec2:{region}"
    profiles = f"arn:{partition}:iam::{account}:instance-profile/*"
    cluster_arn = f"arn:{partition}:eks:{region}:{account}:cluster/{cluster}"
    owned_request = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster,
    }
    owned_resource = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    nodepool_resource = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    created = [
        f"{ec2}:*:{kind}/*"
        for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    region_tag = {"aws:RequestTag/topology.kubernetes.io/region": region}
    region_resource_tag = {"aws:ResourceTag/topology.kubernetes.io/region": region}
    nodeclass_request = {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}
    nodeclass_resource = {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}

    node_lifecycle = _doc(
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Effect": "Allow",
            "Resource": [
                f"{ec2}::image/*",
                f"{ec2}::snapshot/*",
                f"{ec2}:*:security-group/*",
                f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*",
                f"{ec2}:*:placement-group/*",
            ],
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Effect": "Allow",
            "Resource": f"{ec2}:*:launch-template/*",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Condition": {"StringEquals": owned_resource, "StringLike": nodepool_resource},
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Effect": "Allow",
            "Resource": created,
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Condition": {"StringEquals": owned_request, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Effect": "Allow",
            "Resource": created,
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": {
                    **owned_request,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Effect": "Allow",
            "Resource": f"{ec2}:*:instance/*",
            "Action": "ec2:CreateTags",
            "Condition": {
                "StringEquals": owned_resource,
                "StringLike": nodepool_resource,
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Effect": "Allow",
            "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Condition": {"StringEquals": owned_resource, "StringLike": nodepool_resource},
        },
    )
    iam_integration = _doc(
        {
            "Sid": "AllowPassingInstanceRole",
            "Effect": "Allow",
            "Resource": node_role_arn,
            "Action": "iam:PassRole",
            "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        },
        {
            "Sid": "AllowScopedInstanceProfileCreationActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": ["iam:CreateInstanceProfile"],
            "Condition": {"StringEquals": {**owned_request, **region_tag}, "StringLike": nodeclass_request},
        },
        {
            "Sid": "AllowScopedInstanceProfileTagActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": ["iam:TagInstanceProfile"],
            "Condition": {
                "StringEquals": {**owned_resource, **region_resource_tag, **owned_request, **region_tag},
                "StringLike": {**nodeclass_resource, **nodeclass_request},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            "Condition": {"StringEquals": {**owned_resource, **region_resource_tag}, "StringLike": nodeclass_resource},
        },
    )
    eks_integration = _doc(
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Effect": "Allow",
            "Resource": cluster_arn,
            "Action": "eks:DescribeCluster",
        },
    )
    interruption = _doc(
        {
            "Sid": "AllowInterruptionQueueActions",
            "Effect": "Allow",
            "Resource": queue_arn,
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
        },
    )
    zonal_shift = _doc(
        {
            "Sid": "AllowZonalShiftStatusReadOnly",
            "Effect": "Allow",
            "Resource": "*",
            "Action": ["arc-zonal-shift:GetManagedResource"],
            "Condition": {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
        },
    )
    resource_discovery = _doc(
        {
            "Sid": "AllowRegionalReadActions",
            "Effect": "Allow",
            "Resource": "*",
            "Action": [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
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
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Effect": "Allow",
            "Resource": "*",
            "Action": "iam:ListInstanceProfiles",
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Effect": "Allow",
            "Resource": profiles,
            "Action": "iam:GetInstanceProfile",
        },
    )
    docs = {
        "NodeLifecycle": node_lifecycle,
        "IAMIntegration": iam_integration,
        "EKSIntegration": eks_integration,
        "Interruption": interruption,
        "ZonalShift": zonal_shift,
        "ResourceDiscovery": resource_discovery,
    }
    return {kind: json.dumps(docs[kind], sort_keys=True) for kind in CONTROLLER_POLICIES}
