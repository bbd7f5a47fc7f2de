"""Alerts on the public Gateway's endpoint pickers (one group per stack, one rule per pool and alert).

The EPP of each InferencePool sees every request routed to the pool (llm-d-router v0.10.0
metrics, components/serving/metrics.py): requests it could not schedule, the pool's ready
endpoints, and whether Prometheus can scrape it at all. Thresholds and durations come from
the stack's ``alerts`` (``errorRatio``, ``noHealthyReplicaFor``); each alert links
``<runbookBaseUrl>/gateway.md#<alert>``.
"""

from __future__ import annotations

from typing import Any

from llm_infra.config.stack import AlertThresholds

from . import metrics
from .inference_pool import epp_name
from .observability import MONITORING_API, label_selector

RUNBOOK_FILE = "gateway.md"
WINDOW = "5m"


def request_selector(namespace: str, pool: str) -> str:
    both = f"{metrics.EPP_REQUESTS}|{metrics.EPP_REQUEST_ERRORS}"
    return label_selector(__name____re=both, namespace=namespace, service=epp_name(pool))


def rules(namespace: str, pool: str, alerts: AlertThresholds) -> list[dict[str, Any]]:
    epp = label_selector(namespace=namespace, service=epp_name(pool))

    def rule(alert: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "inference_pool": pool},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{alerts.runbook_base_url}/{RUNBOOK_FILE}#{alert.lower()}",
            },
        }

    errors = f"sum(rate({metrics.EPP_REQUEST_ERRORS}{epp}[{WINDOW}]))"
    scheduled = f"sum(rate({metrics.EPP_REQUESTS}{epp}[{WINDOW}]))"
    return [
        rule(
            "InferencePoolRequestsWithoutEndpoints",
            f"(max({metrics.EPP_READY_ENDPOINTS}{epp}) == 0) and on() (sum(rate({request_selector(namespace, pool)}[{WINDOW}])) > 0)",
            alerts.no_healthy_replica_for,
            "critical",
            f"InferencePool {pool} gets requests but has no ready endpoint",
            "Requests for the model fail (or wait for a scaled-to-zero model) while no replica is ready.",
        ),
        rule(
            "InferencePoolErrorRatioHigh",
            # no scheduled request but errors: +Inf, which alerts too
            f"({errors} / {scheduled}) > {alerts.error_ratio:g}",
            alerts.error_ratio_for,
            "warning",
            f"More than {alerts.error_ratio:.0%} of the requests for InferencePool {pool} fail at the gateway",
            "The endpoint picker reports errors (no endpoint, saturation, upstream 5xx) for this share of requests.",
        ),
        rule(
            "EndpointPickerDown",
            f"max(up{epp}) == 0",
            alerts.no_healthy_replica_for,
            "critical",
            f"The endpoint picker of InferencePool {pool} cannot be scraped",
            "Without its EPP the gateway fails open to any endpoint of the pool, or cannot route at all.",
        ),
    ]


def prometheus_rule(
    namespace: str, pools: list[str], alerts: AlertThresholds, labels: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": {"name": "inference-gateway", "namespace": namespace, "labels": labels},
        "spec": {
            "groups": [
                {
                    "name": f"inference-gateway.{namespace}",
                    "rules": [r for p in pools for r in rules(namespace, p, alerts)],
                }
            ]
        },
    }
