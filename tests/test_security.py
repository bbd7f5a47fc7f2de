"""Security baseline of every stack, on what the real program declares (the offline render).

* Pods: every pod we declare (vLLM Deployments/StatefulSets with their download init
  container, and the pods KubeRay creates from a RayService's templates, autoscaler sidecar
  included) meets Pod Security "restricted", pulls pinned images ``IfNotPresent``, sizes every
  container, runs under its own ServiceAccount without an API token (except the Ray head),
  reads the Hugging Face token from a file, and vLLM runs on a read-only root filesystem.
* Namespace guard rails: Pod Security labels, GPU quota, LimitRange defaults.
* NetworkPolicies: a small evaluator of Kubernetes NetworkPolicy semantics answers "may X
  reach Y on port P" for the rendered policies, for every model pod of every stack.
* State: stateful resources are protected or retained in protected stacks; URNs are stable
  and a committed snapshot of prod's URNs only loses entries through a ``pulumi.Alias``.
* checkov (``$CHECKOV``) on every stack's manifests: no failed check outside
  tests/checkov_exceptions.yaml, and no stale exception.

Renaming a resource in a deployed stack (the documented path): keep the old URN with
``opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="<old name>")])`` (or the old URN
string when its type or parent changed too), then refresh the snapshot with
``UPDATE_URN_SNAPSHOT=1 python -m pytest tests/test_security.py -k snapshot``. Without the
alias, ``pulumi up`` deletes the old resource and creates a new one: for a model cache,
100+ GiB of weights downloaded again.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PROJECT, ROOT, STACKS, objects, render
from stackfiles import stack_values

from llm_infra.components.render import Recording, run_program, write
from llm_infra.components.render.engine import Project
from llm_infra.components.serving.edge import VLLM_API_KEYS_SECRET
from llm_infra.components.serving.namespace import HF_TOKEN_DIR, HF_TOKEN_MODE
from llm_infra.components.serving.rayservice import worker_service_account
from llm_infra.components.serving.vllm import HOME_MOUNT, TMP_MOUNT, VLLM_UID
from llm_infra.config import ConfigError, load_stack_config, versions
from llm_infra.config.addons import KEDA_NAMESPACE, KUBERAY_NAMESPACE, PROMETHEUS_ADAPTER_NAMESPACE
from llm_infra.config.security import NODE_LOCAL_DNS

HERE = Path(__file__).resolve().parent
EXCEPTIONS_FILE = HERE / "checkov_exceptions.yaml"
URN_SNAPSHOT = HERE / "prod_urns.txt"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
SUPPORT_KINDS = {"DaemonSet": "prepull", "Job": "fill"}
"""Pods beside the models in the serving namespace: the image pre-pull DaemonSet and the model
store's fill Jobs (same hardening, own accounts)."""
KUBERAY_POD_PREFIX = "kuberay-"


def plan_of(stack: str):
    return load_stack_config(stack, *stack_values(stack))


_variants: dict[str, Recording] = {}


def variant(key: str, stack: str, mutate) -> Recording:
    """A render of ``stack`` with its config changed by ``mutate(values)`` (cached per key)."""
    if key not in _variants:
        values, _ = stack_values(stack)
        values = copy.deepcopy(values)
        mutate(values)
        _variants[key] = run_program(PROJECT, stack, config_overrides=values)
    return _variants[key]


def set_security(values: dict[str, Any], **fields: Any) -> None:
    values.setdefault("security", {}).update(fields)


def set_network_policy(values: dict[str, Any], **fields: Any) -> None:
    values.setdefault("security", {}).setdefault("networkPolicy", {}).update(fields)


# ================================================================================ pods
@dataclass(frozen=True)
class PodUnderTest:
    id: str
    """``<Kind>.<namespace>.<name>`` (checkov's resource id)."""
    kind: str
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]
    role: str
    """vllm, ray-head or ray-worker."""


LWS_POD_PREFIX = "lws-"


