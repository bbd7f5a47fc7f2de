"""Capacity feasibility: can each GPU pool hold what its workloads need, and when?

The scheduling side of the capacity check (``capacity.py`` is the GPU-memory side). For
every pool it counts the nodes its pods need in five situations and compares them with the
nodes the pool can reach:

* ``min``: every workload at its minimum replicas / workers;
* ``max``: every workload at its maximum;
* ``rollout``: at maximum, plus the surge pod of every Deployment that rolls with
  ``maxSurge: 1`` (a rollout of an image bump restarts them all at once);
* ``rayUpgrade``: a RayService ``NewCluster`` upgrade runs the old cluster (up to its
  maxWorkers) beside the new one (its minimum workers) until the new one is ready;
* ``nodeLoss``: the minimum replicas keep running while one node is lost (N+1: a spare node
  or room for a replacement within reach).

Pods are packed first-fit decreasing over GPUs, CPU and memory of each node's allocatable
(``pack_nodes``); ``pods per node`` (``min over GPUs, CPU, memory of allocatable // request``)
is reported per workload.

What a pool can reach: Cluster Autoscaler and GKE's autoscaler grow a pool to ``maxNodes``;
with Karpenter the managed node group stays at ``desiredNodes`` and Karpenter adds nodes up
to its NodePool limit (``cluster.karpenter_gpu_limit``: gpuLimit, capped at maxNodes); an
existing cluster's pool is taken at ``maxNodes``.

Impossible plans (``min`` or ``max`` beyond reach, or a NewCluster upgrade that cannot even
start two minimal clusters) are configuration errors; tight ones (no room for a surge, a
full NewCluster upgrade or a lost node) are plan warnings. Deployments whose surge pod has no
room roll with ``maxSurge: 0, maxUnavailable: 1`` instead (``RolloutPlan``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from .canary_model import serving_models
from .cluster import desired_nodes, karpenter_gpu_limit, karpenter_instance_types
from .errors import Issue
from .facts import NodePoolFacts
from .multinode_plan import stage_pod_resources
from .plan import ModelPlan, RolloutPlan
from .pods import host_resources

if TYPE_CHECKING:
    from .stack import StackConfig

MIB = 1 / 1024
EVICTION_HARD_MEMORY_GIB = 100 * MIB
"""kubelet ``evictionHard: memory.available<100Mi`` on EKS AMIs and GKE nodes: not allocatable."""

EKS_MAX_PODS_CAP = (110, 250)
"""maxPods of the EKS AMIs is capped at 110 below 30 vCPUs and 250 above (amazon-eks-ami
nodeadm). The ENI-based value is often lower; the cap gives the largest reservation, so the
allocatable used here is a lower bound."""

NODE_DAEMONS: dict[str, dict[str, tuple[float, float]]] = {
    # name: (CPU cores, memory GiB) requested per GPU node. Approximate requests of the cloud's
    # own node DaemonSets (EKS add-on and GKE system manifests; not in ../shared/upstream,
    # compare with `kubectl describe node` on a GPU node).
    "eks": {
        "aws-node (VPC CNI)": (0.025, 0.0),
        "kube-proxy": (0.1, 0.0),
        "ebs-csi-node": (0.03, 120 * MIB),
    },
    "eks-efs": {"efs-csi-node": (0.03, 120 * MIB)},
    "gke": {
        "kube-proxy": (0.1, 0.0),
        "fluentbit-gke": (0.1, 200 * MIB),
        "gke-metadata-server": (0.1, 100 * MIB),
        "pdcsi-node": (0.01, 20 * MIB),
        "netd": (0.004, 30 * MIB),
    },
    "gke-filestore": {"filestore-node": (0.01, 40 * MIB)},
    # GPU Operator operands (driver, toolkit, device plugin, GFD, DCGM exporter, validator,
    # NFD worker) and prometheus-node-exporter: the charts' defaults request nothing
    # (gpu-operator values.yaml sets resources only on the operator Deployment) and this
    # project sets none, so they take no allocatable from the scheduler's point of view.
    "addons": {},
}


@dataclass(frozen=True)
class Allocatable:
    """What pods may request on one node of a pool, after reservations and DaemonSets."""

    gpus: int
    cpu: float | None
    memory_gib: float | None
    reserved_cpu: float = 0.0
    reserved_memory_gib: float = 0.0
    daemon_cpu: float = 0.0
    daemon_memory_gib: float = 0.0


@dataclass(frozen=True)
class PodShape:
    gpus: int
    cpu: float | None
    memory_gib: float | None


@dataclass(frozen=True)
class Workload:
    name: str  # "models/llama31-8b", "rayServices/ray-llm"
    path: str  # config path: "models[0]"
    kind: Literal["Deployment", "StatefulSet", "RayService", "LeaderWorkerSet"]
    pod: PodShape
    min_pods: int
    max_pods: int
    upgrade_strategy: str | None = None
    surge_percent: int = 0
    pods_per_replica: int = 1
    """Pods one model replica takes: pipeline stages of a LeaderWorkerSet group, workers a
    multi-node Ray replica spans (its largest model); 1 otherwise."""
    gpus_per_replica: int | None = None


@dataclass
class PoolFeasibility:
    pool: str
    path: str
    autoscaler: str
    reach_nodes: int
    node: Allocatable
    pods_per_node: dict[str, int] = field(default_factory=dict)
    need: dict[str, int] = field(default_factory=dict)
    """Scenario -> nodes needed (min, max, rollout, rayUpgrade, nodeLoss)."""
    rollouts: dict[str, str] = field(default_factory=dict)
    """Workload -> how it rolls: "surge 1", "one at a time" (StatefulSet), "maxUnavailable 1"."""
    replicas: dict[str, dict[str, int]] = field(default_factory=dict)
    """Workload -> what one model replica takes: GPUs, pods and whole nodes (multi-node replicas)."""

    def fits(self, scenario: str) -> bool:
        return self.need.get(scenario, 0) <= self.reach_nodes

    def report(self) -> dict:
        return {
            "autoscaler": self.autoscaler,
            "reachNodes": self.reach_nodes,
            "allocatablePerNode": {
                "gpus": self.node.gpus,
                "cpu": None if self.node.cpu is None else round(self.node.cpu, 2),
                "memoryGib": None if self.node.memory_gib is None else round(self.node.memory_gib, 2),
            },
            "podsPerNode": dict(self.pods_per_node),
            "nodesNeeded": dict(self.need),
            "fits": {k: self.fits(k) for k in self.need},
            "rollouts": dict(self.rollouts),
            **({"replicaShape": dict(self.replicas)} if self.replicas else {}),
        }


# -- node allocatable ------------------------------------------------------------------------
def cpu_reserved(vcpus: int) -> float:
    """kube-reserved CPU, the same on EKS AMIs and GKE: 6 % of the first core, 1 % of the
    second, 0.5 % of the next two, 0.25 % of every core above four (amazon-eks-ami
    nodeadm/bottlerocket ``cpu_millicores_to_reserve``; GKE "Plan node sizes", node
    allocatable resources)."""
    bands = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))
    left, reserved = float(vcpus), 0.0
    for size, rate in bands:
        take = min(left, size)
        reserved += take * rate
        left -= take
    return reserved


def eks_memory_reserved_gib(vcpus: int) -> float:
    """kube-reserved memory of the EKS AMIs: ``11 MiB x maxPods + 255 MiB`` (amazon-eks-ami
    / bottlerocket ``memory_mebibytes_to_reserve``), at the maxPods cap."""
    max_pods = EKS_MAX_PODS_CAP[0] if vcpus < 30 else EKS_MAX_PODS_CAP[1]
    return (11 * max_pods + 255) * MIB


def gke_memory_reserved_gib(memory_gib: float) -> float:
    """GKE memory reservation: 25 % of the first 4 GiB, 20 % of the next 4, 10 % of the next
    8, 6 % of the next 112 and 2 % above 128 GiB (GKE "Plan node sizes")."""
    bands = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02))
    left, reserved = memory_gib, 0.0
    for size, rate in bands:
        take = min(left, size)
        reserved += take * rate
        left -= take
    return reserved


def daemon_requests(config: StackConfig) -> tuple[float, float]:
    """CPU and memory the node DaemonSets request on every GPU node of this stack."""
    c = config.cluster
    tables = ["addons"]
    if c.cloud == "eks":
        tables.append("eks")
        if c.eks is not None and c.eks.efs_model_cache:
            tables.append("eks-efs")
    elif c.cloud == "gke":
        tables.append("gke")
        if c.gke is not None and c.gke.filestore_model_cache:
            tables.append("gke-filestore")
    cpu = sum(v[0] for t in tables for v in NODE_DAEMONS[t].values())
    mem = sum(v[1] for t in tables for v in NODE_DAEMONS[t].values())
    return cpu, mem


def allocatable(config: StackConfig, pool: NodePoolFacts) -> Allocatable:
    gpus = pool.gpus_per_node * max(1, pool.clients_per_gpu)
    if pool.vcpus is None or pool.memory_gib is None or pool.cloud not in ("eks", "gke"):
        return Allocatable(gpus=gpus, cpu=None, memory_gib=None)
    r_cpu = cpu_reserved(pool.vcpus)
    r_mem = eks_memory_reserved_gib(pool.vcpus) if pool.cloud == "eks" else gke_memory_reserved_gib(pool.memory_gib)
    r_mem += EVICTION_HARD_MEMORY_GIB
    d_cpu, d_mem = daemon_requests(config)
    return Allocatable(
        gpus=gpus,
        cpu=pool.vcpus - r_cpu - d_cpu,
        memory_gib=pool.memory_gib - r_mem - d_mem,
        reserved_cpu=r_cpu,
        reserved_memory_gib=r_mem,
        daemon_cpu=d_cpu,
        daemon_memory_gib=d_mem,
    )


REACH = {
    "karpenter": "Karpenter: desiredNodes + its NodePool's GPU limit / GPUs per node",
    "cluster-autoscaler": "Cluster Autoscaler up to maxNodes",
    "gke": "GKE autoscaler up to maxNodes",
    "existing": "maxNodes of the existing cluster",
    "none": "fixed at desiredNodes: nothing grows it",
}


def pods_per_node(pod: PodShape, node: Allocatable) -> int:
    fits = [node.gpus // pod.gpus]
    if node.cpu is not None and pod.cpu:
        fits.append(math.floor(node.cpu / pod.cpu + 1e-9))
    if node.memory_gib is not None and pod.memory_gib:
        fits.append(math.floor(node.memory_gib / pod.memory_gib + 1e-9))
    return max(0, min(fits))


# -- what a pool can reach ------------------------------------------------------------------------
def reach(config: StackConfig, index: int, pool: NodePoolFacts) -> tuple[str, int, str]:
    """(autoscaler, nodes the pool can reach, config path that raises the reach)."""
    c = config.cluster
    cfg = c.node_pools[index]
    path = f"cluster.nodePools[{index}]"
    if c.cloud == "eks" and c.eks is not None and c.eks.gpu_autoscaler_choice == "karpenter":
        desired = desired_nodes(cfg)
        k = c.eks.karpenter
        if k.enabled and karpenter_instance_types(k, cfg) and karpenter_gpu_limit(k, cfg, pool.gpus_per_node):
            added = karpenter_gpu_limit(k, cfg, pool.gpus_per_node) // pool.gpus_per_node
            at = f"{path}.maxNodes" if desired + added == cfg.max_nodes else "cluster.eks.karpenter.gpuLimit"
            return "karpenter", desired + added, at
        return "none", desired, f"{path}.maxNodes"
    if c.cloud == "eks":
        return "cluster-autoscaler", cfg.max_nodes, f"{path}.maxNodes"
    if c.cloud == "gke":
        return "gke", cfg.max_nodes, f"{path}.maxNodes"
    return "existing", cfg.max_nodes, f"{path}.maxNodes"


# -- workloads ----------------------------------------------------------------------------------
def workloads(
    config: StackConfig,
    pools: dict[str, NodePoolFacts],
    models: dict[str, ModelPlan],
    lws_models: dict[str, ModelPlan] | None = None,
) -> dict[str, list[Workload]]:
    lws_models = lws_models or {}
    out: dict[str, list[Workload]] = {}
    for path, m in serving_models(config.models):
        plan = models.get(m.name)
        if plan is None:
            continue
        res = host_resources(m, plan)
        kind = "Deployment" if m.cache.access_mode == "ReadWriteMany" else "StatefulSet"
        pod = PodShape(gpus=plan.tensor_parallel_size, cpu=res.cpu, memory_gib=res.memory_gib)
        a = m.autoscaling
        out.setdefault(plan.pool.name, []).append(
            Workload(f"models/{m.name}", path, kind, pod, a.min_replicas, a.max_replicas)
        )
    for i, svc in enumerate(config.ray_services):
        pool = pools.get(svc.worker_pool)
        if pool is None:
            continue
        gpus = svc.worker_gpus(pool)
        res = svc.worker_resources(pool)
        pod = PodShape(gpus=gpus, cpu=res[0] if res else None, memory_gib=res[1] if res else None)
        plans = [p for key, p in models.items() if key.startswith(f"{svc.name}/")]
        min_gpus = sum(p.gpus_per_replica * p.min_replicas for p in plans)
        widest = max((p.gpus_per_replica for p in plans), default=gpus)
        min_workers = max(svc.min_workers, -(-min_gpus // gpus))
        surge = svc.incremental_upgrade.max_surge_percent if svc.incremental_upgrade else 0
        out.setdefault(pool.name, []).append(
            Workload(
                f"rayServices/{svc.name}",
                f"rayServices[{i}]",
                "RayService",
                pod,
                min_workers,
                max(svc.max_workers, min_workers),
                svc.upgrade_strategy,
                surge,
                pods_per_replica=max(1, -(-widest // gpus)),
                gpus_per_replica=widest if widest > gpus else None,
            )
        )
    for i, m in enumerate(config.multi_node_models):
        plan = lws_models.get(m.name)
        if plan is None:
            continue
        res = stage_pod_resources(m, plan)
        pp = plan.pipeline_parallel_size
        pod = PodShape(gpus=plan.tensor_parallel_size, cpu=res.cpu, memory_gib=res.memory_gib)
        a = m.autoscaling
        out.setdefault(plan.pool.name, []).append(
            Workload(
                f"multiNodeModels/{m.name}",
                f"multiNodeModels[{i}]",
                "LeaderWorkerSet",
                pod,
                a.min_replicas * pp,
                a.max_replicas * pp,
                pods_per_replica=pp,
                gpus_per_replica=plan.gpus_per_replica,
            )
        )
    return out


def pack_nodes(counts: dict[str, int], pods: dict[str, PodShape], node: Allocatable) -> int:
    """Nodes that hold ``counts[w]`` pods of each workload: first-fit decreasing (largest GPU,
    then memory, request first) over GPUs, CPU and memory, as the scheduler would pack them
    at best without preemption. Every pod must fit an empty node (checked before)."""
    order = sorted(
        (w for w, n in counts.items() for _ in range(n)),
        key=lambda w: (pods[w].gpus, pods[w].memory_gib or 0, pods[w].cpu or 0, w),
        reverse=True,
    )
    free: list[list[float]] = []  # per node: GPUs, CPU, memory left
    for w in order:
        need = (pods[w].gpus, pods[w].cpu or 0.0, pods[w].memory_gib or 0.0)
        for left in free:
            if all(left[i] + 1e-9 >= need[i] for i in range(3)):
                for i in range(3):
                    left[i] -= need[i]
                break
        else:
            cap = (
                node.gpus,
                math.inf if node.cpu is None else node.cpu,
                math.inf if node.memory_gib is None else node.memory_gib,
            )
            free.append([cap[i] - need[i] for i in range(3)])
    return len(free)


@dataclass
class FeasibilityResult:
    pools: dict[str, PoolFeasibility]
    rollouts: dict[str, RolloutPlan]
    """vLLM model name -> its Deployment's rolling update."""
    issues: list[Issue]
    warnings: list[str]


