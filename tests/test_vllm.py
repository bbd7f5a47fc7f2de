"""vLLM serving: every model of every stack renders as its config says.

Two sources of rendered objects:

* ``served(stack)``: each stack's ``VllmService``s rendered under Pulumi mocks with an
  add-ons handle derived from the stack's config the way the add-ons component derives it
  (KEDA when available, else an HPA through prometheus-adapter; Prometheus, monitor and
  dashboard labels from ``addons.monitoring``). Independent of the cluster and add-ons
  components, so every stack's models are checked here, whatever state those are in.
* ``render(stack)``: the real program (conftest), for what only the whole stack shows.

Expectations come from the config and the derived plan (``load_stack_config``), never from
the objects under test.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import expected
import kubernetes_validate
import metric_names as metrics
import pulumi
import pytest
from conftest import STACKS, render
from pulumi.runtime import settings
from pulumi.runtime.stack import run_in_stack
from stackfiles import api_key_clients, assert_rejected, stack_values
from test_rendered_schemas import KUBERNETES_SCHEMA_VERSION
from upstream import custom_resource_errors, is_custom

from llm_infra.components.addons.handles import AddonsHandle, MonitoringHandle
from llm_infra.components.render import Recording, manifests
from llm_infra.components.render.mocks import RecordingMonitor, RenderMocks
from llm_infra.components.serving.autoscaling import keda_hpa_name
from llm_infra.components.serving.canary import VllmCanary, VllmCanaryArgs
from llm_infra.components.serving.context import ServingContext
from llm_infra.components.serving.dashboards import panel_queries
from llm_infra.components.serving.vllm import (
    HF_HUB_CACHE,
    VllmService,
    VllmServiceArgs,
    pod_name_regex,
    workload_kind,
)
from llm_infra.config import StackPlan, load_stack_config, versions
from llm_infra.config.canary_model import serving_models
from llm_infra.config.serving import MANAGED_VLLM_FLAGS, VllmModelConfig, node_share

FAKE_PROMETHEUS = "http://prometheus.test.svc:9090"


# -- harness -------------------------------------------------------------------------------------
@dataclass
class Served:
    stack: str
    plan: StackPlan
    context: ServingContext
    recording: Recording
    owners: dict[str, str] = field(default_factory=dict)
    """API group -> URN of the fake release that owns its CRDs."""

    @property
    def objects(self) -> list[dict[str, Any]]:
        return manifests(self.recording)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.stack}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def maybe(self, kind: str, name: str) -> dict[str, Any] | None:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) <= 1
        return found[0] if found else None

    def record(self, kind: str, name: str):
        found = [
            r
            for r in self.recording.resources
            if r.inputs.get("kind") == kind and r.inputs.get("metadata", {}).get("name") == name
        ]
        assert len(found) == 1
        return found[0]


def handle_from_config(plan: StackPlan, owners: dict[str, pulumi.Resource]) -> AddonsHandle:
    """What the add-ons component hands serving for this config (the AddonsHandle contract)."""
    addons = plan.config.addons
    mon_cfg = addons.monitoring
    if mon_cfg.mode == "install":
        monitoring = MonitoringHandle(
            prometheus_url=FAKE_PROMETHEUS,
            monitor_labels={"release": "kube-prometheus-stack"},
            dashboard_labels={"grafana_dashboard": "1"} if mon_cfg.grafana.enabled else {},
            operator_crds=True,
            gpu_metrics=addons.gpu_operator.enabled and addons.gpu_operator.dcgm_exporter,
        )
    elif mon_cfg.mode == "existing":
        monitoring = MonitoringHandle(
            prometheus_url=mon_cfg.prometheus_url,
            monitor_labels=dict(mon_cfg.selector_labels),
            dashboard_labels=dict(getattr(mon_cfg, "dashboard_labels", {}) or {}) or {"grafana_dashboard": "1"},
            operator_crds=True,
            gpu_metrics=addons.gpu_operator.enabled and addons.gpu_operator.dcgm_exporter,
        )
    else:
        monitoring = MonitoringHandle(prometheus_url=None)
    autoscaler = "keda" if addons.keda.available else ("hpa" if addons.prometheus_adapter.enabled else "none")
    crd_owners = {}
    if addons.keda.available:
        crd_owners["keda.sh"] = [owners["keda.sh"]]
    if monitoring.operator_crds:
        crd_owners["monitoring.coreos.com"] = [owners["monitoring.coreos.com"]]
    return AddonsHandle(monitoring=monitoring, autoscaler=autoscaler, crd_owners=crd_owners, gpu_ready=[owners["gpu"]])


def harness_store(plan: StackPlan):
    """The stack's ModelStore as the platform builds it (mock IRSA facts on EKS), or None."""
    if not plan.config.model_store.enabled:
        return None
    from llm_infra.components.cluster.base import AwsIrsa
    from llm_infra.components.platform import model_store_args
    from llm_infra.components.serving.model_store import ModelStore

    irsa = None
    if plan.config.cluster.cloud == "eks":
        irsa = AwsIrsa(
            oidc_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/TEST",
            oidc_url="https://oidc.eks.us-east-1.amazonaws.com/id/TEST",
            partition="aws",
            region=plan.config.cluster.region or "us-east-1",
            account_id="123456789012",
        )
    token = "hf-token" if plan.has_credential("hfToken") else None
    return ModelStore("store", model_store_args(plan, token, irsa))


def context_for(plan: StackPlan, handle: AddonsHandle, store=None) -> ServingContext:
    c = plan.config.cluster
    rwx = None
    if (c.eks and c.eks.efs_model_cache) or (c.gke and c.gke.filestore_model_cache):
        rwx = "shared-files"
    elif c.existing and c.existing.rwx_storage_class:
        rwx = c.existing.rwx_storage_class
    return ServingContext(
        namespace=plan.config.namespace,
        addons=handle,
        alerts=plan.config.alerts,
        security=plan.config.security,
        hf_token_secret="hf-token" if "hfToken" in plan.secrets else None,
        storage_class=(c.existing.storage_class if c.existing else "block-rwo"),
        rwx_storage_class=rwx,
        model_store=store,
        compile_cache=plan.config.cold_start.compile_cache,
        # behind edge.gateway: GKE's load balancer cannot check API keys, vLLM does (edge.py)
        api_key_secret="vllm-api-keys" if plan.config.edge.gateway is not None and c.cloud == "gke" else None,
        api_key_clients=plan.api_key_clients,
        gateway_wake_up=plan.config.edge.gateway is not None,
    )


