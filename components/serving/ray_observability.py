"""Monitoring of a Ray Serve LLM RayService: PodMonitors, alert rules, a Grafana dashboard.

Pure builders (dicts in, dicts out) so promtool and tests can run them without Pulumi.

Metric names (Ray exports everything with the ``ray_`` prefix on each node's
``metrics-export-port``):

* Serve proxy/replica metrics: the table "Built-in Ray Serve metrics" of Ray's
  ``doc/source/serve/monitoring.md`` (``ray_serve_num_http_requests_total``,
  ``ray_serve_num_http_error_requests_total`` with ``error_code``, the histogram
  ``ray_serve_http_request_latency_ms``, the gauge ``ray_serve_deployment_replica_healthy``
  with ``deployment``/``replica``/``application``, ``ray_serve_deployment_queued_queries``).
* Engine metrics: Ray Serve LLM forwards vLLM's metrics through Ray (``log_engine_metrics``,
  on by default since Ray 2.51): ``vllm:<name>`` becomes ``ray_vllm_<name>`` (``:`` is not
  valid in a Ray metric name), with ``model_name`` and ``WorkerId`` labels, as in Ray's own
  Serve LLM Grafana dashboard (``python/ray/dashboard/modules/metrics/dashboards/
  vllm_engine_panels.py``: ``ray_vllm_time_to_first_token_seconds_bucket``,
  ``ray_vllm_kv_cache_usage_perc``, ``ray_vllm_num_requests_waiting``...). The vLLM names
  come from components/serving/metrics.py, the one list checked against the pinned vLLM.

Every series gets a ``ray_service`` label from the PodMonitors' relabeling, so rules and
panels select one RayService without depending on KubeRay's generated cluster names.
"""

from __future__ import annotations

import json
from typing import Any

from llm_infra.components import k8s as kube
from llm_infra.config.stack import AlertThresholds

from . import metrics
from .dashboards import dashboard_configmap as _dashboard_configmap
from .observability import MONITORING_API, SCRAPE_INTERVAL
from .observability import prometheus_rule as _prometheus_rule


def ray_engine_metric(vllm_name: str) -> str:
    """``vllm:kv_cache_usage_perc`` -> ``ray_vllm_kv_cache_usage_perc`` (re-exported by Ray)."""
    return "ray_" + vllm_name.replace(":", "_")


# -- metric names ---------------------------------------------------------------------------
HTTP_REQUESTS = "ray_serve_num_http_requests_total"  # counter: route, method, application, status_code
HTTP_ERRORS = "ray_serve_num_http_error_requests_total"  # counter: route, error_code, method, application
HTTP_LATENCY_MS = "ray_serve_http_request_latency_ms"  # histogram (ms): method, route, application, status_code
REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"  # gauge 1/0: deployment, replica, application
QUEUED_QUERIES = "ray_serve_deployment_queued_queries"  # gauge: deployment, application, handle, actor_id
TTFT = ray_engine_metric(metrics.TTFT)  # histogram: model_name, WorkerId
TPOT = ray_engine_metric(metrics.INTER_TOKEN_LATENCY)  # histogram
E2E_LATENCY = ray_engine_metric(metrics.E2E_LATENCY)  # histogram
KV_CACHE_USAGE = ray_engine_metric(metrics.KV_CACHE_USAGE)  # gauge 0..1
REQUESTS_RUNNING = ray_engine_metric(metrics.NUM_REQUESTS_RUNNING)  # gauge
REQUESTS_WAITING = ray_engine_metric(metrics.NUM_REQUESTS_WAITING)  # gauge
GENERATION_TOKENS = ray_engine_metric(metrics.GENERATION_TOKENS)  # counter

SERVICE_LABEL = "ray_service"
COMPONENT_HEAD = "ray-head"
COMPONENT_WORKER = "ray-worker"
"""``app.kubernetes.io/component`` of the head and worker pods (set by rayservice.py, selected by the
PodMonitors here): defined on this side so that rayservice.py imports this module, never the reverse."""
HEALTH_ROUTES = "/-/.*"
"""Serve's own health/routes endpoints (``/-/healthz``, ``/-/routes``): not user traffic."""
RATE_WINDOW = "5m"
RUNBOOK_FILE = "ray-serve-llm.md"