def plan_feasibility(
    config: StackConfig,
    pools: dict[str, NodePoolFacts],
    models: dict[str, ModelPlan],
    ray_models: dict[str, ModelPlan],
    lws_models: dict[str, ModelPlan] | None = None,
) -> FeasibilityResult:
    """Nodes needed per pool and scenario against the pool's reach; see the module docstring.

    A replica that spans nodes counts whole groups: a LeaderWorkerSet model needs
    ``pipelineParallelSize`` pods per replica (a surge adds a whole group), and the plan reports
    each such workload's GPUs, pods and nodes per replica (``replicaShape``)."""
    by_pool = workloads(config, pools, {**models, **ray_models}, lws_models)
    result = FeasibilityResult({}, {}, [], [])
    for index, cfg in enumerate(config.cluster.node_pools):
        facts = pools.get(cfg.name)
        if facts is not None:
            _plan_pool(config, index, facts, by_pool.get(cfg.name, []), result)
    _check_quota(config, by_pool, result)
    return result


def _plan_pool(
    config: StackConfig, index: int, facts: NodePoolFacts, loads: list[Workload], result: FeasibilityResult
) -> None:
    """One pool: each workload's pods per node, the nodes each scenario needs, rollouts and upgrades."""
    cfg = config.cluster.node_pools[index]
    autoscaler, reach_nodes, raise_at = reach(config, index, facts)
    node = allocatable(config, facts)
    feas = PoolFeasibility(cfg.name, f"cluster.nodePools[{index}]", autoscaler, reach_nodes, node)
    result.pools[cfg.name] = feas
    if not loads:
        return
    where = facts.instance_type or facts.name
    for w in loads:
        feas.pods_per_node[w.name] = pods_per_node(w.pod, node)
        if w.gpus_per_replica is not None and feas.pods_per_node[w.name]:
            feas.replicas[w.name] = {
                "gpusPerReplica": w.gpus_per_replica,
                "podsPerReplica": w.pods_per_replica,
                "nodesPerReplica": math.ceil(w.pods_per_replica / feas.pods_per_node[w.name]),
            }
    unplaceable = [w for w in loads if feas.pods_per_node[w.name] == 0]
    for w in unplaceable:
        result.issues.append(
            Issue(
                w.path,
                f"one pod ({w.pod.gpus} GPUs, {w.pod.cpu} vCPUs, {w.pod.memory_gib} GiB) does not fit the allocatable of a "
                f"{where} node ({node.gpus} GPUs, {_num(node.cpu)} vCPUs, {_num(node.memory_gib)} GiB after system "
                f"reservations and node DaemonSets)",
            )
        )
    if unplaceable:
        return
    shapes = {w.name: w.pod for w in loads}

    def _nodes(counts: dict[str, int]) -> int:
        return pack_nodes(counts, shapes, node)

    per = feas.pods_per_node
    mins = {w.name: w.min_pods for w in loads}
    maxs = {w.name: w.max_pods for w in loads}
    feas.need["min"] = _nodes(mins)
    feas.need["max"] = _nodes(maxs)

    def explain(counts: dict[str, int]) -> str:
        return "; ".join(
            f"{w.name} {counts[w.name]} x {w.pod.gpus} GPUs, {per[w.name]} per node"
            + (
                f" ({counts[w.name] // w.pods_per_replica} groups of {w.pods_per_replica})"
                if w.kind == "LeaderWorkerSet"
                else ""
            )
            for w in loads
            if counts[w.name] > 0
        )

    for scenario, counts, what in (("min", mins, "the minimum replicas"), ("max", maxs, "the maximum replicas")):
        if not feas.fits(scenario):
            result.issues.append(
                Issue(
                    raise_at,
                    f"pool '{cfg.name}' reaches {reach_nodes} {where} nodes ({REACH[autoscaler]}), but {what} need "
                    f"{feas.need[scenario]}: {explain(counts)}",
                )
            )
    if not feas.fits("max"):
        return

    _plan_rollouts(cfg.name, loads, maxs, reach_nodes, _nodes, feas, result)
    _plan_ray_upgrades(cfg.name, loads, mins, maxs, reach_nodes, _nodes, feas, result)

    # N+1: the minimum keeps serving while a lost node is replaced
    feas.need["nodeLoss"] = feas.need["min"] + 1
    if not feas.fits("nodeLoss") and feas.need["min"] > 0:
        result.warnings.append(
            f"{feas.path}: pool '{cfg.name}' reaches {reach_nodes} nodes and the minimum replicas fill "
            f"{feas.need['min']}: a lost node takes its replicas down until it is back (no spare or replacement room)"
        )


