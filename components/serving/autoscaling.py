"""Replica autoscaling on inference signals (queue depth, KV cache, TTFT), never CPU.

Two implementations of the same policy, chosen by ``AddonsHandle.autoscaler``:

* ``keda``: a ScaledObject with Prometheus triggers. KEDA creates and drives the HPA
  ``keda-hpa-<scaledobject>``; it can also scale to zero (``activationThreshold``).
* ``hpa``: a plain ``autoscaling/v2`` HPA on pods metrics that prometheus-adapter serves
  (``metrics.ADAPTER_*``): queue depth and KV-cache usage only.

Both use the same HPA behavior: scale up at once (stabilization 0 s, at most
``scaleUpPods`` pods per ``scaleUpPeriodSeconds``), scale down one pod at a time after
``scaleDownStabilizationSeconds`` (a new replica takes minutes to warm up, so flapping is
expensive). Targets are per replica: the HPA divides the model's total (``AverageValue``).
When Prometheus is unreachable KEDA holds the replicas ``autoscaling.fallback`` names
(default: the current count, at least ``minReplicas``); a plain HPA without metrics keeps
its current count on its own.
"""

from __future__ import annotations

import math
from typing import Any

from llm_infra.config.serving import AutoscalingConfig

from . import metrics
from .observability import ModelScope, kv_cache_usage_sum, label_selector, queue_depth, ttft_quantile

KEDA_API = "keda.sh/v1alpha1"
HPA_API = "autoscaling/v2"
TTFT_WINDOW = "2m"
"""Rate window of the TTFT trigger: long enough for a stable p95, short enough to react."""
WAKE_UP_THRESHOLD = 1_000_000
"""Per-replica target of the wake-up trigger: so large it never adds replicas itself; it only
activates a scaled-to-zero model (activationThreshold 0)."""


def number(value: float) -> str:
    """KEDA metadata value: ``5`` -> "5", ``0.85`` -> "0.85"."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def quantity(value: float) -> str:
    """Kubernetes quantity: ``5`` -> "5", ``0.85`` -> "850m"."""
    if float(value).is_integer():
        return str(int(value))
    return f"{math.ceil(value * 1000)}m"


def keda_hpa_name(scaled_object: str) -> str:
    """Name of the HPA that KEDA creates for a ScaledObject (KEDA's default)."""
    return f"keda-hpa-{scaled_object}"


def behavior(a: AutoscalingConfig) -> dict[str, Any]:
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": a.scale_up_pods, "periodSeconds": a.scale_up_period_seconds}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": a.scale_down_stabilization_seconds,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
        },
    }


def fallback(a: AutoscalingConfig) -> dict[str, Any]:
    """ScaledObject ``spec.fallback``: what KEDA reports once Prometheus failed
    ``failureThreshold`` polls in a row (keda.sh scaledobjects.yaml v2.20.2: failureThreshold
    and replicas required, behavior defaults to static).

    KEDA v2.20.2 accepts it with our triggers: its webhook (CheckFallbackValid) needs one
    trigger that is not cpu/memory, and since v2.18 (#6655) a ``Value`` trigger (our p95 TTFT)
    falls back too: KEDA divides the replicas by the ready pods (pkg/fallback doFallback).
    The queue-depth trigger is always ``AverageValue``, which KEDA v2.17 required of at least one.
    """
    f = a.fallback
    return {
        "failureThreshold": f.failure_threshold,
        "replicas": a.min_replicas if f.replicas is None else f.replicas,
        "behavior": f.behavior,
    }


