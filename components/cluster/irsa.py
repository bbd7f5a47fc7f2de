"""IAM Roles for Service Accounts: the trust policy every in-cluster AWS controller's role
uses (Karpenter, Cluster Autoscaler, the EBS/EFS CSI drivers)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from .base import AwsIrsa

__all__ = ["irsa_role", "irsa_trust_policy"]


def irsa_role(
    name: str,
    irsa: AwsIrsa,
    namespace: str,
    service_account: str,
    description: str,
    opts: pulumi.ResourceOptions,
    tags: dict[str, str] | None = None,
) -> aws.iam.Role:
    """The IAM role ``namespace/service_account`` assumes through the cluster's OIDC provider
    (tags default to the cluster's)."""
    return aws.iam.Role(
        name,
        description=description,
        assume_role_policy=pulumi.Output.all(irsa.oidc_arn, irsa.oidc_url).apply(
            lambda a: irsa_trust_policy(a[0], a[1], namespace, service_account)
        ),
        tags=irsa.tags if tags is None else tags,
        opts=opts,
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
