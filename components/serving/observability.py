"""Scraping and alerting for served models: ServiceMonitor, PrometheusRule, shared PromQL.

Generic over the serving kind: a ``ModelScope`` says which series belong to one served
model (namespace, vLLM ``model_name``, the Service scraped, the pods that hold its GPUs,
the HPA that scales it), and every query and alert is built from it. The vLLM Deployment
uses it directly; a Ray Serve LLM service can build its own scope (``metric_prefix`` for
re-exported engine metrics, no HPA) and reuse the same rules and dashboards.

Alert thresholds and ``for`` durations come from ``AlertThresholds`` (config ``alerts``);
each alert links its runbook section (``docs/runbooks/vllm.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llm_infra.config.stack import AlertThresholds

from . import metrics

MONITORING_API = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "15s"
"""Matches KEDA's default polling interval: a trigger never reads a value older than one poll."""
RUNBOOK_FILE = "vllm.md"


def label_selector(**labels: str) -> str:
    """``{a="x", b="y"}`` (values escaped for PromQL double-quoted strings)."""
    parts = []
    for key, value in labels.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        op = "=~" if key.endswith("__re") else "="
        parts.append(f'{key.removesuffix("__re")}{op}"{escaped}"')
    return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class ModelScope:
    """The series of one served model, as every query, alert and dashboard selects them."""

    namespace: str
    model_name: str
    """vLLM's ``model_name`` label: the served model name."""
    service: str
    """Service the ServiceMonitor scrapes (the ``service`` label of http_requests_total)."""
    pod_regex: str
    """Names of the pods that hold this model's GPUs (DCGM series carry the GPU's pod)."""
    workload_kind: str | None = None
    """Deployment | StatefulSet (kube-state-metrics replica series); None: not a k8s workload."""
    workload_name: str | None = None
    hpa_name: str | None = None
    """The HPA that scales the workload (KEDA's ``keda-hpa-<name>`` or ours); None: fixed size."""
    metric_prefix: str = ""
    """Prepended to vLLM metric names (for engines whose metrics are re-exported under a prefix)."""
    extra_labels: dict[str, str] = field(default_factory=dict)

    def metric(self, name: str) -> str:
        return f"{self.metric_prefix}{name}" if name.startswith("vllm:") else name

    def vllm(self, **extra: str) -> str:
        """Selector of this model's vLLM engine series."""
        return label_selector(namespace=self.namespace, model_name=self.model_name, **self.extra_labels, **extra)

    def http(self, **extra: str) -> str:
        return label_selector(namespace=self.namespace, service=self.service, **extra)

    def gpu(self) -> str:
        return label_selector(namespace=self.namespace, pod__re=self.pod_regex)

    def hpa(self) -> str:
        assert self.hpa_name is not None
        return label_selector(namespace=self.namespace, horizontalpodautoscaler=self.hpa_name)


# -- PromQL shared by alerts, dashboards and autoscaling triggers ------------------------------
def quantile(q: float, histogram: str, selector: str, window: str, by: str = "le") -> str:
    return f"histogram_quantile({q:g}, sum by ({by}) (rate({histogram}_bucket{selector}[{window}])))"


def queue_depth(scope: ModelScope) -> str:
    return f"sum({scope.metric(metrics.NUM_REQUESTS_WAITING)}{scope.vllm()})"


def kv_cache_usage_sum(scope: ModelScope) -> str:
    return f"sum({scope.metric(metrics.KV_CACHE_USAGE)}{scope.vllm()})"


def ttft_quantile(scope: ModelScope, q: float, window: str, by: str = "le") -> str:
    return quantile(q, scope.metric(metrics.TTFT), scope.vllm(), window, by)


def error_ratio(scope: ModelScope, window: str) -> str:
    return (
        f"sum by (namespace) (rate({metrics.HTTP_REQUESTS}{scope.http(status=metrics.HTTP_5XX)}[{window}]))"
        f" / sum by (namespace) (rate({metrics.HTTP_REQUESTS}{scope.http()}[{window}]))"
    )


# -- ServiceMonitor -----------------------------------------------------------------------------
def service_monitor(
    name: str,
    namespace: str,
    *,
    labels: dict[str, str],
    selector: dict[str, str],
    port: str = "http",
    path: str = "/metrics",
    interval: str = SCRAPE_INTERVAL,
) -> dict[str, Any]:
    """Scrape ``path`` on the named ``port`` of the Services matching ``selector``.

    ``labels`` must include the monitoring handle's ``monitor_labels`` so Prometheus selects
    this monitor. Target labels (namespace, service, pod) come from service discovery: the
    engine's own series carry no pod label that could clash, so ``honorLabels`` stays off.
    """
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [{"port": port, "path": path, "scheme": "http", "interval": interval, "scrapeTimeout": "10s"}],
        },
    }


# -- Alerts ----------------------------------------------------------------------------------------
ALERT_KV_CACHE = "VllmKvCacheNearlyFull"
ALERT_QUEUE = "VllmRequestQueueBacklog"
ALERT_TTFT = "VllmTimeToFirstTokenHigh"
ALERT_GPU_TEMP = "VllmGpuTemperatureHigh"
ALERT_ERRORS = "VllmHighErrorRate"
ALERT_AT_MAX = "VllmReplicasAtMaximum"


