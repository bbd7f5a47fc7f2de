"""Replicas larger than one node: pipeline-parallel Ray Serve LLM models and LeaderWorkerSet models.

For every multi-node model of every stack (prod has one of each) the rendered objects are
compared with what the config says, re-derived here: GPUs per replica (tensor x pipeline), the
Ray placement group (one bundle per GPU, PACK) and its validation by Ray 2.58's own schemas
(ServeDeploySchema, LLMConfig, PlacementGroupConfig, run in ``$RAY_PYTHON``: make tools creates
.venv-ray), the LeaderWorkerSet and its KEDA ScaledObject against their CRDs, worker group
sizing, capacity per stage and the feasibility plan in whole groups of nodes, the interconnect
statement, the group-member alert under promtool, per-rank dashboard panels, and the config
errors that keep impossible layouts out.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, STACKS, find, objects, render
from stackfiles import assert_rejected, stack_values
from test_alerts_promtool import check_queries, check_rules, promtool, queries_of, rule_groups, run_promtool
from upstream import custom_resource_errors, in_ci, upstream_path

from llm_infra.components.render import manifests
from llm_infra.config import load_stack_config
from llm_infra.config.architectures import ARCHITECTURES, checkpoint_for_repository
from llm_infra.config.capacity import GIB, LINEAR_BYTES
from llm_infra.config.versions import LWS, LWS_IMAGE_TAG, RAY_LLM_IMAGE, VLLM_IMAGE

# -- what the stacks hold ------------------------------------------------------------------------
PLANS = {s: load_stack_config(s, *stack_values(s)) for s in STACKS}
LWS_MODELS = [(s, m) for s, p in PLANS.items() for m in p.config.multi_node_models]
RAY_PP_MODELS = [
    (s, svc, m)
    for s, p in PLANS.items()
    for svc in p.config.ray_services
    for m in svc.models
    if m.pipeline_parallel_size > 1
]
RAY_STACKS = [s for s, p in PLANS.items() if p.config.ray_services]


def test_one_stack_serves_a_pp2_model_on_each_path():
    """The issue's 'done when': PP 2 across nodes on the Ray path and on the LeaderWorkerSet path."""
    assert [(s, m.name, m.pipeline_parallel_size) for s, m in LWS_MODELS] == [("prod", "llama31-70b-pp", 2)]
    assert [(s, svc.name, m.model_id, m.pipeline_parallel_size) for s, svc, m in RAY_PP_MODELS] == [
        ("prod", "ray-llm-72b", "qwen2.5-72b-awq", 2)
    ]
    for s, m in LWS_MODELS:
        pool = PLANS[s].pools[m.node_pool]
        assert m.tensor_parallel_size * m.pipeline_parallel_size > pool.gpus_per_node  # really spans nodes
    for s, svc, m in RAY_PP_MODELS:
        pool = PLANS[s].pools[svc.worker_pool]
        assert m.tensor_parallel_size * m.pipeline_parallel_size > svc.worker_gpus(pool)


# -- capacity per stage (independent re-derivation) ------------------------------------------------
def _stage_weights_gib(arch, pp: int, quantization: str | None) -> float:
    """Largest stage: ceil(L/pp) of the L decoder layers (linear layers at the method's bytes)
    plus one 16-bit vocabulary matrix (embedding on the first stage, LM head on the last)."""
    embedding = (1 if arch.tied_embeddings else 2) * arch.vocab_size * arch.hidden_size
    linear = LINEAR_BYTES.get(quantization or "") or 2
    layers_bytes = (arch.params_billion * 1e9 - embedding) * linear
    return (layers_bytes * math.ceil(arch.layers / pp) / arch.layers + arch.vocab_size * arch.hidden_size * 2) / GIB


def _multi_node_plans():
    for s, m in LWS_MODELS:
        yield s, m.name, m, PLANS[s].multinode_models[m.name], PLANS[s].pools[m.node_pool].gpus_per_node
    for s, svc, m in RAY_PP_MODELS:
        key = f"{svc.name}/{m.model_id}"
        yield s, key, m, PLANS[s].ray_models[key], svc.worker_gpus(PLANS[s].pools[svc.worker_pool])


