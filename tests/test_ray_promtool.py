"""The Ray Serve LLM alert rules, checked and unit-tested by Prometheus' own promtool.

``promtool check rules`` validates the PrometheusRule groups exactly as rendered;
``promtool test rules`` feeds synthetic series and asserts each alert fires just above its
threshold once its ``for`` has elapsed, and stays silent just below it (and before ``for``).
The test copy drops annotations (their templated values are not what is under test; the
check run covers their syntax). Without promtool the tests skip, except on CI (CI=true),
where a missing promtool is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import metric_names as names
import pytest
import yaml

from llm_infra.components.serving import ray_observability as ro
from llm_infra.config.stack import AlertThresholds

NS, SVC, APP = "llm-prod", "ray-llm", "ray-llm"
ALERTS = AlertThresholds()
BASE = {"namespace": NS, "ray_service": SVC}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required on CI (install prometheus or its promtool package)")
        pytest.skip("promtool not installed")
    return path


def run(*args: str, cwd: Path) -> None:
    proc = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


def rule_groups(strip_annotations: bool = False) -> dict[str, Any]:
    rule = ro.prometheus_rule(SVC, NS, ALERTS, {"release": "test"})
    groups = rule["spec"]["groups"]
    if strip_annotations:
        groups = [
            {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]} for g in groups
        ]
    return {"groups": groups}


def series(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in {**BASE, **labels}.items())
    return {"series": f"{metric}{{{body}}}", "values": values}


def test_rules_pass_promtool_check(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    run("check", "rules", "rules.yaml", cwd=tmp_path)


def test_every_rule_has_a_test_below():
    names = {r["alert"] for g in rule_groups()["groups"] for r in g["rules"]}
    assert names == set(CASES), "add promtool cases for every Ray Serve LLM alert"


# -- synthetic series per alert -------------------------------------------------------------
CHAT = {"application": APP, "route": "/v1/chat/completions", "method": "POST"}


def _errors(errors_per_min: int, health_errors_per_min: int = 0) -> list[dict[str, str]]:
    ok = 100 - errors_per_min
    out = [
        series(names.RAY_HTTP_REQUESTS, {**CHAT, "status_code": "200"}, f"0+{ok}x30"),
        series(names.RAY_HTTP_REQUESTS, {**CHAT, "status_code": "500"}, f"0+{errors_per_min}x30"),
        series(names.RAY_HTTP_ERRORS, {**CHAT, "error_code": "500"}, f"0+{errors_per_min}x30"),
        # 4xx are the client's fault: never part of the ratio
        series(names.RAY_HTTP_ERRORS, {**CHAT, "error_code": "429"}, "0+50x30"),
    ]
    if health_errors_per_min:
        health = {"application": "", "route": "/-/healthz", "method": "GET"}
        out += [
            series(names.RAY_HTTP_REQUESTS, {**health, "status_code": "503"}, f"0+{health_errors_per_min}x30"),
            series(names.RAY_HTTP_ERRORS, {**health, "error_code": "503"}, f"0+{health_errors_per_min}x30"),
        ]
    return out


def _ttft(slow_permille: int) -> list[dict[str, str]]:
    """1000 first tokens per minute; ``slow_permille`` of them between 5 s and 7.5 s."""
    fast = 1000 - slow_permille
    buckets = {"1": fast, "2.5": fast, "5": fast, "7.5": 1000, "10": 1000, "+Inf": 1000}
    return [
        series(f"{names.RAY_TTFT}_bucket", {"model_name": "mistral-7b", "WorkerId": "w1", "le": le}, f"0+{n}x30")
        for le, n in buckets.items()
    ]


def _gauge(metric: str, per_worker: list[float]) -> list[dict[str, str]]:
    return [
        series(metric, {"model_name": "qwen2.5-7b", "WorkerId": f"w{i}"}, f"{v}x30") for i, v in enumerate(per_worker)
    ]


DEPLOY = {"application": APP, "deployment": "LLMServer:qwen2_5-7b"}


def _replicas(healthy: list[int], queued: int) -> list[dict[str, str]]:
    out = [series(names.RAY_REPLICA_HEALTHY, {**DEPLOY, "replica": f"r{i}"}, f"{h}x30") for i, h in enumerate(healthy)]
    out.append(series(names.RAY_QUEUED_QUERIES, {**DEPLOY, "handle": "h1", "actor_id": "a1"}, f"{queued}x30"))
    return out


ERR = {"application": APP}
MODEL_TTFT = {"model_name": "mistral-7b"}
MODEL = {"model_name": "qwen2.5-7b"}

# alert -> (severity, labels of the alert, series just above, series just below)
CASES: dict[str, tuple[str, dict[str, str], list, list]] = {
    # 6 % of requests fail with 5xx (threshold 5 %); 4 % does not alert, nor do health-check errors
    "RayServeHighErrorRatio": ("critical", ERR, _errors(6), _errors(4, health_errors_per_min=80)),
    # p99 TTFT ~5.8 s (threshold 5 s) vs ~3.8 s
    "RayServeLlmTtftP99High": ("warning", MODEL_TTFT, _ttft(15), _ttft(5)),
    # average KV cache 91 % over two engines (threshold 90 %) vs 89 %
    "RayServeLlmKvCacheSaturated": (
        "warning",
        MODEL,
        _gauge(names.RAY_KV_CACHE_USAGE, [0.92, 0.90]),
        _gauge(names.RAY_KV_CACHE_USAGE, [0.90, 0.88]),
    ),
    # 11 waiting requests per engine on average (threshold 10) vs 9
    "RayServeLlmQueueDepthHigh": (
        "warning",
        MODEL,
        _gauge(names.RAY_REQUESTS_WAITING, [12, 10]),
        _gauge(names.RAY_REQUESTS_WAITING, [10, 8]),
    ),
    # every replica unhealthy with queued requests vs. a stale 0 of a stopped replica next to a healthy one
    "RayServeNoHealthyReplica": ("critical", DEPLOY, _replicas([0, 0], queued=3), _replicas([0, 1], queued=3)),
}
FOR = {
    "RayServeHighErrorRatio": ALERTS.error_ratio_for,
    "RayServeLlmTtftP99High": ALERTS.ttft_for,
    "RayServeLlmKvCacheSaturated": ALERTS.kv_cache_for,
    "RayServeLlmQueueDepthHigh": ALERTS.queue_depth_for,
    "RayServeNoHealthyReplica": ALERTS.no_healthy_replica_for,
}


def minutes(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return {"s": max(1, value // 60), "m": value, "h": value * 60}[unit]


@pytest.mark.parametrize("name", sorted(CASES))
def test_alert_fires_above_threshold_after_for_and_stays_silent_below(tmp_path, name):
    severity, labels, above, below = CASES[name]
    wait = minutes(FOR[name])
    expr = next(r["expr"] for g in rule_groups()["groups"] for r in g["rules"] if r["alert"] == name)
    # rate() needs a second sample: true from t=1m (gauges from t=0), firing once `for` has passed.
    first_true = 1 if "rate(" in expr else 0
    fired = f"{first_true + wait + 1}m"
    before_for = f"{first_true + wait - 1}m"
    expected = {**BASE, **labels, "severity": severity}
    tests = [
        {
            "name": f"{name} above threshold",
            "interval": "1m",
            "input_series": above,
            "alert_rule_test": [
                {"eval_time": before_for, "alertname": name, "exp_alerts": []},
                {"eval_time": fired, "alertname": name, "exp_alerts": [{"exp_labels": expected}]},
                {"eval_time": "25m", "alertname": name, "exp_alerts": [{"exp_labels": expected}]},
            ],
        },
        {
            "name": f"{name} below threshold",
            "interval": "1m",
            "input_series": below,
            "alert_rule_test": [
                {"eval_time": fired, "alertname": name, "exp_alerts": []},
                {"eval_time": "25m", "alertname": name, "exp_alerts": []},
            ],
        },
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups(strip_annotations=True)))
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    run("test", "rules", "tests.yaml", cwd=tmp_path)