def serve(
    stack: str,
    mutate: Callable[[dict[str, Any], dict[str, bool]], object] | None = None,
    adjust_handle: Callable[[AddonsHandle], AddonsHandle] | None = None,
) -> Served:
    """Render the stack's VllmServices (optionally on a mutated config) under mocks."""
    values, secrets = stack_values(stack)
    if mutate:
        mutate(values, secrets)
    plan = load_stack_config(stack, values, secrets, api_key_clients=api_key_clients(stack))
    mocks = RenderMocks()
    monitor = RecordingMonitor(mocks)
    holder: dict[str, Any] = {}

    def program() -> None:
        owners: dict[str, pulumi.Resource] = {
            group: pulumi.CustomResource("test:addons:Release", kind, {})
            for group, kind in (("keda.sh", "Keda"), ("monitoring.coreos.com", "Monitoring"), ("gpu", "GpuOperator"))
        }
        handle = handle_from_config(plan, owners)
        if adjust_handle:
            handle = adjust_handle(handle)
        ctx = context_for(plan, handle, harness_store(plan))
        holder["context"] = ctx
        holder["owners"] = owners
        for m in plan.config.models:
            stable = VllmService(m.name, VllmServiceArgs(model=m, plan=plan.models[m.name], context=ctx))
            if m.canary is not None:
                name = f"{m.name}-canary"
                VllmCanary(name, VllmCanaryArgs(model=m, plan=plan.models[name], stable=stable, context=ctx))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_mocks(mocks, project="llm-infra", stack=stack, preview=False, monitor=monitor)
        settings.ROOT.set(None)
        loop.run_until_complete(run_in_stack(program))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    urns = {r.name: r.urn for r in monitor.records if r.type == "test:addons:Release"}
    owners = {"keda.sh": urns["Keda"], "monitoring.coreos.com": urns["Monitoring"], "gpu": urns["GpuOperator"]}
    return Served(stack, plan, holder["context"], Recording("llm-infra", stack, monitor.records), owners)


@cache
def served(stack: str) -> Served:
    return serve(stack)


STACKS_WITH_MODELS = [s for s in STACKS if stack_values(s)[0].get("models")]


@pytest.fixture(params=STACKS_WITH_MODELS)
def sv(request) -> Served:
    return served(request.param)


def models(sv: Served) -> list[tuple[VllmModelConfig, Any]]:
    """Every vLLM workload: each model and its canary (the canary's config as it is derived)."""
    return [(m, sv.plan.models[m.name]) for _, m in serving_models(sv.plan.config.models)]


def shares_model_name(sv: Served, m: VllmModelConfig) -> bool:
    """A model with a canary (or a canary): two workloads export the same model_name."""
    return m.canary is not None or m.name.endswith("-canary")


