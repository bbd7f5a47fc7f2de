"""Alert rules and dashboard queries checked by the real promtool.

* ``promtool check rules`` on every rule group of every PrometheusRule the stacks render
  (the real program and the vLLM harness of test_vllm.py, prod included), and on every
  dashboard and autoscaling query wrapped into recording rules;
* ``promtool test rules``: for every model of every stack, each alert fires just above its
  threshold once its ``for`` has elapsed, is still pending one minute before, and stays
  silent just below. The input series are generated from ``AlertThresholds`` (the stack's
  ``alerts`` config) and carry decoys (another model, another namespace) that must never
  alert, so the selectors are tested too.

promtool is installed by ``scripts/install-tools.sh`` (Debian package ``prometheus``). Without
it the tests skip, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import metric_names as metrics
import pytest
import yaml
from test_vllm import STACKS_WITH_MODELS, VARIANTS, Served, models, served

from llm_infra.components.render import manifests
from llm_infra.components.serving.autoscaling import keda_hpa_name
from llm_infra.components.serving.dashboards import panel_queries
from llm_infra.components.serving.vllm import workload_kind

ABOVE, BELOW = 1.02, 0.98
"""Just above / just below each threshold."""
STEP = 60
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is not installed: run scripts/install-tools.sh (CI must run these tests)")
    pytest.skip("promtool is not installed (scripts/install-tools.sh installs it)")


def run_promtool(*args: str, cwd: Path) -> str:
    proc = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{out}"
    return out


def seconds(duration: str) -> int:
    n, unit = int(duration[:-1]), duration[-1]
    return n * {"s": 1, "m": 60, "h": 3600}[unit]


def rule_groups(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [g for o in objects if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]]


def check_rules(groups: list[dict[str, Any]], tmp_path: Path, name: str) -> int:
    """promtool check rules (lint: all, fatal) on groups; returns the number of rules checked."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    out = run_promtool("check", "rules", "--lint=all", "--lint-fatal", path.name, cwd=tmp_path)
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in out, out
    return count


def queries_of(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, PromQL) of every dashboard panel and every KEDA Prometheus trigger."""
    found = []
    for o in objects:
        if o["kind"] == "ConfigMap":
            for key, raw in (o.get("data") or {}).items():
                if not key.endswith(".json"):
                    continue
                board = json.loads(raw)
                for title, legend, expr in panel_queries(board):
                    found.append((f"{o['metadata']['name']}/{title}/{legend}", expr))
        if o["kind"] == "ScaledObject":
            for t in o["spec"]["triggers"]:
                if t["type"] == "prometheus":
                    found.append((f"scaledobject/{o['metadata']['name']}/{t.get('name')}", t["metadata"]["query"]))
    return found


def check_queries(queries: list[tuple[str, str]], tmp_path: Path, name: str) -> int:
    """Each query as a recording rule, so promtool parses it as Prometheus would."""
    rules = []
    for i, (where, expr) in enumerate(queries):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        # dashboard template variables inside label matchers ("$model") match anything
        expr = re.sub(r'"([^"]*)"', lambda q: '"' + re.sub(r"\$\{?\w+\}?", ".*", q.group(1)) + '"', expr)
        assert "$" not in expr, f"{where}: unresolved variable in {expr}"
        rules.append({"record": f"query:check_{i}", "expr": expr})
    return check_rules([{"name": f"queries-{name}", "rules": rules}], tmp_path, name)


# -- promtool check rules -------------------------------------------------------------------------
def test_real_render_rules_and_queries_pass_promtool(recording, tmp_path):
    objs = manifests(recording)
    groups = rule_groups(objs)
    queries = queries_of(objs)
    if not groups and not queries:
        pytest.skip(f"stack {recording.stack} renders no rules or queries")
    if groups:
        assert check_rules(groups, tmp_path, f"{recording.stack}-rules") > 0
    if queries:
        assert check_queries(queries, tmp_path, f"{recording.stack}-queries") == len(queries)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_vllm_rules_and_queries_pass_promtool(variant, tmp_path):
    sv = VARIANTS[variant]()
    groups = rule_groups(sv.objects)
    # one group per workload (a canary is one), plus a canary's comparison group
    canaries = sum(1 for m in sv.plan.config.models if m.canary is not None)
    assert len(groups) == len(models(sv)) + canaries
    assert check_rules(groups, tmp_path, f"{variant}-rules") >= 5 * len(models(sv)) + 2 * canaries
    queries = queries_of(sv.objects)
    assert len(queries) >= 20 * len(models(sv))
    check_queries(queries, tmp_path, f"{variant}-queries")


def test_promtool_rejects_a_broken_rule(tmp_path):
    """The check above can fail: a malformed expression is reported."""
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum(rate(x[5m])"}]}]}))
    proc = subprocess.run(
        [promtool(), "check", "rules", path.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0


# -- promtool test rules ---------------------------------------------------------------------------
def series(name: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def humanize_percentage(v: float) -> str:
    """Prometheus' humanizePercentage: fmt.Sprintf("%.4g%%", v*100)."""
    return "%.4g%%" % (v * 100)