@pytest.mark.parametrize("case", list(_multi_node_plans()), ids=lambda c: f"{c[0]}-{c[1]}")
def test_capacity_counts_gpus_per_replica_and_layers_per_stage(case):
    _stack, _key, model, plan, _node_gpus = case
    checkpoint = checkpoint_for_repository(model.model)
    arch = ARCHITECTURES[checkpoint.architecture]
    tp, pp = model.tensor_parallel_size, model.pipeline_parallel_size
    assert (plan.tensor_parallel_size, plan.pipeline_parallel_size) == (tp, pp)
    assert plan.gpus_per_replica == plan.capacity.gpus == tp * pp
    assert plan.nodes_per_replica == math.ceil(tp * pp / plan.pool.gpus_per_node) >= 2
    quant = model.quantization or checkpoint.quantization
    assert plan.capacity.weights_per_gpu_gib == pytest.approx(_stage_weights_gib(arch, pp, quant) / tp, rel=1e-9)
    # the whole model is still counted once (cache size, plan)
    assert plan.capacity.weights_gib > plan.capacity.weights_per_gpu_gib * tp * (pp - 0.5)
    # KV cache per token and GPU: the stage's layers only, KV heads split by TP
    per_token_gpu = 2 * math.ceil(arch.layers / pp) * math.ceil(arch.kv_heads / tp) * arch.head_dim * 2
    assert plan.capacity.kv_blocks == int(max(0.0, plan.capacity.kv_per_gpu_gib * GIB) // (per_token_gpu * 16))
    assert plan.capacity.fits
    # cost: whole nodes per replica
    if plan.pool.hourly_usd is not None:
        assert plan.hourly_cost_min == pytest.approx(model_min(model) * plan.nodes_per_replica * plan.pool.hourly_usd)


def model_min(model) -> int:
    return model.autoscaling.min_replicas if hasattr(model, "autoscaling") else model.min_replicas


def test_the_same_model_without_pipeline_stages_would_not_fit_one_node():
    """Why these replicas span nodes: on one node the model does not fit (the check says so)."""
    for stack, m in LWS_MODELS:
        values, secrets = stack_values(stack)
        values = copy.deepcopy(values)
        i = [x["name"] for x in values["multiNodeModels"]].index(m.name)
        values["models"] = [
            *values.get("models", []),
            {
                "name": "single-node",
                "model": m.model,
                "nodePool": m.node_pool,
                "maxModelLen": m.max_model_len,
                "requiresHfToken": True,
                "cache": {"accessMode": "ReadWriteMany"},
            },
        ]
        del values["multiNodeModels"][i]
        assert_rejected(stack, values, secrets, f"models[{len(values['models']) - 1}].model", "does not fit")


# -- plan.json / summary.md -----------------------------------------------------------------------
def test_plan_reports_gpus_and_whole_nodes_per_replica_for_every_model():
    for stack in STACKS:
        rec = render(stack)
        plan = PLANS[stack]
        models = rec.outputs["models"]
        expected = {**plan.models, **plan.ray_models, **plan.multinode_models}
        assert set(models) == set(expected)
        for key, p in expected.items():
            m = models[key]
            gpus = p.tensor_parallel_size * p.pipeline_parallel_size
            assert m["gpusPerReplica"] == gpus
            assert m["pipelineParallelSize"] == p.pipeline_parallel_size
            assert m["nodesPerReplica"] == max(1, math.ceil(gpus / p.pool.gpus_per_node))
            assert ("interconnect" in m) == (gpus > p.pool.gpus_per_node)


def test_feasibility_counts_whole_groups_of_nodes():
    rec = render("prod")
    pools = rec.outputs["nodePools"]
    plan = PLANS["prod"]
    for _stack, m in LWS_MODELS:
        p = plan.multinode_models[m.name]
        feas = pools[m.node_pool]["feasibility"]
        key = f"multiNodeModels/{m.name}"
        nodes_per_group = p.pipeline_parallel_size  # one TP-GPU pod per node here
        assert feas["podsPerNode"][key] == p.pool.gpus_per_node // p.tensor_parallel_size == 1
        assert feas["replicaShape"][key] == {
            "gpusPerReplica": p.tensor_parallel_size * p.pipeline_parallel_size,
            "podsPerReplica": p.pipeline_parallel_size,
            "nodesPerReplica": nodes_per_group,
        }
        assert feas["nodesNeeded"]["min"] == m.autoscaling.min_replicas * nodes_per_group
        assert feas["nodesNeeded"]["max"] == m.autoscaling.max_replicas * nodes_per_group
        # a surge is a whole group: with no room for one, groups are replaced one at a time
        surge_fits = (m.autoscaling.max_replicas + 1) * nodes_per_group <= feas["reachNodes"]
        assert feas["rollouts"][key] == ("surge 1 group" if surge_fits else "maxUnavailable 1 group")
    for _stack, svc, m in RAY_PP_MODELS:
        feas = pools[svc.worker_pool]["feasibility"]
        key = f"rayServices/{svc.name}"
        gpus = m.tensor_parallel_size * m.pipeline_parallel_size
        worker = svc.worker_gpus(plan.pools[svc.worker_pool])
        assert feas["replicaShape"][key]["gpusPerReplica"] == gpus
        assert feas["replicaShape"][key]["podsPerReplica"] == gpus // worker
        # the worker group's minimum holds the minimum replicas
        assert feas["nodesNeeded"]["min"] >= m.min_replicas * gpus // worker
    summary = (ROOT / "build").exists() or True  # summary is rendered from the same outputs
    assert summary


def test_summary_shows_groups_and_interconnect(tmp_path):
    from llm_infra.components.render.output import summary

    text = summary(render("prod"))
    assert "| llama31-70b-pp | lws | a10g-x4-pp | 4 x 2 | 8 (2) |" in text
    assert "| ray-llm-72b/qwen2.5-72b-awq | ray | l40s-pp | 1 x 2 | 2 (2) |" in text
    assert "llama31-70b-pp 8 GPUs = 2 pods on 2 whole nodes" in text
    assert "## Multi-node replicas: interconnect" in text


def test_interconnect_plan_states_tcp_and_its_cost():
    models = render("prod").outputs["models"]
    lws = models["llama31-70b-pp"]["interconnect"]
    # Llama-3.1-70B: hidden 8192, hidden states + residual in 16 bit cross the one boundary
    assert lws["bytesPerTokenPerBoundary"] == 2 * 8192 * 2
    assert lws["stageBoundaries"] == 1
    assert lws["transport"].startswith("TCP") and lws["fabricEnabled"] is False
    assert lws["nicGbps"] == 40  # g5.12xlarge (Amazon EC2 G5 Instances)
    prefill = PLANS["prod"].multinode_models["llama31-70b-pp"].capacity.profile_tokens
    assert lws["prefillBatchMs"] == pytest.approx(prefill * 32768 / (40e9 / 8) * 1000, abs=0.01)
    assert "TCP" in lws["note"] and "40 Gbps" in lws["note"]
    ray = models["ray-llm-72b/qwen2.5-72b-awq"]["interconnect"]
    assert ray["nicGbps"] == 20 and ray.get("fabric") is None  # g6e.2xlarge: no EFA (None is dropped from outputs)


def test_interconnect_names_an_unused_fabric():
    from llm_infra.config.multinode_plan import interconnect_plan

    plan = PLANS["prod"].multinode_models["llama31-70b-pp"]
    out = interconnect_plan(plan, "p4d.24xlarge", "eks")
    assert out["fabric"] == "EFA" and out["fabricEnabled"] is False
    assert "EFA" in out["note"] and "not enabled" in out["note"] and "TCP" in out["note"]
    assert out["nicGbps"] == 400


# -- Ray path -------------------------------------------------------------------------------------
def _serve_config(stack: str, name: str) -> dict[str, Any]:
    return yaml.safe_load(find(render(stack), "RayService", name)["spec"]["serveConfigV2"])


@pytest.mark.parametrize("case", RAY_PP_MODELS, ids=lambda c: f"{c[0]}-{c[1].name}-{c[2].model_id}")
def test_ray_pipeline_parallel_model_gets_its_placement_group(case):
    stack, svc, model = case
    tp, pp = model.tensor_parallel_size, model.pipeline_parallel_size
    (app,) = _serve_config(stack, svc.name)["applications"]
    (llm,) = [c for c in app["args"]["llm_configs"] if c["model_loading_config"]["model_id"] == model.model_id]
    assert llm["engine_kwargs"]["tensor_parallel_size"] == tp
    assert llm["engine_kwargs"]["pipeline_parallel_size"] == pp
    pg = llm["placement_group_config"]
    # one bundle per GPU of the replica (Ray 2.58 VLLMEngineConfig.num_devices = tp x pp), PACK
    assert pg == {"bundles": [{"CPU": 1, "GPU": 1}] * (tp * pp), "strategy": "PACK"}
    assert "placement_group_bundles" not in llm["deployment_config"]  # Ray refuses them there


@pytest.mark.parametrize("case", RAY_PP_MODELS, ids=lambda c: f"{c[0]}-{c[1].name}-{c[2].model_id}")
def test_ray_worker_group_holds_whole_stages(case):
    stack, svc, model = case
    tp, pp = model.tensor_parallel_size, model.pipeline_parallel_size
    spec = find(render(stack), "RayService", svc.name)["spec"]["rayClusterConfig"]
    (group,) = spec["workerGroupSpecs"]
    worker_gpus = int(group["rayStartParams"]["num-gpus"])
    container = group["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(worker_gpus)
    assert worker_gpus == tp  # one stage per worker
    # the group can hold the maximum replicas, and its minimum holds the minimum replicas
    assert group["maxReplicas"] * worker_gpus >= model.max_replicas * tp * pp
    assert group["minReplicas"] * worker_gpus >= model.min_replicas * tp * pp
    # each bundle's CPU (plus the replica actor's) fits a worker
    cpu = container["resources"]["limits"]["cpu"]
    assert float(cpu) >= worker_gpus + 1
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == "eth0"


def test_single_node_ray_services_are_unchanged():
    """No pipeline stages: no placement_group_config, no NCCL interface pinning."""
    for stack in RAY_STACKS:
        for svc in PLANS[stack].config.ray_services:
            if any(m.pipeline_parallel_size > 1 for m in svc.models):
                continue
            (app,) = _serve_config(stack, svc.name)["applications"]
            for llm in app["args"]["llm_configs"]:
                assert "placement_group_config" not in llm
                assert "pipeline_parallel_size" not in llm["engine_kwargs"]
            spec = find(render(stack), "RayService", svc.name)["spec"]["rayClusterConfig"]
            env = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0].get("env", [])
            assert "NCCL_SOCKET_IFNAME" not in {e["name"] for e in env}


# Ray's own schemas, in Ray's own interpreter (tests/ has no Ray: its pins conflict with checkov's)
RAY_CHECK = r"""
import json, sys, logging
logging.disable(logging.WARNING)
from ray.serve.schema import ServeDeploySchema
from ray.llm._internal.serve.core.configs.llm_config import LLMConfig
from ray.llm._internal.common.placement import PlacementGroupConfig
import ray
out = {"ray": ray.__version__, "results": []}
for name, config in json.load(sys.stdin).items():
    ServeDeploySchema.model_validate(config) if hasattr(ServeDeploySchema, "model_validate") else ServeDeploySchema.parse_obj(config)
    for app in config["applications"]:
        for raw in app["args"]["llm_configs"]:
            llm = LLMConfig.model_validate(raw)
            pg = raw.get("placement_group_config")
            if pg is not None:
                PlacementGroupConfig(**pg)
            out["results"].append({
                "service": name,
                "model_id": llm.model_id,
                "accelerator_type": llm.accelerator_type,
                "placement_group_config": llm.placement_group_config,
                "accelerator_kind": getattr(llm.accelerator_config, "kind", None),
            })
print(json.dumps(out))
"""


def _ray_python() -> str:
    candidates = [os.environ.get("RAY_PYTHON"), str(ROOT / ".venv-ray" / "bin" / "python")]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    message = "Ray's interpreter not found: set RAY_PYTHON (make tools creates .venv-ray from requirements-ray.txt)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("stack", RAY_STACKS)
def test_serve_config_validates_against_rays_own_schemas(stack):
    configs = {
        o["metadata"]["name"]: yaml.safe_load(o["spec"]["serveConfigV2"]) for o in objects(render(stack), "RayService")
    }
    proc = subprocess.run(
        [_ray_python(), "-c", RAY_CHECK],
        check=False,
        input=json.dumps(configs),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ray"] == RAY_LLM_IMAGE.rsplit(":", 1)[1].split("-", 1)[0]  # the pinned Ray
    expected = [
        (n, m.model_id)
        for n in configs
        for svc in PLANS[stack].config.ray_services
        if svc.name == n
        for m in svc.models
    ]
    assert [(r["service"], r["model_id"]) for r in out["results"]] == expected
    for r in out["results"]:
        assert r["accelerator_kind"] == "gpu"
        if r["placement_group_config"] is not None:
            assert r["placement_group_config"]["strategy"] == "PACK"


def test_rays_schema_rejects_a_bad_placement_group():
    """The check above can fail: Ray refuses a strategy it does not know and both bundle forms."""
    bad = {"x": _serve_config("prod", "ray-llm-72b")}
    llm = bad["x"]["applications"][0]["args"]["llm_configs"][0]
    llm["placement_group_config"]["strategy"] = "TP_AWARE"
    proc = subprocess.run(
        [_ray_python(), "-c", RAY_CHECK],
        check=False,
        input=json.dumps(bad),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "strategy" in proc.stderr


# -- LeaderWorkerSet path -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prod():
    return render("prod")


def _startup_window(m, plan) -> int:
    """The group's start window: configured, or re-derived here from the plan's phases: engine
    start x margin (rounded to 10 s probe periods, at least 300 s) plus the workers' node and image
    pull, since the leader's probe runs while its group assembles."""
    if m.startup_timeout_seconds is not None:
        return m.startup_timeout_seconds
    est = plan.cold_start
    margin = PLANS["prod"].config.cold_start.startup_margin
    engine = max(300, math.ceil(est.engine_start_seconds * margin / 10) * 10)
    assembly = sum(p.seconds for p in est.phases if p.name in ("nodeProvisioning", "imagePull"))
    window = engine + -(-assembly // 10) * 10
    assert est.startup_window_seconds == window
    return window


@pytest.mark.parametrize("case", LWS_MODELS, ids=lambda c: f"{c[0]}-{c[1].name}")
def test_leader_worker_set_matches_the_config_and_its_crd(case):
    stack, m = case
    rec = render(stack)
    plan = PLANS[stack].multinode_models[m.name]
    pool = PLANS[stack].pools[m.node_pool]
    lws = find(rec, "LeaderWorkerSet", m.name)
    assert custom_resource_errors(lws) == []
    spec = lws["spec"]
    t = spec["leaderWorkerTemplate"]
    assert t["size"] == m.pipeline_parallel_size  # group = stages
    assert t["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert spec["replicas"] == m.autoscaling.min_replicas
    for role, tpl in (("leader", t["leaderTemplate"]), ("worker", t["workerTemplate"])):
        pod = tpl["spec"]
        (c,) = pod["containers"]
        assert c["image"] == VLLM_IMAGE
        limits = c["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == str(m.tensor_parallel_size) == str(plan.tensor_parallel_size)
        assert c["resources"]["requests"] == limits
        assert pod["nodeSelector"] == pool.selector and pod["tolerations"] == pool.tolerations()
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["NCCL_SOCKET_IFNAME"] == "eth0" and env["HF_HOME"] == "/model-cache"
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{m.shm_size_gib}Gi"}
        cache = next(v for v in pod["volumes"] if v["name"] == "model-cache")
        assert cache["persistentVolumeClaim"]["claimName"] == f"{m.name}-model-cache"
        assert tpl["metadata"]["labels"]["llm-infra/role"] == role
        script = c["command"][-1]
        assert c["command"][:2] == ["sh", "-c"]
        assert "/vllm-workspace/examples/online_serving/multi-node-serving.sh" in script
        if role == "leader":
            assert "leader --ray_cluster_size=$(LWS_GROUP_SIZE)" in script
            serve = script.split("&& exec ", 1)[1].split()
            # the model, or with the model store its object path (test_model_store.py checks the streaming)
            streamed = PLANS[stack].config.model_store.enabled
            assert serve[:2] == ["vllm", "serve"]
            if streamed:
                assert serve[2].split("://", 1)[0] in ("s3", "gs") and serve[2].endswith(f"/{m.model}/{m.revision}")
            else:
                assert serve[2] == m.model
            flags = dict(zip(serve[3::2], serve[4::2], strict=False))
            assert flags["--tensor-parallel-size"] == str(m.tensor_parallel_size)
            assert flags["--pipeline-parallel-size"] == str(m.pipeline_parallel_size)
            assert flags["--distributed-executor-backend"] == "ray"
            assert flags["--max-model-len"] == str(plan.max_model_len)
            assert flags["--served-model-name"] == m.served_name
            # probes on the leader only (the API server); workers have none
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
            assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= _startup_window(
                m, plan
            )
            assert [i["name"] for i in pod.get("initContainers", [])] == ([] if streamed else ["model-download"])
        else:
            assert "worker --ray_address=$(LWS_LEADER_ADDRESS)" in script
            assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(c)
            assert "initContainers" not in pod
        # workers wait for the leader's download and start-up before giving up (not 300 s)
        timeout = int(script.split("--ray_init_timeout=", 1)[1].split()[0])
        assert timeout >= _startup_window(m, plan)


def test_lws_crd_has_the_scale_subresource_keda_needs():
    crd = yaml.safe_load(upstream_path("crds", "leaderworkerset.x-k8s.io", "leaderworkersets.yaml").read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert v1["subresources"]["scale"] == {
        "labelSelectorPath": ".status.hpaPodSelector",
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
    }


@pytest.mark.parametrize("case", LWS_MODELS, ids=lambda c: f"{c[0]}-{c[1].name}")
def test_service_scaler_and_monitor_target_the_leaders(case):
    stack, m = case
    rec = render(stack)
    lws = find(rec, "LeaderWorkerSet", m.name)
    leader_labels = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]
    worker_labels = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["metadata"]["labels"]
    svc = find(rec, "Service", m.name)
    sel = svc["spec"]["selector"]
    assert sel.items() <= leader_labels.items() and not sel.items() <= worker_labels.items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    so = find(rec, "ScaledObject", m.name)
    assert custom_resource_errors(so) == []
    assert so["spec"]["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": m.name,
    }
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (
        m.autoscaling.min_replicas,
        m.autoscaling.max_replicas,
    )
    queue = next(t for t in so["spec"]["triggers"] if t["name"] == "queue-depth")
    assert f'model_name="{m.served_name}"' in queue["metadata"]["query"]
    assert queue["metadata"]["threshold"] == f"{m.autoscaling.queue_depth_target:g}"
    sm = find(rec, "ServiceMonitor", m.name)
    assert custom_resource_errors(sm) == []
    assert sm["spec"]["selector"]["matchLabels"] == sel
    pvc = find(rec, "PersistentVolumeClaim", f"{m.name}-model-cache")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    weights = PLANS[stack].multinode_models[m.name].capacity.weights_gib
    assert int(pvc["spec"]["resources"]["requests"]["storage"][:-2]) >= weights


def test_lws_controller_release_is_pinned(prod):
    (rel,) = [
        r
        for r in prod.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("chart", "").rsplit("/", 1)[-1] == "lws"
    ]
    assert rel.inputs["version"] == LWS.version == LWS_IMAGE_TAG.lstrip("v")
    # OCI: the chart is named by its full reference, no repository (components/addons/base.py chart_source)
    assert rel.inputs["chart"] == "oci://registry.k8s.io/lws/charts/lws" and "repositoryOpts" not in rel.inputs
    assert rel.inputs["namespace"] == "lws-system"
    values = rel.inputs["values"]
    assert values["image"]["manager"] == {"tag": LWS_IMAGE_TAG, "pullPolicy": "IfNotPresent"}
    upstream = yaml.safe_load(upstream_path("helm-values", "lws", "values.yaml").read_text())
    assert set(values["image"]["manager"]) <= set(upstream["image"]["manager"])
    assert "affinity" in upstream
    # the LeaderWorkerSet waits for the controller (its webhooks validate it)
    lws = next(r for r in prod.resources if r.type == "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
    assert rel.urn in lws.depends_on


def test_stacks_without_multi_node_models_install_no_lws():
    for stack in STACKS:
        rec = render(stack)
        # OCI charts are referenced as oci://<registry>/<path>/<chart> (components/addons/base.py)
        charts = {
            r.inputs.get("chart", "").rsplit("/", 1)[-1]
            for r in rec.resources
            if r.type == "kubernetes:helm.sh/v3:Release"
        }
        assert ("lws" in charts) == bool(PLANS[stack].config.multi_node_models)


# -- monitoring ------------------------------------------------------------------------------------
def test_group_alert_and_rank_panels_pass_promtool(prod, tmp_path):
    objs = [o for o in manifests(prod) if o["metadata"]["name"].startswith("llama31-70b-pp")]
    groups = rule_groups(objs)
    (group,) = groups
    alerts = {r["alert"] for r in group["rules"]}
    assert "VllmMultiNodeGroupIncomplete" in alerts
    check_rules(groups, tmp_path, "lws-rules")
    queries = queries_of(objs)
    titles = {w.split("/")[1] for w, _ in queries}
    assert {"GPU utilization by rank", "GPU memory used by rank", "Running members per group"} <= titles
    check_queries(queries, tmp_path, "lws-queries")


def _series(pod: str, phase: str, ns: str = "llm-prod") -> list[dict[str, str]]:
    out = []
    for p in ("Running", "Pending", "Failed", "Unknown", "Succeeded"):
        out.append(
            {
                "series": f'kube_pod_status_phase{{namespace="{ns}",pod="{pod}",phase="{p}"}}',
                "values": f"{int(p == phase)}x30",
            }
        )
    return out


def test_group_alert_fires_for_a_group_missing_a_member(prod, tmp_path):
    promtool()
    m = next(m for s, m in LWS_MODELS if s == "prod")
    rule_obj = find(prod, "PrometheusRule", m.name)
    (rule,) = [
        r for g in rule_obj["spec"]["groups"] for r in g["rules"] if r["alert"] == "VllmMultiNodeGroupIncomplete"
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    for_ = int(rule["for"][:-1])
    name = m.name
    series = []
    # group 0 complete; group 1's worker Pending (no node); group 2's only pod is its leader
    # (the worker was never created); a decoy in another namespace; another model's pods
    series += _series(f"{name}-0", "Running") + _series(f"{name}-0-1", "Running")
    series += _series(f"{name}-1", "Running") + _series(f"{name}-1-1", "Pending")
    series += _series(f"{name}-2", "Pending")
    series += _series(f"{name}-3", "Running", ns="other") + _series(f"{name}-3-1", "Pending", ns="other")
    series += _series("llama31-8b-0", "Pending")
    for pod in (f"{name}-0", f"{name}-1", f"{name}-2"):
        series.append({"series": f'kube_pod_info{{namespace="llm-prod",pod="{pod}"}}', "values": "1x30"})
    labels = {"severity": "critical", "model_name": m.served_name, "llm_service": name, "namespace": "llm-prod"}
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{for_ - 1}m", "alertname": rule["alert"], "exp_alerts": []},
                {
                    "eval_time": f"{for_ + 1}m",
                    "alertname": rule["alert"],
                    "exp_alerts": [
                        {"exp_labels": {**labels, "group": "1"}, "exp_annotations": _annotations(rule, "1", 1)},
                        {"exp_labels": {**labels, "group": "2"}, "exp_annotations": _annotations(rule, "2", 2)},
                    ],
                },
            ],
        }
    ]
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    run_promtool("test", "rules", "test.yaml", cwd=tmp_path)


def _annotations(rule: dict[str, Any], group: str, missing: int) -> dict[str, str]:
    a = rule["annotations"]
    return {
        "summary": a["summary"].replace("{{ $labels.group }}", group),
        "description": a["description"]
        .replace('{{ $value | printf "%.0f" }}', str(missing))
        .replace("{{ $labels.group }}", group),
        "runbook_url": a["runbook_url"],
    }


def test_runbook_documents_the_group_alert():
    text = (ROOT / "docs" / "runbooks" / "multi-node.md").read_text()
    assert "## VllmMultiNodeGroupIncomplete" in text


# -- config errors -----------------------------------------------------------------------------------
def _prod() -> tuple[dict[str, Any], dict[str, bool]]:
    values, secrets = stack_values("prod")
    return copy.deepcopy(values), secrets


def _ray_72b(values: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    i = [s["name"] for s in values["rayServices"]].index("ray-llm-72b")
    return i, values["rayServices"][i]


def test_ray_stage_must_fill_one_worker():
    values, secrets = _prod()
    i, svc = _ray_72b(values)
    svc["workerPool"] = "a10g-x4-pp"
    svc["gpusPerWorker"] = 4
    svc["models"][0]["tensorParallelSize"] = 2
    svc["models"][0]["pipelineParallelSize"] = 4
    assert_rejected("prod", values, secrets, f"rayServices[{i}].models[0].tensorParallelSize", "whole 4-GPU worker")


def test_ray_group_too_small_for_the_replicas_is_rejected():
    values, secrets = _prod()
    i, svc = _ray_72b(values)
    svc["maxWorkers"] = 3  # 2 replicas x 2 GPUs need 4 one-GPU workers
    assert_rejected("prod", values, secrets, f"rayServices[{i}].models[0].maxReplicas", "2 replicas x 2 GPUs")


def test_lws_tensor_parallel_beyond_a_node_is_rejected():
    values, secrets = _prod()
    values["multiNodeModels"][0]["tensorParallelSize"] = 8
    assert_rejected("prod", values, secrets, "multiNodeModels[0].tensorParallelSize", "exceeds the 4 GPUs")


def test_lws_needs_a_shared_cache():
    values, secrets = _prod()
    values["cluster"]["eks"]["efsModelCache"] = False
    values["models"] = []  # the vLLM models' RWX caches would be reported too
    values["rayServices"] = []
    assert_rejected("prod", values, secrets, "multiNodeModels[0].cache", "ReadWriteMany")


def test_lws_needs_keda_to_scale_groups():
    values, secrets = _prod()
    values.setdefault("addons", {})["keda"] = {"enabled": False}
    values["addons"]["prometheusAdapter"] = {"enabled": True}
    values["models"] = []
    assert_rejected("prod", values, secrets, "multiNodeModels[0].autoscaling", "KEDA")


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("extraArgs", ["--pipeline-parallel-size=4"], "set from pipelineParallelSize"),
        ("extraArgs", ["--distributed-executor-backend", "mp"], "set from pipelineParallelSize"),
        ("pipelineParallelSize", 1, "greater than or equal to 2"),
        ("autoscaling", {"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True}, "no wake-up signal"),
    ],
)
def test_lws_field_errors(field, value, words):
    values, secrets = _prod()
    values["multiNodeModels"][0][field] = value
    path = "multiNodeModels[0]" + (f".{field}" if field not in ("autoscaling",) else "")
    assert_rejected("prod", values, secrets, path, words)


def test_lws_controller_switched_off_is_an_error():
    values, secrets = _prod()
    values.setdefault("addons", {})["lws"] = {"enabled": False}
    assert_rejected("prod", values, secrets, "addons.lws.enabled", "LeaderWorkerSet controller")


def test_gpu_quota_counts_whole_groups():
    values, secrets = _prod()
    # 43 GPUs at max (8B 6 + its canary 1 + 70B 12 + Ray 4 + Ray 72B 4): 16 of them are the two 8-GPU groups
    values["security"]["gpuQuota"] = 40
    assert_rejected("prod", values, secrets, "security.gpuQuota", "cannot admit the 43")
