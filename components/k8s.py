"""Small Kubernetes helpers shared by every component: labels, security contexts."""

from __future__ import annotations

from typing import Any

MANAGED_BY = {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "llm-infra"}


def labels(name: str, component: str, **extra: str) -> dict[str, str]:
    """Recommended labels; ``app.kubernetes.io/name`` + ``instance`` select the pods."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": name,
        **MANAGED_BY,
        **extra,
    }


def selector(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": name}


def metadata(name: str, namespace: str | None, labels_: dict[str, str], **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels_, **extra}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


DO_NOT_DISRUPT = {"karpenter.sh/do-not-disrupt": "true"}
"""Pod annotation: Karpenter never voluntarily disrupts (consolidates, drifts) the node of a
pod carrying it (kubernetes-sigs/karpenter ``pkg/apis/v1/labels.go``, DoNotDisruptAnnotationKey:
"when set to "true" on a Node or Pod, prevents Karpenter from voluntarily disrupting it").
Model servers carry it: a move costs minutes of weight loading. Forced disruption (spot
interruption, ``expireAfter``) still drains them. Inert where Karpenter does not run."""

IMAGE_PULL_POLICY = "IfNotPresent"
"""Every image is pinned to a release tag (config/versions.py): a node pulls it once. ``Always``
would add a registry round trip to every GPU pod start (and fail starts while the registry is
unreachable) without changing what runs."""


def service_account(name: str, namespace: str, labels_: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``k8s.core.v1.ServiceAccount`` for a workload's own account (never
    ``default``) that mounts no API token: model servers do not call the Kubernetes API."""
    return {"metadata": metadata(name, namespace, labels_), "automount_service_account_token": False}


def container_security_context(read_only_root: bool = False) -> dict[str, Any]:
    """Baseline hardening for every container we declare (GPU pods included)."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(
    run_as_non_root: bool = False, uid: int | None = None, gid: int | None = None
) -> dict[str, Any]:
    """RuntimeDefault seccomp; with ``uid``, a fixed user and group that also own (fsGroup)
    the pod's volumes. ``OnRootMismatch`` skips the recursive ownership walk when the volume
    root already matches: a model cache holds 100+ GiB that would otherwise be re-chowned on
    every start."""
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_non_root:
        ctx["runAsNonRoot"] = True
    if uid is not None:
        group = uid if gid is None else gid
        ctx.update({"runAsUser": uid, "runAsGroup": group, "fsGroup": group, "fsGroupChangePolicy": "OnRootMismatch"})
    return ctx
