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


def container_security_context(read_only_root: bool = False) -> dict[str, Any]:
    """Baseline hardening for every container we declare (GPU pods included)."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(run_as_non_root: bool = False, uid: int | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_non_root:
        ctx["runAsNonRoot"] = True
    if uid is not None:
        ctx.update({"runAsUser": uid, "runAsGroup": uid, "fsGroup": uid})
    return ctx
