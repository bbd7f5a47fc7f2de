"""External Secrets Operator: credentials synced from the cloud's secret manager.

Installed when any ``credentials.<key>.source`` is ``secretManager``. The chart installs and
upgrades its CRDs from its templates (``installCRDs: true``, chart 2.9.0 values.yaml), so the
release owns the ``external-secrets.io`` CRDs: the ClusterSecretStore and every ExternalSecret
depend on it (``AddonsHandle.crd_owners``), and the release waits for the operator and its
conversion/validation webhook to be ready.

One ClusterSecretStore per stack (provider fields from the ClusterSecretStore CRD v1 of
external-secrets v2.9.0, ``spec.provider.aws`` / ``spec.provider.gcpsm``):

* EKS: ``aws`` / ``SecretsManager`` in the cluster's region, authenticated as ESO's controller
  ServiceAccount (``auth.jwt.serviceAccountRef``), whose IRSA role reads only the named secrets.
* GKE: ``gcpsm`` in the stack's project, ``auth.workloadIdentity`` with the cluster's name,
  location and project, and the controller ServiceAccount bound to a Google service account
  that may access only the named secrets.
* cloud existing: no store is created; ExternalSecrets reference ``credentials.clusterSecretStore``.

Each ExternalSecret writes the Kubernetes Secret the workloads already mount, under the same
name and keys, so nothing downstream knows where the value came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components.cluster.base import ClusterHandle
from llm_infra.components.k8s import MANAGED_BY
from llm_infra.config import versions
from llm_infra.config.cluster import ClusterConfig
from llm_infra.config.credentials import CredentialsConfig, CredentialSource

from .base import addon_namespace, helm_release, system_affinity

NAMESPACE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
"""The controller's ServiceAccount (``serviceAccount.name``): IRSA / Workload Identity trust it."""
API_VERSION = "external-secrets.io/v1"
GROUP = "external-secrets.io"
STORE_NAMES = {"eks": "aws-secrets-manager", "gke": "google-secret-manager"}


def external_secrets_values(annotations: dict[str, Any]) -> dict[str, Any]:
    """Chart values (keys of chart 2.9.0 values.yaml): controller, webhook and cert controller
    on the system pool; the controller's ServiceAccount named and annotated for the cloud identity."""
    return {
        "installCRDs": True,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT, "annotations": annotations},
        "affinity": system_affinity(),
        "webhook": {"affinity": system_affinity()},
        "certController": {"affinity": system_affinity()},
    }


def store_spec(c: ClusterConfig) -> dict[str, Any]:
    """The ClusterSecretStore's ``spec`` for an EKS or GKE stack."""
    sa_ref = {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    if c.cloud == "eks":
        return {
            "provider": {
                "aws": {"service": "SecretsManager", "region": c.region, "auth": {"jwt": {"serviceAccountRef": sa_ref}}}
            }
        }
    assert c.gke is not None, "validated: GKE stacks have a gke section"
    return {
        "provider": {
            "gcpsm": {
                "projectID": c.gke.project,
                "auth": {
                    "workloadIdentity": {
                        "clusterLocation": c.region,
                        "clusterName": c.existing_cluster_name or c.name,
                        "clusterProjectID": c.gke.project,
                        "serviceAccountRef": sa_ref,
                    }
                },
            }
        }
    }


@dataclass
class SecretSync:
    """What components need to declare an ExternalSecret: the store and what to wait for."""

    store_name: str
    refresh_interval: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)

    def external_secret(
        self,
        name: str,
        namespace: str,
        secret_name: str,
        source: CredentialSource,
        key: str,
        opts: pulumi.ResourceOptions,
        template: dict[str, str] | None = None,
    ) -> k8s.apiextensions.CustomResource:
        """An ExternalSecret writing ``secret_name`` in ``namespace``: the remote value under
        ``key``, or, with ``template``, the templated keys (``{{ .<key> }}`` is the value)."""
        remote: dict[str, str] = {"key": str(source.name)}
        if source.version is not None:
            remote["version"] = source.version
        if source.property is not None:
            remote["property"] = source.property
        target: dict[str, Any] = {"name": secret_name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
        secret_template: dict[str, Any] = {"type": "Opaque", "metadata": {"labels": dict(MANAGED_BY)}}
        if template is not None:
            secret_template.update({"engineVersion": "v2", "data": dict(template)})
        target["template"] = secret_template
        return k8s.apiextensions.CustomResource(
            name,
            api_version=API_VERSION,
            kind="ExternalSecret",
            metadata={"name": secret_name, "namespace": namespace, "labels": MANAGED_BY},
            spec={
                "refreshInterval": self.refresh_interval,
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": self.store_name},
                "target": target,
                "data": [{"secretKey": key, "remoteRef": remote}],
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=self.depends_on)),
        )