def expand(template: str, labels: dict[str, str], value: float) -> str:
    """The subset of Prometheus' alert templating our annotations use; anything else fails."""

    def sub(match: re.Match[str]) -> str:
        body = match.group(1).strip()
        if body.startswith("$labels."):
            return labels[body.removeprefix("$labels.")]
        if body == "$value | humanizePercentage":
            return humanize_percentage(value)
        fmt = re.fullmatch(r'\$value \| printf "(%\.\d+f)"', body)
        if fmt:
            return fmt.group(1) % value
        raise AssertionError(f"template not understood by this test: {{{{ {body} }}}}")

    return re.sub(r"\{\{(.*?)\}\}", sub, template)


class Case:
    """Input series for one alert at a chosen level, and the alert it must raise."""

    def __init__(self, sv: Served, model, rule: dict[str, Any]):
        self.sv, self.model, self.rule = sv, model, rule
        self.ns = sv.plan.config.namespace
        self.kind = workload_kind(model)
        self.pod = f"{model.name}-7c9d5f6b8-x2r4q" if self.kind == "Deployment" else f"{model.name}-0"
        self.for_s = seconds(rule["for"])
        self.samples = self.for_s // STEP + 12
        t = sv.plan.config.alerts
        self.threshold = {
            "VllmKvCacheNearlyFull": t.kv_cache_usage,
            "VllmRequestQueueBacklog": t.queue_depth,
            "VllmTimeToFirstTokenHigh": t.ttft_p99_seconds,
            "VllmHighErrorRate": t.error_ratio,
            "VllmGpuTemperatureHigh": t.gpu_temperature_celsius,
        }.get(rule["alert"])

    def target(
        self,
        service: str | None = None,
        served_name: str | None = None,
        namespace: str | None = None,
        pod: str | None = None,
    ) -> dict[str, str]:
        """Labels a scraped vLLM series carries (service discovery + engine labels)."""
        return {
            "namespace": namespace or self.ns,
            "service": service or self.model.name,
            "job": service or self.model.name,
            "pod": pod or self.pod,
            "container": "vllm",
            "endpoint": "http",
            "instance": "10.0.3.17:8000",
            "model_name": served_name or self.model.served_name,
            "engine": "0",
        }

    def decoys(self) -> list[dict[str, str]]:
        """Another model in this namespace (a name that extends this one's), and this model's
        name in another namespace: their series must never reach this model's alerts."""
        other = f"{self.model.name}-canary"
        return [
            self.target(service=other, served_name=f"{self.model.served_name}-canary", pod=f"{other}-0"),
            self.target(namespace=f"{self.ns}-staging"),
        ]

    def gauge(self, metric: str, value: float, decoy: float) -> list[dict[str, str]]:
        out = [{"series": series(metric, self.target()), "values": f"{value}x{self.samples}"}]
        out += [{"series": series(metric, d), "values": f"{decoy}x{self.samples}"} for d in self.decoys()]
        return out

    def build(self, level: float) -> tuple[list[dict[str, str]], dict[str, str], float]:
        """(input series, output labels of the expression, its value) for ``level`` x threshold."""
        alert = self.rule["alert"]
        if alert in ("VllmKvCacheNearlyFull", "VllmRequestQueueBacklog"):
            metric = metrics.KV_CACHE_USAGE if alert == "VllmKvCacheNearlyFull" else metrics.NUM_REQUESTS_WAITING
            v = self.threshold * level
            return self.gauge(metric, v, self.threshold * 1.5), {"namespace": self.ns, "pod": self.pod}, v
        if alert == "VllmTimeToFirstTokenHigh":
            v = self.threshold * level
            upper = v / 0.99  # all observations in (0, upper]: p99 interpolates to exactly v
            out = []
            # decoys far above the threshold: if they leaked into this model's p99 the
            # silent case would fire and the firing case would report another value
            for labels, le in [(self.target(), upper), *[(d, self.threshold * 4) for d in self.decoys()]]:
                for bound in (repr(le), "+Inf"):
                    out.append(
                        {
                            "series": series(f"{metrics.TTFT}_bucket", {**labels, "le": bound}),
                            "values": f"0+60x{self.samples}",
                        }
                    )
            return out, {"namespace": self.ns}, v
        if alert == "VllmHighErrorRate":
            v = self.threshold * level
            per_min = 1000.0
            out = []
            for labels, ratio in [(self.target(), v), *[(d, 0.5) for d in self.decoys()]]:
                base = {
                    k: labels[k] for k in ("namespace", "service", "job", "pod", "container", "endpoint", "instance")
                }
                base = {**base, "handler": "/v1/chat/completions", "method": "POST"}
                out.append(
                    {
                        "series": series(metrics.HTTP_REQUESTS, {**base, "status": "5xx"}),
                        "values": f"0+{per_min * ratio}x{self.samples}",
                    }
                )
                out.append(
                    {
                        "series": series(metrics.HTTP_REQUESTS, {**base, "status": "2xx"}),
                        "values": f"0+{per_min * (1 - ratio)}x{self.samples}",
                    }
                )
            return out, {"namespace": self.ns}, v
        if alert == "VllmGpuTemperatureHigh":
            v = self.threshold * level
            gpu = {
                "gpu": "0",
                "UUID": "GPU-5fd4c2a1",
                "modelName": self.sv.plan.models[self.model.name].pool.gpu_model,
                "Hostname": "gpu-node-1",
                "container": "vllm",
                "job": "nvidia-dcgm-exporter",
            }
            own = {**gpu, "namespace": self.ns, "pod": self.pod}
            decoys = [
                {**gpu, "namespace": self.ns, "pod": f"{self.model.name}-canary-0", "gpu": "1"},
                {**gpu, "namespace": self.ns, "pod": f"{self.model.name}-canary-7c9d5f6b8-x2r4q", "gpu": "2"},
                {**gpu, "namespace": f"{self.ns}-staging", "pod": self.pod, "gpu": "3"},
            ]
            out = [{"series": series(metrics.DCGM_GPU_TEMP, own), "values": f"{v}x{self.samples}"}]
            out += [
                {"series": series(metrics.DCGM_GPU_TEMP, d), "values": f"{self.threshold + 10}x{self.samples}"}
                for d in decoys
            ]
            return out, {"namespace": self.ns, "pod": self.pod, "Hostname": "gpu-node-1", "gpu": "0"}, v
        if alert == "VllmReplicasAtMaximum":
            a = self.model.autoscaling
            hpa = keda_hpa_name(self.model.name) if self.sv.context.addons.autoscaler == "keda" else self.model.name
            current = a.max_replicas if level >= 1 else a.max_replicas - 1
            ksm = {"job": "kube-state-metrics", "instance": "10.0.1.5:8080", "namespace": self.ns}
            out = []
            for name, cur in ((hpa, current), (f"{hpa}-canary", 5)):
                labels = {**ksm, "horizontalpodautoscaler": name}
                out.append(
                    {"series": series(metrics.KSM_HPA_CURRENT_REPLICAS, labels), "values": f"{cur}x{self.samples}"}
                )
                out.append(
                    {
                        "series": series(metrics.KSM_HPA_MAX_REPLICAS, labels),
                        "values": f"{a.max_replicas if name == hpa else 5}x{self.samples}",
                    }
                )
            return out, {"namespace": self.ns, "horizontalpodautoscaler": hpa}, float(current)
        raise AssertionError(f"no test generator for alert {alert}: add one")

    def tests(self) -> list[dict[str, Any]]:
        alert = self.rule["alert"]
        fire_at = self.for_s + 5 * STEP
        above, labels, value = self.build(ABOVE)
        below, _, _ = self.build(BELOW)
        alert_labels = {**labels, **self.rule["labels"]}
        expected = {
            "exp_labels": alert_labels,
            "exp_annotations": {k: expand(v, alert_labels, value) for k, v in self.rule["annotations"].items()},
        }
        return [
            {
                "name": f"{alert} fires just above its threshold after {self.rule['for']}",
                "interval": "1m",
                "input_series": above,
                "alert_rule_test": [
                    {"eval_time": f"{(self.for_s - STEP) // STEP}m", "alertname": alert, "exp_alerts": []},
                    {"eval_time": f"{fire_at // STEP}m", "alertname": alert, "exp_alerts": [expected]},
                ],
            },
            {
                "name": f"{alert} stays silent just below its threshold",
                "interval": "1m",
                "input_series": below,
                "alert_rule_test": [{"eval_time": f"{fire_at // STEP}m", "alertname": alert, "exp_alerts": []}],
            },
        ]


