"""Pieces every add-on shares: its namespace, its Helm release, where its pods may run.

Each add-on is one Helm release in its own namespace. The release always depends on that
namespace (Helm does not create it: ``create_namespace`` would leave it unmanaged and
without Pod Security labels) and on whatever installs the CRDs its chart's objects use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components.k8s import MANAGED_BY
from llm_infra.config import NodePoolFacts
from llm_infra.config.cluster import POOL_LABEL, SYSTEM_POOL_NAME
from llm_infra.config.versions import Chart

PodSecurity = Literal["privileged", "baseline", "restricted"]

GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
"""Set on GPU nodes by our node pools and by the GPU Operator on any GPU node it finds."""

RELEASE_HISTORY = 10
"""Helm keeps one Secret per revision; ten is enough to roll back and bounds the clutter."""


def addon_namespace(
    name: str, namespace: str, pod_security: PodSecurity, opts: pulumi.ResourceOptions
) -> k8s.core.v1.Namespace:
    """The add-on's namespace, with the Pod Security level its pods need (warn at restricted)."""
    return k8s.core.v1.Namespace(
        name,
        metadata={
            "name": namespace,
            "labels": {
                **MANAGED_BY,
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/warn": "restricted" if pod_security != "privileged" else "privileged",
            },
        },
        opts=opts,
    )


def chart_source(chart: Chart) -> dict[str, Any]:
    """``chart``/``repository_opts`` of a Release: an OCI chart is referenced as
    ``oci://<registry>/<path>/<chart>`` (Helm cannot use an OCI registry as a repository URL)."""
    if chart.repository.startswith("oci://"):
        return {"chart": f"{chart.repository}/{chart.name}"}
    return {"chart": chart.name, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository)}


def helm_release(
    name: str,
    chart: Chart,
    namespace: str,
    namespace_resource: k8s.core.v1.Namespace,
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    *,
    depends_on: Sequence[pulumi.Resource] = (),
    timeout: int = 300,
    skip_crds: bool = False,
) -> k8s.helm.v3.Release:
    """A ``helm.v3.Release`` of a pinned chart (Helm's own lifecycle, hooks included).

    The Helm release name is the chart name, so object names that charts derive from it
    (and the ``release`` label kube-prometheus-stack selects on) are deterministic.
    """
    return k8s.helm.v3.Release(
        name,
        name=chart.name,
        **chart_source(chart),
        version=chart.version,
        namespace=namespace,
        values=values,
        max_history=RELEASE_HISTORY,
        timeout=timeout,
        cleanup_on_fail=True,
        skip_crds=skip_crds or None,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[namespace_resource, *depends_on])),
    )


def system_affinity() -> dict[str, Any]:
    """Prefer the system pool, and in any case nodes without GPUs.

    Preferred, not required: GPU pools are tainted anyway, existing clusters have no
    system-pool label, and a cluster without a CPU pool (a lab) must still schedule them.
    """
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "NotIn", "values": ["true"]}]
                    },
                },
                {
                    "weight": 50,
                    "preference": {
                        "matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [SYSTEM_POOL_NAME]}]
                    },
                },
            ]
        }
    }


def gpu_pool_tolerations(pools: Iterable[NodePoolFacts]) -> list[dict[str, Any]]:
    """One toleration per distinct GPU-pool taint, so node daemons run on every GPU pool."""
    out: list[dict[str, Any]] = []
    for pool in pools:
        for toleration in pool.tolerations():
            if toleration not in out:
                out.append(toleration)
    return out