def _plan_rollouts(
    pool: str,
    loads: list[Workload],
    maxs: dict[str, int],
    reach_nodes: int,
    nodes: Callable[[dict[str, int]], int],
    feas: PoolFeasibility,
    result: FeasibilityResult,
) -> None:
    """Each Deployment surges one pod (a LeaderWorkerSet one whole group) where the pool holds it at
    maximum, else replaces one at a time."""
    counts = dict(maxs)
    for w in loads:
        if w.kind == "StatefulSet":
            feas.rollouts[w.name] = "one at a time"
            continue
        if w.kind not in ("Deployment", "LeaderWorkerSet"):
            continue
        name = w.name.split("/", 1)[1]
        # a LeaderWorkerSet surges (and replaces) whole groups
        trial = {**counts, w.name: counts[w.name] + w.pods_per_replica}
        unit = "group" if w.kind == "LeaderWorkerSet" else "replica"
        if nodes(trial) <= reach_nodes:
            counts = trial
            feas.rollouts[w.name] = f"surge 1 {unit}" if w.kind == "LeaderWorkerSet" else "surge 1"
            result.rollouts[name] = RolloutPlan(max_surge=1, max_unavailable=0)
        else:
            feas.rollouts[w.name] = f"maxUnavailable 1 {unit}" if w.kind == "LeaderWorkerSet" else "maxUnavailable 1"
            result.rollouts[name] = RolloutPlan(max_surge=0, max_unavailable=1)
            replicas = w.max_pods // w.pods_per_replica
            result.warnings.append(
                f"{w.path}: pool '{pool}' has no room for a surge {unit} at maxReplicas {replicas} "
                f"({nodes(trial)} nodes needed, {reach_nodes} reachable): rollouts replace one {unit} at a time "
                f"(maxSurge 0, maxUnavailable 1)"
                + (", which takes the only replica down" if w.min_pods <= w.pods_per_replica else "")
            )
    feas.need["rollout"] = nodes(counts)