def unit_tests_for(sv: Served, tmp_path: Path) -> list[tuple[str, int]]:
    """Write and run one promtool test file per model; returns (model, number of tests)."""
    done = []
    for m, _ in models(sv):
        pr = sv.get("PrometheusRule", m.name)
        groups = pr["spec"]["groups"]
        rules_file = tmp_path / f"{sv.stack}-{m.name}-rules.yaml"
        rules_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        tests = [t for g in groups for r in g["rules"] if "alert" in r for t in Case(sv, m, r).tests()]
        test_file = tmp_path / f"{sv.stack}-{m.name}-test.yaml"
        test_file.write_text(
            yaml.safe_dump(
                {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests}, sort_keys=False
            )
        )
        out = run_promtool("test", "rules", test_file.name, cwd=tmp_path)
        assert "SUCCESS" in out, out
        done.append((m.name, len(tests)))
    return done


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_each_alert_fires_above_and_stays_silent_below_its_threshold(stack, tmp_path):
    sv = served(stack)
    results = unit_tests_for(sv, tmp_path)
    for (name, count), (m, _) in zip(results, models(sv), strict=True):
        alerts = {r["alert"] for g in sv.get("PrometheusRule", m.name)["spec"]["groups"] for r in g["rules"]}
        assert count == 2 * len(alerts) and len(alerts) >= 4, (name, alerts)


def test_unit_tests_catch_a_wrong_threshold(tmp_path):
    """A rule whose threshold drifted from the config fails the generated tests."""
    sv = served("dev")
    m = sv.plan.config.models[0]
    pr = sv.get("PrometheusRule", m.name)
    broken = json.loads(json.dumps(pr))
    for g in broken["spec"]["groups"]:
        for r in g["rules"]:
            if r["alert"] == "VllmKvCacheNearlyFull":
                r["expr"] = r["expr"].replace(f"> {sv.plan.config.alerts.kv_cache_usage:g}", "> 0.95")
    groups = broken["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = [
        t
        for g in groups
        for r in g["rules"]
        if r.get("alert") == "VllmKvCacheNearlyFull"
        for t in Case(sv, m, r).tests()
    ]
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    proc = subprocess.run(
        [promtool(), "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0, proc.stdout
