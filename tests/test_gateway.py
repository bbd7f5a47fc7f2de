"""The public Gateway of every stack (issue 14): TLS, API keys, one InferencePool + EPP per vLLM
model behind one URL routed by the request's model name, and no ingress-nginx unless opted in.

Expectations come from the stack files (read with PyYAML here, not through the config models)
and from literals with their upstream source.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import yaml
from conftest import PROJECT, ROOT, STACKS, objects, render
from stackfiles import api_key_clients, assert_rejected, stack_values

from llm_infra.components.render import helm_releases, manifests, run_program
from llm_infra.config import versions

GATEWAY = ("inference-gateway", "inference-gateway")  # (name, namespace): GatewayConfig defaults
EXPECTED_CLASS = {
    "prod": "envoy",  # the GatewayClass the stack creates for the Envoy Gateway it installs
    "dev": "gke-l7-regional-external-managed",  # GKE Inference Gateway's regional external ALB
    "onprem": "eg",  # Pulumi.onprem.yaml edge.gateway.className (existing)
}
EXPECTED_PROXIES = {"prod": "envoy-gateway-system", "onprem": "envoy-gateway-system", "dev": None}
GOOGLE_LB_RANGES = {"35.191.0.0/16", "130.211.0.0/22"}  # GKE docs, health checks and front ends
MODEL_HEADER = "X-Gateway-Model-Name"  # GIE v1.5.0 body-based-routing values.yaml, model-extractor
VLLM_POD_LABEL_NAME = "vllm"  # app.kubernetes.io/name of every vLLM pod (components/k8s.py labels)


def raw_config(stack: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith("llm-infra:")}


def edge_of(stack: str) -> dict[str, Any]:
    return raw_config(stack)["edge"]["gateway"]


def by_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs}


def releases(rec) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in helm_releases(rec)}


def served_name(model: dict[str, Any]) -> str:
    return model.get("servedModelName") or model["name"]


# -- the Gateway --------------------------------------------------------------------------------
def test_every_stack_has_one_https_gateway_with_a_redirecting_http_listener(stack, recording):
    gw_cfg = edge_of(stack)
    (gw,) = objects(recording, "Gateway")
    assert (gw["metadata"]["name"], gw["metadata"]["namespace"]) == GATEWAY
    assert gw["spec"]["gatewayClassName"] == EXPECTED_CLASS[stack]
    listeners = {item["name"]: item for item in gw["spec"]["listeners"]}
    assert set(listeners) == {"https", "http"}
    https = listeners["https"]
    assert (https["protocol"], https["port"], https["hostname"]) == ("HTTPS", 443, gw_cfg["hostname"])
    secret = gw_cfg["tls"].get("secretName", "inference-gateway-tls")
    assert https["tls"] == {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": secret}]}
    ns = raw_config(stack)["namespace"]
    assert https["allowedRoutes"]["namespaces"]["selector"]["matchLabels"] == {"kubernetes.io/metadata.name": ns}
    assert (listeners["http"]["protocol"], listeners["http"]["port"]) == ("HTTP", 80)
    (redirect,) = [r for r in objects(recording, "HTTPRoute") if r["metadata"]["namespace"] == GATEWAY[1]]
    assert redirect["spec"]["parentRefs"][0]["sectionName"] == "http"
    (rule,) = redirect["spec"]["rules"]
    assert rule["filters"] == [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    assert "backendRefs" not in rule


def test_certificates_come_from_cert_manager_acme_or_an_existing_secret(stack, recording):
    tls = edge_of(stack)["tls"]
    rels = releases(recording)
    if "acme" not in tls:
        assert not objects(recording, "Certificate") and not objects(recording, "ClusterIssuer")
        assert "cert-manager" not in rels
        return
    acme = tls["acme"]
    (issuer,) = objects(recording, "ClusterIssuer")
    spec = issuer["spec"]["acme"]
    assert spec["email"] == acme["email"]
    assert spec["server"] == acme.get("server", "https://acme-v02.api.letsencrypt.org/directory")
    (solver,) = spec["solvers"]
    (parent,) = solver["http01"]["gatewayHTTPRoute"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent["sectionName"]) == (*GATEWAY, "http")
    (cert,) = objects(recording, "Certificate")
    assert cert["metadata"]["namespace"] == GATEWAY[1]
    assert cert["spec"]["dnsNames"] == [edge_of(stack)["hostname"]]
    assert cert["spec"]["secretName"] == "inference-gateway-tls"
    assert cert["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    cm = rels["cert-manager"]
    assert (cm["version"], cm["repository"]) == ("v1.21.1", "https://charts.jetstack.io")
    assert cm["values"]["crds"] == {"enabled": True, "keep": True}
    assert cm["values"]["config"]["enableGatewayAPI"] is True


def test_envoy_gateway_is_installed_with_inference_pool_support_only_where_asked(stack, recording):
    rels = releases(recording)
    if stack != "prod":  # GKE's own controller; onprem's Envoy Gateway already exists
        assert not {"gateway-helm", "ai-gateway-helm", "ai-gateway-crds-helm"} & set(rels)
        assert not objects(recording, "GatewayClass")
        return
    eg = rels["gateway-helm"]
    assert (eg["version"], eg["repository"]) == ("v1.9.0", "oci://docker.io/envoyproxy")
    manager = eg["values"]["config"]["envoyGateway"]["extensionManager"]
    # envoyproxy/ai-gateway v1.1.0 examples/inference-pool/envoy-gateway-values-addon.yaml
    assert {"group": "inference.networking.k8s.io", "kind": "InferencePool", "version": "v1"} in manager[
        "backendResources"
    ]
    assert manager["service"]["fqdn"] == {
        "hostname": "ai-gateway-controller.envoy-ai-gateway-system.svc.cluster.local",
        "port": 1063,
    }
    assert rels["ai-gateway-helm"]["version"] == rels["ai-gateway-crds-helm"]["version"] == "v1.1.0"
    (cls,) = objects(recording, "GatewayClass")
    assert cls["metadata"]["name"] == "envoy"
    assert cls["spec"]["controllerName"] == eg["values"]["config"]["envoyGateway"]["gateway"]["controllerName"]


# -- one URL, a pool and an EPP per model --------------------------------------------------------
def test_every_model_has_a_pool_an_endpoint_picker_and_a_route_by_model_name(stack, recording):
    cfg = raw_config(stack)
    rels = releases(recording)
    routes = by_name([r for r in objects(recording, "HTTPRoute") if r["metadata"]["namespace"] == cfg["namespace"]])
    workloads = by_name([*objects(recording, "Deployment"), *objects(recording, "StatefulSet")])
    objectives = edge_of(stack).get("objectives", {})
    assert set(routes) == {m["name"] for m in cfg["models"]}
    for i, m in enumerate(cfg["models"]):
        rel = rels[m["name"]]
        assert (rel["chart"], rel["version"], rel["repository"]) == (
            "llm-d-router-gateway",
            "v0.10.0",
            "oci://ghcr.io/llm-d/charts",
        )
        router = rel["values"]["router"]
        selector = {"app.kubernetes.io/name": VLLM_POD_LABEL_NAME, "app.kubernetes.io/instance": m["name"]}
        assert router["modelServers"]["matchLabels"] == selector
        pod = workloads[m["name"]]["spec"]["template"]
        assert selector.items() <= pod["metadata"]["labels"].items(), "the pool selects the model's pods"
        ports = {p["containerPort"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert [p["number"] for p in router["modelServers"]["targetPorts"]] == [8000] and 8000 in ports
        assert router["epp"]["image"]["tag"] == "v0.10.0"  # a release, not routerlib's default "main"
        assert router["inferenceObjectives"] == objectives.get(m["name"], [])
        assert rel["values"]["httpRoute"] == {"create": False}
        assert rel["values"]["provider"]["name"] == ("gke" if stack == "dev" else "none")

        route = routes[m["name"]]["spec"]
        (parent,) = route["parentRefs"]
        assert (parent["name"], parent["namespace"], parent["sectionName"]) == (*GATEWAY, "https")
        assert route["hostnames"] == [edge_of(stack)["hostname"]]
        first = route["rules"][0]
        # the model's name, then each LoRA adapter's (vLLM serves an adapter as a model name of its own)
        names = [served_name(m), *(a["name"] for a in m.get("lora", {}).get("adapters", []))]
        assert [match["headers"] for match in first["matches"]] == [
            [{"type": "Exact", "name": MODEL_HEADER, "value": n}] for n in names
        ]
        assert all(match["path"] == {"type": "PathPrefix", "value": "/v1"} for match in first["matches"])
        pool_ref = {"group": "inference.networking.k8s.io", "kind": "InferencePool"}
        if "canary" in m:
            weight = m["canary"]["weight"]
            assert first["backendRefs"] == [
                {**pool_ref, "name": m["name"], "weight": 100 - weight},
                {**pool_ref, "name": f"{m['name']}-canary", "weight": weight},
            ]
        else:
            assert first["backendRefs"] == [{**pool_ref, "name": m["name"]}]
        # Envoy runs the body-based router only on a matched route: one catch-all rule (first model)
        assert len(route["rules"]) == (2 if stack != "dev" and i == 0 else 1)


def test_model_names_pick_exactly_one_route(stack, recording):
    headers = [
        h["value"]
        for r in objects(recording, "HTTPRoute")
        for rule in r["spec"]["rules"]
        for match in rule.get("matches", [])
        for h in match.get("headers", [])
        if h["name"] == MODEL_HEADER
    ]
    expected = [
        n
        for m in raw_config(stack)["models"]
        for n in (served_name(m), *(a["name"] for a in m.get("lora", {}).get("adapters", [])))
    ]
    assert sorted(headers) == sorted(expected)


def pool_names(stack: str) -> list[str]:
    """One InferencePool per vLLM model, and one per canary (``<model>-canary``)."""
    models = raw_config(stack)["models"]
    return [m["name"] for m in models] + [f"{m['name']}-canary" for m in models if "canary" in m]


def canary_recording(weight: int):
    values, _ = stack_values("prod")
    models = copy.deepcopy(values["models"])
    models[0]["canary"] = {**models[0].get("canary", {"extraArgs": ["--stream-interval", "4"]}), "weight": weight}
    return run_program(PROJECT, "prod", config_overrides={"models": models}), models[0]["name"]


def test_a_canary_gets_its_weight_and_its_own_pool():
    rec, name = canary_recording(20)
    route = by_name(objects(rec, "HTTPRoute"))[name]["spec"]
    assert route["rules"][0]["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name, "weight": 80},
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": f"{name}-canary", "weight": 20},
    ]
    rels = releases(rec)
    canary = rels[f"{name}-canary"]["values"]["router"]
    assert canary["modelServers"]["matchLabels"] == {
        "app.kubernetes.io/name": VLLM_POD_LABEL_NAME,
        "app.kubernetes.io/instance": f"{name}-canary",
    }
    assert canary["inferenceObjectives"] == []  # objectives belong to the stable pool
    assert rels[name]["values"]["router"]["modelServers"]["matchLabels"]["app.kubernetes.io/instance"] == name


# -- API keys -----------------------------------------------------------------------------------
def test_api_keys_are_enforced_at_the_gateway_or_by_vllm(stack, recording):
    clients = api_key_clients(stack)
    assert clients, f"{stack} has no apiKeys"
    secrets = by_name(objects(recording, "Secret"))
    policies = objects(recording, "SecurityPolicy")
    if stack == "dev":  # GKE's Gateway has no API-key authentication: vLLM checks them
        assert not policies
        secret = secrets["vllm-api-keys"]
        assert secret["metadata"]["namespace"] == raw_config(stack)["namespace"]
        assert sorted(secret["stringData"]) == sorted(clients)
        ns = raw_config(stack)["namespace"]
        for sts in objects(recording, "StatefulSet", ns) + objects(recording, "Deployment", ns):
            (c,) = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "vllm"]
            env = {e["name"]: e for e in c.get("env", [])}
            i = c["args"].index("--api-key")
            refs = c["args"][i + 1 : i + 1 + len(clients)]
            keys = [env[re.fullmatch(r"\$\((\w+)\)", r).group(1)]["valueFrom"]["secretKeyRef"] for r in refs]
            assert [k["key"] for k in keys] == list(clients) and {k["name"] for k in keys} == {"vllm-api-keys"}
        return
    (policy,) = policies
    spec = policy["spec"]
    (target,) = spec["targetRefs"]
    assert (target["kind"], target["name"], target["sectionName"]) == ("Gateway", GATEWAY[0], "https")
    auth = spec["apiKeyAuth"]
    (ref,) = auth["credentialRefs"]
    secret = secrets[ref["name"]]
    assert secret["metadata"]["namespace"] == policy["metadata"]["namespace"] == GATEWAY[1]
    assert sorted(secret["stringData"]) == sorted(clients)
    assert set(secret["stringData"].values()) == {"[secret]"}
    assert auth["extractFrom"] == [{"headers": ["Authorization"]}] and auth["sanitize"] is True
    # Envoy Gateway v1.9.0 api/v1alpha1/api_key_auth_types.go field names (the CRD is not upstream yet)
    assert set(auth) <= {"credentialRefs", "extractFrom", "forwardClientIDHeader", "sanitize"}
    for obj in objects(recording, "StatefulSet") + objects(recording, "Deployment"):
        assert "--api-key" not in json.dumps(obj), "the gateway checks the keys; vLLM needs none"


def test_a_gateway_without_api_keys_is_rejected():
    values, secrets = stack_values("prod")
    secrets.pop("apiKeys")
    assert_rejected("prod", values, secrets, "apiKeys", "the public endpoint needs API keys")


# -- body-based routing -------------------------------------------------------------------------
def test_the_body_based_router_sets_the_model_header_for_the_gateway(stack, recording):
    dep = by_name(objects(recording, "Deployment", GATEWAY[1]))["body-based-router"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.k8s.io/gateway-api-inference-extension/bbr:v1.5.0"
    plugin = c["args"][c["args"].index("--plugin") + 1]
    kind, _, params = plugin.split(":", 2)
    assert (kind, json.loads(params)) == ("body-field-to-header", {"fieldName": "model", "headerName": MODEL_HEADER})
    svc = by_name(objects(recording, "Service", GATEWAY[1]))["body-based-router"]
    port = svc["spec"]["ports"][0]["port"]
    if stack == "dev":
        (ext,) = objects(recording, "GCPRoutingExtension")
        backend = ext["spec"]["extensionChains"][0]["extensions"][0]["backendRef"]
    else:
        (ext,) = objects(recording, "EnvoyExtensionPolicy")
        (proc,) = ext["spec"]["extProc"]
        (backend,) = proc["backendRefs"]
        # the CRD's CEL rule (ext_proc_types.go v1.9.0): FullDuplexStreamed forbids failOpen
        assert proc["processingMode"]["request"]["body"] == "FullDuplexStreamed" and proc["failOpen"] is False
    assert (backend["name"], backend["port"]) == ("body-based-router", port)
    assert ext["spec"]["targetRefs"][0]["name"] == GATEWAY[0]


# -- network policies ---------------------------------------------------------------------------
def test_network_policies_admit_the_gateway_instead_of_ingress_nginx(stack, recording):
    ns = raw_config(stack)["namespace"]
    policies = by_name(objects(recording, "NetworkPolicy", ns))
    callers = [
        peer
        for rule in policies["allow-gateway-and-monitoring"]["spec"]["ingress"]
        if rule.get("ports") == [{"protocol": "TCP", "port": 8000}]
        for peer in rule["from"]
    ]
    proxies = EXPECTED_PROXIES[stack]
    if proxies is not None:
        assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": proxies}}} in callers
    else:
        assert {p["ipBlock"]["cidr"] for p in callers if "ipBlock" in p} >= GOOGLE_LB_RANGES
    for m in raw_config(stack)["models"]:
        epp = policies[f"{m['name']}-epp"]["spec"]
        assert epp["podSelector"] == {"matchLabels": {"llm-d-router-gateway": f"{m['name']}-epp"}}
        ext_proc = [r for r in epp["ingress"] if {"protocol": "TCP", "port": 9002} in r["ports"]]
        assert ext_proc and all(p in callers for r in ext_proc for p in r["from"])


def test_nothing_mentions_ingress_nginx_unless_a_stack_opts_in(stack, recording):
    text = json.dumps([manifests(recording), helm_releases(recording)]).lower()
    assert "nginx" not in text


def test_the_ingress_path_is_an_explicit_opt_in_with_its_class():
    values, _ = stack_values("prod")
    models = copy.deepcopy(values["models"])
    models[0]["ingress"] = {"host": "llm.example.com", "className": "public-nginx"}
    rec = run_program(PROJECT, "prod", config_overrides={"models": models, "edge": {}, "apiKeys": None})
    (ing,) = objects(rec, "Ingress")
    assert ing["spec"]["ingressClassName"] == "public-nginx"
    assert not objects(rec, "Gateway")
    values["models"] = models
    assert_rejected("prod", values, {"apiKeys": True}, "models[0].ingress", "already behind edge.gateway")
    del models[0]["ingress"]["className"]
    assert_rejected("prod", values | {"edge": {}}, {}, "models[0].ingress.className", "")


# -- config errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stack", "gateway", "path", "words"),
    [
        ("prod", {"provider": "gke"}, "edge.gateway.provider", "cluster.cloud is eks"),
        ("onprem", {"className": None}, "edge.gateway.className", "name the existing GatewayClass"),
        ("dev", {"className": "gke-l7-global-external-managed"}, "edge.gateway.className", "InferencePools"),
        (
            "prod",
            {"objectives": {"nope": [{"name": "a", "priority": 1}]}},
            "edge.gateway.objectives.nope",
            "not a vLLM",
        ),
        ("prod", {"tls": {"secretName": "x", "acme": {"email": "a@b.co"}}}, "edge.gateway.tls", "exactly one"),
        ("prod", {"hostname": "*.example.com"}, "edge.gateway.tls.acme", "wildcard"),
    ],
)
def test_gateway_config_errors_name_their_path(stack, gateway, path, words):
    values, secrets = stack_values(stack)
    gw = {**values["edge"]["gateway"], **gateway}
    values["edge"] = {"gateway": {k: v for k, v in gw.items() if v is not None}}
    assert_rejected(stack, values, secrets, path, words)


def test_served_model_names_must_be_unique_behind_one_url():
    values, secrets = stack_values("prod")
    for m in values["models"]:
        m["servedModelName"] = "same"
    assert_rejected("prod", values, secrets, "models[1].servedModelName", "must pick one model")


def test_every_stack_exports_one_url():
    for stack in STACKS:
        gw = edge_of(stack)
        assert render(stack).outputs["url"] == f"https://{gw['hostname']}/v1"


def test_router_charts_and_images_are_pinned_releases():
    assert versions.EPP_IMAGE.endswith(":v0.10.0") and versions.BBR_IMAGE.endswith(":v1.5.0")
    pinned = {c.name: c.version for c in versions.ALL_CHARTS}
    assert pinned["llm-d-router-gateway"] == "v0.10.0" and pinned["gateway-helm"] == "v1.9.0"


# -- alerts and the wake-up signal, checked by promtool -----------------------------------------
def _gateway_rules(stack: str) -> dict[str, Any]:
    (rule,) = [r for r in objects(render(stack), "PrometheusRule") if r["metadata"]["name"] == "inference-gateway"]
    return rule


def test_endpoint_picker_alerts_fire_on_their_thresholds_in_promtool(tmp_path):
    import metric_names as metrics
    from test_alerts_promtool import run_promtool

    cfg = raw_config("prod")
    ns, pool = cfg["namespace"], cfg["models"][0]["name"]
    alerts = cfg.get("alerts") or {}
    ratio = alerts.get("errorRatio", 0.05)  # AlertThresholds defaults (config/stack.py)
    rule = _gateway_rules("prod")
    (group,) = rule["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    by_alert = {(r["alert"], r["labels"]["inference_pool"]): r for r in group["rules"]}
    assert {p for _, p in by_alert} == set(pool_names("prod"))

    def sel(namespace: str = ns, p: str = pool, **extra: str) -> str:
        labels = {"namespace": namespace, "service": f"{p}-epp", **extra}
        return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"

    def expect(alert: str, fires: bool) -> dict[str, Any]:
        r = by_alert[(alert, pool)]
        exp = [{"exp_labels": r["labels"], "exp_annotations": r["annotations"]}] if fires else []
        return {"eval_time": "10m", "alertname": alert, "exp_alerts": exp}

    decoy = sel(namespace="other")  # another namespace's picker of the same name never alerts here
    tests = [
        {  # requests, no ready endpoint: fires; the decoy has the same trouble elsewhere
            "interval": "1m",
            "input_series": [
                {"series": f"{metrics.EPP_READY_ENDPOINTS}{sel(name=pool)}", "values": "0x15"},
                {"series": f"{metrics.EPP_REQUEST_ERRORS}{sel(error_code='503')}", "values": "0+10x15"},
                {"series": f"{metrics.EPP_READY_ENDPOINTS}{decoy}", "values": "0x15"},
                {"series": f"up{sel()}", "values": "1x15"},
            ],
            "alert_rule_test": [
                expect("InferencePoolRequestsWithoutEndpoints", True),
                expect("EndpointPickerDown", False),
            ],
        },
        {  # an endpoint is ready: silent; errors just above the ratio: fires
            "interval": "1m",
            "input_series": [
                {"series": f"{metrics.EPP_READY_ENDPOINTS}{sel(name=pool)}", "values": "1x15"},
                {"series": f"{metrics.EPP_REQUESTS}{sel()}", "values": "0+1000x15"},
                {
                    "series": f"{metrics.EPP_REQUEST_ERRORS}{sel(error_code='503')}",
                    "values": f"0+{1000 * ratio * 1.02:g}x15",
                },
                {"series": f"up{sel()}", "values": "0x15"},
            ],
            "alert_rule_test": [
                expect("InferencePoolRequestsWithoutEndpoints", False),
                expect("InferencePoolErrorRatioHigh", True),
                expect("EndpointPickerDown", True),
            ],
        },
        {  # just below the ratio: silent
            "interval": "1m",
            "input_series": [
                {"series": f"{metrics.EPP_REQUESTS}{sel()}", "values": "0+1000x15"},
                {
                    "series": f"{metrics.EPP_REQUEST_ERRORS}{sel(error_code='503')}",
                    "values": f"0+{1000 * ratio * 0.98:g}x15",
                },
            ],
            "alert_rule_test": [expect("InferencePoolErrorRatioHigh", False)],
        },
    ]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": tests}))
    run_promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    run_promtool("test", "rules", "tests.yaml", cwd=tmp_path)


def test_a_scaled_to_zero_model_wakes_on_its_endpoint_pickers_requests_in_promtool(tmp_path):
    import metric_names as metrics
    from test_alerts_promtool import run_promtool

    values, _ = stack_values("prod")
    models = copy.deepcopy(values["models"])
    models[0]["autoscaling"] = {"minReplicas": 0, "maxReplicas": 2, "scaleToZero": True}
    models[0].pop("canary", None)  # a canary keeps serving its share: it cannot accompany scale-to-zero
    rec = run_program(PROJECT, "prod", config_overrides={"models": models})
    name, ns = models[0]["name"], values["namespace"]
    (so,) = [o for o in objects(rec, "ScaledObject") if o["metadata"]["name"] == name]
    (wake,) = [t for t in so["spec"]["triggers"] if t["name"] == "wake-up"]
    query = wake["metadata"]["query"]
    (tmp_path / "rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "wake", "rules": [{"record": "wake_up", "expr": query}]}]})
    )
    epp = f'{{namespace="{ns}",service="{name}-epp"'
    tests = [
        {  # no pod: every request fails to schedule and is counted as an error; wakes the model
            "interval": "1m",
            "input_series": [
                {"series": f'{metrics.EPP_REQUEST_ERRORS}{epp},error_code="503"}}', "values": "0+60x5"},
                {
                    "series": f'{metrics.EPP_REQUEST_ERRORS}{{namespace="{ns}",service="other-epp",error_code="503"}}',
                    "values": "0+600x5",
                },
            ],
            "promql_expr_test": [
                {"expr": "wake_up", "eval_time": "5m", "exp_samples": [{"labels": "wake_up", "value": 1}]}
            ],
        },
        {  # no traffic at all: 0, never "no data" (KEDA would treat that as an error)
            "interval": "1m",
            "input_series": [
                {"series": f'{metrics.EPP_REQUESTS}{{namespace="{ns}",service="other-epp"}}', "values": "0+60x5"}
            ],
            "promql_expr_test": [
                {"expr": "wake_up", "eval_time": "5m", "exp_samples": [{"labels": "wake_up", "value": 0}]}
            ],
        },
    ]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": tests}))
    run_promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    run_promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert wake["metadata"]["activationThreshold"] == "0"


def test_every_gateway_alert_has_a_runbook_section():
    headings = set(re.findall(r"^## (\w+)$", (ROOT / "docs" / "runbooks" / "gateway.md").read_text(), re.MULTILINE))
    for stack in STACKS:
        for group in _gateway_rules(stack)["spec"]["groups"]:
            for r in group["rules"]:
                assert r["alert"] in headings, r["alert"]
                assert r["annotations"]["runbook_url"].endswith(f"/gateway.md#{r['alert'].lower()}")


def test_the_gateway_dashboard_and_envoy_scraping(tmp_path):
    from test_alerts_promtool import GRAFANA_VARIABLES, run_promtool

    from llm_infra.components.serving.dashboards import panel_queries

    rec = render("prod")
    cfg = raw_config("prod")
    (cm,) = [o for o in objects(rec, "ConfigMap") if o["metadata"]["name"] == "inference-gateway-dashboard"]
    (board,) = [json.loads(v) for v in cm["data"].values()]
    queries = list(panel_queries(board))
    text = json.dumps(queries)
    for m in cfg["models"]:
        assert f"{m['name']}-epp" in text and m["name"] in text
    rules = []
    for i, (_, _, expr) in enumerate(queries):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        rules.append({"record": f"panel_{i}", "expr": expr})
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "gateway-panels", "rules": rules}]}))
    run_promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    (pm,) = [o for o in objects(rec, "PodMonitor") if o["metadata"]["name"] == "inference-gateway-envoy"]
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["envoy-gateway-system"]}
    assert pm["spec"]["selector"]["matchLabels"]["gateway.envoyproxy.io/owning-gateway-name"] == GATEWAY[0]
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/stats/prometheus"}]
    assert any("envoy_http_downstream_rq_xx" in q for _, _, q in queries)


def chart_inference_pool(release: dict[str, Any]) -> dict[str, Any]:
    """The InferencePool the llm-d-router-gateway chart renders from a release's values: a literal
    translation of routerlib v0.10.0 templates/_inferencepool.yaml (``llm-d-router.inferencepool``;
    the chart's objects are not in the offline render, so its pool is validated from its values)."""
    router = release["values"]["router"]
    servers = router["modelServers"]
    protocol = {"grpc": "kubernetes.io/h2c", "http": "http"}[servers.get("protocol", "http")]
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {
            "name": release["name"],
            "namespace": release["namespace"],
            "labels": {"app.kubernetes.io/name": f"{release['name']}-epp"},
        },
        "spec": {
            "targetPorts": [{"number": p["number"]} for p in servers["targetPorts"]],
            "appProtocol": protocol,
            "selector": {"matchLabels": {k: str(v) for k, v in servers["matchLabels"].items()}},
            "endpointPickerRef": {
                "name": f"{release['name']}-epp",
                "port": {"number": router.get("epp", {}).get("extProcPort", 9002)},
                "failureMode": (router.get("inferencePool") or {}).get("failureMode", "FailOpen"),
            },
        },
    }


