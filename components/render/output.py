"""Write a recording to disk: one manifest per Kubernetes object, Helm releases, the plan."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .engine import Recording
from .mocks import ResourceRecord

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NOT_OBJECTS = {HELM_RELEASE, "pulumi:providers:kubernetes"}


def is_kubernetes_object(rec: ResourceRecord) -> bool:
    return rec.custom and rec.type.startswith("kubernetes:") and rec.type not in NOT_OBJECTS and "kind" in rec.inputs


def manifests(recording: Recording) -> list[dict[str, Any]]:
    """Every Kubernetes object, exactly as the provider would receive it."""
    return [rec.inputs for rec in recording.resources if is_kubernetes_object(rec)]


def helm_releases(recording: Recording) -> list[dict[str, Any]]:
    out = []
    for rec in sorted(recording.resources, key=lambda r: r.urn):
        if rec.type != HELM_RELEASE:
            continue
        i = rec.inputs
        chart, repository = i.get("chart"), (i.get("repositoryOpts") or {}).get("repo")
        if isinstance(chart, str) and chart.startswith("oci://") and not repository:
            # an OCI chart is referenced as oci://<registry>/<path>/<chart> (Helm cannot use an
            # OCI registry as a repository URL); report it as chart + repository like the others
            repository, _, chart = chart.rpartition("/")
        out.append(
            {
                "name": i.get("name", rec.name),
                "chart": chart,
                "version": i.get("version"),
                "repository": repository,
                "namespace": i.get("namespace"),
                "values": i.get("values") or {},
            }
        )
    return out


def plan(recording: Recording) -> dict[str, Any]:
    counts = Counter(rec.type for rec in recording.resources)
    return {
        "project": recording.project,
        "stack": recording.stack,
        "resourceCount": len(recording.resources),
        "counts": dict(sorted(counts.items())),
        "resources": [
            {
                "urn": rec.urn,
                "type": rec.type,
                "name": rec.name,
                "parent": rec.parent,
                "dependsOn": rec.depends_on,
                "protect": rec.protect,
                "retainOnDelete": rec.retain_on_delete,
                "inputs": rec.inputs,
            }
            for rec in sorted(recording.resources, key=lambda r: r.urn)
        ],
        "outputs": recording.outputs,
        "logs": recording.logs,
    }


def _money(v: float | None) -> str:
    return "n/a" if v is None else f"${v:,.2f}"


def _budget_table(models: dict[str, Any]) -> list[str]:
    """vLLM's KV-cache budget per GPU, line by line, and what it holds in whole sequences."""
    # a LoRA column only where some model preallocates LoRA slots (config/lora.py)
    lora = any("loraSlots" in (m.get("budgetPerGpuGib") or {}) for m in models.values())
    lines = [
        "",
        "## Models: GPU memory budget (per GPU, GiB)",
        "",
        (
            f"| model | usable x util | weights |{' LoRA slots |' if lora else ''} activation peak | other | KV cache "
            "| KV tokens | sequences at maxModelLen | at typical request |"
        ),
        f"|---|---:|---:|{'---:|' if lora else ''}---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in models.items():
        b, c = m.get("budgetPerGpuGib") or {}, m.get("concurrentSequences") or {}
        if not b:
            continue
        lora_cell = f" {b.get('loraSlots', 0.0):.2f} |" if lora else ""
        lines.append(
            f"| {name} | {b['usable']:.2f} x {b['budget'] / b['usable']:.2f} = {b['budget']:.2f} | {b['weights']:.2f} "
            f"|{lora_cell} {b['activationPeak']:.2f} | {b['nonTorch'] + b['cudaGraphs']:.2f} | {b['kvCache']:.2f} "
            f"| {int(m['kvCacheTokens']):,} | {int(c['atMaxModelLen'])} x {int(m['maxModelLen']):,} "
            f"| {int(c['atTypicalRequest'])} x {int(c['typicalRequestTokens']):,} |"
        )
    lines += [
        "",
        "_vLLM gives the KV cache what is left of the GPU's memory (as CUDA reports it) x gpuMemoryUtilization after "
        f"the weights{' (and the LoRA slots it preallocates with them)' if lora else ''}, the activation peak of its "
        "profiling run and other memory (workspaces, NCCL, CUDA graphs); "
        "sequences are whole sequences that fit at once, at most maxNumSeqs._",
    ]
    return lines


COLD_START_PHASES = (
    ("nodeProvisioning", "node"),
    ("imagePull", "image pull"),
    ("weightDownload", "weight download"),
    ("weightLoad", "weight load"),
    ("compile", "compile"),
    ("cudaGraphs", "CUDA graphs"),
    ("readiness", "readiness"),
)


def _cold_start_table(models: dict[str, Any]) -> list[str]:
    """Scale-up decision to serving per model, next to the autoscaling settings it is weighed against."""
    rows = {name: m for name, m in models.items() if m.get("coldStart")}
    if not rows:
        return []
    lines = [
        "",
        "## Models: cold start (scale-up decision to serving, seconds)",
        "",
        "| model | weights from | "
        + " | ".join(t for _, t in COLD_START_PHASES)
        + " | total | replicas | scale-up | window | startup probe |",
        "|---|---|" + "---:|" * (len(COLD_START_PHASES) + 1) + "---|---|---:|---:|",
    ]
    for name, m in rows.items():
        c, a = m["coldStart"], m.get("autoscaling") or {}
        phases = c["phases"]
        cells = [str(int(phases[k]["seconds"])) if k in phases else "-" for k, _ in COLD_START_PHASES]
        if "queueDepthTarget" in a:
            trigger = f"queue > {a['queueDepthTarget']:g}/replica, +{int(a['scaleUpPods'])} per {int(a['scaleUpPeriodSeconds'])}s"
        else:
            trigger = f"{int(a.get('targetOngoingRequests', 0))} ongoing/replica (Ray Serve)"
        window = c.get("scaleUpWindowSeconds")
        window_cell = (
            "-" if window is None else f"{int(window)}" + (" **exceeded**" if c["exceedsScaleUpWindow"] else "")
        )
        lines.append(
            f"| {name} | {c['weightsSource']}{'' if c['compileCached'] else ', compile uncached'} | "
            + " | ".join(cells)
            + f" | {int(c['totalSeconds'])} | {int(a.get('minReplicas', 0))}..{int(a.get('maxReplicas', 0))} "
            f"| {trigger} | {window_cell} | {int(c['startupProbeWindowSeconds'])} |"
        )
    lines += [
        "",
        (
            "_A new replica on a new node when its pool has no room at minimum replicas (node: 0 otherwise); rates "
            "and their sources per phase in plan.json (outputs.models.<model>.coldStart.phases). Window: "
            "alerts.queueDepthFor, the time a backlog on the warm replicas may last before the queue alert fires; "
            "startup probe: engine start (weight load, uncached compile, CUDA graphs) x coldStart.startupMargin._"
        ),
    ]
    return lines


def _interconnect(models: dict[str, Any]) -> list[str]:
    """Replicas that span nodes: what crosses the network between their pipeline stages."""
    rows = {name: m["interconnect"] for name, m in models.items() if m.get("interconnect")}
    if not rows:
        return []
    lines = [
        "",
        "## Multi-node replicas: interconnect",
        "",
        "| model | GPUs (nodes) per replica | transport | per token per stage boundary | prefill batch | decode step | note |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for name, i in rows.items():
        m = models[name]
        ms = [i.get("prefillBatchMs"), i.get("decodeStepMs")]
        lines.append(
            f"| {name} | {int(m['gpusPerReplica'])} ({int(m['nodesPerReplica'])}) | {i['transport']} "
            f"| {int(i['bytesPerTokenPerBoundary']) // 1024} KiB | "
            + " | ".join("-" if v is None else f"{v:g} ms" for v in ms)
            + f" | {i['note']} |"
        )
    lines += [
        "",
        "_Time on the wire between stages at the node's bandwidth for one profiling-size prefill batch and one decode "
        "step at maxNumSeqs (hidden states + residual, 16 bit); tensor parallelism stays inside a node._",
    ]
    return lines


SCENARIOS = (
    ("min", "min replicas"),
    ("max", "max replicas"),
    ("rollout", "rollout"),
    ("rayUpgrade", "Ray upgrade"),
    ("nodeLoss", "one node lost"),
)


def _feasibility(pools: dict[str, Any]) -> list[str]:
    """Nodes each scenario needs against the nodes the pool can reach, per pool."""
    rows = {name: f["feasibility"] for name, f in pools.items() if f.get("feasibility")}
    if not rows:
        return []
    head = (
        "| pool | autoscaler | reach | allocatable/node | pods/node | "
        + " | ".join(t for _, t in SCENARIOS)
        + " | rollouts |"
    )
    lines = [
        "",
        "## Capacity feasibility (nodes needed / reachable)",
        "",
        head,
        "|---|---|---:|---|---|" + "---:|" * len(SCENARIOS) + "---|",
    ]
    for name, f in sorted(rows.items()):
        node = f["allocatablePerNode"]
        alloc = f"{int(node['gpus'])} GPU" + (
            "" if node.get("cpu") is None else f", {node['cpu']:g} vCPU, {node['memoryGib']:g} GiB"
        )
        per = ", ".join(f"{w.split('/', 1)[1]} {int(n)}" for w, n in sorted(f["podsPerNode"].items())) or "-"
        cells = []
        for key, _ in SCENARIOS:
            need = f["nodesNeeded"].get(key)
            cells.append("-" if need is None else f"{int(need)} {'ok' if f['fits'][key] else 'NO'}")
        rollouts = ", ".join(f"{w.split('/', 1)[1]}: {r}" for w, r in sorted(f["rollouts"].items())) or "-"
        groups = f.get("replicaShape") or {}
        if groups:
            per += "; per replica: " + ", ".join(
                f"{w.split('/', 1)[1]} {int(g['gpusPerReplica'])} GPUs = {int(g['podsPerReplica'])} pods on "
                f"{int(g['nodesPerReplica'])} whole nodes"
                for w, g in sorted(groups.items())
            )
        lines.append(
            f"| {name} | {f['autoscaler']} | {int(f['reachNodes'])} | {alloc} | {per} | "
            + " | ".join(cells)
            + f" | {rollouts} |"
        )
    lines += [
        "",
        "_Reach: Cluster Autoscaler/GKE up to maxNodes; Karpenter: desiredNodes + its NodePool GPU limit (gpuLimit, capped at maxNodes). "
        "Allocatable: node minus kube-reserved, eviction threshold and node DaemonSets (config/feasibility.py)._",
    ]
    return lines


def summary(recording: Recording) -> str:
    """Human-readable plan (Markdown, readable on a terminal and in a CI job summary)."""
    p = plan(recording)
    lines = [f"# Plan for stack `{recording.stack}` ({p['resourceCount']} resources)", ""]
    lines += ["| resource type | count |", "|---|---:|"]
    lines += [f"| `{t}` | {n} |" for t, n in p["counts"].items()]
    system = recording.outputs.get("systemPool")
    if system and system.get("instanceType"):
        lines += [
            "",
            f"System pool (operators, monitoring; CPU only): {system['instanceType']}, "
            f"{int(system['minNodes'])}..{int(system['maxNodes'])} nodes.",
        ]
    elif "systemPool" in recording.outputs:
        lines += [
            "",
            "System pool: none created (existing cluster); operators and monitoring prefer nodes without GPUs.",
        ]
    pools = dict(sorted((recording.outputs.get("nodePools") or {}).items()))  # map order from the engine is not stable
    if pools:
        lines += [
            "",
            "## GPU node pools",
            "",
            "| pool | type | GPUs/node | GPU | nodes | capacity | taint |",
            "|---|---|---:|---|---|---|---|",
        ]
        for name, f in pools.items():
            lines.append(
                f"| {name} | {f.get('instanceType') or '-'} | {int(f['gpusPerNode'])} | {f['gpuModel']} ({int(f['gpuMemoryGib'])} GiB) "
                f"| {int(f['minNodes'])}..{int(f['maxNodes'])} | {f['capacityType']} | {f.get('taint') or '-'} |"
            )
    lines += _feasibility(pools)
    models = dict(sorted((recording.outputs.get("models") or {}).items()))  # map order from the engine is not stable
    if models:
        lines += [
            "",
            "## Models: capacity and cost",
            "",
            "| model | kind | pool | TP x PP | GPUs (nodes) per replica | weights | KV-cache tokens | sequences at maxModelLen | replicas | $/hour |",
            "|---|---|---|---:|---:|---:|---:|---:|---|---|",
        ]
        unpriced = False
        for name, m in models.items():
            low, high = m.get("hourlyCostMin"), m.get("hourlyCostMax")
            cost = f"{_money(low)}..{_money(high)}" if low is not None and high is not None else "unknown²"
            unpriced |= low is None or high is None
            at_max_len = (m.get("concurrentSequences") or {}).get("atMaxModelLen", int(m["maxConcurrentSequences"]))
            lines.append(
                f"| {name} | {m['kind']} | {m['pool']} | {int(m['tensorParallelSize'])} x {int(m.get('pipelineParallelSize', 1))} "
                f"| {int(m.get('gpusPerReplica', m['tensorParallelSize']))} ({int(m.get('nodesPerReplica', 1))}) "
                f"| {m['weightsGib']:.1f} GiB "
                f"| {int(m['kvCacheTokens']):,} | {int(at_max_len)} × {int(m['maxModelLen']):,}¹ "
                f"| {int(m['minReplicas'])}..{int(m['maxReplicas'])} | {cost} |"
            )
        lines += [
            "",
            "_¹ Whole sequences of maxModelLen tokens whose KV cache fits in one replica at once; shorter "
            "requests fit more (see the budget table)._",
            "_$/hour: nodes the replicas need x approximate on-demand list price of the node type "
            "(config/catalog.py, dated); spot capacity costs less, disks and control planes are not included._",
        ]
        if unpriced:
            lines.append(
                "_² No price for the pool's nodes: on an existing cluster state it as "
                "`cluster.nodePools[].gpu.hourlyUsd` (cost per node-hour)._"
            )
        lines += _budget_table(models)
        lines += _cold_start_table(models)
        lines += _interconnect(models)
    endpoints = dict(
        sorted((recording.outputs.get("endpoints") or {}).items())
    )  # map order from the engine is not stable
    if endpoints:
        hosts = recording.outputs.get("hosts") or {}
        lines += [
            "",
            "## Endpoints (OpenAI-compatible)",
            "",
            "| model | in-cluster URL | public hosts |",
            "|---|---|---|",
        ]
        lines += [f"| {name} | {url} | {', '.join(hosts.get(name, [])) or '-'} |" for name, url in endpoints.items()]
    releases = helm_releases(recording)
    if releases:
        lines += ["", "## Helm releases", "", "| release | chart | version | namespace |", "|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['chart']} | {r['version']} | {r['namespace']} |" for r in releases]
    warnings = list(recording.outputs.get("warnings") or []) + [
        line for line in recording.logs if line.startswith("warning")
    ]
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def _file_name(obj: dict[str, Any]) -> str:
    name = (obj.get("metadata") or {}).get("name", "unnamed")
    return f"{obj['kind'].lower()}-{name}.yaml"


def write(recording: Recording, out: Path) -> None:
    """Replace ``out`` with manifests/, helm/, plan.json and summary.md."""
    if out.exists():
        shutil.rmtree(out)
    for obj in manifests(recording):
        ns = (obj.get("metadata") or {}).get("namespace") or "_cluster"
        path = out / "manifests" / ns / _file_name(obj)
        if path.exists():
            raise ValueError(f"two objects render to {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(obj, sort_keys=True))
    for release in helm_releases(recording):
        path = out / "helm" / f"{release['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(release, sort_keys=True))
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps(plan(recording), indent=2, sort_keys=True) + "\n")
    (out / "summary.md").write_text(summary(recording))
