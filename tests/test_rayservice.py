"""KubeRay RayService with Ray Serve LLM: every model of every rayService of every stack.

Each case renders the real program (``run_program``) and compares the RayService, its
``serveConfigV2`` (parsed back with ``yaml.safe_load``), its monitoring objects and its
dependencies with what the typed config, the model plans and the pool facts say. Besides
the stack files, an ``onprem`` variant serves two models (one tensor parallel) on the
A100 pool, so an existing cluster, sized A100 accelerator types and a multi-GPU worker
are covered too. The add-ons handle is completed where a stack lacks a piece (Grafana,
CRD owners) so every builder is exercised; bad configs are checked with their paths.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import expected
import kubernetes_validate
import pulumi
import pytest
import yaml
from conftest import PROJECT, STACKS
from stackfiles import assert_rejected, stack_values
from test_rendered_schemas import KUBERNETES_SCHEMA_VERSION
from upstream import custom_resource_errors, is_custom

import llm_infra.components.platform as platform_module
from llm_infra.components.addons.handles import MONITORING_GROUP, RAY_GROUP, AddonsHandle
from llm_infra.components.render import Recording, RenderError, manifests, run_program
from llm_infra.components.serving import ray_observability as ro
from llm_infra.config import StackPlan, load_stack_config
from llm_infra.config.ray import RAY_NVIDIA_ACCELERATOR_TYPES, ray_accelerator_type
from llm_infra.config.versions import RAY_LLM_IMAGE

EXPECTED_ACCELERATOR = {
    # GPU of the pool -> Ray's name (ray.util.accelerators.accelerators)
    "NVIDIA A10G": "A10G",
    "NVIDIA L4": "L4",
    "NVIDIA L40S": "L40S",
    "NVIDIA A100 40GB": "A100-40G",
    "NVIDIA A100 80GB": "A100-80G",
    "NVIDIA H100 80GB": "H100",
}

ONPREM_RAY = [
    {
        "name": "ray-a100",
        "workerPool": "a100",
        "gpusPerWorker": 2,
        "minWorkers": 1,
        # 2 x 2 GPUs beside qwen25-72b's 3 x 4 fill the pool's 2 x 8 GPUs (capacity feasibility)
        "maxWorkers": 2,
        "workerCpu": 24,
        "workerMemoryGib": 192,
        "shmSizeGib": 16,
        "upgradeStrategy": "NewClusterWithIncrementalUpgrade",
        "incrementalUpgrade": {
            "gatewayClassName": "istio",
            "maxSurgePercent": 50,
            "stepSizePercent": 10,
            "intervalSeconds": 20,
        },
        "autoscaler": {"upscalingMode": "Conservative", "idleTimeoutSeconds": 600},
        "terminationGracePeriodSeconds": 600,
        "gracefulShutdownTimeoutSeconds": 300,
        "models": [
            {
                "modelId": "llama-8b",
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "revision": "0e9e39f",
                "maxNumSeqs": 128,
                "minReplicas": 1,
                "maxReplicas": 2,
                "targetOngoingRequests": 16,
                "maxOngoingRequests": 48,
                # Ray Serve LLM's multiplexed LoRA: adapters loaded on demand from a bucket
                "lora": {
                    "dynamicLoadingPath": "s3://llm-adapters/llama-8b",
                    "maxAdaptersPerReplica": 8,
                    "maxLoras": 2,
                    "maxLoraRank": 32,
                },
            },
            {
                "modelId": "qwen-72b-awq",
                "model": "Qwen/Qwen2.5-72B-Instruct-AWQ",
                "quantization": "awq",
                "tensorParallelSize": 2,
                "maxModelLen": 16384,
                "gpuMemoryUtilization": 0.85,
                "dtype": "float16",
                "enablePrefixCaching": False,
                "minReplicas": 0,
                "maxReplicas": 1,
            },
        ],
    }
]


@dataclass(frozen=True)
class Case:
    id: str
    stack: str
    overrides: dict[str, Any]


def _cases() -> list[Case]:
    cases = [Case(s, s, {}) for s in STACKS if stack_values(s)[0].get("rayServices")]
    cases.append(Case("onprem+ray", "onprem", {"rayServices": ONPREM_RAY}))
    return cases


CASES = _cases()


@dataclass
class Rendered:
    case: Case
    plan: StackPlan
    recording: Recording
    handle: AddonsHandle
    owners: dict[str, list[str]]


def _plan(case: Case) -> StackPlan:
    values, secrets = stack_values(case.stack)
    values.update(copy.deepcopy(case.overrides))
    return load_stack_config(case.stack, values, secrets)


def _addons_with_every_piece():
    """The real add-ons, with whatever this stack's handle lacks filled in (Grafana labels,
    prometheus-operator CRDs, CRD owners), so the Ray component builds all its objects."""
    real = platform_module.ClusterAddons
    seen: dict[str, Any] = {}

    class Addons(real):  # type: ignore[misc, valid-type]
        def __init__(self, name, args, opts=None):
            super().__init__(name, args, opts)
            # handles are frozen: the test swaps in an adjusted copy before anything reads it
            mon = self.handle.monitoring
            mon = dataclasses.replace(
                mon,
                operator_crds=True,
                monitor_labels=mon.monitor_labels or {"release": "test"},
                dashboard_labels=mon.dashboard_labels or {"grafana_dashboard": "1"},
            )
            owners = dict(self.handle.crd_owners)
            for group in (RAY_GROUP, MONITORING_GROUP):
                if not owners.get(group):
                    # a custom resource: depending on a childless component would expand to nothing
                    owner = pulumi.CustomResource(
                        "test:index:CrdOwner", f"{name}-{group}", {}, pulumi.ResourceOptions(parent=self)
                    )
                    owners[group] = [owner]
            self.handle = dataclasses.replace(self.handle, monitoring=mon, crd_owners=owners)
            seen["handle"] = self.handle

    return Addons, seen


_rendered: dict[str, Rendered] = {}


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def rendered(request) -> Rendered:
    return _render(request.param)


def _render(case: Case) -> Rendered:
    if case.id not in _rendered:
        addons, seen = _addons_with_every_piece()
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(platform_module, "ClusterAddons", addons)
            rec = run_program(PROJECT, case.stack, config_overrides=case.overrides)
        handle: AddonsHandle = seen["handle"]
        owners = {}
        for group in (RAY_GROUP, MONITORING_GROUP):
            resources = handle.depends_for(group)
            urns = [r.urn for r in rec.resources if any(_same(r, o) for o in resources)]
            assert len(urns) == len(resources), f"owners of {group} not found in the recording"
            owners[group] = urns
        _rendered[case.id] = Rendered(case, _plan(case), rec, handle, owners)
    return _rendered[case.id]


def _same(record, resource: pulumi.Resource) -> bool:
    return record.name == resource._name and record.type == resource._type


def _objects(r: Rendered, kind: str) -> list[dict[str, Any]]:
    return [
        o
        for o in manifests(r.recording)
        if o["kind"] == kind and o["metadata"].get("namespace") == r.plan.config.namespace
    ]


def _one(r: Rendered, kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects(r, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _record(r: Rendered, kind: str, name: str):
    found = [
        x
        for x in r.recording.resources
        if x.custom and x.inputs.get("kind") == kind and x.inputs["metadata"]["name"] == name
    ]
    assert len(found) == 1
    return found[0]


def _services(r: Rendered):
    return r.plan.config.ray_services


def _raw_model(case: Case, service: str, model_id: str) -> dict[str, Any]:
    """A Ray model's entry as the stack file (or the case's override) writes it."""
    values = {**stack_values(case.stack)[0], **case.overrides}
    (svc,) = [s for s in values["rayServices"] if s["name"] == service]
    (model,) = [m for m in svc["models"] if m["modelId"] == model_id]
    return model


def test_a_ray_model_serves_lora_adapters():
    """The fixture stack covers Ray Serve LLM's LoRA (prod's Ray models serve none)."""
    assert any("lora" in m for svc in ONPREM_RAY for m in svc["models"])


def _container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in pod_spec["containers"] if c["name"] == name)


def _gib(q: str) -> int:
    assert q.endswith("Gi"), q
    return int(q[:-2])


def _cpu(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


# -- serveConfigV2 ---------------------------------------------------------------------------
def test_every_stack_case_has_two_or_more_models_behind_one_rayservice(rendered):
    # prod's second RayService (ray-llm-72b) holds one model whose replica spans workers
    assert any(len(svc.models) >= 2 for svc in _services(rendered))
    for svc in _services(rendered):
        _one(rendered, "RayService", svc.name)
    if rendered.case.id == "prod":
        assert [m.model_id for m in _services(rendered)[0].models] == ["mistral-7b", "qwen2.5-7b"]


def test_serve_config_matches_the_config_for_every_model(rendered):
    for svc in _services(rendered):
        pool = rendered.plan.pools[svc.worker_pool]
        obj = _one(rendered, "RayService", svc.name)
        serve = yaml.safe_load(obj["spec"]["serveConfigV2"])
        assert serve["proxy_location"] == "EveryNode"
        assert serve["http_options"] == {"host": "0.0.0.0", "port": 8000}
        (app,) = serve["applications"]
        assert app["name"] == svc.name
        assert app["import_path"] == "ray.serve.llm:build_openai_app"
        assert app["route_prefix"] == "/"
        assert set(app["args"]) == {"llm_configs"}
        configs = app["args"]["llm_configs"]
        assert [c["model_loading_config"]["model_id"] for c in configs] == [m.model_id for m in svc.models]
        for model, llm in zip(svc.models, configs, strict=True):
            plan = rendered.plan.ray_models[f"{svc.name}/{model.model_id}"]
            store = rendered.plan.config.model_store
            # with the model store the source is the revision's S3/GCS URI (literal layout:
            # <scheme>://<cluster>-models-<stack>/models/<org>/<name>/<revision>)
            scheme = {"eks": "s3", "gke": "gs"}.get(rendered.plan.config.cluster.cloud)
            source = (
                f"{scheme}://{rendered.plan.config.cluster.name}-models-{rendered.plan.stack}/models/"
                f"{model.model}/{model.revision}"
                if store.enabled
                else model.model
            )
            assert llm["model_loading_config"] == {"model_id": model.model_id, "model_source": source}
            assert llm["accelerator_type"] == (svc.accelerator_type or EXPECTED_ACCELERATOR[pool.gpu_model])
            assert llm["accelerator_type"] in RAY_NVIDIA_ACCELERATOR_TYPES
            expected_engine = {
                "tensor_parallel_size": plan.tensor_parallel_size,
                **(
                    {"pipeline_parallel_size": model.pipeline_parallel_size} if model.pipeline_parallel_size > 1 else {}
                ),
                "max_model_len": plan.max_model_len,
                "gpu_memory_utilization": model.gpu_memory_utilization,
                "dtype": model.dtype,
                "kv_cache_dtype": model.kv_cache_dtype,
                "enable_prefix_caching": model.enable_prefix_caching,
            }
            if model.quantization:
                expected_engine["quantization"] = model.quantization
            if model.revision and not store.enabled:
                expected_engine["revision"] = model.revision
            if model.max_num_seqs:
                expected_engine["max_num_seqs"] = model.max_num_seqs
            if store.enabled:  # Run:ai streamer (vLLM --load-format runai_streamer)
                expected_engine["load_format"] = "runai_streamer"
                expected_engine["model_loader_extra_config"] = {"concurrency": store.concurrency}
            elif rendered.case.id == "prod":  # shared cache on EFS (cluster.eks.efsModelCache: true)
                expected_engine["download_dir"] = "/model-cache/hub"
            raw = _raw_model(rendered.case, svc.name, model.model_id)
            if "lora" in raw:
                # vLLM engine arguments of LoRA and Ray Serve LLM's LLMConfig.lora_config
                # (ray python/ray/llm/_internal/serve/core/configs/llm_config.py LoraConfig, master 1190ecb)
                lora = raw["lora"]
                expected_engine |= {
                    "enable_lora": True,
                    "max_lora_rank": lora["maxLoraRank"],
                    "max_loras": lora.get("maxLoras", 4),
                }
                assert llm.pop("lora_config") == {
                    "dynamic_lora_loading_path": lora["dynamicLoadingPath"],
                    "max_num_adapters_per_replica": lora.get("maxAdaptersPerReplica", 16),
                }
            assert llm["engine_kwargs"] == expected_engine
            assert llm["engine_kwargs"]["tensor_parallel_size"] <= svc.worker_gpus(pool)
            if model.tensor_parallel_size is not None:
                assert plan.tensor_parallel_size == model.tensor_parallel_size
            if model.max_model_len is not None:
                assert plan.max_model_len == model.max_model_len
            assert llm["deployment_config"] == {
                "autoscaling_config": {
                    "min_replicas": model.min_replicas,
                    "max_replicas": model.max_replicas,
                    "target_ongoing_requests": model.target_ongoing_requests,
                },
                "max_ongoing_requests": model.max_ongoing_requests,
                "graceful_shutdown_timeout_s": svc.graceful_shutdown_timeout_seconds,
            }
            assert llm["log_engine_metrics"] is True
            multi_stage = model.pipeline_parallel_size > 1  # tests/test_multinode.py checks its placement group
            assert set(llm) == {
                "model_loading_config",
                "accelerator_type",
                "engine_kwargs",
                "deployment_config",
                "log_engine_metrics",
                *(["placement_group_config"] if multi_stage else []),
            }


def test_onprem_variant_carries_its_non_default_values():
    """Guards against a field silently falling back to its default in the serve config."""
    r = _render(next(c for c in CASES if c.id == "onprem+ray"))
    serve = yaml.safe_load(_one(r, "RayService", "ray-a100")["spec"]["serveConfigV2"])
    llama, qwen = serve["applications"][0]["args"]["llm_configs"]
    assert llama["engine_kwargs"]["revision"] == "0e9e39f" and llama["engine_kwargs"]["max_num_seqs"] == 128
    assert qwen["engine_kwargs"]["tensor_parallel_size"] == 2 and qwen["engine_kwargs"]["quantization"] == "awq"
    assert qwen["engine_kwargs"]["max_model_len"] == 16384 and qwen["engine_kwargs"]["enable_prefix_caching"] is False
    assert qwen["deployment_config"]["autoscaling_config"]["min_replicas"] == 0
    assert {llama["accelerator_type"], qwen["accelerator_type"]} == {"A100-80G"}


# -- RayCluster ------------------------------------------------------------------------------
def test_worker_group_matches_the_pool_facts(rendered):
    hf_secret = rendered.plan.has_credential("hfToken")
    for svc in _services(rendered):
        pool = rendered.plan.pools[svc.worker_pool]
        gpus = svc.gpus_per_worker or pool.gpus_per_node
        spec = _one(rendered, "RayService", svc.name)["spec"]["rayClusterConfig"]
        (group,) = spec["workerGroupSpecs"]
        assert (group["minReplicas"], group["maxReplicas"], group["replicas"]) == (
            svc.min_workers,
            svc.max_workers,
            svc.min_workers,
        )
        accelerator = svc.accelerator_type or EXPECTED_ACCELERATOR[pool.gpu_model]
        assert group["rayStartParams"]["num-gpus"] == str(gpus)
        assert group["rayStartParams"]["metrics-export-port"] == "8080"
        # the autoscaler parses this (Ray's kuberay autoscaling_config): quoted JSON, int values
        resources = json.loads(group["rayStartParams"]["resources"][1:-1].replace("\\", ""))
        assert resources == {f"accelerator_type:{accelerator}": 1}
        pod = group["template"]["spec"]
        want = expected.pool(rendered.case.stack, svc.worker_pool)
        assert pod["nodeSelector"] == want["selector"]
        assert pod["tolerations"] == want["tolerations"]
        if pool.taint_key:
            assert {
                "key": pool.taint_key,
                "operator": "Equal",
                "value": pool.taint_value,
                "effect": pool.taint_effect,
            } in pod["tolerations"]
        assert pod["terminationGracePeriodSeconds"] == svc.termination_grace_period_seconds
        worker = _container(pod, "ray-worker")
        assert worker["image"] == RAY_LLM_IMAGE
        res = worker["resources"]
        assert res["requests"] == res["limits"], "Guaranteed QoS: Ray sizes itself from the limits"
        assert res["limits"]["nvidia.com/gpu"] == str(gpus)
        cpu, memory = _cpu(res["limits"]["cpu"]), _gib(res["limits"]["memory"])
        if svc.worker_cpu is not None:
            assert cpu == svc.worker_cpu
        if svc.worker_memory_gib is not None:
            assert memory == svc.worker_memory_gib
        if pool.vcpus is not None:
            per_node = pool.gpus_per_node // gpus
            assert 1 <= cpu * per_node < pool.vcpus and cpu == int(cpu)
            assert 8 <= memory * per_node < pool.memory_gib
        assert worker["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", "-c", "ray stop"]
        assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {"serve": 8000, "metrics": 8080}
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{svc.shm_size_gib}Gi"}
        assert {"name": "dshm", "mountPath": "/dev/shm"} in worker["volumeMounts"]
        assert svc.shm_size_gib * 2 <= memory
        env = {e["name"]: e for e in worker.get("env", [])}
        assert "HF_TOKEN" not in env, "the token is a file (HF_TOKEN_PATH), never an env value"
        if hf_secret:
            assert env["HF_TOKEN_PATH"]["value"] == "/var/run/secrets/huggingface/token"
            (vol,) = [v for v in pod["volumes"] if v["name"] == "hf-token"]
            assert vol["secret"]["secretName"] == "hf-token"
            assert {"name": "hf-token", "mountPath": "/var/run/secrets/huggingface", "readOnly": True} in worker[
                "volumeMounts"
            ]
        else:
            assert "HF_TOKEN_PATH" not in env


def test_head_has_no_gpus_and_stays_off_the_gpu_pool(rendered):
    for svc in _services(rendered):
        spec = _one(rendered, "RayService", svc.name)["spec"]["rayClusterConfig"]
        head = spec["headGroupSpec"]
        assert head["rayStartParams"] == {
            "dashboard-host": "0.0.0.0",
            "num-cpus": "0",
            "num-gpus": "0",
            "metrics-export-port": "8080",
        }
        pod = head["template"]["spec"]
        assert "tolerations" not in pod and "nodeSelector" not in pod
        c = _container(pod, "ray-head")
        assert c["image"] == RAY_LLM_IMAGE
        assert not any("gpu" in k for part in c["resources"].values() for k in part)
        assert (
            c["resources"]["limits"]
            == c["resources"]["requests"]
            == {
                "cpu": f"{svc.head.cpu:g}",
                "memory": f"{svc.head.memory_gib}Gi",
            }
        )
        assert {p["name"]: p["containerPort"] for p in c["ports"]} == {
            "gcs": 6379,
            "dashboard": 8265,
            "client": 10001,
            "serve": 8000,
            "metrics": 8080,
            "as-metrics": 44217,
            "dash-metrics": 44227,
        }


def test_every_container_is_hardened_and_has_requests_and_limits(rendered):
    for svc in _services(rendered):
        spec = _one(rendered, "RayService", svc.name)["spec"]["rayClusterConfig"]
        pods = [spec["headGroupSpec"]["template"]["spec"], *(g["template"]["spec"] for g in spec["workerGroupSpecs"])]
        contexts = [spec["autoscalerOptions"]["securityContext"]]
        sized = [spec["autoscalerOptions"]["resources"]]
        for pod in pods:
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            for c in pod["containers"]:
                contexts.append(c["securityContext"])
                sized.append(c["resources"])
        for ctx in contexts:
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        for res in sized:
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res[part]), res


def test_autoscaling_upgrade_and_shutdown_come_from_config(rendered):
    for svc in _services(rendered):
        spec = _one(rendered, "RayService", svc.name)["spec"]
        rc = spec["rayClusterConfig"]
        assert rc["enableInTreeAutoscaling"] is True
        assert rc["rayVersion"] == RAY_LLM_IMAGE.split(":")[1].split("-")[0]
        opts = rc["autoscalerOptions"]
        assert (opts["upscalingMode"], opts["idleTimeoutSeconds"]) == (
            svc.autoscaler.upscaling_mode,
            svc.autoscaler.idle_timeout_seconds,
        )
        strategy = spec["upgradeStrategy"]
        assert strategy["type"] == svc.upgrade_strategy
        inc = svc.incremental_upgrade
        if inc is None:
            assert "clusterUpgradeOptions" not in strategy
        else:
            assert strategy["clusterUpgradeOptions"] == {
                "gatewayClassName": inc.gateway_class_name,
                "maxSurgePercent": inc.max_surge_percent,
                "stepSizePercent": inc.step_size_percent,
                "intervalSeconds": inc.interval_seconds,
            }
        assert spec["rayClusterDeletionDelaySeconds"] >= svc.graceful_shutdown_timeout_seconds
        assert spec["excludeHeadPodFromServeSvc"] is True


def test_rayservice_waits_for_kuberay_and_exports_the_serve_endpoint(rendered):
    ns = rendered.plan.config.namespace
    for svc in _services(rendered):
        rec = _record(rendered, "RayService", svc.name)
        assert rec.type == "kubernetes:ray.io/v1:RayService"
        assert set(rendered.owners[RAY_GROUP]) <= set(rec.depends_on)
        component = next(
            x
            for x in rendered.recording.resources
            if x.type == "llm-infra:serving:RayLlmService" and x.name == svc.name
        )
        assert rec.parent == component.urn
        endpoint = f"http://{svc.name}-serve-svc.{ns}.svc.cluster.local:8000/v1"
        assert rendered.recording.outputs["endpoints"][svc.name] == endpoint


def test_ray_objects_validate_against_upstream_schemas(rendered):
    names = {s.name for s in _services(rendered)}
    ours = [
        o
        for o in manifests(rendered.recording)
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/instance") in names
    ]
    kinds = {o["kind"] for o in ours}
    assert {"RayService", "PodMonitor", "PrometheusRule", "ConfigMap"} <= kinds
    for obj in ours:
        if is_custom(obj):
            errors = custom_resource_errors(obj)
            assert not errors, errors[:3]
        else:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)


# -- monitoring ------------------------------------------------------------------------------
def test_pod_monitors_scrape_the_ray_metrics_ports(rendered):
    mon = rendered.handle.monitoring
    for svc in _services(rendered):
        rc = _one(rendered, "RayService", svc.name)["spec"]["rayClusterConfig"]
        groups = {"head": rc["headGroupSpec"], "worker": rc["workerGroupSpecs"][0]}
        monitors = {
            m["spec"]["selector"]["matchLabels"]["ray.io/node-type"]: m
            for m in _objects(rendered, "PodMonitor")
            # exact names: "ray-llm-" is also the prefix of another service's ("ray-llm-72b-...")
            if m["metadata"]["name"] in (f"{svc.name}-ray-head", f"{svc.name}-ray-workers")
        }
        assert set(monitors) == {"head", "worker"}
        for node_type, pm in monitors.items():
            assert mon.monitor_labels.items() <= pm["metadata"]["labels"].items()
            template = groups[node_type]["template"]
            selector = dict(pm["spec"]["selector"]["matchLabels"])
            selector.pop("ray.io/node-type")  # set on the pods by KubeRay
            assert selector.items() <= template["metadata"]["labels"].items()
            ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
            endpoints = pm["spec"]["podMetricsEndpoints"]
            assert {e["port"] for e in endpoints} <= ports
            assert "metrics" in {e["port"] for e in endpoints}
            for e in endpoints:
                assert {"targetLabel": "ray_service", "replacement": svc.name} in e["relabelings"]
            assert pm["spec"]["namespaceSelector"] == {"matchNames": [rendered.plan.config.namespace]}
            rec = _record(rendered, "PodMonitor", pm["metadata"]["name"])
            assert set(rendered.owners[MONITORING_GROUP]) <= set(rec.depends_on)
        assert {e["port"] for e in monitors["head"]["spec"]["podMetricsEndpoints"]} == {
            "metrics",
            "as-metrics",
            "dash-metrics",
        }


def test_alert_rules_use_the_thresholds_and_link_runbooks(rendered):
    alerts = rendered.plan.config.alerts
    mon = rendered.handle.monitoring
    for svc in _services(rendered):
        rule = _one(rendered, "PrometheusRule", f"{svc.name}-ray-serve-llm")
        assert mon.monitor_labels.items() <= rule["metadata"]["labels"].items()
        assert set(rendered.owners[MONITORING_GROUP]) <= set(
            _record(rendered, "PrometheusRule", rule["metadata"]["name"]).depends_on
        )
        rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
        expected = {
            "RayServeHighErrorRatio": (ro.HTTP_ERRORS, alerts.error_ratio, alerts.error_ratio_for),
            "RayServeLlmTtftP99High": (ro.TTFT + "_bucket", alerts.ttft_p99_seconds, alerts.ttft_for),
            "RayServeLlmKvCacheSaturated": (ro.KV_CACHE_USAGE, alerts.kv_cache_usage, alerts.kv_cache_for),
            "RayServeLlmQueueDepthHigh": (ro.REQUESTS_WAITING, alerts.queue_depth, alerts.queue_depth_for),
            "RayServeNoHealthyReplica": (ro.REPLICA_HEALTHY, None, alerts.no_healthy_replica_for),
        }
        assert set(rules) == set(expected)
        sel = f'namespace="{rendered.plan.config.namespace}",ray_service="{svc.name}"'
        for name, (metric, threshold, duration) in expected.items():
            r = rules[name]
            assert metric in r["expr"] and sel in r["expr"]
            if threshold is not None:
                assert r["expr"].endswith(f"> {threshold:g}")
            assert r["for"] == duration
            assert r["labels"]["severity"] in {"warning", "critical"}
            assert r["annotations"]["runbook_url"].startswith(alerts.runbook_base_url + "/")
            assert r["annotations"]["summary"] and r["annotations"]["description"]


def test_dashboard_configmap_for_the_serve_llm_metrics(rendered):
    mon = rendered.handle.monitoring
    ns = rendered.plan.config.namespace
    for svc in _services(rendered):
        cm = _one(rendered, "ConfigMap", f"{svc.name}-ray-serve-llm-dashboard")
        assert mon.dashboard_labels.items() <= cm["metadata"]["labels"].items()
        (body,) = cm["data"].values()
        board = json.loads(body)
        assert board["uid"] == ro.dashboard_uid(svc.name, ns) and len(board["uid"]) <= 40
        exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        assert exprs and all(f'ray_service="{svc.name}"' in e for e in exprs)
        for metric in (
            ro.HTTP_REQUESTS,
            ro.HTTP_ERRORS,
            ro.TTFT,
            ro.TPOT,
            ro.KV_CACHE_USAGE,
            ro.REQUESTS_WAITING,
            ro.REPLICA_HEALTHY,
        ):
            assert any(metric in e for e in exprs), metric
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))


# -- validation ------------------------------------------------------------------------------
def _ray(v):
    return v["rayServices"][0]


def _l40s(v):
    return next(p for p in v["cluster"]["nodePools"] if p["name"] == "l40s")


def _onprem_ray(v, s, **changes):
    svc = copy.deepcopy(ONPREM_RAY[0])
    svc.update(changes)
    v["rayServices"] = [svc]


def _onprem_pool(v, **changes):
    v["cluster"]["nodePools"][0].update(changes)


BAD: list[tuple[str, str, Any, str, str]] = [
    (
        "tp-over-gpus-per-worker",
        "prod",
        lambda v, s: _ray(v)["models"][0].update(tensorParallelSize=2),
        "rayServices[0].models[0].tensorParallelSize",
        "exceeds the 1 GPUs",
    ),
    (
        "min-gpus-over-max-workers",
        "prod",
        lambda v, s: _ray(v).update(minWorkers=1, maxWorkers=1),
        "rayServices[0].maxWorkers",
        "minimum replicas need 2 GPUs, but 1 workers x 1 GPUs give 1",
    ),
    (
        "max-replicas-never-placeable",
        "prod",
        lambda v, s: _ray(v)["models"][1].update(maxReplicas=5),
        "rayServices[0].models[1].maxReplicas",
        "can never be placed",
    ),
    (
        "unknown-worker-pool",
        "prod",
        lambda v, s: _ray(v).update(workerPool="h100"),
        "rayServices[0].workerPool",
        "no node pool 'h100'",
    ),
    (
        "kuberay-disabled",
        "prod",
        lambda v, s: v.setdefault("addons", {}).update(kuberay={"enabled": False}),
        "addons.kuberay.enabled",
        "need the KubeRay operator",
    ),
    (
        "time-sliced-pool",
        "prod",
        lambda v, s: _l40s(v).update(gpuSharing={"strategy": "time-slicing", "clientsPerGpu": 2}),
        "rayServices[0].workerPool",
        "shares its GPUs",
    ),
    (
        "gpus-per-worker-over-node",
        "prod",
        lambda v, s: _ray(v).update(gpusPerWorker=2),
        "rayServices[0].gpusPerWorker",
        "exceeds the 1 GPUs",
    ),
    (
        "accelerator-type-mismatch",
        "prod",
        lambda v, s: _ray(v).update(acceleratorType="H100"),
        "rayServices[0].acceleratorType",
        "does not match",
    ),
    (
        "accelerator-type-unknown-to-ray",
        "prod",
        lambda v, s: _ray(v).update(acceleratorType="RTX4090"),
        "rayServices[0].acceleratorType",
        "not a Ray accelerator type",
    ),
    (
        "gpu-without-ray-accelerator-type",
        "onprem",
        lambda v, s: (
            _onprem_pool(
                v,
                gpu={
                    "model": "NVIDIA RTX 6000 Ada",
                    "count": 4,
                    "memoryGib": 48,
                    "productLabel": "NVIDIA-RTX-6000-Ada-Generation",
                },
                nodeSelector={"nvidia.com/gpu.product": "NVIDIA-RTX-6000-Ada-Generation"},
            ),
            _onprem_ray(v, s, models=[ONPREM_RAY[0]["models"][0]], minWorkers=1),
        ),
        "rayServices[0].acceleratorType",
        "Ray has no accelerator type",
    ),
    (
        "new-cluster-upgrade-without-room",
        "prod",
        lambda v, s: _l40s(v).update(maxNodes=3),
        "rayServices[0].upgradeStrategy",
        "NewCluster upgrades start a second cluster",
    ),
    (
        "incremental-without-gateway",
        "prod",
        lambda v, s: _ray(v).update(upgradeStrategy="NewClusterWithIncrementalUpgrade"),
        "rayServices[0]",
        "needs incrementalUpgrade.gatewayClassName",
    ),
    (
        "drain-longer-than-grace",
        "prod",
        lambda v, s: _ray(v).update(gracefulShutdownTimeoutSeconds=900),
        "rayServices[0]",
        "pods would be killed mid-drain",
    ),
    (
        "worker-cpu-over-node",
        "prod",
        lambda v, s: _ray(v).update(workerCpu=16),
        "rayServices[0].workerCpu",
        "exceeds what one 1-GPU worker may take",
    ),
    (
        "worker-memory-over-node",
        "prod",
        lambda v, s: _ray(v).update(workerMemoryGib=64),
        "rayServices[0].workerMemoryGib",
        "exceeds what one 1-GPU worker may take",
    ),
    (
        "shm-over-half-the-memory",
        "prod",
        lambda v, s: _ray(v).update(shmSizeGib=40),
        "rayServices[0].shmSizeGib",
        "at most half",
    ),
    (
        "existing-pool-without-worker-size",
        "onprem",
        lambda v, s: _onprem_ray(v, s, workerCpu=None, workerMemoryGib=None),
        "rayServices[0].workerCpu",
        "required",
    ),
    (
        "gated-ray-model-without-token",
        "onprem",
        lambda v, s: _onprem_ray(v, s, models=[{**ONPREM_RAY[0]["models"][0], "requiresHfToken": True}]),
        "rayServices[0].models[0].requiresHfToken",
        "hfToken",
    ),
]


@pytest.mark.parametrize("case_id,stack,mutate,path,words", BAD, ids=[b[0] for b in BAD])
def test_bad_ray_config_is_reported_with_its_path(case_id, stack, mutate, path, words):
    values, secrets = stack_values(stack)
    mutate(values, secrets)
    for svc in values.get("rayServices", []):
        for key in [k for k, v in svc.items() if v is None]:
            del svc[key]
    assert_rejected(stack, values, secrets, path, words)


def test_bad_ray_config_stops_the_program_without_a_traceback():
    bad = copy.deepcopy(ONPREM_RAY)
    bad[0]["workerPool"] = "h100"
    bad[0]["models"][0]["tensorParallelSize"] = 3
    with pytest.raises(RenderError) as info:
        run_program(PROJECT, "onprem", config_overrides={"rayServices": bad})
    message = str(info.value)
    assert "rayServices[0].workerPool" in message and "Traceback" not in message


def test_every_catalog_gpu_has_a_ray_accelerator_type():
    from llm_infra.config import catalog
    from llm_infra.config.facts import NodePoolFacts

    for cloud in ("eks", "gke"):
        for shape in catalog.shapes_for(cloud):
            facts = NodePoolFacts(
                name="p",
                cloud=cloud,
                instance_type=shape.name,
                gpu_model=shape.gpu_model,
                gpus_per_node=shape.gpu_count,
                gpu_memory_gib=shape.gpu_memory_gib,
                product_label=shape.product_label,
                vcpus=shape.vcpus,
                memory_gib=shape.memory_gib,
                hourly_usd=shape.hourly_usd,
                taint_key=None,
                taint_value=None,
                taint_effect=None,
            )
            assert ray_accelerator_type(facts) == EXPECTED_ACCELERATOR[shape.gpu_model], shape.name
