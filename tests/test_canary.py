"""Canaries: the `<model>-canary` workload, its replicas, labels, Ingress share, plan and alerts.

Expectations come from the stack files' raw values (weight, revision, image, extraArgs) and
from the stable model's rendered objects; the comparison alerts are run by promtool against
series where the canary does slightly worse / slightly better than the margin.
"""

from __future__ import annotations

import copy
import math

import metric_names as metrics
import pytest
import yaml
from stackfiles import assert_rejected, stack_values
from test_alerts_promtool import STEP, expand, run_promtool, seconds, series
from test_vllm import STACKS_WITH_MODELS, container, flags, pod_spec, served

from llm_infra.components.serving.vllm import workload_kind
from llm_infra.config import load_stack_config, versions
from llm_infra.config.serving import VllmModelConfig

CANARY_ALERTS = {"VllmCanaryErrorRatioWorse", "VllmCanaryTimeToFirstTokenWorse"}


def canaries(stack: str) -> list[tuple[dict, VllmModelConfig]]:
    """(raw stable model entry, its parsed config) of every model with a canary."""
    sv = served(stack)
    raw = {m["name"]: m for m in stack_values(stack)[0].get("models", [])}
    return [(raw[m.name], m) for m in sv.plan.config.models if "canary" in raw[m.name]]


def test_prod_renders_a_canary():
    assert canaries("prod")