def lws_pods(lws: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods the LeaderWorkerSet controller creates from its templates (a leader and a
    worker of one group), as Pods checkov can read."""
    meta, t = lws["metadata"], lws["spec"]["leaderWorkerTemplate"]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{LWS_POD_PREFIX}{meta['name']}-{role}",
                "namespace": meta["namespace"],
                "labels": dict(t[f"{role}Template"]["metadata"]["labels"]),
            },
            "spec": copy.deepcopy(t[f"{role}Template"]["spec"]),
        }
        for role in ("leader", "worker")
    ]


def kuberay_pods(rayservice: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods KubeRay creates from a RayService: its templates plus what KubeRay adds that
    matters here (the head's autoscaler sidecar from ``autoscalerOptions`` with the Ray image,
    the head's ServiceAccount, the ``ray.io/node-type`` label). Probes and the /tmp/ray log
    volume KubeRay also injects are left out (see tests/checkov_exceptions.yaml)."""
    meta, cluster = rayservice["metadata"], rayservice["spec"]["rayClusterConfig"]
    name = meta["name"]
    head = copy.deepcopy(cluster["headGroupSpec"]["template"])
    auto = cluster.get("autoscalerOptions", {})
    if cluster.get("enableInTreeAutoscaling"):
        head["spec"]["containers"].append(
            {
                "name": "autoscaler",
                "image": head["spec"]["containers"][0]["image"],
                **{k: auto[k] for k in ("imagePullPolicy", "resources", "securityContext", "env") if k in auto},
            }
        )
        head["spec"].setdefault("serviceAccountName", name)  # KubeRay's own, with the autoscaler's Role
    pods = [("head", "head", head)]
    pods += [(g["groupName"], "worker", copy.deepcopy(g["template"])) for g in cluster["workerGroupSpecs"]]
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{KUBERAY_POD_PREFIX}{name}-{suffix}",
                "namespace": meta["namespace"],
                "labels": {**template["metadata"].get("labels", {}), "ray.io/node-type": node_type},
            },
            "spec": template["spec"],
        }
        for suffix, node_type, template in pods
    ]


