"""The cloud identity the External Secrets Operator reads secrets with, allowed only the named secrets.

* EKS (IRSA): a role that only ESO's controller ServiceAccount may assume, with an inline policy
  granting ``secretsmanager:GetSecretValue`` and ``secretsmanager:DescribeSecret`` on the named
  secrets' ARNs and nothing else (ESO's AWS provider reads a secret with GetSecretValue;
  DescribeSecret serves its metadata). A secret's ARN ends in ``<name>-`` plus six random
  characters (AWS Secrets Manager user guide, "Secret ARN" / IAM policy examples: ``<name>-??????``),
  so a secret this stack does not create is matched by that pattern, one created here by its ARN.
* GKE (Workload Identity): a Google service account with ``roles/secretmanager.secretAccessor``
  bound on each named secret only (never on the project), and ``roles/iam.workloadIdentityUser``
  on that account for the Kubernetes ServiceAccount ``<project>.svc.id.goog[<ns>/<ksa>]``.

With ``credentials.createSecrets`` the secrets themselves (without a value) are created here,
protected with ``cluster.protect``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from llm_infra.components.cluster.base import AwsIrsa
from llm_infra.components.cluster.irsa import irsa_role
from llm_infra.config.credentials import CredentialSource

SECRET_READ_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
GCP_SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
GCP_WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"


def aws_secret_arn_pattern(partition: str, region: str, account_id: str, name: str) -> str:
    """The ARN of an existing secret by name: Secrets Manager appends ``-`` and six characters."""
    return f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{name}-??????"


def aws_read_policy(arns: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadNamedSecrets",
                    "Effect": "Allow",
                    "Action": list(SECRET_READ_ACTIONS),
                    "Resource": sorted(arns),
                }
            ],
        },
        sort_keys=True,
    )


def gcp_account_id(cluster_name: str) -> str:
    """A service account id (6-30 characters) derived from the cluster name."""
    return f"{cluster_name[:25].rstrip('-')}-eso"


@dataclass(frozen=True)
class SecretStoreIdentityArgs:
    """What ESO's cloud identity needs: the cloud, the secrets it may read, ESO's ServiceAccount and the cluster."""

    cloud: str
    """``cluster.cloud``: ``eks`` (an IRSA role) or ``gke`` (a Workload Identity service account)."""
    secrets: dict[str, CredentialSource]
    """Config key -> source (only ``secretManager`` ones)."""
    namespace: str
    """Namespace of ESO's controller ServiceAccount (the identity's only subject)."""
    service_account: str
    """Name of ESO's controller ServiceAccount (the identity's only subject)."""
    create_secrets: bool
    """``credentials.createSecrets``: create the secrets (without a value) here."""
    protect: bool
    """``cluster.protect``: the created secrets outlive ``pulumi destroy``."""
    cluster_name: str
    """The cluster's name: in the identity's and the secrets' names, descriptions and labels."""
    aws_irsa: AwsIrsa | None = None
    """EKS only: the cluster's OIDC provider, account, region and tags (the IRSA role)."""
    gcp_project: str | None = None
    """GKE only: ``cluster.gke.project``, the project of the service account and secrets."""


class SecretStoreIdentity(pulumi.ComponentResource):
    """IAM for ESO's controller; ``service_account_annotations`` go on its ServiceAccount."""

    service_account_annotations: dict[str, pulumi.Input[str]]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: SecretStoreIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:SecretStoreIdentity", name, None, opts)
        self.ready = []
        if args.cloud == "eks":
            self._aws(name, args)
        else:
            self._gcp(name, args)
        self.register_outputs({"secrets": sorted(s.name or "" for s in args.secrets.values())})

    def _aws(self, name: str, args: SecretStoreIdentityArgs) -> None:
        irsa = args.aws_irsa
        assert irsa is not None, "EKS clusters hand out their IRSA facts"
        child = pulumi.ResourceOptions(parent=self)
        arns: list[pulumi.Input[str]] = []
        for key, src in sorted(args.secrets.items()):
            assert src.name is not None, "validated: secretManager sources are named"
            if args.create_secrets:
                secret = aws.secretsmanager.Secret(
                    f"{name}-{key.lower()}",
                    name=src.name,
                    description=f"{key} of EKS cluster {args.cluster_name} (value set by operators; read by ESO)",
                    tags=irsa.tags,
                    opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
                )
                arns.append(secret.arn)
            else:
                arns.append(aws_secret_arn_pattern(irsa.partition, irsa.region, irsa.account_id, src.name))
        role = irsa_role(
            f"{name}-role",
            irsa,
            args.namespace,
            args.service_account,
            f"External Secrets Operator of EKS cluster {args.cluster_name} (IRSA {args.namespace}/{args.service_account})",
            child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-read-secrets",
            role=role.name,
            policy=pulumi.Output.all(*arns).apply(lambda a: aws_read_policy(list(a))),
            opts=child,
        )
        self.service_account_annotations = {"eks.amazonaws.com/role-arn": role.arn}
        self.ready = [role, policy]

    def _gcp(self, name: str, args: SecretStoreIdentityArgs) -> None:
        project = args.gcp_project
        assert project is not None, "validated: GKE stacks name their project"
        child = pulumi.ResourceOptions(parent=self)
        account = gcp.serviceaccount.Account(
            f"{name}-gsa",
            account_id=gcp_account_id(args.cluster_name),
            display_name=f"External Secrets Operator of {args.cluster_name}",
            project=project,
            opts=child,
        )
        member = account.email.apply(lambda e: f"serviceAccount:{e}")
        bindings: list[pulumi.Resource] = []
        for key, src in sorted(args.secrets.items()):
            assert src.name is not None, "validated: secretManager sources are named"
            secret_id: pulumi.Input[str] = f"projects/{project}/secrets/{src.name}"
            if args.create_secrets:
                secret = gcp.secretmanager.Secret(
                    f"{name}-{key.lower()}",
                    secret_id=src.name,
                    project=project,
                    replication={"auto": {}},
                    labels={"llm-infra-cluster": args.cluster_name, "llm-infra-credential": key.lower()},
                    opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
                )
                secret_id = secret.id
            bindings.append(
                gcp.secretmanager.SecretIamMember(
                    f"{name}-{key.lower()}-accessor",
                    project=project,
                    secret_id=secret_id,
                    role=GCP_SECRET_ACCESSOR,
                    member=member,
                    opts=child,
                )
            )
        bindings.append(
            gcp.serviceaccount.IAMMember(
                f"{name}-workload-identity",
                service_account_id=account.name,
                role=GCP_WORKLOAD_IDENTITY_USER,
                member=f"serviceAccount:{project}.svc.id.goog[{args.namespace}/{args.service_account}]",
                opts=child,
            )
        )
        self.service_account_annotations = {"iam.gke.io/gcp-service-account": account.email}
        self.ready = [account, *bindings]
