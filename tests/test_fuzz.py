"""Property-based tests: generated stack configs either render cleanly (and pass the schema
checks and the security baseline) or fail with one-line errors naming the field; never a
traceback. ``test_fuzz_case_count`` reports how many generated cases ran."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import kubernetes_validate
import pytest
from conftest import PROJECT, STACKS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stackfiles import stack_values
from test_rendered_schemas import KUBERNETES_SCHEMA_VERSION
from test_security import pods_of, restricted_violations
from upstream import crd_schemas, custom_resource_errors, is_custom, required

from llm_infra.components.render import RenderError, manifests, run_program
from llm_infra.config import ConfigError, load_stack_config

BASE = {s: stack_values(s) for s in STACKS}
BROKEN_EXAMPLES = 200
VALID_EXAMPLES = 40
CASES: Counter[str] = Counter()
"""Generated cases run in this session, per property."""


def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Every (path, value) of a leaf or container in the stack values."""
    out = [(path, value)] if path else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += leaves(v, (*path, i))
    return out


def set_path(root: dict, path: tuple, value: Any) -> None:
    node = root
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def wrong_kind(value: Any) -> Any:
    """A value no typed field holding ``value`` accepts."""
    if isinstance(value, bool):
        return [1]
    if isinstance(value, (int, float)):
        return "not-a-number!"
    if isinstance(value, str):
        return {"unexpected": 1}
    if isinstance(value, list):
        return "not-a-list"
    return 7


@st.composite
def broken_configs(draw):
    stack = draw(st.sampled_from(STACKS))
    values, secrets = copy.deepcopy(BASE[stack])
    candidates = leaves(values)
    path, old = draw(st.sampled_from(candidates))
    kind = draw(st.sampled_from(["wrong-type", "unknown-key"]))
    if kind == "unknown-key" and isinstance(old, dict) and not _free_form(path):
        key = draw(st.from_regex(r"zz[a-z]{1,8}", fullmatch=True))
        old[key] = draw(st.integers())
        return stack, values, secrets, (*path, key)
    set_path(values, path, wrong_kind(old))
    return stack, values, secrets, path


def _free_form(path: tuple) -> bool:
    return bool(path) and path[-1] in {"labels", "nodeSelector", "selectorLabels"}


@settings(max_examples=BROKEN_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_configs())
def test_broken_configs_fail_cleanly_naming_the_field(case):
    CASES["broken"] += 1
    stack, values, secrets, path = case
    try:
        load_stack_config(stack, values, secrets)
    except ConfigError as err:
        lines = err.lines()
        assert lines and all(line.startswith(f"{stack}: ") and "\n" not in line for line in lines)
        target = dotted(path)
        paths = [line.split(": ", 2)[1] for line in lines]
        assert any(p.startswith(target) or target.startswith(p) for p in paths), (target, lines)
        return
    raise AssertionError(f"{dotted(path)} = {values!r:.200} was accepted")


@st.composite
def valid_variants(draw):
    """Changes inside the documented ranges of real stacks: these must always deploy."""
    stack = draw(st.sampled_from(STACKS))
    values, secrets = copy.deepcopy(BASE[stack])
    for model in values.get("models", []):
        a = model.setdefault("autoscaling", {})
        lo = a.get("minReplicas", 1)
        # up to the stack's own maxReplicas: more may not fit its pools, GPU quota or Karpenter
        # limits (the capacity feasibility plan rejects those; see tests/test_feasibility.py)
        hi = max(a.get("maxReplicas", 2), lo, 1)
        a["maxReplicas"] = draw(st.integers(lo if lo > 0 else 1, hi))
        a["queueDepthTarget"] = draw(st.floats(1, 20).map(lambda f: round(f, 2)))
        model["gpuMemoryUtilization"] = draw(st.sampled_from([0.85, 0.88, 0.9, 0.92, 0.95]))
        model["maxModelLen"] = draw(st.sampled_from([2048, 4096, 8192]))
        model["terminationGracePeriodSeconds"] = draw(st.integers(120, 600))
        model["enablePrefixCaching"] = draw(st.booleans())
    for pool in values["cluster"]["nodePools"]:
        pool["maxNodes"] = draw(st.integers(pool.get("maxNodes", 1), pool.get("maxNodes", 1) + 4))
    values["alerts"] = {"queueDepth": draw(st.integers(1, 50)), "kvCacheUsage": draw(st.sampled_from([0.8, 0.9, 0.95]))}
    security = values.setdefault("security", {})
    security["podSecurity"] = draw(st.sampled_from(["baseline", "restricted"]))
    if security["podSecurity"] == "baseline":
        security["vllmRunAsRoot"] = draw(st.booleans())
    security["networkPolicy"] = {
        "enabled": draw(st.booleans()),
        "ingressCidrs": draw(st.sampled_from([[], ["10.0.0.0/16"], ["10.0.0.0/16", "35.191.0.0/16"]])),
        "apiServerPorts": draw(st.sampled_from([[443], [443, 6443], [6443]])),
    }
    return stack, values, secrets


@settings(max_examples=VALID_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_variants())
def test_valid_variants_render_and_pass_schema_checks(case):
    CASES["valid"] += 1
    stack, values, secrets = case
    load_stack_config(stack, values, secrets)  # must not raise
    overrides = {k: values.get(k) for k in set(values) | set(BASE[stack][0])}
    try:
        recording = run_program(PROJECT, stack, config_overrides=overrides)
    except RenderError as err:  # pragma: no cover - a failure message for the report
        raise AssertionError(str(err)) from None
    for obj in manifests(recording):
        if is_custom(obj):
            errors = custom_resource_errors(obj)
            assert not errors, errors[0]
        else:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)
    as_root = values["security"].get("vllmRunAsRoot", False)
    for pod in pods_of(recording):
        if pod.role in ("vllm", "vllm-lws") and as_root:  # multiNodeModels honour vllmRunAsRoot too
            continue
        assert not restricted_violations(pod.spec), (pod.id, restricted_violations(pod.spec))
    policies = [o for o in manifests(recording) if o["kind"] == "NetworkPolicy"]
    assert bool(policies) is values["security"]["networkPolicy"]["enabled"]


def test_fuzz_case_count():
    """Runs after the properties above (file order): they must really have generated cases."""
    if not CASES:
        pytest.skip("the fuzz properties did not run in this session")
    if not crd_schemas():
        required("no CRDs: the valid-variant property stops at its first schema check")
    print(f"fuzz cases: {dict(CASES)} (total {sum(CASES.values())})")
    assert CASES["broken"] >= BROKEN_EXAMPLES // 2 and CASES["valid"] >= VALID_EXAMPLES // 2, dict(CASES)