def pods_of(rec: Recording) -> list[PodUnderTest]:
    out = []
    for obj in objects(rec):
        meta = obj["metadata"]
        if obj["kind"] in WORKLOAD_KINDS or obj["kind"] in SUPPORT_KINDS:
            tpl = obj["spec"]["template"]
            out.append(
                PodUnderTest(
                    f"{obj['kind']}.{meta['namespace']}.{meta['name']}",
                    obj["kind"],
                    meta["namespace"],
                    tpl["metadata"]["labels"],
                    tpl["spec"],
                    # the public Gateway's body-based router (components/serving/body_router.py)
                    "router"
                    if tpl["metadata"]["labels"].get("app.kubernetes.io/name") == "body-based-router"
                    else SUPPORT_KINDS.get(obj["kind"], "vllm"),
                )
            )
        elif obj["kind"] == "LeaderWorkerSet":
            # multiNodeModels: the leader's and the workers' pods of every group
            for pod in lws_pods(obj):
                m = pod["metadata"]
                out.append(
                    PodUnderTest(
                        f"Pod.{m['namespace']}.{m['name']}", "Pod", m["namespace"], m["labels"], pod["spec"], "vllm-lws"
                    )
                )
        elif obj["kind"] == "RayService":
            for pod in kuberay_pods(obj):
                m = pod["metadata"]
                role = "ray-head" if m["labels"]["ray.io/node-type"] == "head" else "ray-worker"
                out.append(
                    PodUnderTest(
                        f"Pod.{m['namespace']}.{m['name']}", "Pod", m["namespace"], m["labels"], pod["spec"], role
                    )
                )
    return out


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What Pod Security "restricted" (Kubernetes 1.33) rejects in a pod spec."""
    bad = []
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            bad.append(host)
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            bad.append(f"volume {v['name']}: {sorted(kinds)}")
    pod_ctx = spec.get("securityContext", {})
    pod_seccomp = (pod_ctx.get("seccompProfile") or {}).get("type")
    if pod_ctx.get("runAsUser") == 0:
        bad.append("pod runAsUser 0")
    for c in containers(spec):
        bad += _container_violations(c, pod_ctx, pod_seccomp)
    return bad


def _container_violations(c: dict[str, Any], pod_ctx: dict[str, Any], pod_seccomp: str | None) -> list[str]:
    """One container's part of Pod Security "restricted" (its pod's context as the fallback)."""
    bad = []
    ctx, name = c.get("securityContext", {}), c["name"]
    if ctx.get("privileged"):
        bad.append(f"{name}: privileged")
    if any(p.get("hostPort") for p in c.get("ports", [])):
        bad.append(f"{name}: hostPort")
    if ctx.get("allowPrivilegeEscalation") is not False:
        bad.append(f"{name}: allowPrivilegeEscalation not false")
    caps = ctx.get("capabilities") or {}
    if "ALL" not in caps.get("drop", []):
        bad.append(f"{name}: capabilities not dropped")
    if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
        bad.append(f"{name}: adds {caps['add']}")
    if not (
        ctx.get("runAsNonRoot") is True
        or (pod_ctx.get("runAsNonRoot") is True and ctx.get("runAsNonRoot") is not False)
    ):
        bad.append(f"{name}: runAsNonRoot not true")
    if ctx.get("runAsUser") == 0:
        bad.append(f"{name}: runAsUser 0")
    seccomp = (ctx.get("seccompProfile") or {}).get("type") or pod_seccomp
    if seccomp not in ("RuntimeDefault", "Localhost"):
        bad.append(f"{name}: seccomp {seccomp}")
    return bad


PINNED_IMAGES = {*versions.ALL_IMAGES, versions.PAUSE_IMAGE, *versions.ROUTER_IMAGES}


def test_every_stack_declares_pods_to_check(stack, recording):
    pods = pods_of(recording)
    cfg = plan_of(stack).config
    canaries = [m for m in cfg.models if m.canary is not None]  # each runs its own <model>-canary pods
    assert len([p for p in pods if p.role == "vllm"]) == len(cfg.models) + len(canaries)
    assert len([p for p in pods if p.role == "ray-head"]) == len(cfg.ray_services)
    assert len([p for p in pods if p.role == "vllm-lws"]) == 2 * len(cfg.multi_node_models)  # leader + worker


def test_every_pod_meets_pod_security_restricted(stack, recording):
    for pod in pods_of(recording):
        assert not restricted_violations(pod.spec), (pod.id, restricted_violations(pod.spec))


def test_every_container_is_pinned_sized_and_hardened(stack, recording):
    for pod in pods_of(recording):
        for c in containers(pod.spec):
            where = f"{pod.id}/{c['name']}"
            assert c["image"] in PINNED_IMAGES, where
            assert c["imagePullPolicy"] == "IfNotPresent", where
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), where
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None and pod.role == "vllm" and e["name"].startswith("LLM_API_KEY_"):
                    # the API keys vLLM checks itself where the gateway cannot (GKE): --api-key takes
                    # them only as arguments, expanded from the environment (vllm.api_key_env_and_args)
                    assert ref["name"] == VLLM_API_KEYS_SECRET, where
                    continue
                assert ref is None, f"{where}: secret {e['name']} in the environment"
        assert pod.spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, pod.id


def test_pods_run_under_their_own_service_accounts(stack, recording):
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects(recording, "ServiceAccount")}
    for pod in pods_of(recording):
        if pod.role == "ray-head":
            # KubeRay's account for the autoscaler sidecar (it creates it; we must not name one
            # that does not exist), and the token it needs
            assert pod.spec["serviceAccountName"] not in {n for _, n in accounts}
            assert pod.spec.get("automountServiceAccountToken") is not False
            continue
        sa = pod.spec.get("serviceAccountName")
        assert sa and sa != "default", pod.id
        if pod.role == "router":
            # the body-based router watches ConfigMaps of its namespace (its Role allows only that)
            assert (pod.namespace, sa) in accounts and "automountServiceAccountToken" not in pod.spec, pod.id
            continue
        assert accounts[(pod.namespace, sa)]["automountServiceAccountToken"] is False, pod.id
        assert pod.spec["automountServiceAccountToken"] is False, pod.id
        if pod.role == "vllm":
            assert sa == pod.id.rsplit(".", 1)[1], "one account per model"
        if pod.role == "vllm-lws":
            assert sa == pod.labels["app.kubernetes.io/instance"], "one account per multi-node model"
    cfg = plan_of(stack).config
    for svc in cfg.ray_services:
        assert (cfg.namespace, worker_service_account(svc.name)) in accounts
    canaries = [m for m in cfg.models if m.canary is not None]
    support = int(cfg.model_store.enabled) + int(cfg.cold_start.prepull_images)  # fill Jobs, pre-pull DaemonSet
    routers = len([p for p in pods_of(recording) if p.role == "router"])
    expected = len(cfg.models) + len(canaries) + len(cfg.ray_services) + len(cfg.multi_node_models) + support + routers
    assert len(accounts) == expected, "no account nobody uses"


def _env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def test_vllm_root_filesystem_is_read_only_with_writable_scratch_space(stack, recording):
    for pod in [p for p in pods_of(recording) if p.role == "vllm"]:
        volumes = {v["name"]: v for v in pod.spec["volumes"]}
        ctx = pod.spec["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == ctx["runAsGroup"] == ctx["fsGroup"] == VLLM_UID
        assert ctx["fsGroupChangePolicy"] == "OnRootMismatch", "no recursive chown of the model cache per start"
        for c in containers(pod.spec):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, (pod.id, c["name"])
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            env = _env(c)
            assert env["HOME"] == HOME_MOUNT and env["USER"], "getpass.getuser() needs no passwd entry"
            for path in (HOME_MOUNT, TMP_MOUNT, env["HF_HOME"]):
                assert path in mounts, (pod.id, c["name"], path)
            for path in (HOME_MOUNT, TMP_MOUNT):
                assert "emptyDir" in volumes[mounts[path]], path


def test_vllm_runs_as_root_only_when_asked_and_never_under_restricted():
    rec = variant("dev-root", "dev", lambda v: set_security(v, vllmRunAsRoot=True))
    (pod,) = [p for p in pods_of(rec) if p.role == "vllm"]
    assert "runAsNonRoot" not in pod.spec["securityContext"] and "runAsUser" not in pod.spec["securityContext"]
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in containers(pod.spec))
    values, secrets = stack_values("dev")
    values["security"] = {"podSecurity": "restricted", "vllmRunAsRoot": True}
    with pytest.raises(ConfigError) as err:
        load_stack_config("dev", values, secrets)
    assert any(line.startswith("dev: security.vllmRunAsRoot: ") for line in err.value.lines()), err.value.lines()


def test_restricted_namespaces_render_the_same_hardened_pods():
    for stack in STACKS:
        rec = variant(f"{stack}-restricted", stack, lambda v: set_security(v, podSecurity="restricted"))
        (ns,) = [o for o in objects(rec, "Namespace") if o["metadata"]["name"] == plan_of(stack).config.namespace]
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert {p.id: p.spec for p in pods_of(rec)} == {p.id: p.spec for p in pods_of(render(stack))}


def test_hugging_face_token_is_a_read_only_file(stack, recording):
    secret = "hf-token" if plan_of(stack).has_credential("hfToken") else None
    for pod in [p for p in pods_of(recording) if p.role != "router"]:  # the router downloads nothing
        volumes = {v["name"]: v for v in pod.spec.get("volumes", [])}
        token_volumes = [v for v in volumes.values() if "secret" in v]
        if pod.role == "prepull" or (pod.role == "fill" and not token_volumes):
            # no Hub access (pre-pull), or an ungated model's fill: no token at all
            assert not token_volumes, pod.id
            continue
        if secret is None:
            assert not token_volumes, pod.id
            continue
        (vol,) = token_volumes
        assert vol["secret"] == {
            "secretName": secret,
            "items": [{"key": "token", "path": "token"}],
            "defaultMode": HF_TOKEN_MODE,
        }
        assert HF_TOKEN_MODE == 0o440
        for c in pod.spec["containers"] + pod.spec.get("initContainers", []):
            if c["name"] == "autoscaler":
                assert not any(m["name"] == vol["name"] for m in c.get("volumeMounts", [])), (
                    "the autoscaler needs no token"
                )
                continue
            (mount,) = [m for m in c["volumeMounts"] if m["name"] == vol["name"]]
            assert mount == {"name": vol["name"], "mountPath": HF_TOKEN_DIR, "readOnly": True}
            assert _env(c)["HF_TOKEN_PATH"] == f"{HF_TOKEN_DIR}/token"


# ======================================================================== namespace
def test_serving_namespace_guard_rails(stack, recording):
    cfg = plan_of(stack).config
    ns = next(o for o in objects(recording, "Namespace") if o["metadata"]["name"] == cfg.namespace)
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == cfg.security.pod_security
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    quotas = objects(recording, "ResourceQuota", cfg.namespace)
    if cfg.security.gpu_quota is None:
        assert not quotas
    else:
        (quota,) = quotas
        q = str(cfg.security.gpu_quota)
        # extended resources: only the requests. prefix is allowed (Kubernetes "Resource Quotas")
        assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": q}
        # the GPUs the stack starts with fit in the quota (config/checks rejects the opposite)
        gpus = sum(
            int(c["resources"]["limits"].get("nvidia.com/gpu", 0)) * replicas
            for obj in objects(recording, namespace=cfg.namespace)
            if obj["kind"] in WORKLOAD_KINDS
            for replicas in [obj["spec"]["replicas"]]
            for c in obj["spec"]["template"]["spec"]["containers"]
        )
        assert gpus <= cfg.security.gpu_quota
    (limits,) = objects(recording, "LimitRange", cfg.namespace)
    (container,) = limits["spec"]["limits"]
    assert container["type"] == "Container" and {"cpu", "memory"} <= set(container["default"]) <= set(
        container["defaultRequest"]
    )


def test_gpu_quota_below_the_minimum_replicas_is_rejected():
    values, secrets = stack_values("prod")
    values["security"] = {"gpuQuota": 2}
    with pytest.raises(ConfigError) as err:
        load_stack_config("prod", values, secrets)
    assert any(line.startswith("prod: security.gpuQuota: ") for line in err.value.lines())


# ===================================================================== network policies
@dataclass(frozen=True)
class Peer:
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    ip: str | None = None
    """A pod (namespace + labels) or an address outside the cluster's pods."""