def _plan_ray_upgrades(
    pool: str,
    loads: list[Workload],
    mins: dict[str, int],
    maxs: dict[str, int],
    reach_nodes: int,
    nodes: Callable[[dict[str, int]], int],
    feas: PoolFeasibility,
    result: FeasibilityResult,
) -> None:
    """RayService upgrades: the old cluster at its maximum beside a new one at its minimum."""
    for w in loads:
        if w.kind != "RayService":
            continue
        if w.upgrade_strategy == "NewCluster":
            full = {**maxs, w.name: w.max_pods + w.min_pods}
            minimal = {**mins, w.name: 2 * w.min_pods}
            feas.need["rayUpgrade"] = max(feas.need.get("rayUpgrade", 0), nodes(full))
            if nodes(minimal) > reach_nodes:
                result.issues.append(
                    Issue(
                        f"{w.path}.upgradeStrategy",
                        f"a NewCluster upgrade needs two clusters of at least {w.min_pods} workers: {nodes(minimal)} "
                        f"nodes of pool '{pool}', which reaches {reach_nodes}",
                    )
                )
            elif not feas.fits("rayUpgrade"):
                result.warnings.append(
                    f"{w.path}: a NewCluster upgrade at {w.max_pods} workers needs {nodes(full)} nodes of pool "
                    f"'{pool}' (old cluster {w.max_pods} + new {w.min_pods} workers), which reaches {reach_nodes}: "
                    f"the new cluster may wait for room"
                )
        else:
            extra = math.ceil(w.max_pods * w.surge_percent / 100)
            full = {**maxs, w.name: w.max_pods + extra}
            feas.need["rayUpgrade"] = max(feas.need.get("rayUpgrade", 0), nodes(full))
            if not feas.fits("rayUpgrade"):
                result.warnings.append(
                    f"{w.path}: an incremental upgrade adds {extra} workers at {w.max_pods}: {nodes(full)} nodes "
                    f"of pool '{pool}', which reaches {reach_nodes}"
                )