def selector(name: str, namespace: str) -> str:
    return f'namespace="{namespace}",{SERVICE_LABEL}="{name}"'


# -- PodMonitors ------------------------------------------------------------------------------
def _relabelings(name: str) -> list[dict[str, Any]]:
    return [
        {"sourceLabels": ["__meta_kubernetes_pod_label_ray_io_cluster"], "targetLabel": "ray_io_cluster"},
        {"targetLabel": SERVICE_LABEL, "replacement": name},
    ]


def pod_monitors(name: str, namespace: str, monitor_labels: dict[str, str]) -> list[dict[str, Any]]:
    """One PodMonitor for the head (Ray node, autoscaler and dashboard metrics) and one for
    the GPU workers (Ray node metrics, which carry the Serve replica and vLLM engine series).

    Port names are the container port names of components/serving/rayservice.py.
    """

    def monitor(suffix: str, component: str, node_type: str, ports: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": MONITORING_API,
            "kind": "PodMonitor",
            "metadata": kube.metadata(
                f"{name}-{suffix}", namespace, {**kube.labels(name, "ray-llm"), **monitor_labels}
            ),
            "spec": {
                "selector": {
                    "matchLabels": {
                        "app.kubernetes.io/instance": name,
                        "app.kubernetes.io/component": component,
                        "ray.io/node-type": node_type,
                    }
                },
                "namespaceSelector": {"matchNames": [namespace]},
                "podMetricsEndpoints": [
                    {"port": port, "path": "/metrics", "interval": SCRAPE_INTERVAL, "relabelings": _relabelings(name)}
                    for port in ports
                ],
            },
        }

    return [
        monitor("ray-head", COMPONENT_HEAD, "head", ["metrics", "as-metrics", "dash-metrics"]),
        monitor("ray-workers", COMPONENT_WORKER, "worker", ["metrics"]),
    ]