def pod_peer(namespace: str, **labels: str) -> Peer:
    return Peer(namespace=namespace, labels=tuple(sorted(labels.items())))


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peer_matches(rule_peer: dict[str, Any], peer: Peer, policy_ns: str) -> bool:
    if "ipBlock" in rule_peer:
        if peer.ip is None:
            return False
        ip = ipaddress.ip_address(peer.ip)
        block = rule_peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(x) for x in block.get("except", [])
        )
    if peer.ip is not None:
        return False
    ns_selector, pod_selector = rule_peer.get("namespaceSelector"), rule_peer.get("podSelector")
    if ns_selector is None:
        ns_ok = peer.namespace == policy_ns
    else:
        ns_ok = selects(ns_selector, {"kubernetes.io/metadata.name": peer.namespace or ""})
    return ns_ok and (pod_selector is None or selects(pod_selector, dict(peer.labels)))


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol
        and (p.get("port") is None or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in ports
    )


def allowed(
    policies: list[dict[str, Any]],
    namespace: str,
    pod_labels: dict[str, str],
    direction: str,
    peer: Peer,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Kubernetes NetworkPolicy semantics: a pod selected by no policy of a direction is open in
    that direction; otherwise a connection needs one rule of one selecting policy to match."""
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == namespace
        and selects(p["spec"]["podSelector"], pod_labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(rp, peer, namespace) for rp in peers)) and _port_matches(
                rule.get("ports"), port, protocol
            ):
                return True
    return False


PUBLIC_IP = "203.0.113.7"
METADATA_IP = "169.254.169.254"
STORE_READER = "llm-infra.io/model-store-reader"
API_SERVER_IP = "10.100.0.1"
NODE_LOCAL_DNS_IP = NODE_LOCAL_DNS.split("/")[0]


def _net(rec: Recording, stack: str):
    cfg = plan_of(stack).config
    policies = objects(rec, "NetworkPolicy")
    pods = [p for p in pods_of(rec) if p.namespace == cfg.namespace]
    return cfg, policies, pods


def test_network_policies_isolate_every_model_pod(stack, recording):
    cfg, policies, pods = _net(recording, stack)
    np = cfg.security.network_policy
    assert np.enabled and pods
    ns = cfg.namespace
    monitoring = None if cfg.addons.monitoring.mode == "none" else cfg.addons.monitoring.namespace

    def ingress(pod, peer, port, protocol="TCP"):
        return allowed(policies, ns, pod.labels, "Ingress", peer, port, protocol)

    def egress(pod, peer, port, protocol="TCP"):
        return allowed(policies, ns, pod.labels, "Egress", peer, port, protocol)

    for pod in pods:
        where = pod.id
        serving = 8000
        # callers: the ingress controllers on the serving port only; nobody else from outside
        for caller in np.ingress_namespaces:
            assert ingress(pod, pod_peer(caller, app="controller"), serving), where
            assert not ingress(pod, pod_peer(caller), 6379), where
        for outsider in ("default", KEDA_NAMESPACE, PROMETHEUS_ADAPTER_NAMESPACE):
            # KEDA and prometheus-adapter query Prometheus, never the pods
            assert not ingress(pod, pod_peer(outsider), serving), (where, outsider)
        assert not ingress(pod, Peer(ip=PUBLIC_IP), serving), where
        # same namespace: anything (Ray head <-> workers use dynamic ports)
        assert ingress(pod, pod_peer(ns, any="pod"), 45678), where
        assert egress(pod, pod_peer(ns), 45678), where
        # Prometheus scrapes the metrics ports
        metrics = {"vllm": [8000], "vllm-lws": [8000], "ray-head": [8080, 44217, 44227], "ray-worker": [8080]}.get(
            pod.role, []
        )
        for port in metrics:
            assert ingress(pod, pod_peer(monitoring), port) if monitoring else True, (where, port)
        if monitoring:
            assert not ingress(pod, pod_peer(monitoring), 6379), where
        # KubeRay reaches the Ray dashboard and Serve ports, nothing of the vLLM pods
        if pod.role in ("vllm", "vllm-lws", *SUPPORT_KINDS.values()):
            assert not ingress(pod, pod_peer(KUBERAY_NAMESPACE), 8265), where
        else:
            assert ingress(pod, pod_peer(KUBERAY_NAMESPACE), 8000), where
            assert ingress(pod, pod_peer(KUBERAY_NAMESPACE), 8265), where
            assert not ingress(pod, pod_peer(KUBERAY_NAMESPACE), 6379), where
        # egress: DNS, downloads on 443, nothing else
        for dns in (pod_peer("kube-system", **{"k8s-app": "kube-dns"}), Peer(ip=NODE_LOCAL_DNS_IP)):
            assert egress(pod, dns, 53, "UDP") and egress(pod, dns, 53, "TCP"), where
        assert not egress(pod, Peer(ip="8.8.8.8"), 53, "UDP"), "no resolver outside the cluster"
        assert egress(pod, Peer(ip=PUBLIC_IP), 443), "Hugging Face downloads"
        assert not egress(pod, Peer(ip=PUBLIC_IP), 80), where
        if cfg.cluster.cloud == "gke" and cfg.model_store.enabled and pod.labels.get(STORE_READER) == "true":
            # Workload Identity: model-store readers reach the GKE metadata server, which answers
            # with their own Kubernetes ServiceAccount's Google identity, never the node's
            assert egress(pod, Peer(ip=METADATA_IP), 80), where
        else:
            assert not egress(pod, Peer(ip=METADATA_IP), 80), "the cloud metadata endpoint stays closed"
        assert not egress(pod, pod_peer("other", app="db"), 5432), where
        # the API server: only the Ray head (its autoscaler), also on kubeadm's 6443
        assert egress(pod, Peer(ip=API_SERVER_IP), 6443) is (pod.role == "ray-head"), where


def test_gateway_namespace_of_an_http_route_reaches_only_that_model():
    def route(v):
        v["models"][0]["httpRoute"] = {"gatewayName": "public", "gatewayNamespace": "gateways"}

    rec = variant("dev-httproute", "dev", route)
    cfg, policies, pods = _net(rec, "dev")
    (pod,) = [p for p in pods if p.role == "vllm"]
    model = cfg.models[0].name
    assert allowed(policies, cfg.namespace, pod.labels, "Ingress", pod_peer("gateways"), 8000)
    assert not allowed(policies, cfg.namespace, pod.labels, "Ingress", pod_peer("gateways"), 8080)
    assert not allowed(
        policies, cfg.namespace, {"app.kubernetes.io/name": "other"}, "Ingress", pod_peer("gateways"), 8000
    )
    assert sorted(p["metadata"]["name"] for p in policies if p["metadata"]["name"].endswith("-allow-gateway")) == [
        f"{model}-allow-gateway"
    ]

    def route_in_ingress_ns(v):
        route(v)
        set_network_policy(v, ingressNamespaces=["gateways"])

    rec = variant("dev-httproute-known-ns", "dev", route_in_ingress_ns)
    assert not [p for p in objects(rec, "NetworkPolicy") if p["metadata"]["name"].endswith("-allow-gateway")]


def test_ingress_cidrs_and_api_server_ranges_follow_the_config():
    def narrow(v):
        set_network_policy(
            v,
            ingressCidrs=["10.0.0.0/16"],
            apiServerCidrs=["172.20.0.0/28"],
            apiServerPorts=[6443],
            egressCidrs=["192.0.2.0/24"],
        )

    rec = variant("prod-narrow", "prod", narrow)
    cfg, policies, pods = _net(rec, "prod")
    for pod in pods:

        def may(direction, peer, port, labels=pod.labels):
            return allowed(policies, cfg.namespace, labels, direction, peer, port)

        assert may("Ingress", Peer(ip="10.0.3.4"), 8000) and not may("Ingress", Peer(ip="10.0.3.4"), 8080)
        assert not may("Ingress", Peer(ip="10.1.0.1"), 8000)
        assert may("Egress", Peer(ip="192.0.2.10"), 443) and not may("Egress", Peer(ip=PUBLIC_IP), 443)
        assert may("Egress", Peer(ip="172.20.0.5"), 6443) is (pod.role == "ray-head")
        assert not may("Egress", Peer(ip="172.20.0.5"), 443)


def test_network_policies_can_be_turned_off():
    rec = variant("prod-no-netpol", "prod", lambda v: set_network_policy(v, enabled=False))
    assert not objects(rec, "NetworkPolicy")


def test_bad_network_policy_config_names_the_field():
    for field, value in (("egressCidrs", ["10.0.0.1/8"]), ("ingressCidrs", ["nowhere"]), ("apiServerPorts", [70000])):
        values, secrets = stack_values("dev")
        set_network_policy(values, **{field: value})
        with pytest.raises(ConfigError) as err:
            load_stack_config("dev", values, secrets)
        assert any(line.startswith(f"dev: security.networkPolicy.{field}") for line in err.value.lines()), (
            err.value.lines()
        )


# ============================================================================= state
STATEFUL_CLOUD_TYPES = {"eks:index:Cluster", "gcp:container/cluster:Cluster", "aws:efs/fileSystem:FileSystem"}


def test_stateful_resources_are_protected_or_retained_in_protected_stacks(stack, recording):
    cfg = plan_of(stack).config
    protect = cfg.cluster.protect
    for r in recording.resources:
        if r.type in STATEFUL_CLOUD_TYPES:
            assert r.protect is protect, (r.type, r.name)
        if r.type == "kubernetes:core/v1:PersistentVolumeClaim":
            assert r.retain_on_delete is protect, r.name
        if r.type == "kubernetes:core/v1:Namespace" and r.inputs["metadata"]["name"] == cfg.namespace:
            assert r.retain_on_delete is protect, "deleting the namespace would delete the caches in it"
    for sts in objects(recording, "StatefulSet"):
        assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
            "whenDeleted": "Retain" if protect else "Delete",
            "whenScaled": "Retain",
        }
    assert plan_of("prod").config.cluster.protect and not plan_of("dev").config.cluster.protect


def test_per_replica_caches_outlive_a_protected_stateful_set():
    def block_cache(v):
        v["models"][0]["cache"] = {"accessMode": "ReadWriteOnce"}
        # per-replica zonal disks need a single-zone pool (config check)
        pool = next(p for p in v["cluster"]["nodePools"] if p["name"] == v["models"][0]["nodePool"])
        pool["zones"] = [f"{v['cluster']['region']}a"]

    rec = variant("prod-rwo", "prod", block_cache)
    name = plan_of("prod").config.models[0].name
    (sts,) = [o for o in objects(rec, "StatefulSet") if o["metadata"]["name"] == name]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def _urns(rec: Recording) -> list[str]:
    return [r.urn for r in rec.resources]


def test_urns_are_unique_and_stable_across_renders(stack, recording):
    urns = _urns(recording)
    assert len(urns) == len(set(urns))
    assert sorted(urns) == sorted(_urns(run_program(PROJECT, stack)))


def urns_covered(old: set[str], rec: Recording) -> set[str]:
    """Old URNs that ``rec`` still declares, or keeps through an alias (a name alias spec
    keeps type and parent: the URN with its name replaced; a URN alias is the URN)."""
    covered = old & set(_urns(rec))
    for r in rec.resources:
        for alias in r.aliases:
            covered |= old & {alias if alias.startswith("urn:pulumi:") else r.urn.rsplit("::", 1)[0] + "::" + alias}
    return covered


def test_prod_urn_snapshot_loses_nothing_without_an_alias():
    """prod is the protected stack: a URN that disappears is a resource ``pulumi up`` deletes."""
    rec = render("prod")
    if os.environ.get("UPDATE_URN_SNAPSHOT"):
        URN_SNAPSHOT.write_text(
            "# URNs of the prod stack (tests/test_security.py). Every one must stay declared or be kept by a\n"
            "# pulumi.Alias; refresh with UPDATE_URN_SNAPSHOT=1 python -m pytest tests/test_security.py -k snapshot\n"
            "# (offline-render URNs: Pulumi's mocks qualify a type with its parent's type only)\n"
            + "".join(f"{u}\n" for u in sorted(_urns(rec)))
        )
    old = {line for line in URN_SNAPSHOT.read_text().splitlines() if line and not line.startswith("#")}
    lost = sorted(old - urns_covered(old, rec))
    assert not lost, (
        f"{len(lost)} prod URNs disappeared (pulumi up would delete them); keep each with "
        f"ResourceOptions(aliases=[pulumi.Alias(name=<old name>)]) or, if deleting is intended, refresh the "
        f"snapshot: {lost[:5]}"
    )


RENAME_PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

opts = pulumi.ResourceOptions(aliases=[pulumi.Alias(name="{old}")]) if "{old}" != "{new}" else None
k8s.core.v1.ConfigMap("{new}", metadata={{"name": "settings", "namespace": "llm"}}, data={{"a": "b"}}, opts=opts)
"""


def test_a_rename_keeps_its_urn_through_pulumi_alias(tmp_path):
    """The documented rename path, through the same render engine and snapshot guard."""
    (tmp_path / "Pulumi.yaml").write_text("name: rename-demo\nruntime: python\n")
    (tmp_path / "Pulumi.demo.yaml").write_text("config: {}\n")

    def run(old: str, new: str) -> Recording:
        (tmp_path / "__main__.py").write_text(RENAME_PROGRAM.format(old=old, new=new))
        return run_program(Project.load(tmp_path), "demo")

    before = set(_urns(run("cache-settings", "cache-settings")))
    (urn,) = before
    renamed = run("cache-settings", "model-cache-settings")
    assert [r.aliases for r in renamed.resources] == [["cache-settings"]]
    assert urn not in _urns(renamed) and urns_covered(before, renamed) == before
    unaliased = run("model-cache-settings", "model-cache-settings")
    assert urns_covered(before, unaliased) == set(), "without the alias the old URN is lost"


# ============================================================================ checkov
def _checkov_executable() -> str | None:
    candidates = [os.environ.get("CHECKOV"), str(ROOT / ".venv-tools" / "bin" / "checkov"), shutil.which("checkov")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


def load_exceptions() -> list[dict[str, str]]:
    return yaml.safe_load(EXCEPTIONS_FILE.read_text())


@pytest.fixture(scope="session")
def checkov_reports(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """One checkov run per stack (started together: checkov's startup dominates), over the
    stack's rendered manifests plus the pods KubeRay creates from its RayServices."""
    exe = _checkov_executable()
    if exe is None:
        message = "checkov not found: set CHECKOV (make tools creates .venv-tools/bin/checkov)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}
    procs = {}
    for stack in STACKS:
        out = tmp_path_factory.mktemp(f"checkov-{stack}")
        rec = render(stack)
        write(rec, out)
        for ray in [*objects(rec, "RayService"), *objects(rec, "LeaderWorkerSet")]:
            for pod in kuberay_pods(ray) if ray["kind"] == "RayService" else lws_pods(ray):
                path = out / "manifests" / pod["metadata"]["namespace"] / f"pod-{pod['metadata']['name']}.yaml"
                path.write_text(yaml.safe_dump(pod, sort_keys=True))
        # no --quiet: the passed checks show that every workload was actually scanned
        procs[stack] = subprocess.Popen(
            [exe, "--framework", "kubernetes", "-d", str(out / "manifests"), "-o", "json", "--skip-download"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    reports = {}
    for stack, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode in (0, 1), f"checkov failed on {stack} ({proc.returncode}): {stderr[-2000:]}"
        report = json.loads(stdout)
        reports[stack] = report[0] if isinstance(report, list) else report
    return reports


def _failed(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["check_id"], c["resource"]) for c in report.get("results", {}).get("failed_checks", [])]


def _excepted(check: str, resource: str, exceptions: list[dict[str, str]]) -> bool:
    return any(e["check"] == check and re.fullmatch(e["resources"], resource) for e in exceptions)


def test_checkov_scans_every_workload(stack, checkov_reports):
    report = checkov_reports[stack]
    results = report.get("results", {})
    scanned = {c["resource"] for part in ("passed_checks", "failed_checks") for c in results.get(part, [])}
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    expected = {p.id for p in pods_of(render(stack))} | {
        f"{o['kind']}.{o['metadata']['namespace']}.{o['metadata']['name']}"
        for o in objects(render(stack))
        if o["kind"] in ("Service", "Secret", "ConfigMap")
    }
    assert expected <= scanned, sorted(expected - scanned)


def test_checkov_reports_no_failure_outside_the_justified_exceptions(stack, checkov_reports):
    exceptions = load_exceptions()
    report = checkov_reports[stack]
    summary = report["summary"]
    print(f"checkov {stack}: passed={summary['passed']} failed={summary['failed']} skipped={summary['skipped']}")
    unexplained = sorted({f for f in _failed(report) if not _excepted(*f, exceptions)})
    assert not unexplained, f"checkov failures in {stack} without an exception in {EXCEPTIONS_FILE.name}: {unexplained}"


def test_checkov_exceptions_are_few_justified_and_all_in_use(checkov_reports):
    exceptions = load_exceptions()
    # one or two per concern (vLLM, Ray, LeaderWorkerSet workers, the Gateway's router, GKE API keys,
    # support pods), each with its reason: a new one must still justify itself against this bound
    assert len(exceptions) <= 14, "a short list"
    failures = {f for report in checkov_reports.values() for f in _failed(report)}
    for e in exceptions:
        assert set(e) == {"check", "resources", "reason"} and len(e["reason"]) >= 60, e
        re.compile(e["resources"])
        assert any(check == e["check"] and re.fullmatch(e["resources"], res) for check, res in failures), (
            f"stale exception (matches no finding; delete it): {e['check']} {e['resources']}"
        )
    # the vLLM workloads are only excepted from the two image-reference checks
    vllm_excepted = {
        check
        for check, res in failures
        if res.split(".", 1)[0] in WORKLOAD_KINDS and not res.endswith(".body-based-router")
    }
    # and, on GKE only, from secrets in the environment: the API keys vLLM checks itself
    env_secrets = {res for check, res in failures if check == "CKV_K8S_35"}
    assert {res.split(".")[1] for res in env_secrets} <= {plan_of("dev").config.namespace}, env_secrets
    assert vllm_excepted <= {"CKV_K8S_15", "CKV_K8S_43", "CKV_K8S_35"}, vllm_excepted


# ============================================================================ runbooks
def test_every_ray_alert_has_a_runbook_section():
    """Ray alerts link <runbookBaseUrl>/ray-serve-llm.md#<alert>: each anchor must exist."""
    text = (ROOT / "docs" / "runbooks" / "ray-serve-llm.md").read_text()
    headings = {h.lower() for h in re.findall(r"^## (\w+)$", text, re.M)}
    anchors = {
        r["annotations"]["runbook_url"]
        for stack in STACKS
        for o in objects(render(stack), "PrometheusRule")
        for g in o["spec"]["groups"]
        for r in g["rules"]
        if "/ray-serve-llm.md#" in r["annotations"].get("runbook_url", "")
    }
    assert anchors, "prod renders a RayService with alert rules"
    assert {a.rsplit("#", 1)[1] for a in anchors} == headings
