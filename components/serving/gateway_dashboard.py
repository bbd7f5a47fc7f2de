"""Grafana dashboard and scraping of the public Gateway: endpoint pickers and Envoy proxies.

The endpoint pickers' metrics (llm-d-router v0.10.0, components/serving/metrics.py) come from
the ServiceMonitors their chart creates. Envoy Gateway's proxies expose Envoy's statistics on
the container port ``metrics`` at ``/stats/prometheus`` (envoyproxy/gateway v1.9.0
internal/infrastructure/kubernetes/proxy/resource.go: labels ``app.kubernetes.io/name: envoy``,
``component: proxy``, ``managed-by: envoy-gateway``, plus ``gateway.envoyproxy.io/owning-gateway-*``);
a PodMonitor in the serving namespace (where Prometheus looks for monitors) scrapes them in the
proxies' namespace.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_models

from llm_infra.components import k8s as kube

from . import metrics
from .dashboards import DATASOURCE_VARIABLE, RATE, _panel
from .inference_pool import epp_name
from .observability import MONITORING_API, label_selector

ENVOY_DOWNSTREAM_BY_CLASS = "envoy_http_downstream_rq_xx"
"""Envoy HTTP connection manager statistic ``downstream_rq_<N>xx`` as Prometheus exports it
(label ``envoy_response_code_class``)."""
ENVOY_PROXY_LABELS = {
    "app.kubernetes.io/name": "envoy",
    "app.kubernetes.io/component": "proxy",
    "app.kubernetes.io/managed-by": "envoy-gateway",
}


def envoy_pod_monitor(
    namespace: str, proxy_namespace: str, gateway: str, gateway_namespace: str, labels: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": kube.metadata("inference-gateway-envoy", namespace, labels),
        "spec": {
            "namespaceSelector": {"matchNames": [proxy_namespace]},
            "selector": {
                "matchLabels": {
                    **ENVOY_PROXY_LABELS,
                    "gateway.envoyproxy.io/owning-gateway-name": gateway,
                    "gateway.envoyproxy.io/owning-gateway-namespace": gateway_namespace,
                }
            },
            "podMetricsEndpoints": [{"port": "metrics", "path": "/stats/prometheus"}],
        },
    }


def gateway_dashboard(namespace: str, pools: list[str], *, envoy_namespace: str | None) -> dict[str, Any]:
    """One dashboard for the stack's public endpoint: per pool requests, errors, endpoints, load."""
    services = "|".join(epp_name(p) for p in pools)
    epp = label_selector(namespace=namespace, service__re=services)
    pool_sel = label_selector(namespace=namespace, name__re="|".join(pools))
    panels = [
        _panel(
            "Requests per pool",
            "reqps",
            "Requests each pool's endpoint picker scheduled (a canary pool gets its weight's share).",
            [(f"sum by (service) (rate({metrics.EPP_REQUESTS}{epp}[{RATE}]))", "{{service}}")],
        ),
        _panel(
            "Errors per pool and code",
            "reqps",
            "Requests that failed: no ready endpoint (a model at zero replicas), saturation, model server errors.",
            [
                (
                    f"sum by (service, error_code) (rate({metrics.EPP_REQUEST_ERRORS}{epp}[{RATE}]))",
                    "{{service}} {{error_code}}",
                )
            ],
        ),
        _panel(
            "Ready endpoints per pool",
            "short",
            "Model server pods the endpoint picker can route to.",
            [(f"max by (name) ({metrics.EPP_READY_ENDPOINTS}{pool_sel})", "{{name}}")],
        ),
        _panel(
            "Average queue and KV cache per pool",
            "short",
            "What the endpoint picker scores replicas by: waiting requests and KV-cache use (0-1).",
            [
                (f"max by (name) ({metrics.EPP_AVERAGE_QUEUE}{pool_sel})", "{{name}} queue"),
                (f"max by (name) ({metrics.EPP_AVERAGE_KV_CACHE}{pool_sel})", "{{name}} KV cache"),
            ],
        ),
    ]
    if envoy_namespace is not None:
        sel = label_selector(namespace=envoy_namespace)
        panels.append(
            _panel(
                "Gateway responses by class",
                "reqps",
                "Every response of the Gateway's Envoy proxies: 401 for a missing or wrong API key, 404 for an "
                "unknown model, 5xx from the pools.",
                [
                    (
                        f"sum by (envoy_response_code_class) (rate({ENVOY_DOWNSTREAM_BY_CLASS}{sel}[{RATE}]))",
                        "{{envoy_response_code_class}}xx",
                    )
                ],
                width=24,
            )
        )
    builder = (
        dashboard.Dashboard(f"Inference gateway / {namespace}")
        .uid(f"gateway-{namespace}"[:40])
        .tags(["llm-infra", "gateway", namespace])
        .description(f"The public Gateway's routing to the models of namespace {namespace}")
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"))
    )
    for i, panel in enumerate(panels, start=1):
        builder = builder.with_panel(panel.id(i))
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True))