def _check_quota(config: StackConfig, by_pool: dict[str, list[Workload]], result: FeasibilityResult) -> None:
    """The serving namespace's GPU ResourceQuota (``security.gpuQuota``) must admit the
    maximum replicas (else an error), and should admit rollouts too (else a warning)."""
    quota = config.security.gpu_quota
    if quota is None:
        return
    loads = [w for ws in by_pool.values() for w in ws]
    at_max = sum(w.pod.gpus * w.max_pods for w in loads)
    surge = sum(
        w.pod.gpus * w.pods_per_replica
        for w in loads
        if w.kind != "RayService" and result.rollouts.get(w.name.split("/", 1)[1], RolloutPlan(0, 1)).max_surge
    )
    surge += sum(
        w.pod.gpus * w.min_pods for w in loads if w.kind == "RayService" and w.upgrade_strategy == "NewCluster"
    )
    if at_max > quota:
        result.issues.append(
            Issue("security.gpuQuota", f"{quota} GPUs cannot admit the {at_max} the maximum replicas request")
        )
    elif at_max + surge > quota:
        result.warnings.append(
            f"security.gpuQuota: {quota} GPUs admit the maximum replicas ({at_max}) but not rollouts and Ray upgrades "
            f"beside them ({at_max + surge}): surge pods wait for quota"
        )


def apply_rollouts(models: dict[str, ModelPlan], rollouts: dict[str, RolloutPlan]) -> dict[str, ModelPlan]:
    return {name: replace(plan, rollout=rollouts.get(name, plan.rollout)) for name, plan in models.items()}


def _num(v: float | None) -> str:
    return "?" if v is None else f"{v:.2f}"