def scale_target(kind: str, name: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": kind, "name": name}


def keda_triggers(
    scope: ModelScope, a: AutoscalingConfig, prometheus_url: str, *, wake_up_query: str | None = None
) -> list[dict[str, Any]]:
    """Prometheus triggers: queue depth (always), KV cache and p95 TTFT when targets are set.

    Queue depth and KV cache are totals over the model's replicas with ``AverageValue``
    targets (the HPA divides by the replica count: a per-replica target). p95 TTFT is a
    latency, not a sum: ``Value`` (desired = current x observed / target).
    """

    def trigger(name: str, query: str, threshold: float, metric_type: str, **extra: str) -> dict[str, Any]:
        return {
            "type": "prometheus",
            "name": name,
            "metricType": metric_type,
            "metadata": {"serverAddress": prometheus_url, "query": query, "threshold": number(threshold), **extra},
        }

    activation = {"activationThreshold": number(a.activation_queue_depth)} if a.scale_to_zero else {}
    triggers = [trigger("queue-depth", queue_depth(scope), a.queue_depth_target, "AverageValue", **activation)]
    if a.kv_cache_usage_target is not None:
        triggers.append(trigger("kv-cache-usage", kv_cache_usage_sum(scope), a.kv_cache_usage_target, "AverageValue"))
    if a.ttft_p95_target_seconds is not None:
        # without traffic histogram_quantile is NaN; "(x >= 0) or vector(0)" turns it into 0
        query = f"({ttft_quantile(scope, 0.95, TTFT_WINDOW)} >= 0) or vector(0)"
        triggers.append(trigger("ttft-p95", query, a.ttft_p95_target_seconds, "Value"))
    if a.scale_to_zero and wake_up_query is not None:
        triggers.append(trigger("wake-up", wake_up_query, WAKE_UP_THRESHOLD, "AverageValue", activationThreshold="0"))
    return triggers


def ingress_wake_up_query(ingress_name: str, host: str) -> str:
    """Requests reaching the ingress controller for this model: present while no pod runs
    (the controller answers 503), unlike every metric the engine exports."""
    sel = label_selector(ingress=ingress_name, host=host)
    return f"sum(rate({metrics.NGINX_REQUESTS}{sel}[2m]))"


def gateway_wake_up_query(namespace: str, epp_service: str) -> str:
    """Requests the model's endpoint picker sees, scheduled or failed: present while no pod runs
    (every request then fails to schedule and is counted as an error), unlike every metric the
    engine exports. Both counters of the pool's EPP (its ServiceMonitor's ``service`` label)."""
    name = f"{metrics.EPP_REQUESTS}|{metrics.EPP_REQUEST_ERRORS}"
    sel = label_selector(__name____re=name, namespace=namespace, service=epp_service)
    return f"sum(rate({sel}[2m])) or vector(0)"


def scaled_object(
    name: str,
    namespace: str,
    *,
    labels: dict[str, str],
    target_kind: str,
    target_name: str,
    scope: ModelScope,
    autoscaling: AutoscalingConfig,
    prometheus_url: str,
    wake_up_query: str | None = None,
) -> dict[str, Any]:
    a = autoscaling
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "scaleTargetRef": scale_target(target_kind, target_name),
            "pollingInterval": a.polling_interval_seconds,
            # only used for the last replica -> 0 (scale to zero); the HPA's scale-down
            # stabilization governs every other step
            "cooldownPeriod": a.scale_down_stabilization_seconds,
            "minReplicaCount": a.min_replicas,
            "maxReplicaCount": a.max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"name": keda_hpa_name(name), "behavior": behavior(a)},
            },
            "triggers": keda_triggers(scope, a, prometheus_url, wake_up_query=wake_up_query),
            "fallback": fallback(a),
        },
    }


def horizontal_pod_autoscaler(
    name: str,
    namespace: str,
    *,
    labels: dict[str, str],
    target_kind: str,
    target_name: str,
    autoscaling: AutoscalingConfig,
) -> dict[str, Any]:
    """Plain HPA on the pods metrics prometheus-adapter serves (per-pod averages)."""
    a = autoscaling

    def pods_metric(metric: str, target: float) -> dict[str, Any]:
        return {
            "type": "Pods",
            "pods": {"metric": {"name": metric}, "target": {"type": "AverageValue", "averageValue": quantity(target)}},
        }

    specs = [pods_metric(metrics.ADAPTER_QUEUE_DEPTH, a.queue_depth_target)]
    if a.kv_cache_usage_target is not None:
        specs.append(pods_metric(metrics.ADAPTER_KV_CACHE_USAGE, a.kv_cache_usage_target))
    return {
        "apiVersion": HPA_API,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "scaleTargetRef": scale_target(target_kind, target_name),
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": specs,
            "behavior": behavior(a),
        },
    }
