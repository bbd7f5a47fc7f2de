"""Issue 20 / issue 12 (GKE parts): what stops or degrades a fresh `pulumi up`."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from conftest import STACKS, render
from stackfiles import assert_rejected, stack_values

from llm_infra.components.reports import plan_warnings
from llm_infra.config import k8s_support, load_stack_config, versions


# -- Kubernetes versions ---------------------------------------------------------------------
# End of standard support: EKS release calendar (docs.aws.amazon.com/eks/latest/userguide/
# kubernetes-versions.html) 1.33 2026-07-29, 1.34 2026-12-02, 1.35 2027-03-27; GKE release
# schedule (cloud.google.com/kubernetes-engine/docs/release-schedule) 1.33 2026-08-03,
# 1.34 2026-10-01, 1.35 2027-04-11.
@pytest.mark.parametrize(
    "cloud,version,on,expected",
    [
        ("eks", "1.33", date(2026, 12, 2), "error"),
        ("gke", "1.33", date(2026, 12, 2), "error"),
        ("gke", "1.34", date(2026, 12, 2), "error"),
        ("eks", "1.34", date(2026, 12, 2), "warning"),  # its last day
        ("eks", "1.35", date(2026, 12, 2), None),
        ("eks", "1.35", date(2027, 1, 25), None),  # 61 days before 2027-03-27
        ("eks", "1.35", date(2027, 1, 26), "warning"),  # 60 days before
        ("gke", "1.35.2-gke.1000", date(2027, 4, 12), "error"),
        ("gke", "1.99", date(2026, 12, 2), "error"),  # no sourced date
    ],
)
def test_support_window_of_a_pinned_version(cloud, version, on, expected):
    found = k8s_support.check(cloud, version, on)
    assert (found[0] if found else None) == expected


def test_stacks_render_with_versions_in_standard_support_today():
    """The pinned default (EKS) and any stack pin are in standard support on the pinned date."""
    on = date(2026, 12, 2)
    assert k8s_support.check("eks", versions.KUBERNETES_VERSION, on) is None
    assert k8s_support.check("gke", versions.KUBERNETES_VERSION, on) is None
    for stack in STACKS:
        cfg = load_stack_config(stack, *stack_values(stack)).config.cluster
        if cfg.control_plane_version and cfg.cloud != "existing":
            assert k8s_support.check(cfg.cloud, cfg.control_plane_version, on) is None, stack


def test_a_pin_past_standard_support_is_an_error_and_near_it_a_warning(monkeypatch):
    for stack in STACKS:
        values, secrets = stack_values(stack)
        if values["cluster"]["cloud"] not in ("eks", "gke") or values["cluster"].get("existingClusterName"):
            continue
        values["cluster"]["kubernetesVersion"] = "1.33"
        assert_rejected(stack, values, secrets, "cluster.kubernetesVersion", "left standard support")
        values["cluster"]["kubernetesVersion"] = "1.35"
        monkeypatch.setattr(k8s_support, "today", lambda: date(2027, 3, 1))
        plan = load_stack_config(stack, values, secrets)
        assert any("leaves standard support" in w for w in plan_warnings(plan)), stack
        monkeypatch.undo()


def test_gke_takes_the_release_channel_default_unless_pinned():
    for stack in STACKS:
        values = stack_values(stack)[0]
        if values["cluster"]["cloud"] != "gke" or values["cluster"].get("existingClusterName"):
            continue
        [cluster] = [r for r in render(stack).resources if r.type == "gcp:container/cluster:Cluster"]
        assert "minMasterVersion" not in cluster.inputs or "kubernetesVersion" in values["cluster"]


# -- monitoring: no target (and so no TargetDown alert) for what the cloud does not run ------
SCRAPE_COMPONENTS = (
    "kubeApiServer",
    "kubelet",
    "kubeControllerManager",
    "coreDns",
    "kubeDns",
    "kubeEtcd",
    "kubeScheduler",
    "kubeProxy",
)
CLOUD_RUNS = {
    # EKS: managed control plane (no etcd/scheduler/controller-manager endpoints for Prometheus),
    # the CoreDNS add-on, kube-proxy with metricsBindAddress 127.0.0.1:10249 (EKS kube-proxy
    # add-on config): not scrapeable from Prometheus.
    "eks": {"kubeApiServer", "kubelet", "coreDns"},
    # GKE Standard: managed control plane, kube-dns as cluster DNS ("Using kube-dns", GKE docs),
    # no kube-proxy with Dataplane V2 ("About GKE Dataplane V2": kube-proxy is not deployed).
    "gke": {"kubeApiServer", "kubelet", "kubeDns"},
}
RULES_OF = {
    "kubeEtcd": ("etcd",),
    "kubeControllerManager": ("kubeControllerManager",),
    "kubeScheduler": ("kubeSchedulerAlerting", "kubeSchedulerRecording"),
    "kubeProxy": ("kubeProxy",),
}
"""kube-prometheus-stack 88.5.3 defaultRules.rules groups about each scrape target."""


def _merge(base, over):
    if isinstance(base, dict) and isinstance(over, dict):
        return {k: _merge(base.get(k), over[k]) if k in base else over[k] for k in over} | {
            k: v for k, v in base.items() if k not in over
        }
    return over


@pytest.mark.parametrize("stack", [s for s in STACKS])
def test_chart_targets_match_what_the_cloud_runs(stack):
    import yaml
    from conftest import requires_upstream

    from llm_infra.components.render import helm_releases

    cloud = stack_values(stack)[0]["cluster"]["cloud"]
    if cloud not in CLOUD_RUNS:
        pytest.skip("an existing cluster's components are not known from its config")
    kps = [r for r in helm_releases(render(stack)) if r["chart"] == versions.KUBE_PROMETHEUS_STACK.name]
    if not kps:
        pytest.skip(f"{stack} installs no kube-prometheus-stack")
    defaults = yaml.safe_load(requires_upstream("helm-values", "kube-prometheus-stack", "values.yaml").read_text())
    values = _merge(defaults, kps[0]["values"])
    enabled = {c for c in SCRAPE_COMPONENTS if values[c]["enabled"]}
    assert enabled == CLOUD_RUNS[cloud], (
        f"{stack}: scraped {sorted(enabled)}, the cloud runs {sorted(CLOUD_RUNS[cloud])}"
    )
    for component, rules in RULES_OF.items():
        if component not in enabled:
            assert not any(values["defaultRules"]["rules"][r] for r in rules), f"{component} rules still on"


# -- RayService readiness probes -------------------------------------------------------------
# KubeRay v1.7.0 ray-operator/controllers/ray/utils/constant.go: DefaultReadinessProbeTimeoutSeconds = 2,
# DefaultHeadReadinessProbeTimeoutSeconds = 5, ServeReadinessProbeFailureThreshold = 1 (RayService workers).
KUBERAY_WORKER_TIMEOUT, KUBERAY_HEAD_TIMEOUT, KUBERAY_SERVE_FAILURE_THRESHOLD = 2, 5, 1


def test_ray_pods_have_explicit_readiness_probes_for_loaded_proxies():
    from conftest import objects

    seen = 0
    for stack in STACKS:
        for svc in objects(render(stack), "RayService"):
            spec = svc["spec"]["rayClusterConfig"]
            [head] = spec["headGroupSpec"]["template"]["spec"]["containers"][:1]
            probe = head["readinessProbe"]
            assert probe["timeoutSeconds"] > KUBERAY_HEAD_TIMEOUT
            assert probe["httpGet"] == {"path": "/api/healthz", "port": 52365}
            for group in spec["workerGroupSpecs"]:
                c = group["template"]["spec"]["containers"][0]
                probe = c["readinessProbe"]
                assert probe["timeoutSeconds"] > KUBERAY_WORKER_TIMEOUT
                assert probe["failureThreshold"] > KUBERAY_SERVE_FAILURE_THRESHOLD
                command = probe["exec"]["command"][-1]
                # still the proxy check KubeRay would add: a worker without a healthy proxy takes no traffic
                assert "localhost:8000/-/healthz" in command and "localhost:52365/api/local_raylet_healthz" in command
                assert probe["timeoutSeconds"] >= 2 * int(command.split("-T ")[1].split()[0])
                seen += 1
    if not seen:
        pytest.skip("no stack has a RayService")


# -- spot capacity ---------------------------------------------------------------------------
# GKE "Spot VMs": non-system pods get at most 15 s on reclaim; EC2: two-minute spot interruption notice.
GKE_SPOT_SECONDS, EKS_SPOT_SECONDS = 15, 120


def test_gke_spot_models_fit_their_shutdown_into_15_seconds():
    from conftest import objects

    for stack in STACKS:
        plan = load_stack_config(stack, *stack_values(stack))
        if plan.config.cluster.cloud != "gke":
            continue
        for m in plan.config.models:
            if plan.pools[m.node_pool].capacity_type != "spot":
                continue
            [wl] = [
                o
                for o in objects(render(stack))
                if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == m.name
            ]
            [c] = [c for c in wl["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"]
            sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
            assert sleep < GKE_SPOT_SECONDS, f"{stack}/{m.name}: preStop {sleep}s leaves vLLM no time after SIGTERM"
    stack = next((s for s in STACKS if stack_values(s)[0]["cluster"]["cloud"] == "gke"), None)
    if stack is None:
        pytest.skip("no GKE stack")
    values, secrets = stack_values(stack)
    spot = [i for i, p in enumerate(values["cluster"]["nodePools"]) if p.get("capacityType") == "spot"]
    assert spot, "the GKE stack has no spot pool to check"
    pool = values["cluster"]["nodePools"][spot[0]]["name"]
    i = next(i for i, m in enumerate(values["models"]) if m["nodePool"] == pool)
    values["models"][i]["preStopSleepSeconds"] = GKE_SPOT_SECONDS
    assert_rejected(stack, values, secrets, f"models[{i}].preStopSleepSeconds", "GKE gives pods")


def test_every_model_on_spot_capacity_gets_a_plan_warning():
    seen = 0
    for stack in STACKS:
        plan = load_stack_config(stack, *stack_values(stack))
        notice = {"gke": GKE_SPOT_SECONDS, "eks": EKS_SPOT_SECONDS}.get(plan.config.cluster.cloud)
        warnings = plan_warnings(plan)
        for m in plan.config.models:
            spot = plan.pools[m.node_pool].capacity_type == "spot"
            mine = [w for w in warnings if w.startswith(f"models/{m.name}: runs on spot")]
            if spot:
                assert mine and f"{notice}s in all" in mine[0] and "cut" in mine[0], (stack, m.name, warnings)
                seen += 1
        for r in plan.config.ray_services:
            if plan.pools[r.worker_pool].capacity_type == "spot":
                assert any(w.startswith(f"rayServices/{r.name}: workers run on spot") for w in warnings)
                seen += 1
    assert seen, "no stack runs a model on spot capacity"


# -- model caches and zones ------------------------------------------------------------------
def test_per_replica_rwo_caches_only_on_single_zone_pools():
    from conftest import objects

    for stack in STACKS:
        plan = load_stack_config(stack, *stack_values(stack))
        if plan.config.cluster.cloud not in ("eks", "gke"):
            continue
        zones = {p.name: p.zones for p in plan.config.cluster.node_pools}
        for sts in objects(render(stack), "StatefulSet"):
            name = sts["metadata"]["name"]
            m = next((m for m in plan.config.models if m.name == name), None)
            if m is None:
                continue
            assert len(zones[m.node_pool]) == 1, (
                f"{stack}/{name}: per-replica zonal disks on a pool over {zones[m.node_pool] or 'the region'}"
            )
    for stack in STACKS:
        values, secrets = stack_values(stack)
        if values["cluster"]["cloud"] not in ("eks", "gke"):
            continue
        values = copy.deepcopy(values)
        m = values["models"][0]
        m.setdefault("cache", {})["accessMode"] = "ReadWriteOnce"
        pool = next(p for p in values["cluster"]["nodePools"] if p["name"] == m["nodePool"])
        pool["zones"] = [f"{values['cluster']['region']}-a", f"{values['cluster']['region']}-b"]
        assert_rejected(stack, values, secrets, "models[0].cache.accessMode", "pin the pool to one zone")
        pool.pop("zones")
        assert_rejected(stack, values, secrets, "models[0].cache.accessMode", "spans the region")


# -- GKE Gateway -----------------------------------------------------------------------------
# Structure from GKE docs "Configure Gateway resources using Policies" (networking.gke.io/v1;
# the CRDs are not in ../shared/upstream): HealthCheckPolicy spec.default.config.type HTTP +
# httpHealthCheck{portSpecification, port, requestPath}, spec.targetRef{group "", kind Service,
# name}; GCPBackendPolicy spec.default.timeoutSec (1..86400 s), spec.targetRef likewise.
GCP_BACKEND_TIMEOUT_MAX = 86400
GOOGLE_LB_RANGES = {"35.191.0.0/16", "130.211.0.0/22"}  # GKE docs: load balancer health check ranges


def _gateway_variant():
    from test_clusters import variant

    stack = next((s for s in STACKS if stack_values(s)[0]["cluster"]["cloud"] == "gke"), None)
    if stack is None:
        pytest.skip("no GKE stack")
    models = copy.deepcopy(stack_values(stack)[0]["models"])
    for m in models:
        m["httpRoute"] = {"gatewayName": "inference", "gatewayNamespace": "gateways", "timeoutSeconds": 900}
    # a model's own httpRoute to a Gateway the cluster runs, without the stack's public edge.gateway
    return stack, variant(stack, "gke-gateway-policies", {"models": models, "edge": None, "apiKeys": None})


def test_every_backend_behind_a_gke_gateway_has_health_check_and_timeout_policies():
    from conftest import objects

    _stack, rec = _gateway_variant()
    routes = objects(rec, "HTTPRoute")
    assert routes
    services = {o["metadata"]["name"]: o for o in objects(rec, "Service")}
    hc = {o["spec"]["targetRef"]["name"]: o for o in objects(rec, "HealthCheckPolicy")}
    bp = {o["spec"]["targetRef"]["name"]: o for o in objects(rec, "GCPBackendPolicy")}
    for route in routes:
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                name, port = ref["name"], ref["port"]
                svc = services[name]
                target_port = next(p for p in svc["spec"]["ports"] if p["port"] == port)
                h = hc[name]
                assert (
                    h["apiVersion"] == "networking.gke.io/v1"
                    and h["metadata"]["namespace"] == route["metadata"]["namespace"]
                )
                assert h["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": name}
                check = h["spec"]["default"]["config"]
                assert check["type"] == "HTTP"
                assert check["httpHealthCheck"]["requestPath"] == "/health"  # vLLM's health endpoint; GET / is 404
                assert check["httpHealthCheck"]["port"] in (target_port.get("targetPort"), port)
                b = bp[name]
                assert b["apiVersion"] == "networking.gke.io/v1"
                assert b["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": name}
                timeout = b["spec"]["default"]["timeoutSec"]
                assert timeout == int(rule["timeouts"]["request"].rstrip("s")) == 900
                assert 1 <= timeout <= GCP_BACKEND_TIMEOUT_MAX
    lb = [o for o in objects(rec, "NetworkPolicy") if o["metadata"]["name"].endswith("-allow-gke-lb")]
    assert lb, "Dataplane V2 enforces NetworkPolicies: the load balancer ranges must be let in"
    for policy in lb:
        cidrs = {f["ipBlock"]["cidr"] for rule in policy["spec"]["ingress"] for f in rule["from"]}
        assert cidrs == GOOGLE_LB_RANGES


# -- README: cloud prerequisites -------------------------------------------------------------
# Compute Engine GPU quota metrics are <ACCELERATOR>_GPUS, PREEMPTIBLE_<ACCELERATOR>_GPUS for
# spot/preemptible VMs, and the global GPUS_ALL_REGIONS (Compute Engine docs, "GPU quota").
GKE_APIS = (
    "container.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
)
EC2_GPU_QUOTAS = {"on-demand": "L-DB2E81BA", "spot": "L-3819A6DF"}  # Service Quotas codes, G and VT families


def test_readme_lists_each_stacks_apis_and_gpu_quotas_by_name():
    from conftest import ROOT

    from llm_infra.config import catalog

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Cloud prerequisites per stack") :]
    for stack in STACKS:
        plan = load_stack_config(stack, *stack_values(stack))
        c = plan.config.cluster
        assert f"**{stack} (" in section, f"README has no prerequisites for {stack}"
        part = section[section.index(f"**{stack} (") :]
        part = part[: part.index("**", part.index("**", 2) + 2)] if part.count("**") > 2 else part
        if c.cloud == "gke":
            for api in GKE_APIS:
                assert api in part, (stack, api)
            assert "GPUS_ALL_REGIONS" in part and "gcp:project" in part
            for pool in c.node_pools:
                accel = catalog.lookup("gke", pool.instance_type or "").accelerator.upper().replace("-", "_")
                quota = ("PREEMPTIBLE_" if pool.capacity_type == "spot" else "") + f"{accel}_GPUS"
                assert quota in part, (stack, pool.name, quota)
        if c.cloud == "eks":
            kinds = {p.capacity_type for p in c.node_pools} | ({"spot"} if c.eks and c.eks.karpenter.enabled else set())
            for kind in kinds:
                assert EC2_GPU_QUOTAS[kind] in part, (stack, kind)


def test_provider_region_must_match_the_cluster_on_eks():
    for stack in STACKS:
        values, secrets = stack_values(stack)
        if values["cluster"]["cloud"] != "eks":
            continue
        assert_rejected(stack, values, secrets, "cluster.region", "aws:region", providers={"aws:region": "eu-west-1"})


def test_ray_incremental_upgrade_through_a_gke_gateway_is_rejected():
    stack = next((s for s in STACKS if stack_values(s)[0]["cluster"]["cloud"] == "gke"), None)
    ray_stack = next((s for s in STACKS if stack_values(s)[0].get("rayServices")), None)
    if stack is None or ray_stack is None:
        pytest.skip("needs a GKE stack and a RayService to borrow")
    values, secrets = stack_values(stack)
    svc = copy.deepcopy(stack_values(ray_stack)[0]["rayServices"][0])
    svc["workerPool"] = values["cluster"]["nodePools"][0]["name"]
    svc.update(
        upgradeStrategy="NewClusterWithIncrementalUpgrade", incrementalUpgrade={"gatewayClassName": "gke-l7-rilb"}
    )
    values["rayServices"] = [svc]
    assert_rejected(stack, values, secrets, "rayServices[0].upgradeStrategy", "no HealthCheckPolicy can target")


def test_an_open_gke_control_plane_is_warned_about():
    for stack in STACKS:
        values, secrets = stack_values(stack)
        c = values["cluster"]
        if c["cloud"] != "gke" or c.get("existingClusterName"):
            continue
        open_endpoint = c["gke"].get("publicEndpoint", True) and not c["gke"].get("masterAuthorizedNetworks")
        warned = any(
            w.startswith("cluster.gke.masterAuthorizedNetworks: empty")
            for w in plan_warnings(load_stack_config(stack, values, secrets))
        )
        assert warned == open_endpoint, stack
        c["gke"]["masterAuthorizedNetworks"] = [{"cidr": "198.51.100.0/24"}]
        assert not any(
            "masterAuthorizedNetworks" in w for w in plan_warnings(load_stack_config(stack, values, secrets))
        )


def test_gke_policies_pass_their_schema_and_broken_copies_do_not():
    """The CRD when ../shared/upstream has it, else the documented schema (documented_crds.py)."""
    from conftest import objects
    from upstream import custom_resource_errors

    _, rec = _gateway_variant()
    policies = [o for o in objects(rec) if o["apiVersion"] == "networking.gke.io/v1"]
    assert {o["kind"] for o in policies} == {"HealthCheckPolicy", "GCPBackendPolicy"}
    for obj in policies:
        assert custom_resource_errors(obj) == []
    hc = copy.deepcopy(next(o for o in policies if o["kind"] == "HealthCheckPolicy"))
    hc["spec"]["default"]["config"]["httpHealthCheck"]["requestPath"] = "health"  # must start with /
    hc["spec"]["default"]["checkIntervalSec"] = 0
    hc["spec"]["default"]["config"]["httpHealthCheck"]["path"] = "/health"  # not a field
    assert len(custom_resource_errors(hc)) >= 3
    bp = copy.deepcopy(next(o for o in policies if o["kind"] == "GCPBackendPolicy"))
    del bp["spec"]["targetRef"]["name"]
    assert custom_resource_errors(bp)