def _without_flag_values(args: list[str], flag: str) -> list[str]:
    """``args`` without every ``flag <value>`` pair."""
    while flag in args:
        i = args.index(flag)
        args = args[:i] + args[i + 2 :]
    return args


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_canary_workload_is_the_stable_one_with_the_canarys_changes(stack):
    sv = served(stack)
    for raw, m in canaries(stack):
        c = raw["canary"]
        name = f"{m.name}-canary"
        stable = sv.get(workload_kind(m), m.name)
        canary = sv.get(workload_kind(m), name)
        s_args, c_args = (_without_flag_values(container(w)["args"], "--api-key") for w in (stable, canary))
        # the same flags, then the canary's own: revision swapped, extra flags appended
        extra = c.get("extraArgs", [])
        assert c_args[len(c_args) - len(extra) :] == extra
        base = c_args[: len(c_args) - len(extra)]
        revision = c.get("revision", raw.get("revision"))
        if stack_values(stack)[0].get("modelStore", {}).get("enabled"):
            # streamed from the model store: the revision is the last segment of the object path
            # (s3:// or gs://), which is vLLM's model argument; no --revision flag
            assert base[0].rsplit("/", 1) == [s_args[0].rsplit("/", 1)[0], revision], base[0]
            assert base[1:] == s_args[1:] and "--revision" not in base
        else:
            assert _without_flag_values(base, "--revision") == _without_flag_values(s_args, "--revision")
            assert flags(base).get("--revision") == ([revision] if revision else None)
        assert flags(base)["--served-model-name"] == flags(s_args)["--served-model-name"]
        image = c.get("image", versions.VLLM_IMAGE)
        assert container(canary)["image"] == image
        assert {i["image"] for i in pod_spec(canary).get("initContainers", [])} <= {image}
        # replicas: 1 .. its share of the stable maximum
        top = max(1, math.ceil(raw.get("autoscaling", {}).get("maxReplicas", 2) * c["weight"] / 100))
        assert canary["spec"]["replicas"] == 1
        so = sv.maybe("ScaledObject", name)
        if top == 1:
            assert so is None and sv.maybe("HorizontalPodAutoscaler", name) is None
        elif so is not None:
            assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, top)
        # same resources, tolerations, node selector: the same pod shape on the same pool
        assert container(canary)["resources"] == container(stable)["resources"]
        assert pod_spec(canary).get("tolerations") == pod_spec(stable).get("tolerations")
        assert pod_spec(canary).get("nodeSelector") == pod_spec(stable).get("nodeSelector")


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_canary_pods_are_told_apart_by_their_labels(stack):
    """The labels an InferencePool (or a Service) selects: name=vllm, instance=<model>-canary."""
    sv = served(stack)
    for _, m in canaries(stack):
        name = f"{m.name}-canary"
        stable = sv.get(workload_kind(m), m.name)
        canary = sv.get(workload_kind(m), name)
        labels = canary["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "vllm"
        assert labels["app.kubernetes.io/instance"] == name
        c_sel = canary["spec"]["selector"]["matchLabels"]
        s_sel = stable["spec"]["selector"]["matchLabels"]
        s_labels = stable["spec"]["template"]["metadata"]["labels"]
        assert c_sel == {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": name}
        assert not s_sel.items() <= labels.items() and not c_sel.items() <= s_labels.items()
        svc = sv.get("Service", name)
        assert svc["spec"]["selector"] == c_sel
        monitor = sv.get("ServiceMonitor", name)
        assert monitor["spec"]["selector"]["matchLabels"] == c_sel
        assert sv.get("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == c_sel


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_canary_takes_its_weight_of_the_stable_ingress(stack):
    sv = served(stack)
    for raw, m in canaries(stack):
        name = f"{m.name}-canary"
        ing = sv.maybe("Ingress", name)
        if m.ingress is None:
            assert ing is None
            continue
        stable = sv.get("Ingress", m.name)
        ann = ing["metadata"]["annotations"]
        assert ann["nginx.ingress.kubernetes.io/canary"] == "true"
        assert ann["nginx.ingress.kubernetes.io/canary-weight"] == str(raw["canary"]["weight"])
        assert "nginx.ingress.kubernetes.io/canary" not in stable["metadata"]["annotations"]
        (rule,) = ing["spec"]["rules"]
        (s_rule,) = stable["spec"]["rules"]
        assert rule["host"] == s_rule["host"]
        (path,) = rule["http"]["paths"]
        (s_path,) = s_rule["http"]["paths"]
        assert (path["path"], path["pathType"]) == (s_path["path"], s_path["pathType"])
        assert path["backend"]["service"] == {"name": name, "port": {"name": "http"}}
        assert ing["spec"]["ingressClassName"] == stable["spec"]["ingressClassName"]


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_plan_counts_the_canarys_gpus(stack):
    sv = served(stack)
    for raw, m in canaries(stack):
        name = f"{m.name}-canary"
        plan, stable = sv.plan.models[name], sv.plan.models[m.name]
        top = max(1, math.ceil(raw.get("autoscaling", {}).get("maxReplicas", 2) * raw["canary"]["weight"] / 100))
        assert (plan.min_replicas, plan.max_replicas) == (1, top)
        assert plan.pool == stable.pool and plan.tensor_parallel_size == stable.tensor_parallel_size
        feas = sv.plan.feasibility[stable.pool.name]
        assert f"models/{name}" in feas.pods_per_node


def test_gpu_budget_counts_the_canary():
    """A pool that holds the stable minimum exactly has no GPU left for the canary."""
    values, secrets = stack_values("prod")
    values = copy.deepcopy(values)
    pool = next(p for p in values["cluster"]["nodePools"] if p["name"] == values["models"][0]["nodePool"])
    pool["maxNodes"] = values["models"][0]["autoscaling"]["minReplicas"]
    assert_rejected("prod", values, secrets, "cluster.nodePools[0].maxNodes", "need 3")


# -- comparison alerts -----------------------------------------------------------------------------
def _comparison(sv, m) -> dict:
    return sv.get("PrometheusRule", f"{m.name}-canary-comparison")


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_comparison_alerts_use_the_configured_margins(stack):
    sv = served(stack)
    t = sv.plan.config.alerts
    for _, m in canaries(stack):
        name = f"{m.name}-canary"
        pr = _comparison(sv, m)
        rules = {r["alert"]: r for g in pr["spec"]["groups"] for r in g["rules"]}
        assert set(rules) == CANARY_ALERTS
        for r in rules.values():
            assert r["for"] == t.canary_for
            assert r["labels"] == {
                "severity": "warning",
                "model_name": m.served_name,
                "llm_service": name,
                "stable_service": m.name,
            }
            assert f'service="{name}"' in r["expr"] and f'service="{m.name}"' in r["expr"]
            assert r["annotations"]["runbook_url"] == f"{t.runbook_base_url}/vllm.md#{r['alert'].lower()}"
        assert f"+ {t.canary_error_ratio_margin:g})" in rules["VllmCanaryErrorRatioWorse"]["expr"]
        assert metrics.HTTP_REQUESTS in rules["VllmCanaryErrorRatioWorse"]["expr"]
        assert f"* {t.canary_ttft_ratio:g})" in rules["VllmCanaryTimeToFirstTokenWorse"]["expr"]
        assert f"{metrics.TTFT}_bucket" in rules["VllmCanaryTimeToFirstTokenWorse"]["expr"]


def _target(ns: str, service: str, served_name: str) -> dict[str, str]:
    return {
        "namespace": ns,
        "service": service,
        "job": service,
        "pod": f"{service}-7c9d5f6b8-x2r4q",
        "container": "vllm",
        "endpoint": "http",
        "instance": "10.0.3.17:8000",
        "model_name": served_name,
    }


def _inputs(alert: str, ns: str, stable: str, canary: str, served_name: str, level: float, t, samples: int):
    """Series where the canary is worse than the stable model by ``level`` x the margin; a
    decoy in another namespace is far worse and must never count."""
    out = []
    if alert == "VllmCanaryErrorRatioWorse":
        stable_ratio = 0.01
        canary_ratio = stable_ratio + t.canary_error_ratio_margin * level
        value = canary_ratio
        cases = [(ns, stable, stable_ratio), (ns, canary, canary_ratio), (f"{ns}-staging", canary, 0.9)]
        for namespace, service, ratio in cases:
            base = {**_target(namespace, service, served_name), "handler": "/v1/chat/completions", "method": "POST"}
            base.pop("model_name")
            out.append(
                {
                    "series": series(metrics.HTTP_REQUESTS, {**base, "status": "5xx"}),
                    "values": f"0+{1000 * ratio}x{samples}",
                }
            )
            out.append(
                {
                    "series": series(metrics.HTTP_REQUESTS, {**base, "status": "2xx"}),
                    "values": f"0+{1000 * (1 - ratio)}x{samples}",
                }
            )
        return out, value
    stable_p95 = 0.8
    canary_p95 = stable_p95 * t.canary_ttft_ratio * level
    # every observation in (0, upper]: p95 interpolates to exactly 0.95 x upper
    cases = [(ns, stable, stable_p95), (ns, canary, canary_p95), (f"{ns}-staging", canary, 50.0)]
    for namespace, service, p95 in cases:
        for bound in (repr(p95 / 0.95), "+Inf"):
            labels = {**_target(namespace, service, served_name), "le": bound}
            out.append({"series": series(f"{metrics.TTFT}_bucket", labels), "values": f"0+60x{samples}"})
    return out, canary_p95


@pytest.mark.parametrize("stack", STACKS_WITH_MODELS)
def test_comparison_alerts_fire_when_the_canary_is_worse_and_stay_silent_otherwise(stack, tmp_path):
    sv = served(stack)
    t = sv.plan.config.alerts
    ns = sv.plan.config.namespace
    found = canaries(stack)
    if not found:
        pytest.skip(f"{stack} has no canary")
    for _, m in found:
        pr = _comparison(sv, m)
        groups = pr["spec"]["groups"]
        rules_file = tmp_path / f"{m.name}-comparison.yaml"
        rules_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        tests = []
        for r in (r for g in groups for r in g["rules"]):
            for_s = seconds(r["for"])
            samples = for_s // STEP + 12
            fire_at = for_s + 5 * STEP
            above, value = _inputs(r["alert"], ns, m.name, f"{m.name}-canary", m.served_name, 1.05, t, samples)
            below, _ = _inputs(r["alert"], ns, m.name, f"{m.name}-canary", m.served_name, 0.95, t, samples)
            labels = {"namespace": ns, **r["labels"]}
            expected = {
                "exp_labels": labels,
                "exp_annotations": {k: expand(v, labels, value) for k, v in r["annotations"].items()},
            }
            tests += [
                {
                    "name": f"{r['alert']} fires when the canary is worse by more than the margin",
                    "interval": "1m",
                    "input_series": above,
                    "alert_rule_test": [
                        {"eval_time": f"{(for_s - STEP) // STEP}m", "alertname": r["alert"], "exp_alerts": []},
                        {"eval_time": f"{fire_at // STEP}m", "alertname": r["alert"], "exp_alerts": [expected]},
                    ],
                },
                {
                    "name": f"{r['alert']} stays silent within the margin",
                    "interval": "1m",
                    "input_series": below,
                    "alert_rule_test": [
                        {"eval_time": f"{fire_at // STEP}m", "alertname": r["alert"], "exp_alerts": []}
                    ],
                },
            ]
        test_file = tmp_path / f"{m.name}-comparison-test.yaml"
        test_file.write_text(
            yaml.safe_dump(
                {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": tests}, sort_keys=False
            )
        )
        out = run_promtool("test", "rules", test_file.name, cwd=tmp_path)
        assert "SUCCESS" in out, out
        assert len(tests) == 2 * len(CANARY_ALERTS)


# -- config errors ---------------------------------------------------------------------------------
def _prod_canary(change) -> tuple[dict, dict]:
    values, secrets = stack_values("prod")
    values = copy.deepcopy(values)
    (i,) = [i for i, m in enumerate(values["models"]) if "canary" in m]
    change(values["models"][i])
    return values, secrets


@pytest.mark.parametrize(
    "change,path,words",
    [
        (lambda m: m["canary"].update(weight=0), "models[0].canary.weight", ""),
        (lambda m: m["canary"].update(weight=51), "models[0].canary.weight", ""),
        (lambda m: m["canary"].update(image="vllm/vllm-openai:latest"), "models[0].canary.image", "VLLM_IMAGES"),
        (lambda m: m["canary"].update(extraArgs=["--max-loras", "4"]), "models[0].canary.extraArgs", "typed field"),
        (lambda m: m["canary"].update(extraArgs=["-tp", "2"]), "models[0].canary.extraArgs", "tensorParallelSize"),
        (lambda m: m.update(canary={"weight": 10}), "models[0].canary", "changes nothing"),
        (lambda m: m["canary"].update(replicas=2), "models[0].canary.replicas", ""),
        (lambda m: m.update(name="a" * 34), "models[0].name", "no room for the canary"),
        (
            lambda m: m.update(autoscaling={"minReplicas": 0, "maxReplicas": 3, "scaleToZero": True}),
            "models[0].canary",
            "scaleToZero",
        ),
    ],
)
def test_bad_canary_config_is_rejected_at_its_path(change, path, words):
    values, secrets = _prod_canary(change)
    assert_rejected("prod", values, secrets, path, words)


REVISION = "0123456789abcdef0123456789abcdef01234567"


def test_a_canary_may_run_a_pinned_image_or_another_revision():
    values, secrets = _prod_canary(
        lambda m: m.update(canary={"weight": 5, "image": versions.VLLM_IMAGES[0], "revision": REVISION})
    )
    plan = load_stack_config("prod", values, secrets)
    assert plan.models[f"{values['models'][0]['name']}-canary"].max_replicas == 1


def test_a_streamed_canary_pins_its_revision():
    """prod streams from the model store, filled once per commit: a canary's revision is a commit too."""
    values, secrets = _prod_canary(lambda m: m.update(canary={"weight": 5, "revision": "0e9e39f"}))
    assert_rejected("prod", values, secrets, "models[0].canary.revision", "pin the Hugging Face commit")


def test_a_heavier_canary_autoscales_within_its_share():
    """weight 50 of maxReplicas 6: the canary scales 1..3 on the stable model's targets, on its own series."""
    from test_vllm import serve

    sv = serve("prod", lambda v, s: v["models"][0]["canary"].update(weight=50))
    m = sv.plan.config.models[0]
    name = f"{m.name}-canary"
    spec = sv.get("ScaledObject", name)["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, math.ceil(m.autoscaling.max_replicas * 50 / 100))
    queue = next(t for t in spec["triggers"] if t["name"] == "queue-depth")
    assert f'service="{name}"' in queue["metadata"]["query"]
    assert float(queue["metadata"]["threshold"]) == m.autoscaling.queue_depth_target
    stable = next(t for t in sv.get("ScaledObject", m.name)["spec"]["triggers"] if t["name"] == "queue-depth")
    assert f'service="{m.name}"' in stable["metadata"]["query"]


def test_a_canary_of_a_statefulset_model_gets_its_own_caches():
    """dev's model keeps a per-replica (ReadWriteOnce) cache: so does its canary."""
    from test_vllm import serve

    def mutate(v, s):
        v["models"][0]["canary"] = {"weight": 20, "extraArgs": ["--stream-interval", "8"]}
        pool = next(p for p in v["cluster"]["nodePools"] if p["name"] == v["models"][0]["nodePool"])
        pool["maxNodes"] += 2  # the canary's GPU and its rollout (the plan checks it: see above)

    sv = serve("dev", mutate)
    m = sv.plan.config.models[0]
    kind = workload_kind(m)
    canary = sv.get(kind, f"{m.name}-canary")
    if kind == "StatefulSet":
        (tpl,) = canary["spec"]["volumeClaimTemplates"]
        assert tpl["metadata"]["name"] == "model-cache"
        assert canary["spec"]["serviceName"] == f"{m.name}-canary"
    # the canary's own flags close the vLLM flags; only the API keys (GKE: vLLM checks them) follow
    assert _without_flag_values(container(canary)["args"], "--api-key")[-2:] == ["--stream-interval", "8"]
    assert sv.get("PrometheusRule", f"{m.name}-canary-comparison")
