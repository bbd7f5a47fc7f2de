"""Where each credential comes from: a Pulumi secret (default) or the cloud's secret manager.

With ``secretManager`` the value never enters Pulumi: the External Secrets Operator (ESO)
reads it from AWS Secrets Manager (EKS), Google Secret Manager (GKE) or an existing
ClusterSecretStore (cloud ``existing``) and writes the same Kubernetes Secret the workloads
already read, refreshing it every ``refreshInterval``. Rotation is then a change in the
secret manager, not a ``pulumi up``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ConfigModel

CREDENTIAL_KEYS = ("hfToken", "grafanaAdminPassword")
"""Credentials that may come from a secret manager (config keys, same as ``SECRET_KEYS``)."""


class CredentialSource(ConfigModel):
    source: Literal["pulumi", "secretManager"] = "pulumi"
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9/_+=.@-]{1,255}$",
        description="the secret's name in the secret manager (AWS secret name, Google secret id, or the key in the store)",
    )
    version: str | None = Field(
        default=None,
        description="secret version (AWS version stage or uuid/<id>, Google version number); default: the latest",
    )
    property: str | None = Field(default=None, description="key inside a JSON secret value; default: the whole value")


DURATION = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
"""Go ``time.ParseDuration`` syntax, what ESO's ``refreshInterval`` takes (ExternalSecret CRD v2.9.0)."""


class CredentialsConfig(ConfigModel):
    hf_token: CredentialSource = CredentialSource()
    grafana_admin_password: CredentialSource = CredentialSource()
    refresh_interval: str = Field(default="1h", pattern=DURATION, description="how often ESO re-reads each secret")
    cluster_secret_store: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        description="an existing ClusterSecretStore (cloud existing only; EKS/GKE stacks create their own)",
    )
    create_secrets: bool = Field(
        default=False, description="create the (empty) secrets in the secret manager; operators only add the value"
    )

    def source(self, key: str) -> CredentialSource:
        return {"hfToken": self.hf_token, "grafanaAdminPassword": self.grafana_admin_password}[key]

    def from_secret_manager(self) -> dict[str, CredentialSource]:
        """Config key -> source, for the credentials ESO syncs."""
        return {k: s for k in CREDENTIAL_KEYS if (s := self.source(k)).source == "secretManager"}
