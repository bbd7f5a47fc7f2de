"""Capacity feasibility: every pool of every stack reaches what its workloads need at max
scale and during rollouts; impossible variants are rejected with their numbers, tight ones
warn and roll without surge.

Expected numbers are worked out by hand below (catalog shapes, formulas quoted from their
sources), never by calling the code under test.
"""

from __future__ import annotations

import copy
import json

import pytest
from conftest import PROJECT, STACKS, find, render
from stackfiles import assert_rejected, stack_values

from llm_infra.components.render import run_program, summary
from llm_infra.config import load_stack_config

SCENARIOS = ("min", "max", "rollout", "nodeLoss")


def plan_of(stack: str, values=None):
    v, s = stack_values(stack)
    return load_stack_config(stack, values if values is not None else v, s)


def prod_values():
    return copy.deepcopy(stack_values("prod")[0])


def _pool(values, i):
    return values["cluster"]["nodePools"][i]


# ------------------------------------------------------------------ node allocatable by hand
def test_allocatable_after_reservations_and_daemonsets_by_hand():
    prod, dev = plan_of("prod"), plan_of("dev")
    # kube-reserved CPU (EKS AMI and GKE alike): 6 % of core 1, 1 % of core 2, 0.5 % of cores 3-4,
    # 0.25 % above; node DaemonSets: EKS aws-node 0.025 + kube-proxy 0.1 + ebs-csi-node 0.03
    # + efs-csi-node 0.03 (prod has efsModelCache) = 0.185
    # g5.12xlarge: 48 vCPU, 192 GiB
    cpu_reserved = 0.06 + 0.01 + 2 * 0.005 + 44 * 0.0025  # 0.19
    x4 = prod.feasibility["a10g-x4"].node
    assert x4.gpus == 4
    assert x4.cpu == pytest.approx(48 - cpu_reserved - 0.185)  # 47.625
    # memory: 11 MiB x maxPods (cap 250 at >= 30 vCPUs) + 255 MiB, + 100 MiB eviction,
    # + 120 MiB ebs-csi-node + 120 MiB efs-csi-node
    assert x4.memory_gib == pytest.approx(192 - (11 * 250 + 255 + 100 + 120 + 120) / 1024)
    # g5.2xlarge: 8 vCPU, 32 GiB, maxPods cap 110 below 30 vCPUs
    a10g = prod.feasibility["a10g"].node
    assert a10g.cpu == pytest.approx(8 - (0.06 + 0.01 + 0.01 + 4 * 0.0025) - 0.185)
    assert a10g.memory_gib == pytest.approx(32 - (11 * 110 + 255 + 100 + 240) / 1024)
    # GKE g2-standard-8 (8 vCPU, 32 GiB): memory 25 % of 4 + 20 % of 4 + 10 % of 8 + 6 % of 16
    # = 3.56 GiB, + 100 MiB eviction; DaemonSets kube-proxy 0.1, fluentbit 0.1/200Mi,
    # gke-metadata-server 0.1/100Mi, pdcsi-node 0.01/20Mi, netd 0.004/30Mi
    l4 = dev.feasibility["l4"].node
    assert l4.cpu == pytest.approx(8 - 0.09 - (0.1 + 0.1 + 0.1 + 0.01 + 0.004))
    assert l4.memory_gib == pytest.approx(32 - 3.56 - (100 + 200 + 100 + 20 + 30) / 1024)
    # existing clusters: node size unknown, GPUs only
    a100 = plan_of("onprem").feasibility["a100"].node
    assert (a100.gpus, a100.cpu, a100.memory_gib) == (8, None, None)


# ------------------------------------------------------------------ every stack's table
def test_every_pool_of_every_stack_reaches_max_scale_and_rollouts(stack):
    plan = plan_of(stack)
    assert not plan.warnings, plan.warnings
    for name, feas in plan.feasibility.items():
        for scenario, need in feas.need.items():
            assert need <= feas.reach_nodes, (
                f"{stack}/{name}: {scenario} needs {need} nodes, reaches {feas.reach_nodes}"
            )
        assert {"min", "max", "rollout", "nodeLoss"} <= set(feas.need), name


