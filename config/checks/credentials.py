"""Credential sources vs. the cluster and the Pulumi secrets that are set."""

from __future__ import annotations

import re

from ..credentials import CREDENTIAL_KEYS
from .base import CheckerBase


GOOGLE_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
"""Google Secret Manager secret ids (Secret Manager API, ``projects.secrets.create``: ``secretId``)."""


class CredentialChecks(CheckerBase):
    def check_credentials(self) -> None:
        creds = self.config.credentials
        cloud = self.config.cluster.cloud
        synced = creds.from_secret_manager()
        for key in CREDENTIAL_KEYS:
            src = creds.source(key)
            path = f"credentials.{key}"
            if src.source == "secretManager":
                if src.name is None:
                    self.add(f"{path}.name", "source secretManager needs the secret's name")
                elif cloud == "gke" and not GOOGLE_SECRET_ID.match(src.name):
                    self.add(f"{path}.name", f"'{src.name}' is not a Google secret id (letters, digits, - and _)")
                if key in self.secrets:
                    self.add(key, f"{path}.source is secretManager: remove the Pulumi secret (pulumi config rm {key})")
            else:
                for field in ("name", "version", "property"):
                    if getattr(src, field) is not None:
                        self.add(f"{path}.{field}", "only used with source secretManager")
        if cloud == "existing":
            if synced and creds.cluster_secret_store is None:
                self.add(
                    "credentials.clusterSecretStore",
                    "an existing cluster has no cloud secret manager this stack can wire: name the ClusterSecretStore to read from",
                )
            if creds.create_secrets:
                self.add(
                    "credentials.createSecrets",
                    "cloud existing: the secrets live behind the named store, create them there",
                )
        elif creds.cluster_secret_store is not None:
            manager = "AWS Secrets Manager" if cloud == "eks" else "Google Secret Manager"
            self.add(
                "credentials.clusterSecretStore",
                f"cloud {cloud}: the stack creates its own store on {manager}; a store is only named for cloud existing",
            )
        if not synced:
            if creds.create_secrets:
                self.add("credentials.createSecrets", "no credential has source secretManager")
            if creds.cluster_secret_store is not None and cloud == "existing":
                self.add("credentials.clusterSecretStore", "no credential has source secretManager")
