#!/usr/bin/env python3
"""Mutation run over chosen lines: does the suite catch realistic one-line bugs?

Each mutation below is a bug someone could plausibly commit (a changed default, a typo in a
metric name, an inverted operator, a wrong version). For each one the script edits the file
in place, runs the fast part of the suite (everything but checkov, fuzzing, the wheel build
and the workflow linters: ``-x`` stops at the first failure), restores the file and records
whether a test failed ("killed") or not ("survived"). Not part of CI: `make mutation`.

    python scripts/mutation_run.py [--only SUBSTRING] [--report build/mutation.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW_TESTS = ("tests/test_security.py", "tests/test_fuzz.py", "tests/test_library.py", "tests/test_workflows.py")


@dataclass(frozen=True)
class Mutation:
    id: str
    path: str
    old: str
    new: str


MUTATIONS = [
    # documented defaults
    Mutation(
        "queue-depth-target-5-to-50",
        "config/serving.py",
        "queue_depth_target: float = Field(\n        5,",
        "queue_depth_target: float = Field(\n        50,",
    ),
    Mutation(
        "scale-down-stabilization-300-to-30",
        "config/serving.py",
        "scale_down_stabilization_seconds: int = Field(\n        300,",
        "scale_down_stabilization_seconds: int = Field(\n        30,",
    ),
    Mutation(
        "gpu-memory-utilization-0.90-to-0.95",
        "config/serving.py",
        "gpu_memory_utilization: float = Field(\n        0.90,",
        "gpu_memory_utilization: float = Field(\n        0.95,",
    ),
    Mutation(
        "grace-period-120-to-600",
        "config/serving.py",
        "termination_grace_period_seconds: int = Field(\n        120,",
        "termination_grace_period_seconds: int = Field(\n        600,",
    ),
    Mutation(
        "pre-stop-15-to-5",
        "config/serving.py",
        "pre_stop_sleep_seconds: int = Field(\n        15,",
        "pre_stop_sleep_seconds: int = Field(\n        5,",
    ),
    Mutation(
        "startup-window-900-to-600",
        "config/serving.py",
        "startup_timeout_seconds: int = Field(\n        900,",
        "startup_timeout_seconds: int = Field(\n        600,",
    ),
    Mutation(
        "max-model-len-8192-to-32768",
        "config/serving.py",
        "DEFAULT_MAX_MODEL_LEN = 8192",
        "DEFAULT_MAX_MODEL_LEN = 32768",
    ),
    Mutation(
        "alert-kv-cache-0.90-to-0.95",
        "config/stack.py",
        "kv_cache_usage: float = Field(0.90,",
        "kv_cache_usage: float = Field(0.95,",
    ),
    Mutation(
        "alert-queue-10-to-100", "config/stack.py", "queue_depth: float = Field(10,", "queue_depth: float = Field(100,"
    ),
    Mutation(
        "ray-target-ongoing-32-to-64",
        "config/ray.py",
        "target_ongoing_requests: int = Field(32,",
        "target_ongoing_requests: int = Field(64,",
    ),
    Mutation(
        "prometheus-retention-15d-to-30d",
        "config/addons.py",
        'retention: str = Field("15d"',
        'retention: str = Field("30d"',
    ),
    Mutation(
        "pod-security-default-restricted",
        "config/security.py",
        '"baseline", description="enforced Pod Security Standard',
        '"restricted", description="enforced Pod Security Standard',
    ),
    # version pins
    Mutation("keda-chart-2.20.2-to-2.19.0", "config/versions.py", 'Chart("keda", "2.20.2"', 'Chart("keda", "2.19.0"'),
    Mutation(
        "kps-chart-88.5.3-to-88.5.2",
        "config/versions.py",
        '"kube-prometheus-stack", "88.5.3"',
        '"kube-prometheus-stack", "88.5.2"',
    ),
    Mutation(
        "vllm-image-v0.31.0-to-v0.30.0",
        "config/versions.py",
        '"vllm/vllm-openai:v0.31.0"',
        '"vllm/vllm-openai:v0.30.0"',
    ),
    # fields nothing else derives
    Mutation(
        "keda-cooldown-fixed-30",
        "components/serving/autoscaling.py",
        '"cooldownPeriod": a.scale_down_stabilization_seconds',
        '"cooldownPeriod": 30',
    ),
    Mutation(
        "pdb-eviction-policy",
        "components/serving/vllm.py",
        '"unhealthyPodEvictionPolicy": "AlwaysAllow"',
        '"unhealthyPodEvictionPolicy": "IfHealthyBudget"',
    ),
    Mutation(
        "adapter-kv-cache-max-to-sum",
        "components/addons/prometheus_adapter.py",
        'metrics.ADAPTER_KV_CACHE_USAGE, "max"',
        'metrics.ADAPTER_KV_CACHE_USAGE, "sum"',
    ),
    Mutation(
        "adapter-default-rules-on",
        "components/addons/prometheus_adapter.py",
        '"rules": {"default": False',
        '"rules": {"default": True',
    ),
    Mutation(
        "scale-up-stabilization-0-to-60",
        "components/serving/autoscaling.py",
        '"stabilizationWindowSeconds": 0,',
        '"stabilizationWindowSeconds": 60,',
    ),
    Mutation(
        "quantity-centi-not-milli",
        "components/serving/autoscaling.py",
        'return f"{math.ceil(value * 1000)}m"',
        'return f"{math.ceil(value * 100)}m"',
    ),
    Mutation(
        "liveness-failures-4-to-1", "components/serving/vllm.py", "LIVENESS_FAILURES = 4", "LIVENESS_FAILURES = 1"
    ),
    Mutation(
        "readiness-failures-3-to-1", "components/serving/vllm.py", "READINESS_FAILURES = 3", "READINESS_FAILURES = 1"
    ),
    # helpers whose output tests used to compare with themselves
    Mutation(
        "addons-prefer-gpu-nodes",
        "components/addons/base.py",
        '{"key": GPU_PRESENT_LABEL, "operator": "NotIn", "values": ["true"]}',
        '{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}',
    ),
    Mutation("toleration-operator-exists", "config/facts.py", '"operator": "Equal",', '"operator": "Exists",'),
    # metric names
    Mutation(
        "metric-kv-cache-old-name",
        "components/serving/metrics.py",
        'KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"',
        'KV_CACHE_USAGE = "vllm:gpu_cache_usage_perc"',
    ),
    Mutation(
        "metric-queue-underscore",
        "components/serving/metrics.py",
        'NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"',
        'NUM_REQUESTS_WAITING = "vllm_num_requests_waiting"',
    ),
    Mutation(
        "metric-ttft-typo",
        "components/serving/metrics.py",
        'TTFT = "vllm:time_to_first_token_seconds"',
        'TTFT = "vllm:time_to_first_token_second"',
    ),
    Mutation(
        "metric-dcgm-temp-typo",
        "components/serving/metrics.py",
        'DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"',
        'DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMPERATURE"',
    ),
    Mutation(
        "ray-metric-healthy-typo",
        "components/serving/ray_observability.py",
        'REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"',
        'REPLICA_HEALTHY = "ray_serve_replica_healthy"',
    ),
    # day-2: quota, KEDA fallback, Ray shared cache, the CEL checker itself
    Mutation(
        "day2-gpu-quota-counts-limits",
        "components/serving/namespace.py",
        'spec={"hard": {GPU_QUOTA_KEY: str(sec.gpu_quota)}}',
        'spec={"hard": {GPU_QUOTA_KEY: str(sec.gpu_quota), "limits.nvidia.com/gpu": str(sec.gpu_quota)}}',
    ),
    Mutation(
        "day2-fallback-static",
        "config/serving.py",
        'behavior: FallbackBehavior = "currentReplicasIfHigher"',
        'behavior: FallbackBehavior = "static"',
    ),
    Mutation(
        "day2-fallback-threshold-3-to-1",
        "config/serving.py",
        "failure_threshold: int = Field(3, ge=1,",
        "failure_threshold: int = Field(1, ge=1,",
    ),
    Mutation(
        "day2-ray-cache-ignores-cluster-rwx",
        "config/ray.py",
        "else bool(self.storage_class) or cluster_has_rwx",
        "else bool(self.storage_class)",
    ),
    Mutation(
        "day2-cel-no-defaulting",
        "tests/crd_cel.py",
        '_walk(apply_defaults(copy.deepcopy(obj), schema), schema, "", report)',
        '_walk(copy.deepcopy(obj), schema, "", report)',
    ),
    Mutation(
        "day2-cel-find-never-matches",
        "tests/crd_cel.py",
        'return ct.StringType(match.group(0) if match else "")',
        'return ct.StringType("")',
    ),
]


def run_suite(timeout: int, deselect: list[str]) -> tuple[bool, str]:
    """True when some test failed (the mutant is killed)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts="]
    cmd += [f"--ignore={t}" for t in SLOW_TESTS] + [f"--deselect={t}" for t in deselect]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return True, "timeout"
    tail = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))][:1]
    return proc.returncode != 0, (
        tail[0] if tail else proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="run the mutations whose id contains this")
    parser.add_argument("--report", type=Path, default=ROOT / "build" / "mutation.json")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--deselect", action="append", default=[], help="a test id to leave out (a known failure)")
    args = parser.parse_args()

    clean, detail = run_suite(args.timeout, args.deselect)
    if clean:
        print(f"the unmutated suite fails ({detail}): fix it first", file=sys.stderr)
        return 2
    results = []
    for m in MUTATIONS:
        if args.only and args.only not in m.id:
            continue
        path = ROOT / m.path
        original = path.read_text()
        if original.count(m.old) != 1:
            results.append(
                {"id": m.id, "result": "not applicable", "detail": f"{m.path}: the line to mutate is not there once"}
            )
            print(f"{m.id:45} not applicable")
            continue
        path.write_text(original.replace(m.old, m.new))
        start = time.monotonic()
        try:
            killed, detail = run_suite(args.timeout, args.deselect)
        finally:
            path.write_text(original)
        result = "killed" if killed else "survived"
        results.append({"id": m.id, "result": result, "detail": detail, "seconds": round(time.monotonic() - start)})
        print(f"{m.id:45} {result:9} {detail}", flush=True)
    applicable = [r for r in results if r["result"] != "not applicable"]
    killed = sum(r["result"] == "killed" for r in applicable)
    score = f"{killed}/{len(applicable)} killed ({100 * killed / max(1, len(applicable)):.0f} %)"
    print(score)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"score": score, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
