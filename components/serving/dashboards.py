"""Grafana dashboards for served models, built with grafana-foundation-sdk.

One dashboard per served model, its queries fixed to the model's ``ModelScope`` (no
template variable to pick a model: the dashboard a runbook links shows the right one).
Grafana loads it from a ConfigMap carrying ``MonitoringHandle.dashboard_labels`` (the
sidecar of the Grafana chart). The Prometheus data source is a variable, so the same
JSON works with any data-source name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

from . import metrics
from .observability import ModelScope, label_selector, quantile

DATASOURCE_VARIABLE = "datasource"
RATE = "$__rate_interval"
UID_MAX = 40
"""Grafana rejects dashboard uids longer than 40 characters."""
PANEL_HEIGHT = 8


def dashboard_uid(namespace: str, name: str) -> str:
    uid = f"vllm-{namespace}-{name}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:8]
    return f"{uid[: UID_MAX - 9]}-{digest}"


def _datasource() -> dashboard_models.DataSourceRef:
    return dashboard_models.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VARIABLE}}}")


def _panel(title: str, unit: str, description: str, targets: list[tuple[str, str]], *, width: int = 12):
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_datasource())
        .height(PANEL_HEIGHT)
        .span(width)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
        )
    )
    for i, (expr, legend) in enumerate(targets):
        panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)))
    return panel


def _right_axis(panel, *series: str):
    for name in series:
        panel = panel.override_by_name(
            name, [dashboard_models.DynamicConfigValue(id_val="custom.axisPlacement", value="right")]
        )
    return panel


def model_dashboard(
    scope: ModelScope, *, title: str, uid: str, gpu_metrics: bool, extra_rows: Sequence[tuple[str, list]] = ()
) -> dict[str, Any]:
    """The dashboard JSON (a dict) for one served model; ``extra_rows`` (title, panels) go last."""
    sel = scope.vllm()
    m = scope.metric

    def q(p: float, histogram: str) -> str:
        return quantile(p, m(histogram), sel, RATE)

    latency = [
        _panel(
            "Time to first token",
            "s",
            "Prefill plus queueing, as the client sees the first streamed token.",
            [(q(p, metrics.TTFT), f"p{int(p * 100)}") for p in (0.5, 0.95, 0.99)],
        ),
        _panel(
            "Inter-token latency",
            "s",
            "Time between streamed tokens (decode speed).",
            [(q(p, metrics.INTER_TOKEN_LATENCY), f"p{int(p * 100)}") for p in (0.5, 0.95, 0.99)],
        ),
        _panel(
            "End-to-end request latency",
            "s",
            "Arrival to last token; queue time shows how much of it is waiting.",
            [
                (q(0.5, metrics.E2E_LATENCY), "p50"),
                (q(0.95, metrics.E2E_LATENCY), "p95"),
                (q(0.95, metrics.QUEUE_TIME), "p95 queue time"),
            ],
        ),
        _panel(
            "Tokens per second",
            "short",
            "Prompt (prefill) and generated (decode) tokens per second over all replicas.",
            [
                (f"sum(rate({m(metrics.PROMPT_TOKENS)}{sel}[{RATE}]))", "prompt"),
                (f"sum(rate({m(metrics.GENERATION_TOKENS)}{sel}[{RATE}]))", "generation"),
            ],
        ),
    ]

    replica_targets = [
        (f"sum({m(metrics.NUM_REQUESTS_WAITING)}{sel})", "waiting"),
        (f"sum({m(metrics.NUM_REQUESTS_RUNNING)}{sel})", "running"),
    ]
    replica_series = []
    if scope.workload_kind in metrics.KSM_READY_REPLICAS and scope.workload_name:
        metric, label = metrics.KSM_READY_REPLICAS[scope.workload_kind]
        ready = label_selector(namespace=scope.namespace, **{label: scope.workload_name})
        replica_targets.append((f"sum({metric}{ready})", "ready replicas"))
        replica_series.append("ready replicas")
    if scope.hpa_name:
        replica_targets.append((f"max({metrics.KSM_HPA_DESIRED_REPLICAS}{scope.hpa()})", "desired replicas"))
        replica_series.append("desired replicas")
    load = [
        _right_axis(
            _panel(
                "Queue depth vs replicas",
                "short",
                "Requests waiting and running (left) against ready and desired replicas (right): "
                "a queue that grows while replicas stay flat means scaling is stuck.",
                replica_targets,
            ),
            *replica_series,
        ),
        _panel(
            "Requests per second by status",
            "reqps",
            "API responses by HTTP status class.",
            [(f"sum by (status) (rate({metrics.HTTP_REQUESTS}{scope.http()}[{RATE}]))", "{{status}}")],
        ),
    ]

    cache = [
        _panel(
            "KV-cache usage",
            "percentunit",
            "Fraction of KV-cache blocks in use per pod; near 100 % requests wait or get preempted.",
            [(f"max by (pod) ({m(metrics.KV_CACHE_USAGE)}{sel})", "{{pod}}")],
        )
        .min(0)
        .max(1),
        _panel(
            "Prefix-cache hit rate",
            "percentunit",
            "Prompt tokens served from cached KV blocks (shared system prompts), and preemptions.",
            [
                (
                    f"sum(rate({m(metrics.PREFIX_CACHE_HITS)}{sel}[{RATE}])) "
                    f"/ sum(rate({m(metrics.PREFIX_CACHE_QUERIES)}{sel}[{RATE}]))",
                    "hit rate",
                ),
            ],
        )
        .min(0)
        .max(1),
        _panel(
            "Preemptions per second",
            "short",
            "Requests evicted from the KV cache and recomputed later.",
            [(f"sum(rate({m(metrics.NUM_PREEMPTIONS)}{sel}[{RATE}]))", "preemptions")],
        ),
        _panel(
            "Finished requests by reason",
            "reqps",
            "stop / length / abort / error, as the engine reports them.",
            [(f"sum by (finished_reason) (rate({m(metrics.REQUEST_SUCCESS)}{sel}[{RATE}]))", "{{finished_reason}}")],
        ),
    ]

    gpu = []
    if gpu_metrics:
        gsel = scope.gpu()
        gpu = [
            _panel(
                "GPU utilization",
                "percent",
                "DCGM duty cycle of each GPU the model's pods hold.",
                [(f"avg by (pod, gpu) ({metrics.DCGM_GPU_UTIL}{gsel})", "{{pod}} GPU {{gpu}}")],
            )
            .min(0)
            .max(100),
            _panel(
                "GPU memory used",
                "mbytes",
                "Frame buffer in use: vLLM reserves gpuMemoryUtilization of it at startup, so it stays flat.",
                [(f"max by (pod, gpu) ({metrics.DCGM_FB_USED}{gsel})", "{{pod}} GPU {{gpu}}")],
            ),
            _panel(
                "GPU temperature",
                "celsius",
                "Above ~85 °C GPUs throttle their clocks.",
                [(f"max by (pod, gpu) ({metrics.DCGM_GPU_TEMP}{gsel})", "{{pod}} GPU {{gpu}}")],
            ),
        ]

    builder = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["llm-infra", "vllm", scope.namespace])
        .description(f"vLLM serving {scope.model_name} in namespace {scope.namespace}")
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .editable()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type("prometheus"))
    )
    ids = iter(range(1, 1000))
    rows = (("Latency", latency), ("Load and scaling", load), ("KV cache", cache), ("GPUs", gpu), *extra_rows)
    for row_title, panels in rows:
        if not panels:
            continue
        builder = builder.with_row(dashboard.Row(row_title).id(next(ids)))
        for panel in panels:
            builder = builder.with_panel(panel.id(next(ids)))
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True))


def dashboard_configmap(
    name: str, namespace: str, *, labels: dict[str, str], dashboard_json: dict[str, Any]
) -> dict[str, Any]:
    """ConfigMap the Grafana sidecar loads (``labels`` include the handle's dashboard labels)."""
    key = re.sub(r"[^-._a-zA-Z0-9]", "-", dashboard_json["uid"]) + ".json"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {key: json.dumps(dashboard_json, indent=1, sort_keys=True)},
    }


def panel_queries(dashboard_json: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, legend, PromQL) of every query of a dashboard, rows included."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
        for panel in panels:
            yield from walk(panel.get("panels") or [])
            for target in panel.get("targets") or []:
                yield panel.get("title", ""), target.get("legendFormat", ""), target["expr"]

    yield from walk(dashboard_json.get("panels") or [])