def test_the_charts_inference_pools_pass_the_crd_schema_and_cel_rules(stack, recording):
    import crd_cel
    from test_cel_rules import schema_of
    from upstream import custom_resource_errors

    pools = [chart_inference_pool(r) for r in helm_releases(recording) if r["chart"] == "llm-d-router-gateway"]
    assert sorted(p["metadata"]["name"] for p in pools) == sorted(pool_names(stack))
    for pool in pools:
        assert custom_resource_errors(pool) == []
        assert [str(f) for f in crd_cel.check(pool, schema_of(pool)).findings] == []
        # the EPP Service the pool points at is the one its alerts and wake-up query select
        assert pool["spec"]["endpointPickerRef"]["name"] == f"{pool['metadata']['name']}-epp"


def test_envoy_gateway_policies_pass_their_documented_schemas_and_broken_copies_do_not():
    """SecurityPolicy / EnvoyExtensionPolicy: their CRD when ../shared/upstream has it, else the
    structure and CEL rules of the Envoy Gateway v1.9.0 API (tests/documented_crds.py)."""
    import crd_cel
    from test_cel_rules import schema_of
    from upstream import custom_resource_errors

    rec = render("prod")
    (policy,) = objects(rec, "SecurityPolicy")
    (ext,) = objects(rec, "EnvoyExtensionPolicy")
    for obj in (policy, ext):
        assert custom_resource_errors(obj) == []
        assert not crd_cel.check(obj, schema_of(obj)).findings
    broken = copy.deepcopy(ext)
    broken["spec"]["extProc"][0]["failOpen"] = True
    assert {f.message for f in crd_cel.check(broken, schema_of(broken)).findings} == {
        "If FullDuplexStreamed body processing mode is used, FailOpen must be false."
    }
    broken = copy.deepcopy(policy)
    broken["spec"]["apiKeyAuth"]["extractFrom"] = [{"headers": ["Authorization"], "params": ["key"]}]
    assert crd_cel.check(broken, schema_of(broken)).findings
    broken["spec"]["apiKeyAuth"]["sanitise"] = True
    assert any("sanitise" in e for e in custom_resource_errors(broken))