def runbook_url(alerts: AlertThresholds, alert: str) -> str:
    return f"{alerts.runbook_base_url}/{RUNBOOK_FILE}#{alert.lower()}"


def alert_rules(scope: ModelScope, alerts: AlertThresholds, *, gpu_metrics: bool) -> list[dict[str, Any]]:
    """Alerting rules for one served model, thresholds and durations from ``alerts``.

    Every rule carries ``severity`` and the model (``model_name``, ``llm_service``) as labels
    and ``summary``/``description``/``runbook_url`` annotations. GPU temperature needs the
    DCGM exporter's series in this Prometheus (``gpu_metrics``); replicas-at-maximum needs an
    HPA (``scope.hpa_name``).
    """
    model = scope.model_name

    def rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "model_name": model, "llm_service": scope.service},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": runbook_url(alerts, alert),
            },
        }

    kv, queue = scope.metric(metrics.KV_CACHE_USAGE), scope.metric(metrics.NUM_REQUESTS_WAITING)
    rules = [
        rule(
            ALERT_KV_CACHE,
            f"max by (namespace, pod) ({kv}{scope.vllm()}) > {alerts.kv_cache_usage:g}",
            alerts.kv_cache_for,
            "warning",
            f"{model}: KV cache of {{{{ $labels.pod }}}} above {alerts.kv_cache_usage:.0%}",
            f"The KV cache of {model} in pod {{{{ $labels.pod }}}} is {{{{ $value | humanizePercentage }}}} full "
            f"for {alerts.kv_cache_for}: new requests wait and running ones get preempted (recomputed).",
        ),
        rule(
            ALERT_QUEUE,
            f"max by (namespace, pod) ({queue}{scope.vllm()}) > {alerts.queue_depth:g}",
            alerts.queue_depth_for,
            "warning",
            f"{model}: requests queue in {{{{ $labels.pod }}}}",
            f'{{{{ $value | printf "%.0f" }}}} requests have waited in {model} pod {{{{ $labels.pod }}}} '
            f"for {alerts.queue_depth_for} (threshold {alerts.queue_depth:g}): the replicas cannot keep up.",
        ),
        rule(
            ALERT_TTFT,
            f"{ttft_quantile(scope, 0.99, '5m', by='namespace, le')} > {alerts.ttft_p99_seconds:g}",
            alerts.ttft_for,
            "critical",
            f"{model}: p99 time to first token above {alerts.ttft_p99_seconds:g}s",
            f'p99 time to first token of {model} is {{{{ $value | printf "%.2f" }}}}s '
            f"(threshold {alerts.ttft_p99_seconds:g}s) for {alerts.ttft_for}.",
        ),
        rule(
            ALERT_ERRORS,
            f"{error_ratio(scope, '5m')} > {alerts.error_ratio:g}",
            alerts.error_ratio_for,
            "critical",
            f"{model}: {{{{ $value | humanizePercentage }}}} of requests fail",
            f"{{{{ $value | humanizePercentage }}}} of the API requests to {model} answered 5xx for "
            f"{alerts.error_ratio_for} (threshold {alerts.error_ratio:.1%}).",
        ),
    ]
    if gpu_metrics:
        rules.append(
            rule(
                ALERT_GPU_TEMP,
                f"max by (namespace, pod, Hostname, gpu) ({metrics.DCGM_GPU_TEMP}{scope.gpu()}) "
                f"> {alerts.gpu_temperature_celsius:g}",
                alerts.gpu_temperature_for,
                "warning",
                f"{model}: GPU {{{{ $labels.gpu }}}} on {{{{ $labels.Hostname }}}} is hot",
                f"GPU {{{{ $labels.gpu }}}} of {model} pod {{{{ $labels.pod }}}} on {{{{ $labels.Hostname }}}} is at "
                f'{{{{ $value | printf "%.0f" }}}}°C for {alerts.gpu_temperature_for} '
                f"(threshold {alerts.gpu_temperature_celsius:g}°C): it throttles its clocks.",
            )
        )
    if scope.hpa_name:
        by = "(namespace, horizontalpodautoscaler)"
        rules.append(
            rule(
                ALERT_AT_MAX,
                f"max by {by} ({metrics.KSM_HPA_CURRENT_REPLICAS}{scope.hpa()}) "
                f">= on {by} max by {by} ({metrics.KSM_HPA_MAX_REPLICAS}{scope.hpa()})",
                alerts.max_replicas_for,
                "warning",
                f"{model}: autoscaling is at its maximum",
                f'{model} has run {{{{ $value | printf "%.0f" }}}} replicas, the maximum of HPA '
                f"{{{{ $labels.horizontalpodautoscaler }}}}, for {alerts.max_replicas_for}: "
                f"demand above it queues (raise autoscaling.maxReplicas and the pool's maxNodes).",
            )
        )
    return rules


def prometheus_rule(
    name: str, namespace: str, *, labels: dict[str, str], groups: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"groups": groups},
    }


def custom_resource(
    logical_name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """Declare a manifest built by the functions above (plain dicts, camelCase as the API)."""
    extra = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    return k8s.apiextensions.CustomResource(
        logical_name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        opts=opts,
        **extra,
    )