def engine_selector(sv: Served, m: VllmModelConfig) -> str:
    """The label matchers of the model's own vLLM series (by Service when it shares its name)."""
    sel = f'namespace="{sv.plan.config.namespace}", model_name="{m.served_name}"'
    return sel + (f', service="{m.name}"' if shares_model_name(sv, m) else "")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any], name: str = "vllm") -> dict[str, Any]:
    (c,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    return c


def flags(args: list[str]) -> dict[str, list[str | None]]:
    """``--flag value`` / ``--flag=value`` / ``--switch`` -> {flag: [values]}."""
    out: dict[str, list[str | None]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-"):
            if "=" in arg:
                k, v = arg.split("=", 1)
                out.setdefault(k, []).append(v)
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                out.setdefault(arg, []).append(args[i + 1])
                i += 1
            else:
                out.setdefault(arg, []).append(None)
        i += 1
    return out


def gib(q: str) -> float:
    assert q.endswith("Gi"), q
    return float(q[:-2])


def cpu(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


# -- scope of the checks ------------------------------------------------------------------------
def test_every_stack_with_models_is_checked():
    assert {"dev", "prod", "onprem"} <= set(STACKS_WITH_MODELS)
    prod = served("prod")
    shapes = {(p.pool.instance_type, p.tensor_parallel_size) for p in prod.plan.models.values()}
    assert len(prod.plan.models) >= 2 and len(shapes) >= 2, "prod serves two models on different GPU shapes"


# -- workload -----------------------------------------------------------------------------------
def test_workload_kind_follows_the_cache_access_mode(sv):
    for m, _ in models(sv):
        kind = workload_kind(m)
        assert kind == ("Deployment" if m.cache.access_mode == "ReadWriteMany" else "StatefulSet")
        assert sv.get(kind, m.name)
        assert not [o for o in sv.objects if o["kind"] == "DaemonSet"]


def test_server_args_come_from_typed_config(sv):
    for m, plan in models(sv):
        c = container(sv.get(workload_kind(m), m.name))
        assert c["image"] == versions.VLLM_IMAGE
        assert c["command"] == ["vllm", "serve"]
        args = c["args"]
        store = sv.plan.config.model_store
        scheme = {"eks": "s3", "gke": "gs"}.get(sv.plan.config.cluster.cloud)
        bucket = f"{sv.plan.config.cluster.name}-models-{sv.plan.stack}"
        # with the model store: the revision's URI, loaded by the Run:ai streamer (vLLM
        # runai_streamer_loader.py: concurrency from --model-loader-extra-config)
        assert args[0] == (f"{scheme}://{bucket}/models/{m.model}/{m.revision}" if store.enabled else m.model)
        f = flags(args[1:])
        load = (
            {
                "--load-format": ["runai_streamer"],
                "--model-loader-extra-config": [json.dumps({"concurrency": store.concurrency})],
                "--download-dir": None,
            }
            if store.enabled
            else {"--download-dir": [HF_HUB_CACHE], "--load-format": None}
        )
        expected = {
            **load,
            "--served-model-name": [m.served_name],
            "--tensor-parallel-size": [str(plan.tensor_parallel_size)],
            "--max-model-len": [str(plan.max_model_len)],
            "--gpu-memory-utilization": [f"{m.gpu_memory_utilization:g}"],
            "--dtype": [m.dtype],
            "--kv-cache-dtype": [m.kv_cache_dtype],
            "--port": ["8000"],
        }
        for flag, value in expected.items():
            assert f.get(flag) == value, (m.name, flag, f.get(flag))
        assert float(f["--gpu-memory-utilization"][0] or "") == m.gpu_memory_utilization
        assert ("--enable-prefix-caching" in f) == m.enable_prefix_caching
        assert ("--no-enable-prefix-caching" in f) == (not m.enable_prefix_caching)
        assert ("--enable-chunked-prefill" in f) == m.enable_chunked_prefill
        assert ("--no-enable-chunked-prefill" in f) == (not m.enable_chunked_prefill)
        for flag, value in (
            ("--max-num-seqs", m.max_num_seqs),
            ("--max-num-batched-tokens", m.max_num_batched_tokens),
            ("--quantization", m.quantization),
            ("--revision", None if store.enabled else m.revision),
        ):
            assert f.get(flag) == (None if value is None else [str(value)]), (m.name, flag)
        # every managed flag at most once; extra args appended verbatim
        for flag in MANAGED_VLLM_FLAGS:
            assert len(f.get(flag, [])) <= 1, (m.name, flag)
        if m.extra_args:
            assert args[-len(m.extra_args) :] == list(m.extra_args)


def test_gpu_request_equals_limit_equals_tensor_parallel_size(sv):
    for m, plan in models(sv):
        c = container(sv.get(workload_kind(m), m.name))
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        assert req == lim, "Guaranteed QoS: requests = limits"
        assert req["nvidia.com/gpu"] == str(plan.tensor_parallel_size)
        assert flags(c["args"])["--tensor-parallel-size"] == [req["nvidia.com/gpu"]]
        assert plan.tensor_parallel_size <= plan.pool.gpus_per_node


def test_cpu_and_memory_are_sized_from_the_model_within_the_node_share(sv):
    for m, plan in models(sv):
        c = container(sv.get(workload_kind(m), m.name))
        mem, cores = gib(c["resources"]["limits"]["memory"]), cpu(c["resources"]["limits"]["cpu"])
        cpu_share, mem_share = node_share(plan.pool, plan.tensor_parallel_size)
        if mem_share is not None:
            assert mem <= mem_share, f"{m.name}: {mem} GiB exceeds the node share {mem_share:.1f}"
            assert cpu_share is not None and cores <= cpu_share
        # seed 001: >= 20 GiB for 7-8B, >= 80 GiB for 70B-class models
        if plan.architecture.params_billion >= 60:
            assert mem >= 80, (m.name, mem)
        elif plan.architecture.params_billion >= 7:
            assert mem >= 20, (m.name, mem)
        # the weights fit in host memory while they load, and /dev/shm counts against the limit
        assert mem >= plan.capacity.weights_gib + (m.shm_size_gib if plan.tensor_parallel_size > 1 else 0)
        assert cores >= 2


def test_resource_overrides_replace_the_derived_sizes():
    def mutate(v, s):
        v["models"][1]["resources"] = {"cpu": 12, "memoryGib": 100}

    sv = serve("prod", mutate)
    m = sv.plan.config.models[1]
    res = container(sv.get(workload_kind(m), m.name))["resources"]["limits"]
    assert (res["cpu"], res["memory"]) == ("12", "100Gi")


def test_probes_cover_the_cold_start_and_shutdown_drains(sv):
    for m, plan in models(sv):
        w = sv.get(workload_kind(m), m.name)
        c, pod = container(w), pod_spec(w)
        port = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert port == {"http": 8000}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
        s = c["startupProbe"]
        window = s["failureThreshold"] * s["periodSeconds"]
        est = plan.cold_start
        if m.startup_timeout_seconds is not None:
            assert m.startup_timeout_seconds <= window < m.startup_timeout_seconds + s["periodSeconds"]
        else:
            # derived from the cold-start estimate: the engine start (weight load, uncached compile,
            # CUDA graphs, one probe period) x coldStart.startupMargin, at least 300 s
            margin = sv.plan.config.cold_start.startup_margin
            load = next(p.seconds for p in est.phases if p.name == "weightLoad")
            engine = load + 60 + 30 + s["periodSeconds"]
            assert est.engine_start_seconds == engine
            assert window >= max(300, engine * margin)
            assert window < max(300, engine * margin) + s["periodSeconds"]
        assert pod["terminationGracePeriodSeconds"] == m.termination_grace_period_seconds
        assert 120 <= pod["terminationGracePeriodSeconds"] <= 600
        assert c["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", str(m.pre_stop_sleep_seconds)]}}
        assert m.pre_stop_sleep_seconds < m.termination_grace_period_seconds


def test_shared_memory_only_when_tensor_parallel(sv):
    for m, plan in models(sv):
        w = sv.get(workload_kind(m), m.name)
        shm_vols = [v for v in pod_spec(w).get("volumes", []) if v.get("emptyDir", {}).get("medium") == "Memory"]
        shm_mounts = [vm for vm in container(w)["volumeMounts"] if vm["mountPath"] == "/dev/shm"]
        if plan.tensor_parallel_size > 1:
            assert [v["emptyDir"]["sizeLimit"] for v in shm_vols] == [f"{m.shm_size_gib}Gi"]
            assert [vm["name"] for vm in shm_mounts] == [shm_vols[0]["name"]]
        else:
            assert not shm_vols and not shm_mounts


def test_scheduling_follows_the_pool_facts(sv):
    for m, plan in models(sv):
        pod = pod_spec(sv.get(workload_kind(m), m.name))
        want = expected.pool(sv.stack, m.node_pool)
        assert pod["tolerations"] == want["tolerations"]
        assert pod.get("nodeSelector", {}) == want["selector"]
        assert plan.pool.selector, "every pool has a selector"
        spread = pod.get("topologySpreadConstraints", [])
        if m.autoscaling.max_replicas > 1:
            assert {t["topologyKey"] for t in spread} >= {"kubernetes.io/hostname"}
            w = sv.get(workload_kind(m), m.name)
            for t in spread:
                assert t["labelSelector"]["matchLabels"] == w["spec"]["selector"]["matchLabels"]
        else:
            assert not spread
        assert pod["enableServiceLinks"] is False, "a Service named vllm would inject VLLM_PORT"


def test_hugging_face_token_only_through_a_secret_reference(sv):
    for m, _ in models(sv):
        w = sv.get(workload_kind(m), m.name)
        for c in [*pod_spec(w).get("initContainers", []), *pod_spec(w)["containers"]]:
            env = {e["name"]: e for e in c.get("env", [])}
            assert "HF_TOKEN" not in env, "the token is a file (HF_TOKEN_PATH), never an env value"
            if sv.context.hf_token_secret:
                assert env["HF_TOKEN_PATH"] == {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/huggingface/token"}
                (vol,) = [v for v in pod_spec(w)["volumes"] if v["name"] == "hf-token"]
                assert vol["secret"]["secretName"] == sv.context.hf_token_secret
                assert {"name": "hf-token", "mountPath": "/var/run/secrets/huggingface", "readOnly": True} in c[
                    "volumeMounts"
                ]
            else:
                assert "HF_TOKEN_PATH" not in env
            assert env["HF_HOME"]["value"] == "/model-cache"
            for e in env.values():
                assert "value" not in e or "hf_" not in e["value"].lower()
            text = " ".join([*c.get("args", []), *c.get("command", [])])
            assert "token" not in text.lower() and "placeholder" not in text


def test_model_cache_and_pre_download(sv):
    for m, plan in models(sv):
        kind = workload_kind(m)
        w = sv.get(kind, m.name)
        size = m.cache.size_gib or math.ceil(plan.capacity.weights_gib * 1.25 + 10)
        assert size >= plan.capacity.weights_gib
        if kind == "Deployment":
            pvc = sv.get("PersistentVolumeClaim", f"{m.name}-model-cache")
            spec = pvc["spec"]
            assert spec["accessModes"] == ["ReadWriteMany"]
            assert spec.get("storageClassName") == (m.cache.storage_class or sv.context.rwx_storage_class)
            (vol,) = [v for v in pod_spec(w)["volumes"] if v["name"] == "model-cache"]
            assert vol["persistentVolumeClaim"]["claimName"] == f"{m.name}-model-cache"
            assert w["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
        else:
            assert not sv.maybe("PersistentVolumeClaim", f"{m.name}-model-cache")
            (tpl,) = w["spec"]["volumeClaimTemplates"]
            spec = tpl["spec"]
            assert tpl["metadata"]["name"] == "model-cache"
            assert spec["accessModes"] == ["ReadWriteOnce"]
            assert spec.get("storageClassName") == (m.cache.storage_class or sv.context.storage_class)
            assert w["spec"]["podManagementPolicy"] == "Parallel"
            assert w["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
            assert "app.kubernetes.io/version" not in tpl["metadata"]["labels"], "volumeClaimTemplates are immutable"
        assert spec["resources"]["requests"]["storage"] == f"{size}Gi"
        if sv.plan.config.model_store.enabled:
            # weights stream from the store: nothing downloads into the cache, which keeps the
            # compile caches (VLLM_CACHE_ROOT keyed by model, revision and vLLM version); only
            # LoRA adapters (from the Hub) download into it
            adapters = [] if m.lora is None else m.lora.adapters
            inits = [c["name"] for c in pod_spec(w).get("initContainers", [])]
            assert inits == [f"lora-download-{i}" for i in range(len(adapters))], inits
            env = {e["name"]: e.get("value") for e in container(w)["env"]}
            version = versions.VLLM_IMAGE.rsplit(":", 1)[1]
            root = f"/model-cache/compile/{m.model.replace('/', '--')}/{m.revision}/{version}"
            assert env["VLLM_CACHE_ROOT"] == root and env["TRITON_CACHE_DIR"] == f"{root}/triton"
            continue
        init = pod_spec(w)["initContainers"][0]
        assert init["name"] == "model-download"
        assert init["image"] == versions.VLLM_IMAGE
        cmd = init["command"]
        assert cmd[:3] == ["hf", "download", m.model]
        f = flags(cmd[3:])
        assert f["--cache-dir"] == [HF_HUB_CACHE] == flags(container(w)["args"])["--download-dir"]
        assert f.get("--revision") == ([m.revision] if m.revision else None)
        mounts = {vm["name"]: vm["mountPath"] for vm in init["volumeMounts"]}
        assert (
            mounts["model-cache"]
            == "/model-cache"
            == {vm["name"]: vm["mountPath"] for vm in container(w)["volumeMounts"]}["model-cache"]
        )
        assert init["resources"]["requests"] == init["resources"]["limits"]


def test_service_and_disruption_budget(sv):
    for m, _ in models(sv):
        w = sv.get(workload_kind(m), m.name)
        sel = w["spec"]["selector"]["matchLabels"]
        assert sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        svc = sv.get("Service", m.name)["spec"]
        assert svc["type"] == "ClusterIP" and svc["selector"] == sel
        assert svc["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
        pdb = sv.get("PodDisruptionBudget", m.name)["spec"]
        assert pdb["selector"]["matchLabels"] == sel
        assert pdb["maxUnavailable"] == 1
        # a replica that never became ready (a failed model load) must not block node drains
        assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        if workload_kind(m) == "StatefulSet":
            assert w["spec"]["serviceName"] == m.name


# -- routing ---------------------------------------------------------------------------------------
def test_ingress_streams_with_long_timeouts(sv):
    for m, _ in models(sv):
        ing = sv.maybe("Ingress", m.name)
        if m.name.endswith("-canary"):
            continue  # the canary's share of the stable Ingress: test_canary.py
        if m.ingress is None:
            assert ing is None
            continue
        ann = ing["metadata"]["annotations"]
        t = str(m.ingress.timeout_seconds)
        assert ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] == t
        assert ann["nginx.ingress.kubernetes.io/proxy-send-timeout"] == t
        assert ann["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
        spec = ing["spec"]
        assert spec["ingressClassName"] == m.ingress.class_name
        (rule,) = spec["rules"]
        assert rule["host"] == m.ingress.host
        (path,) = rule["http"]["paths"]
        assert (path["path"], path["pathType"]) == (m.ingress.path, "Prefix")
        assert path["backend"]["service"] == {"name": m.name, "port": {"name": "http"}}
        if m.ingress.tls_secret_name:
            assert spec["tls"] == [{"hosts": [m.ingress.host], "secretName": m.ingress.tls_secret_name}]


def test_http_route_on_a_gateway():
    def mutate(v, s):
        v["models"][0]["httpRoute"] = {
            "gatewayName": "inference",
            "gatewayNamespace": "gateways",
            "hostnames": ["llm.dev.example.com"],
            "timeoutSeconds": 900,
        }

    sv = serve("dev", mutate)
    m = sv.plan.config.models[0]
    route = sv.get("HTTPRoute", m.name)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = route["spec"]
    assert spec["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference", "namespace": "gateways"}
    ]
    assert spec["hostnames"] == ["llm.dev.example.com"]
    (rule,) = spec["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": m.name, "port": 8000}]
    assert rule["timeouts"] == {"request": "900s", "backendRequest": "900s"}
    # Gateway API duration format (GEP-2257)
    assert all(re.fullmatch(r"([0-9]{1,5}(h|m|s|ms)){1,4}", v) for v in rule["timeouts"].values())
    assert route["metadata"]["namespace"] == sv.plan.config.namespace


# -- autoscaling -----------------------------------------------------------------------------------
def _behavior_ok(behavior: dict[str, Any], a) -> None:
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0
    assert up["policies"] == [{"type": "Pods", "value": a.scale_up_pods, "periodSeconds": a.scale_up_period_seconds}]
    assert down["stabilizationWindowSeconds"] == a.scale_down_stabilization_seconds


def test_autoscaling_on_inference_signals(sv):
    for m, _plan in models(sv):
        a = m.autoscaling
        so, hpa = sv.maybe("ScaledObject", m.name), sv.maybe("HorizontalPodAutoscaler", m.name)
        w = sv.get(workload_kind(m), m.name)
        assert w["spec"]["replicas"] == a.min_replicas
        mode = sv.context.addons.autoscaler
        if a.min_replicas == a.max_replicas or mode == "none":
            assert so is None and hpa is None
            continue
        sel = "{" + engine_selector(sv, m) + "}"
        if mode == "keda":
            assert hpa is None and so is not None
            spec = so["spec"]
            assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": workload_kind(m), "name": m.name}
            assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (a.min_replicas, a.max_replicas)
            # KEDA's cooldownPeriod only applies to scaling to zero and back (KEDA docs,
            # ScaledObject spec); it follows the HPA's scale-down stabilization window
            assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (
                a.polling_interval_seconds,
                a.scale_down_stabilization_seconds,
            )
            triggers = {t["name"]: t for t in spec["triggers"]}
            for t in triggers.values():
                assert t["type"] == "prometheus"
                assert "metricName" not in t["metadata"], "removed in KEDA 2.12"
                assert t["metadata"]["serverAddress"] == sv.context.addons.monitoring.prometheus_url
                assert float(t["metadata"]["threshold"]) > 0
            q = triggers["queue-depth"]
            assert q["metadata"]["query"] == f"sum({metrics.NUM_REQUESTS_WAITING}{sel})"
            assert float(q["metadata"]["threshold"]) == a.queue_depth_target
            assert q["metricType"] == "AverageValue"
            if a.kv_cache_usage_target is not None:
                kv = triggers["kv-cache-usage"]
                assert kv["metadata"]["query"] == f"sum({metrics.KV_CACHE_USAGE}{sel})"
                assert float(kv["metadata"]["threshold"]) == a.kv_cache_usage_target
            else:
                assert "kv-cache-usage" not in triggers
            if a.ttft_p95_target_seconds is not None:
                ttft = triggers["ttft-p95"]
                assert "histogram_quantile(0.95," in ttft["metadata"]["query"]
                assert f"rate({metrics.TTFT}_bucket{sel}[" in ttft["metadata"]["query"]
                assert float(ttft["metadata"]["threshold"]) == a.ttft_p95_target_seconds
                assert ttft["metricType"] == "Value"
            else:
                assert "ttft-p95" not in triggers
            hpa_cfg = spec["advanced"]["horizontalPodAutoscalerConfig"]
            assert hpa_cfg["name"] == keda_hpa_name(m.name)
            _behavior_ok(hpa_cfg["behavior"], a)
            assert "activationThreshold" not in q["metadata"]
            rec = sv.record("ScaledObject", m.name)
            assert sv.owners["keda.sh"] in rec.depends_on
        else:
            assert so is None and hpa is not None
            spec = hpa["spec"]
            assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": workload_kind(m), "name": m.name}
            assert (spec["minReplicas"], spec["maxReplicas"]) == (a.min_replicas, a.max_replicas)
            by_name = {x["pods"]["metric"]["name"]: x for x in spec["metrics"]}
            assert all(x["type"] == "Pods" for x in spec["metrics"]), "never CPU"
            qd = by_name[metrics.ADAPTER_QUEUE_DEPTH]["pods"]["target"]
            assert qd["type"] == "AverageValue" and quantity_value(qd["averageValue"]) == Decimal(
                str(a.queue_depth_target)
            )
            assert (metrics.ADAPTER_KV_CACHE_USAGE in by_name) == (a.kv_cache_usage_target is not None)
            _behavior_ok(spec["behavior"], a)


def quantity_value(q: str) -> Decimal:
    """A Kubernetes quantity's value ("850m" -> 0.85, "5" -> 5), parsed here, not by the code under test."""
    return Decimal(q[:-1]) / 1000 if q.endswith("m") else Decimal(q)


def test_fixed_size_models_get_no_autoscaler():
    def mutate(v, s):
        for m in v["models"]:
            m["autoscaling"] = {"minReplicas": 2, "maxReplicas": 2}

    sv = serve("prod", mutate)
    for m, _ in models(sv):
        assert sv.maybe("ScaledObject", m.name) is None and sv.maybe("HorizontalPodAutoscaler", m.name) is None
        # a canary's share of 2 replicas (prod's weights are at most 50 %) is one replica
        assert sv.get(workload_kind(m), m.name)["spec"]["replicas"] == (1 if m.name.endswith("-canary") else 2)
        alerts = {r["alert"] for g in sv.get("PrometheusRule", m.name)["spec"]["groups"] for r in g["rules"]}
        assert "VllmReplicasAtMaximum" not in alerts


def test_scale_to_zero_only_when_enabled_and_woken_by_the_gateway():
    def mutate(v, s):
        v["models"][0]["autoscaling"] = {
            "minReplicas": 0,
            "maxReplicas": 4,
            "scaleToZero": True,
            "activationQueueDepth": 1,
        }
        v["models"][0].pop("canary", None)  # a canary cannot accompany scale to zero (test_canary.py)

    sv = serve("prod", mutate)
    m = sv.plan.config.models[0]
    spec = sv.get("ScaledObject", m.name)["spec"]
    assert spec["minReplicaCount"] == 0
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert triggers["queue-depth"]["metadata"]["activationThreshold"] == "1"
    wake = triggers["wake-up"]["metadata"]
    assert wake["activationThreshold"] == "0"
    # the endpoint picker of the model's pool counts every request, scheduled or failed (no pod)
    assert wake["query"] == (
        f'sum(rate({{__name__=~"{metrics.EPP_REQUESTS}|{metrics.EPP_REQUEST_ERRORS}", '
        f'namespace="{sv.plan.config.namespace}", service="{m.name}-epp"}}[2m])) or vector(0)'
    )
    assert "nginx" not in str(spec)
    # every other model keeps at least one warm replica
    for other in sv.plan.config.models[1:]:
        assert sv.get("ScaledObject", other.name)["spec"]["minReplicaCount"] >= 1


# -- monitoring -------------------------------------------------------------------------------------
def test_service_monitor_scrapes_the_http_port(sv):
    mon = sv.context.addons.monitoring
    for m, _ in models(sv):
        sm = sv.get("ServiceMonitor", m.name)
        assert mon.monitor_labels.items() <= sm["metadata"]["labels"].items()
        svc = sv.get("Service", m.name)
        assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert sm["spec"]["namespaceSelector"] == {"matchNames": [sv.plan.config.namespace]}
        (ep,) = sm["spec"]["endpoints"]
        assert (ep["port"], ep["path"]) == ("http", "/metrics")
        assert sv.owners["monitoring.coreos.com"] in sv.record("ServiceMonitor", m.name).depends_on


def _rules(sv: Served, name: str) -> dict[str, dict[str, Any]]:
    pr = sv.get("PrometheusRule", name)
    assert sv.context.addons.monitoring.monitor_labels.items() <= pr["metadata"]["labels"].items()
    return {r["alert"]: r for g in pr["spec"]["groups"] for r in g["rules"]}


def test_alert_rules_use_the_configured_thresholds(sv):
    t = sv.plan.config.alerts
    ns = sv.plan.config.namespace
    for m, _ in models(sv):
        rules = _rules(sv, m.name)
        autoscaled = m.autoscaling.min_replicas != m.autoscaling.max_replicas and sv.context.addons.autoscaler != "none"
        expected = {
            "VllmKvCacheNearlyFull": (metrics.KV_CACHE_USAGE, f"> {t.kv_cache_usage:g}", t.kv_cache_for),
            "VllmRequestQueueBacklog": (metrics.NUM_REQUESTS_WAITING, f"> {t.queue_depth:g}", t.queue_depth_for),
            "VllmTimeToFirstTokenHigh": (f"{metrics.TTFT}_bucket", f"> {t.ttft_p99_seconds:g}", t.ttft_for),
            "VllmHighErrorRate": (metrics.HTTP_REQUESTS, f"> {t.error_ratio:g}", t.error_ratio_for),
        }
        if sv.context.addons.monitoring.gpu_metrics:
            expected["VllmGpuTemperatureHigh"] = (
                metrics.DCGM_GPU_TEMP,
                f"> {t.gpu_temperature_celsius:g}",
                t.gpu_temperature_for,
            )
        if autoscaled:
            expected["VllmReplicasAtMaximum"] = (metrics.KSM_HPA_MAX_REPLICAS, ">=", t.max_replicas_for)
        assert set(rules) == set(expected), m.name
        for alert, (metric, comparison, for_) in expected.items():
            r = rules[alert]
            assert metric in r["expr"], (alert, r["expr"])
            if comparison == ">=":
                assert " >= on (namespace, horizontalpodautoscaler) " in r["expr"], r["expr"]
            else:
                assert r["expr"].endswith(f") {comparison}"), (alert, r["expr"])
            assert r["for"] == for_
            assert r["labels"]["severity"] in {"warning", "critical"}
            assert r["labels"]["model_name"] == m.served_name
            ann = r["annotations"]
            assert ann["summary"] and ann["description"]
            assert ann["runbook_url"] == f"{t.runbook_base_url}/vllm.md#{alert.lower()}"
            assert f'namespace="{ns}"' in r["expr"]
        assert "0.99" in rules["VllmTimeToFirstTokenHigh"]["expr"]
        assert f'model_name="{m.served_name}"' in rules["VllmKvCacheNearlyFull"]["expr"]
        assert f'status="{metrics.HTTP_5XX}"' in rules["VllmHighErrorRate"]["expr"]
        if "VllmGpuTemperatureHigh" in rules:
            assert f'pod=~"{pod_name_regex(m.name, workload_kind(m))}"' in rules["VllmGpuTemperatureHigh"]["expr"]
        if autoscaled:
            hpa = keda_hpa_name(m.name) if sv.context.addons.autoscaler == "keda" else m.name
            expr = rules["VllmReplicasAtMaximum"]["expr"]
            assert expr.count(f'horizontalpodautoscaler="{hpa}"') == 2 and metrics.KSM_HPA_CURRENT_REPLICAS in expr


def test_pod_regex_selects_only_the_models_own_pods():
    def names(kind: str, name: str) -> list[str]:
        return (
            [f"{name}-7c9d5f6b8-x2r4q", f"{name}-5d4f8b9c7d-mq7wd"]
            if kind == "Deployment"
            else [f"{name}-0", f"{name}-12"]
        )

    for kind in ("Deployment", "StatefulSet"):
        rx = re.compile(pod_name_regex("llama31-8b", kind))
        assert all(rx.fullmatch(n) for n in names(kind, "llama31-8b"))
        for other in ("llama31-8b-instruct", "llama31", "x-llama31-8b"):
            assert not any(rx.fullmatch(n) for k in ("Deployment", "StatefulSet") for n in names(k, other))


def test_dashboard_panels_and_queries(sv):
    mon = sv.context.addons.monitoring
    for m, _ in models(sv):
        cm = sv.maybe("ConfigMap", f"{m.name}-dashboard")
        if not mon.dashboard_labels:
            assert cm is None
            continue
        assert mon.dashboard_labels.items() <= cm["metadata"]["labels"].items()
        (raw,) = cm["data"].values()
        import json

        board = json.loads(raw)
        assert len(board["uid"]) <= 40
        queries = list(panel_queries(board))
        by_panel: dict[str, list[str]] = {}
        for title, _legend, expr in queries:
            by_panel.setdefault(title, []).append(expr)
        ttft = by_panel["Time to first token"]
        assert [q.split(",")[0] for q in ttft] == [
            "histogram_quantile(0.5",
            "histogram_quantile(0.95",
            "histogram_quantile(0.99",
        ]
        assert all(metrics.TTFT in q for q in ttft)
        assert all(metrics.INTER_TOKEN_LATENCY in q for q in by_panel["Inter-token latency"])
        tokens = " ".join(by_panel["Tokens per second"])
        assert metrics.PROMPT_TOKENS in tokens and metrics.GENERATION_TOKENS in tokens
        replicas = " ".join(by_panel["Queue depth vs replicas"])
        assert metrics.NUM_REQUESTS_WAITING in replicas and metrics.KSM_READY_REPLICAS[workload_kind(m)][0] in replicas
        assert metrics.KV_CACHE_USAGE in by_panel["KV-cache usage"][0]
        hit = by_panel["Prefix-cache hit rate"][0]
        assert metrics.PREFIX_CACHE_HITS in hit and metrics.PREFIX_CACHE_QUERIES in hit
        if mon.gpu_metrics:
            assert metrics.DCGM_GPU_UTIL in by_panel["GPU utilization"][0]
            assert metrics.DCGM_FB_USED in by_panel["GPU memory used"][0]
        sel = f'namespace="{sv.plan.config.namespace}"'
        for title, _, expr in queries:
            assert sel in expr, (title, expr)
            if "vllm:" in expr:
                assert f'model_name="{m.served_name}"' in expr, (title, expr)
            for name in re.findall(r"vllm:[a-z0-9_]+", expr):
                assert name.removesuffix("_bucket") in vars(metrics).values(), name


def test_no_monitoring_objects_without_prometheus():
    def no_monitoring(handle: AddonsHandle) -> AddonsHandle:
        owners = {g: o for g, o in handle.crd_owners.items() if g != "monitoring.coreos.com"}
        return dataclasses.replace(handle, monitoring=MonitoringHandle(prometheus_url=None), crd_owners=owners)

    def fixed(v, s):
        v["addons"] = {**v.get("addons", {}), "monitoring": {"mode": "none"}, "keda": {"enabled": False}}
        for m in v["models"]:
            m["autoscaling"] = {"minReplicas": 1, "maxReplicas": 1}
        s.pop("grafanaAdminPassword", None)

    sv = serve("dev", fixed, no_monitoring)
    kinds = {o["kind"] for o in sv.objects}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ScaledObject", "HorizontalPodAutoscaler", "ConfigMap"}
    assert "StatefulSet" in kinds


def test_restricted_pod_security_runs_as_non_root():
    def mutate(v, s):
        v.setdefault("security", {})["podSecurity"] = "restricted"

    sv = serve("dev", mutate)
    m = sv.plan.config.models[0]
    w = sv.get(workload_kind(m), m.name)
    assert pod_spec(w)["securityContext"]["runAsNonRoot"] is True
    for c in [*pod_spec(w).get("initContainers", []), *pod_spec(w)["containers"]]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}


# -- schemas of everything the harness renders (prod included) -------------------------------------
VARIANTS: dict[str, Callable[[], Served]] = {
    **{s: (lambda s=s: served(s)) for s in STACKS_WITH_MODELS},
    "dev-httproute": lambda: serve(
        "dev", lambda v, s: v["models"][0].update(httpRoute={"gatewayName": "gw", "gatewayNamespace": "gw"})
    ),
    "prod-scale-to-zero": lambda: serve(
        "prod",
        lambda v, s: (
            v["models"][0].update(autoscaling={"minReplicas": 0, "maxReplicas": 3, "scaleToZero": True}),
            v["models"][0].pop("canary", None),  # a canary cannot accompany scale to zero
        ),
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_objects_match_schemas(variant):
    sv = VARIANTS[variant]()
    checked = 0
    for obj in sv.objects:
        if is_custom(obj):
            errors = custom_resource_errors(obj)
            assert not errors, errors[:3]
        else:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)
        checked += 1
    assert checked >= 5


# -- config checks added for vLLM ---------------------------------------------------------------------
CONFIG_CASES = [
    (
        "ttft-without-keda",
        "onprem",
        lambda v, s: v["models"][0]["autoscaling"].update(ttftP95TargetSeconds=2),
        "models[0].autoscaling.ttftP95TargetSeconds",
        "needs KEDA",
    ),
    (
        "scale-to-zero-without-a-front-door",
        "dev",
        lambda v, s: (v.pop("edge"), v["models"][0]["autoscaling"].update(minReplicas=0, scaleToZero=True)),
        "models[0].autoscaling.scaleToZero",
        "needs edge.gateway",
    ),
    (
        "pipeline-parallel-in-extra-args",
        "dev",
        lambda v, s: v["models"][0].update(extraArgs=["--pipeline-parallel-size", "2"]),
        "models[0].extraArgs",
        "GPUs per replica",
    ),
    (
        "tp-alias-in-extra-args",
        "dev",
        lambda v, s: v["models"][0].update(extraArgs=["-tp", "2"]),
        "models[0].extraArgs",
        "tensorParallelSize",
    ),
    (
        "metrics-off-in-extra-args",
        "dev",
        lambda v, s: v["models"][0].update(extraArgs=["--disable-log-stats"]),
        "models[0].extraArgs",
        "Prometheus metrics",
    ),
    (
        "same-served-name",
        "prod",
        lambda v, s: v["models"][1].update(servedModelName="llama31-8b"),
        "models[1].servedModelName",
        "already served",
    ),
    (
        "batched-tokens-below-context",
        "dev",
        lambda v, s: v["models"][0].update(maxNumBatchedTokens=2048, enableChunkedPrefill=False),
        "models[0].maxNumBatchedTokens",
        "below maxModelLen 8192",
    ),
    (
        "batched-tokens-below-seqs",
        "dev",
        lambda v, s: v["models"][0].update(maxNumBatchedTokens=512, maxNumSeqs=1024),
        "models[0].maxNumBatchedTokens",
        "below maxNumSeqs",
    ),
    (
        "pre-stop-eats-grace",
        "dev",
        lambda v, s: v["models"][0].update(preStopSleepSeconds=90, terminationGracePeriodSeconds=120),
        "models[0].preStopSleepSeconds",
        "less than 60s",
    ),
    (
        "memory-over-node-share",
        "prod",
        lambda v, s: v["models"][0].update(resources={"memoryGib": 64}),
        "models[0].resources.memoryGib",
        "exceeds the",
    ),
    (
        "cpu-over-node-share",
        "prod",
        lambda v, s: v["models"][0].update(resources={"cpu": 16}),
        "models[0].resources.cpu",
        "exceeds the",
    ),
    (
        "memory-below-shm",
        "prod",
        lambda v, s: v["models"][1].update(resources={"memoryGib": 16}),
        "models[1].resources.memoryGib",
        "/dev/shm",
    ),
]


@pytest.mark.parametrize("case_id,stack,mutate,path,words", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_vllm_config_mistakes_are_reported(case_id, stack, mutate, path, words):
    values, secrets = stack_values(stack)
    mutate(values, secrets)
    assert_rejected(stack, values, secrets, path, words)


def test_stack_files_pass_the_vllm_checks():
    for stack in STACKS:
        values, secrets = stack_values(stack)
        load_stack_config(stack, copy.deepcopy(values), secrets)


# -- the real program ----------------------------------------------------------------------------------
def test_real_render_serves_every_model_as_the_harness_does(stack):
    values, _ = stack_values(stack)
    if not values.get("models"):
        pytest.skip(f"{stack} has no vLLM models")
    rec = render(stack)
    objs = manifests(rec)
    sv = served(stack)
    for m, _ in models(sv):
        kind = workload_kind(m)
        (real,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == m.name]
        ours = sv.get(kind, m.name)
        assert container(real)["args"] == container(ours)["args"]
        assert container(real)["resources"] == container(ours)["resources"]
        assert pod_spec(real)["tolerations"] == pod_spec(ours)["tolerations"]
        assert [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == m.name]
        # the endpoint export points at the Service
        assert (
            rec.outputs["endpoints"][m.name] == f"http://{m.name}.{sv.plan.config.namespace}.svc.cluster.local:8000/v1"
        )


def test_every_alert_has_a_runbook_section():
    from conftest import ROOT

    headings = set(re.findall(r"^## (\w+)$", (ROOT / "docs" / "runbooks" / "vllm.md").read_text(), re.M))
    alerts = {
        r["alert"]
        for stack in STACKS_WITH_MODELS
        for o in served(stack).objects
        if o["kind"] == "PrometheusRule"
        for g in o["spec"]["groups"]
        for r in g["rules"]
    }
    assert alerts and alerts <= headings, alerts - headings


def test_fractional_quantities_are_rendered_in_milli_units():
    """HPA targets and CPU overrides that are not whole numbers (literal expectations: Kubernetes
    quantities, 0.85 -> "850m")."""
    from conftest import PROJECT

    from llm_infra.components.render import run_program

    values, _ = stack_values("onprem")
    model = values["models"][0]
    model["autoscaling"].update(queueDepthTarget=2.5, kvCacheUsageTarget=0.85)
    model["resources"] = {"cpu": 7.5}
    objs = manifests(run_program(PROJECT, "onprem", config_overrides={"models": values["models"]}))
    (hpa,) = [o for o in objs if o["kind"] == "HorizontalPodAutoscaler"]
    targets = {m["pods"]["metric"]["name"]: m["pods"]["target"] for m in hpa["spec"]["metrics"]}
    assert targets == {
        "vllm_num_requests_waiting": {"type": "AverageValue", "averageValue": "2500m"},
        "vllm_kv_cache_usage_perc": {"type": "AverageValue", "averageValue": "850m"},
    }
    (sts,) = [o for o in objs if o["kind"] == "StatefulSet"]
    vllm = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm")
    assert vllm["resources"]["requests"]["cpu"] == vllm["resources"]["limits"]["cpu"] == "7500m"
