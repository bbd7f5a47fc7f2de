"""prometheus-adapter: vLLM's queue depth and KV-cache usage as pods custom metrics.

For clusters without KEDA: a plain ``autoscaling/v2`` HPA with ``type: Pods`` metrics
named ``metrics.ADAPTER_QUEUE_DEPTH`` / ``metrics.ADAPTER_KV_CACHE_USAGE`` reads them from
``custom.metrics.k8s.io``. Only these rules are served (the chart's default rules expose
every container_* series and cost a Prometheus query per relist).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.components.serving import metrics
from llm_infra.config import versions
from llm_infra.config.addons import PROMETHEUS_ADAPTER_NAMESPACE

from .base import addon_namespace, helm_release, system_affinity

NAMESPACE = PROMETHEUS_ADAPTER_NAMESPACE
REPLICAS = 2
"""The custom metrics APIService is cluster-wide: with it down, every HPA on it stops and
API discovery reports errors. Two replicas and a PDB keep it up across node drains."""


@dataclass(frozen=True)
class PrometheusAdapterArgs:
    """What prometheus-adapter needs: the Prometheus to query and the serving namespaces its rules cover."""

    prometheus_url: str
    """URL of the Prometheus the adapter queries (``MonitoringHandle.prometheus_url``)."""
    serving_namespaces: list[str]
    """Namespaces the models run in: the custom-metrics rules select their series."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    """The Prometheus it queries, when we install it."""
    cluster_ready: Sequence[pulumi.Resource] = field(default_factory=list)
    """System nodes, CSI add-on and StorageClasses (``ClusterHandle.platform_ready``)."""


def split_url(url: str) -> dict[str, Any]:
    """The chart joins ``url``, ``:port`` and ``path``: split a full URL into those."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"url": f"{parts.scheme}://{parts.hostname}", "port": port, "path": parts.path.rstrip("/")}


def pod_metric_rule(series: str, served_as: str, aggregation: str, namespaces: list[str]) -> dict[str, Any]:
    """One pods metric: the series of each serving pod, keyed by its namespace/pod labels
    (set by the scrape of our ServiceMonitor/PodMonitor)."""
    ns = "|".join(sorted(set(namespaces)))
    return {
        "seriesQuery": f'{series}{{namespace=~"{ns}",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": f"^{series}$", "as": served_as},
        "metricsQuery": f"{aggregation}({series}{{<<.LabelMatchers>>}}) by (<<.GroupBy>>)",
    }


def adapter_rules(serving_namespaces: list[str]) -> list[dict[str, Any]]:
    return [
        # requests waiting in a pod (summed over the models it serves)
        pod_metric_rule(metrics.NUM_REQUESTS_WAITING, metrics.ADAPTER_QUEUE_DEPTH, "sum", serving_namespaces),
        # KV-cache fill of a pod's fullest engine, 0..1
        pod_metric_rule(metrics.KV_CACHE_USAGE, metrics.ADAPTER_KV_CACHE_USAGE, "max", serving_namespaces),
    ]


def prometheus_adapter_values(args: PrometheusAdapterArgs) -> dict[str, Any]:
    return {
        "prometheus": split_url(args.prometheus_url),
        "rules": {"default": False, "custom": adapter_rules(args.serving_namespaces), "external": []},
        "replicas": REPLICAS,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "affinity": system_affinity(),
    }


class PrometheusAdapter(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: PrometheusAdapterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra:addons:PrometheusAdapter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = addon_namespace(f"{name}-ns", NAMESPACE, "restricted", child)  # the chart's pods are restricted-compliant
        self.values = prometheus_adapter_values(args)
        self.release = helm_release(
            f"{name}-release",
            versions.PROMETHEUS_ADAPTER,
            NAMESPACE,
            ns,
            self.values,
            child,
            depends_on=[*args.depends_on, *args.cluster_ready],
        )
        self.register_outputs({"namespace": NAMESPACE, "prometheusUrl": args.prometheus_url})