# -- alert rules --------------------------------------------------------------------------------
def alert_rules(name: str, namespace: str, alerts: AlertThresholds) -> list[dict[str, Any]]:
    sel = selector(name, namespace)
    by_app = f"namespace, {SERVICE_LABEL}, application"
    by_model = f"namespace, {SERVICE_LABEL}, model_name"
    by_deployment = f"namespace, {SERVICE_LABEL}, application, deployment"
    runbook = f"{alerts.runbook_base_url}/{RUNBOOK_FILE}"

    def rule(alert: str, expr: str, duration: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": alert,
            "expr": expr,
            "for": duration,
            "labels": {"severity": severity, SERVICE_LABEL: name},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{runbook}#{alert.lower()}",
            },
        }

    return [
        rule(
            "RayServeHighErrorRatio",
            f'(sum by ({by_app}) (rate({HTTP_ERRORS}{{{sel},error_code=~"5..",route!~"{HEALTH_ROUTES}"}}[{RATE_WINDOW}]))'
            f' / sum by ({by_app}) (rate({HTTP_REQUESTS}{{{sel},route!~"{HEALTH_ROUTES}"}}[{RATE_WINDOW}])))'
            f" > {alerts.error_ratio:g}",
            alerts.error_ratio_for,
            "critical",
            "Ray Serve app {{ $labels.application }} answers more than "
            + f"{alerts.error_ratio:.0%}"
            + " of requests with 5xx",
            "{{ $value | humanizePercentage }} of the HTTP requests to {{ $labels.namespace }}/{{ $labels.ray_service }} "
            "failed with a server error (replica crashes, OOM, 503 back-pressure).",
        ),
        rule(
            "RayServeLlmTtftP99High",
            f"histogram_quantile(0.99, sum by ({by_model}, le) (rate({TTFT}_bucket{{{sel}}}[{RATE_WINDOW}])))"
            f" > {alerts.ttft_p99_seconds:g}",
            alerts.ttft_for,
            "warning",
            "p99 time to first token of {{ $labels.model_name }} is above " + f"{alerts.ttft_p99_seconds:g}s",
            "p99 TTFT is {{ $value | humanizeDuration }}: prompts queue for prefill; Serve should add replicas "
            "(check maxReplicas, maxWorkers and pending GPU nodes).",
        ),
        rule(
            "RayServeLlmKvCacheSaturated",
            f"avg by ({by_model}) ({KV_CACHE_USAGE}{{{sel}}}) > {alerts.kv_cache_usage:g}",
            alerts.kv_cache_for,
            "warning",
            "KV cache of {{ $labels.model_name }} is above " + f"{alerts.kv_cache_usage:.0%}",
            "Average KV-cache usage over the replicas is {{ $value | humanizePercentage }}: requests are preempted "
            "or wait; lower targetOngoingRequests or raise maxReplicas.",
        ),
        rule(
            "RayServeLlmQueueDepthHigh",
            f"avg by ({by_model}) ({REQUESTS_WAITING}{{{sel}}}) > {alerts.queue_depth:g}",
            alerts.queue_depth_for,
            "warning",
            "{{ $labels.model_name }} has more than " + f"{alerts.queue_depth:g}" + " waiting requests per replica",
            "{{ $value }} requests wait per vLLM engine: the model is saturated and not scaling out.",
        ),
        rule(
            "RayServeNoHealthyReplica",
            f"(sum by ({by_deployment}) ({REPLICA_HEALTHY}{{{sel}}}) == 0)"
            f" and on ({by_deployment}) (sum by ({by_deployment}) ({QUEUED_QUERIES}{{{sel}}}) > 0)",
            alerts.no_healthy_replica_for,
            "critical",
            "Serve deployment {{ $labels.deployment }} has no healthy replica while requests wait",
            "Every replica of {{ $labels.application }}/{{ $labels.deployment }} reports "
            f"{REPLICA_HEALTHY} 0 and requests are queued: the model is down (failed health checks, engine crash, "
            "no GPU worker). Serve keeps the gauge at 0 for replicas it stopped, so a single 0 is not an outage; "
            "no healthy replica with queued requests is.",
        ),
    ]


def prometheus_rule(
    name: str, namespace: str, alerts: AlertThresholds, monitor_labels: dict[str, str]
) -> dict[str, Any]:
    return _prometheus_rule(
        f"{name}-ray-serve-llm",
        namespace,
        labels={**kube.labels(name, "ray-llm"), **monitor_labels},
        groups=[{"name": f"ray-serve-llm.{namespace}.{name}", "rules": alert_rules(name, namespace, alerts)}],
    )


