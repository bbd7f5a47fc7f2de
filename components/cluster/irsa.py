"""IAM Roles for Service Accounts: the trust policy every in-cluster AWS controller's role
uses (Karpenter, Cluster Autoscaler, the EBS/EFS CSI drivers)."""

from __future__ import annotations

import json

__all__ = ["irsa_trust_policy"]


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