@dataclass(frozen=True)
class ExternalSecretsArgs:
    """What the External Secrets Operator needs: the cluster and credentials config, and the cluster's IRSA facts."""

    cluster_config: ClusterConfig
    """The cluster's config: cloud, region, names and project the secret store and identity use."""
    credentials: CredentialsConfig
    """Which credentials come from the secret manager, and how they are synced."""
    cluster: ClusterHandle
    """The cluster component's handle: its IRSA facts (``aws_irsa``) for ESO's role on EKS."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


class ExternalSecrets(pulumi.ComponentResource):
    """ESO (Helm), its cloud identity and the stack's ClusterSecretStore; ``sync`` for ExternalSecrets."""

    release: k8s.helm.v3.Release
    sync: SecretSync

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:ExternalSecrets", name, None, opts)
        cluster_cfg = args.cluster_config
        creds = args.credentials
        cloud = cluster_cfg.cloud
        child = pulumi.ResourceOptions(parent=self)
        annotations: dict[str, Any] = {}
        identity_ready: list[pulumi.Resource] = []
        if cloud in STORE_NAMES:
            # imported here: the cloud SDKs load only for their cloud (components/cluster/__init__.py)
            from .secret_store_identity import SecretStoreIdentity, SecretStoreIdentityArgs

            identity = SecretStoreIdentity(
                f"{name}-identity",
                SecretStoreIdentityArgs(
                    cloud=cloud,
                    secrets=creds.from_secret_manager(),
                    namespace=NAMESPACE,
                    service_account=SERVICE_ACCOUNT,
                    create_secrets=creds.create_secrets,
                    protect=cluster_cfg.protect,
                    cluster_name=cluster_cfg.existing_cluster_name or cluster_cfg.name,
                    aws_irsa=args.cluster.aws_irsa,
                    gcp_project=cluster_cfg.gke.project if cluster_cfg.gke is not None else None,
                ),
                opts=child,
            )
            annotations = dict(identity.service_account_annotations)
            identity_ready = list(identity.ready)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "restricted", child)
        self.release = helm_release(
            f"{name}-release",
            versions.EXTERNAL_SECRETS,
            NAMESPACE,
            ns,
            external_secrets_values(annotations),
            child,
            depends_on=[*identity_ready, *args.cluster_ready],
        )
        deps: list[pulumi.Resource] = [self.release]
        if cloud in STORE_NAMES:
            store_name = STORE_NAMES[cloud]
            deps.append(
                k8s.apiextensions.CustomResource(
                    f"{name}-store",
                    api_version=API_VERSION,
                    kind="ClusterSecretStore",
                    metadata={"name": store_name, "labels": MANAGED_BY},
                    spec=store_spec(cluster_cfg),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *identity_ready]),
                )
            )
        else:
            assert creds.cluster_secret_store is not None, "validated: cloud existing names its store"
            store_name = creds.cluster_secret_store
        self.sync = SecretSync(store_name=store_name, refresh_interval=creds.refresh_interval, depends_on=deps)
        self.register_outputs({"namespace": NAMESPACE, "store": store_name})