# -- Grafana dashboard ---------------------------------------------------------------------------
def dashboard_json(name: str, namespace: str) -> dict[str, Any]:
    """The Serve + engine view of one RayService (grafana-foundation-sdk)."""
    from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos, VariableOption

    sel = selector(name, namespace)
    ds = DataSourceRef(type_val="prometheus", uid="${datasource}")
    model_sel = f'{sel},model_name=~"$model"'

    ids = iter(range(1, 100))

    def panel(title: str, unit: str, x: int, y: int, *queries: tuple[str, str]) -> timeseries.Panel:
        p = (
            timeseries.Panel()
            .id(next(ids))
            .title(title)
            .unit(unit)
            .datasource(ds)
            .grid_pos(GridPos(h=8, w=12, x=x, y=y))
        )
        for i, (expr, legend) in enumerate(queries):
            p = p.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)))
        return p

    def quantiles(metric: str, by: str, scale: str = "") -> list[tuple[str, str]]:
        return [
            (
                f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{model_sel if 'vllm' in metric else sel}}}[$__rate_interval]))){scale}",
                f"p{int(q * 100)} {{{{{by.split(', ')[0]}}}}}",
            )
            for q in (0.5, 0.99)
        ]

    board = (
        dashboard.Dashboard(f"Ray Serve LLM: {namespace}/{name}")
        .uid(dashboard_uid(name, namespace))
        .tags(["llm-infra", "ray-serve-llm"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("model")
            .label("Model")
            .datasource(ds)
            .query(f"label_values({REQUESTS_RUNNING}{{{sel}}}, model_name)")
            .multi(True)
            .include_all(True)
            .current(VariableOption(text="All", value="$__all"))
        )
        .with_row(dashboard.Row("Serve (HTTP proxy)").id(next(ids)).grid_pos(GridPos(h=1, w=24, x=0, y=0)))
        .with_panel(
            panel(
                "Requests per second by status",
                "reqps",
                0,
                1,
                (
                    f'sum by (application, status_code) (rate({HTTP_REQUESTS}{{{sel},route!~"{HEALTH_ROUTES}"}}[$__rate_interval]))',
                    "{{application}} {{status_code}}",
                ),
            )
        )
        .with_panel(
            panel(
                "5xx error ratio",
                "percentunit",
                12,
                1,
                (
                    f'sum by (application) (rate({HTTP_ERRORS}{{{sel},error_code=~"5..",route!~"{HEALTH_ROUTES}"}}[$__rate_interval]))'
                    f' / sum by (application) (rate({HTTP_REQUESTS}{{{sel},route!~"{HEALTH_ROUTES}"}}[$__rate_interval]))',
                    "{{application}}",
                ),
            )
        )
        .with_panel(panel("HTTP latency (end of response)", "ms", 0, 9, *quantiles(HTTP_LATENCY_MS, "application")))
        .with_panel(
            panel(
                "Healthy replicas and queued requests by deployment",
                "short",
                12,
                9,
                (f"sum by (deployment) ({REPLICA_HEALTHY}{{{sel}}})", "healthy {{deployment}}"),
                (f"sum by (deployment) ({QUEUED_QUERIES}{{{sel}}})", "queued {{deployment}}"),
            )
        )
        .with_row(dashboard.Row("vLLM engines").id(next(ids)).grid_pos(GridPos(h=1, w=24, x=0, y=17)))
        .with_panel(panel("Time to first token", "s", 0, 18, *quantiles(TTFT, "model_name")))
        .with_panel(panel("Time per output token", "s", 12, 18, *quantiles(TPOT, "model_name")))
        .with_panel(panel("End-to-end request latency", "s", 0, 26, *quantiles(E2E_LATENCY, "model_name")))
        .with_panel(
            panel(
                "KV-cache usage",
                "percentunit",
                12,
                26,
                (f"avg by (model_name) ({KV_CACHE_USAGE}{{{model_sel}}})", "avg {{model_name}}"),
                (f"max by (model_name) ({KV_CACHE_USAGE}{{{model_sel}}})", "max {{model_name}}"),
            )
        )
        .with_panel(
            panel(
                "Running and waiting requests",
                "short",
                0,
                34,
                (f"sum by (model_name) ({REQUESTS_RUNNING}{{{model_sel}}})", "running {{model_name}}"),
                (f"sum by (model_name) ({REQUESTS_WAITING}{{{model_sel}}})", "waiting {{model_name}}"),
            )
        )
        .with_panel(
            panel(
                "Generated tokens per second",
                "short",
                12,
                34,
                (f"sum by (model_name) (rate({GENERATION_TOKENS}{{{model_sel}}}[$__rate_interval]))", "{{model_name}}"),
            )
        )
    )
    return json.loads(json.dumps(board.build(), cls=JSONEncoder, sort_keys=True))


def dashboard_uid(name: str, namespace: str) -> str:
    """Grafana UIDs are at most 40 characters; stable per namespace/service."""
    return f"ray-llm-{namespace}-{name}"[:40]


def dashboard_configmap(name: str, namespace: str, dashboard_labels: dict[str, str]) -> dict[str, Any]:
    return _dashboard_configmap(
        f"{name}-ray-serve-llm-dashboard",
        namespace,
        labels={**kube.labels(name, "ray-llm"), **dashboard_labels},
        dashboard_json=dashboard_json(name, namespace),
    )