def test_prod_numbers_by_hand():
    f = plan_of("prod").feasibility
    # a10g-x4: managed group at desired 1 (minNodes), Karpenter adds min(gpuLimit 16, (maxNodes 4 - 1) x 4 GPUs)
    # = 12 GPUs = 3 nodes -> reach 4. 70B AWQ: TP 4 = a whole node; 3 replicas = 3 nodes, +1 surge = 4
    x4 = f["a10g-x4"]
    assert (x4.autoscaler, x4.reach_nodes) == ("karpenter", 1 + 12 // 4)
    assert x4.need == {"min": 1, "max": 3, "rollout": 4, "nodeLoss": 2}
    assert x4.rollouts == {"models/llama31-70b-awq": "surge 1"}
    # a10g: desired 2 + min(16, (9 - 2) x 1) = 9; 8B: 6 replicas x 1 GPU and its canary's 1
    # (10 % of 6, at least 1), +1 surge each = 9; min 2 + 1 canary
    a10g = f["a10g"]
    assert a10g.reach_nodes == 2 + 7
    assert a10g.need == {"min": 3, "max": 7, "rollout": 9, "nodeLoss": 4}
    assert a10g.rollouts == {"models/llama31-8b": "surge 1", "models/llama31-8b-canary": "surge 1"}
    # l40s: desired 0 + min(16, 6) = 6; RayService min workers max(2, 1+1 GPUs) = 2, max 4;
    # NewCluster upgrade = old 4 + new 2 = 6
    l40s = f["l40s"]
    assert l40s.reach_nodes == 6
    assert l40s.need == {"min": 2, "max": 4, "rollout": 4, "rayUpgrade": 6, "nodeLoss": 3}


def test_dev_and_onprem_numbers_by_hand():
    l4 = plan_of("dev").feasibility["l4"]
    # GKE autoscaler up to maxNodes 2; RWO cache -> StatefulSet, replaced in place (no surge)
    assert (l4.autoscaler, l4.reach_nodes) == ("gke", 2)
    assert l4.need == {"min": 1, "max": 2, "rollout": 2, "nodeLoss": 2}
    assert l4.rollouts == {"models/llama3-8b": "one at a time"}
    a100 = plan_of("onprem").feasibility["a100"]
    # 8 GPUs per node / TP 4 = 2 replicas per node; max 3 replicas -> ceil(3 / 2) = 2 nodes
    assert a100.pods_per_node == {"models/qwen25-72b": 2}
    assert (a100.reach_nodes, a100.need["max"]) == (2, 2)


def test_the_table_is_in_plan_outputs_and_summary(stack):
    rec = render(stack)
    pools = rec.outputs["nodePools"]
    summary_text = summary(rec)
    assert "## Capacity feasibility" in summary_text
    for name, pool in pools.items():
        feas = pool["feasibility"]
        assert feas["reachNodes"] >= max(feas["nodesNeeded"].values())
        assert all(feas["fits"].values())
        row = [line for line in summary_text.splitlines() if line.startswith(f"| {name} | {feas['autoscaler']} |")]
        assert len(row) == 1 and " NO" not in row[0], row
    json.dumps(rec.outputs)  # plan.json carries it


# ------------------------------------------------------------------ impossible and tight variants
def test_the_70b_pool_fixed_at_one_node_is_rejected_with_numbers():
    values = prod_values()
    _pool(values, 1).update(minNodes=1, maxNodes=1)
    # maxReplicas 3 x TP 4 on 4-GPU nodes = 3 nodes; nothing grows the pool past 1
    assert_rejected(
        "prod", values, stack_values("prod")[1], "cluster.nodePools[1].maxNodes", "reaches 1 g5.12xlarge nodes"
    )
    lines = assert_rejected(
        "prod", values, stack_values("prod")[1], "cluster.nodePools[1].maxNodes", "maximum replicas need 3"
    )
    assert any("3 x 4 GPUs" in line for line in lines)


def test_the_70b_pool_fixed_at_one_node_is_rejected_with_the_cluster_autoscaler_too():
    values = prod_values()
    values["cluster"]["eks"].update(gpuAutoscaler="clusterAutoscaler", karpenter={"enabled": False})
    _pool(values, 1).update(minNodes=1, maxNodes=1)
    assert_rejected(
        "prod",
        values,
        stack_values("prod")[1],
        "cluster.nodePools[1].maxNodes",
        "reaches 1 g5.12xlarge nodes (Cluster Autoscaler up to maxNodes), but the maximum replicas need 3",
    )


def test_ray_new_cluster_upgrade_without_room():
    values = prod_values()
    # l40s maxNodes 3: two minimal clusters need 2 x 2 workers = 4 nodes > 3
    _pool(values, 2).update(maxNodes=3)
    assert_rejected("prod", values, stack_values("prod")[1], "rayServices[0].upgradeStrategy", "second cluster")
    # maxNodes 5: possible, but a full upgrade (4 old + 2 new = 6 nodes) does not fit: a warning
    values = prod_values()
    _pool(values, 2).update(maxNodes=5)
    plan = plan_of("prod", values)
    assert plan.feasibility["l40s"].need["rayUpgrade"] == 6 and plan.feasibility["l40s"].reach_nodes == 5
    assert any(
        w.startswith("rayServices[0]: a NewCluster upgrade at 4 workers needs 6 nodes") for w in plan.warnings
    ), plan.warnings


def test_surge_without_a_spare_node_rolls_one_replica_at_a_time():
    values = prod_values()
    _pool(values, 1).update(maxNodes=3)  # 3 replicas fill 3 nodes: no fourth for a surge replica
    plan = plan_of("prod", values)
    assert plan.models["llama31-70b-awq"].rollout.rolling_update() == {"maxSurge": 0, "maxUnavailable": 1}
    assert plan.models["llama31-8b"].rollout.rolling_update() == {"maxSurge": 1, "maxUnavailable": 0}
    assert plan.feasibility["a10g-x4"].need["rollout"] == 3
    assert any(
        w.startswith("models[1]: pool 'a10g-x4' has no room for a surge replica at maxReplicas 3")
        for w in plan.warnings
    )
    # and the rendered Deployment rolls that way
    rec = run_program(PROJECT, "prod", config_overrides={"cluster": values["cluster"]})
    assert find(rec, "Deployment", "llama31-70b-awq")["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 0,
        "maxUnavailable": 1,
    }
    assert find(rec, "Deployment", "llama31-8b")["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 1,
        "maxUnavailable": 0,
    }
    assert any("no room for a surge replica" in w for w in rec.outputs["warnings"])


def test_prod_deployments_surge_where_the_pool_has_room():
    rec = render("prod")
    for name in ("llama31-8b", "llama31-70b-awq"):
        assert find(rec, "Deployment", name)["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": 1,
            "maxUnavailable": 0,
        }


def test_losing_the_only_node_is_a_warning():
    values, secrets = stack_values("dev")
    values = copy.deepcopy(values)
    values["cluster"]["nodePools"][0].update(maxNodes=1)
    values["models"][0]["autoscaling"].update(minReplicas=1, maxReplicas=1)
    plan = load_stack_config("dev", values, secrets)
    # min 1 replica = 1 node; N+1 = 2 > reach 1
    assert plan.feasibility["l4"].need["nodeLoss"] == 2
    assert any("a lost node takes its replicas down" in w for w in plan.warnings)


def test_max_replicas_beyond_the_gpu_quota_are_rejected_and_tight_quota_warns():
    values = prod_values()
    # max GPUs: 8B 6 x 1 + its canary 1 + 70B 3 x 4 + Ray 4 workers x 1 + Ray 72B 4 workers x 1
    # + LWS 2 groups x 8 = 43
    values["security"]["gpuQuota"] = 42
    assert_rejected("prod", values, stack_values("prod")[1], "security.gpuQuota", "cannot admit the 43")
    # 43 fit 46, but surges (1 + 1 canary + 4 + a group of 2 x 4) and NewCluster upgrades (2 + 2 workers) add 18 = 61
    values["security"]["gpuQuota"] = 46
    plan = plan_of("prod", values)
    assert any(
        w.startswith("security.gpuQuota: 46 GPUs admit the maximum replicas (43) but not rollouts") and "(61)" in w
        for w in plan.warnings
    ), plan.warnings


def test_every_stack_is_checked():
    assert set(STACKS) >= {"dev", "prod", "onprem"}
