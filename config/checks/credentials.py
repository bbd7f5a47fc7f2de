"""Credential sources vs. the cluster and the Pulumi secrets that are set."""

from __future__ import annotations

import re

from ..credentials import CREDENTIAL_KEYS
from .base import Issues, Stack

GOOGLE_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
"""Google Secret Manager secret ids (Secret Manager API, ``projects.secrets.create``: ``secretId``)."""


def check_credentials(stack: Stack) -> Issues:
    """Credential sources, then the secret store they are synced through."""
    out = check_sources(stack)
    out += check_secret_store(stack, bool(stack.config.credentials.from_secret_manager()))
    return out


def check_sources(stack: Stack) -> Issues:
    """Each credential's source: a named secret in the manager, or a Pulumi secret, not both."""
    out = Issues()
    creds = stack.config.credentials
    cloud = stack.config.cluster.cloud
    for key in CREDENTIAL_KEYS:
        src = creds.source(key)
        path = f"credentials.{key}"
        if src.source == "secretManager":
            if src.name is None:
                out.add(f"{path}.name", "source secretManager needs the secret's name")
            elif cloud == "gke" and not GOOGLE_SECRET_ID.match(src.name):
                out.add(f"{path}.name", f"'{src.name}' is not a Google secret id (letters, digits, - and _)")
            if key in stack.secrets:
                out.add(key, f"{path}.source is secretManager: remove the Pulumi secret (pulumi config rm {key})")
        else:
            for field in ("name", "version", "property"):
                if getattr(src, field) is not None:
                    out.add(f"{path}.{field}", "only used with source secretManager")
    return out


def check_secret_store(stack: Stack, synced: bool) -> Issues:
    """The ClusterSecretStore is named only on an existing cluster, and only when something is synced."""
    out = Issues()
    creds = stack.config.credentials
    cloud = stack.config.cluster.cloud
    if cloud == "existing":
        if synced and creds.cluster_secret_store is None:
            out.add(
                "credentials.clusterSecretStore",
                "an existing cluster has no cloud secret manager this stack can wire: name the ClusterSecretStore to read from",
            )
        if creds.create_secrets:
            out.add(
                "credentials.createSecrets",
                "cloud existing: the secrets live behind the named store, create them there",
            )
    elif creds.cluster_secret_store is not None:
        manager = "AWS Secrets Manager" if cloud == "eks" else "Google Secret Manager"
        out.add(
            "credentials.clusterSecretStore",
            f"cloud {cloud}: the stack creates its own store on {manager}; a store is only named for cloud existing",
        )
    if not synced:
        if creds.create_secrets:
            out.add("credentials.createSecrets", "no credential has source secretManager")
        if creds.cluster_secret_store is not None and cloud == "existing":
            out.add("credentials.clusterSecretStore", "no credential has source secretManager")
    return out
