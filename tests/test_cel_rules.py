"""Every custom resource also passes its CRD's CEL rules, as the API server checks them on create.

The schema check (test_rendered_schemas.py) covers types, enums and required fields; the CRDs'
``x-kubernetes-validations`` (KEDA's min <= max replicas, Karpenter's requirement and label
rules, KubeRay's managedBy, Gateway API's route rules, ...) are evaluated here by
``crd_cel`` on the object after the schema's defaults are applied. CRDs come from
../shared/upstream/crds or ``LLM_INFRA_CRDS_DIR`` (tests/upstream.py); without them the tests
skip, except on CI where they fail. The broken copies below prove the checker reports real rules.
"""

from __future__ import annotations

import copy
from typing import Any

import crd_cel
import pytest
from conftest import PROJECT, find, objects, render
from stackfiles import stack_values
from upstream import CRDS_DIR, crd_schemas, is_custom, required

from llm_infra.components.render import run_program


def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found = crd_schemas()
    if not found:
        required(f"no CRDs found in {CRDS_DIR} (LLM_INFRA_CRDS_DIR)")  # fails on CI, skips elsewhere
    return found


def schema_of(obj: dict[str, Any]) -> dict[str, Any]:
    key = (obj["apiVersion"], obj["kind"])
    found = schemas()
    assert key in found, f"no upstream CRD for {key}: add it to ../shared/upstream or point LLM_INFRA_CRDS_DIR at one"
    return found[key]


def findings(obj: dict[str, Any]) -> list[str]:
    return [str(f) for f in crd_cel.check(obj, schema_of(obj)).findings]


def messages(obj: dict[str, Any]) -> set[str]:
    return {f.message for f in crd_cel.check(obj, schema_of(obj)).findings}


def rules_in(schema: Any):
    if isinstance(schema, dict):
        for rule in schema.get("x-kubernetes-validations") or []:
            yield rule
        for value in schema.values():
            yield from rules_in(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from rules_in(value)


# --- the rendered stacks -------------------------------------------------------------------


def test_custom_resources_pass_their_crd_cel_rules(recording):
    custom = [o for o in objects(recording) if is_custom(o)]
    problems = []
    for obj in custom:
        problems += [f"{obj['kind']}/{obj['metadata']['name']}: {f}" for f in findings(obj)]
    assert not problems, "\n".join(problems)


def _with_http_route(values: dict[str, Any]) -> dict[str, Any]:
    models = copy.deepcopy(values["models"])
    models[0]["httpRoute"] = {"gatewayName": "public", "gatewayNamespace": "gateways", "hostnames": ["llm.example.com"]}
    return {"models": models}


def _with_ray(values: dict[str, Any]) -> dict[str, Any]:
    from test_rayservice import ONPREM_RAY  # incremental upgrade, two models

    return {"rayServices": ONPREM_RAY}


@pytest.mark.parametrize(
    ("stack", "variant", "kind"),
    [("dev", _with_http_route, "HTTPRoute"), ("onprem", _with_ray, "RayService")],
    ids=["dev+httpRoute", "onprem+ray"],
)
def test_variants_pass_their_crd_cel_rules(stack, variant, kind):
    """Custom resources no stack file renders yet (Gateway API routes, a second RayService)."""
    values, _ = stack_values(stack)
    rec = run_program(PROJECT, stack, config_overrides=variant(values))
    custom = [o for o in objects(rec) if is_custom(o)]
    assert kind in {o["kind"] for o in custom}
    problems = [f"{o['kind']}/{o['metadata']['name']}: {f}" for o in custom for f in findings(o)]
    assert not problems, "\n".join(problems)
    evaluated = sum(crd_cel.check(o, schema_of(o)).evaluated for o in custom if o["kind"] == kind)
    if kind == "HTTPRoute":
        assert evaluated > 0  # parentRefs, rules and backendRefs rules of the Gateway API CRD


def test_prod_evaluates_the_rules_of_its_scaled_objects_and_node_pools():
    """Proves the stack check above runs rules at all: prod renders KEDA and Karpenter objects."""
    counts: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for obj in objects(render("prod")):
        if obj["kind"] in {"ScaledObject", "NodePool", "EC2NodeClass"}:
            report = crd_cel.check(obj, schema_of(obj))
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + report.evaluated
            skipped[obj["kind"]] = skipped.get(obj["kind"], 0) + report.skipped_transition
    assert counts["ScaledObject"] >= 2  # one rule (min <= max replicas) per ScaledObject
    assert counts["NodePool"] > 10 and counts["EC2NodeClass"] > 10
    # karpenter.sh NodePool v1: 3 transition rules (static/dynamic mode, nodeClassRef group and
    # kind immutable) reference oldSelf and are skipped on create, per NodePool
    assert skipped["NodePool"] == 3 * sum(1 for o in objects(render("prod"), "NodePool"))


def test_every_rule_of_the_upstream_crds_can_be_evaluated():
    """A rule this checker cannot evaluate fails here (and in the stack check), never passes."""
    unevaluable = {}
    total = 0
    for (api, kind), schema in schemas().items():
        for rule in rules_in(schema):
            total += 1
            why = crd_cel.compile_rule(rule["rule"]).unsupported
            if why:
                unevaluable[f"{kind} {api}: {rule['rule']}"] = why
    assert total > 0
    assert not unevaluable, unevaluable


# --- broken copies of rendered objects: the checker reports the real rules -------------------


def prod(kind: str, name: str) -> dict[str, Any]:
    return copy.deepcopy(find(render("prod"), kind, name))


def first(kind: str, stack: str = "prod") -> dict[str, Any]:
    return copy.deepcopy(objects(render(stack), kind)[0])


def test_keda_min_replicas_above_max_is_reported():
    obj = first("ScaledObject")
    assert findings(obj) == []
    obj["spec"]["minReplicaCount"] = obj["spec"]["maxReplicaCount"] + 1
    # keda.sh scaledobjects.yaml (KEDA v2.20.2), spec x-kubernetes-validations
    assert messages(obj) == {"minReplicaCount must be less than or equal to maxReplicaCount"}


def test_keda_rule_uses_its_default_max_of_100_when_max_is_absent():
    obj = first("ScaledObject")
    del obj["spec"]["maxReplicaCount"]
    obj["spec"]["minReplicaCount"] = 100  # rule: min <= (has(max) ? max : 100)
    assert findings(obj) == []
    obj["spec"]["minReplicaCount"] = 101
    assert messages(obj) == {"minReplicaCount must be less than or equal to maxReplicaCount"}


def test_karpenter_requirement_rules_are_reported():
    obj = first("NodePool")
    assert findings(obj) == []
    requirements = obj["spec"]["template"]["spec"]["requirements"]
    requirements.append({"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "In", "values": []})
    requirements.append({"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gt", "values": ["1", "2"]})
    requirements.append({"key": "karpenter.sh/made-up", "operator": "Exists"})
    # karpenter.sh nodepools.yaml v1: spec.template.spec.requirements and its items' key
    assert messages(obj) == {
        "requirements with operator 'In' must have a value defined",
        "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
        'label domain "karpenter.sh" is restricted',
    }


def test_karpenter_gt_with_a_non_integer_is_a_runtime_error_reported_as_a_violation():
    obj = first("NodePool")
    obj["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-gpu-memory", "operator": "Gt", "values": ["lots"]}
    )
    (finding,) = crd_cel.check(obj, schema_of(obj)).findings
    assert finding.problem.startswith("error:")  # int('lots') fails, as on the API server


def test_karpenter_restricted_template_label_is_reported():
    obj = first("NodePool")
    obj["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/hostname"] = "x"
    assert messages(obj) == {'label "kubernetes.io/hostname" is restricted'}


def test_ec2nodeclass_role_and_instance_profile_together_are_reported():
    obj = first("EC2NodeClass")
    assert findings(obj) == []
    obj["spec"]["role"], obj["spec"]["instanceProfile"] = "a-role", "a-profile"
    # karpenter.k8s.aws ec2nodeclasses.yaml v1, spec x-kubernetes-validations
    assert "must specify exactly one of ['role', 'instanceProfile']" in messages(obj)


def test_rayservice_managed_by_outside_the_allowed_values_is_reported():
    obj = first("RayService")
    assert findings(obj) == []
    obj["spec"]["managedBy"] = "ray.io/kuberay"  # a plausible typo
    # ray.io rayservices.yaml v1: spec.managedBy; the second rule there ("the managedBy field
    # is immutable", self == oldSelf) is a transition rule and is skipped on create
    report = crd_cel.check(obj, schema_of(obj))
    assert {f.message for f in report.findings} == {
        "the managedBy field value must be either 'ray.io/kuberay-operator' or 'kueue.x-k8s.io/multikueue'"
    }
    assert report.skipped_transition == 1
    obj["spec"]["managedBy"] = "ray.io/kuberay-operator"
    assert findings(obj) == []


# --- defaulting and field-name escaping, on Gateway API rules ------------------------------


def route(backend_ref: dict[str, Any], parent_refs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "llm"},
        "spec": {
            "parentRefs": parent_refs or [{"name": "gw", "namespace": "gateway"}],
            "rules": [{"backendRefs": [backend_ref]}],
        },
    }


def test_defaults_are_applied_before_the_rules():
    """backendRefs[].group defaults to "" and kind to "Service" (HTTPRoute v1 schema); the rule
    "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true" only
    sees a Service without a port because of those defaults."""
    assert messages(route({"name": "svc"})) == {"Must have port for Service reference"}
    assert findings(route({"name": "svc", "port": 8000})) == []


def test_property_names_that_are_cel_keywords_are_escaped():
    """parentRefs[].namespace is ``__namespace__`` in the rules (escaping.go)."""
    same = [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "a"}]
    other = [{"name": "gw", "namespace": "a"}, {"name": "gw", "namespace": "b"}]
    assert "sectionName must be unique when parentRefs includes 2 or more references to the same parent" in messages(
        route({"name": "svc", "port": 8000}, same)
    )
    assert findings(route({"name": "svc", "port": 8000}, other)) == []


def test_structural_defaulting_recurses_into_defaults_and_lists():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "default": {}, "properties": {"b": {"type": "integer", "default": 3}}},
            "l": {
                "type": "array",
                "items": {"type": "object", "properties": {"c": {"type": "string", "default": "x"}}},
            },
            "n": {"type": "string", "default": "d"},
            "m": {"type": "string", "nullable": True, "default": "d"},
        },
    }
    out = crd_cel.apply_defaults({"l": [{}, {"c": "y"}], "n": None, "m": None}, schema)
    assert out == {"a": {"b": 3}, "l": [{"c": "x"}, {"c": "y"}], "n": "d", "m": None}


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("namespace", "__namespace__"),
        ("x-y", "x__dash__y"),
        ("a.b/c", "a__dot__b__slash__c"),
        ("a__b", "a__underscores__b"),
        ("1a", None),
        ("a b", None),
    ],
)
def test_escaping_matches_the_api_server(name, escaped):
    assert crd_cel.escape(name) == escaped  # apiserver/pkg/cel/escaping.go Escape()


# --- the Kubernetes functions celpy lacks, and rules it cannot evaluate ----------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("'al2023@latest'.find('^[^@]+')", "al2023"),  # regex library: first match
        ("'abc'.find('[0-9]+')", ""),  # no match -> ''
        ("'a1b22c333'.findAll('[0-9]+')", ["1", "22", "333"]),
        ("'a1b22c333'.findAll('[0-9]+', 2)", ["1", "22"]),
        ("'a@b@c'.split('@')", ["a", "b", "c"]),  # ext/strings: strings.Split
        ("'a@b@c'.split('@', 2)", ["a", "b@c"]),  # strings.SplitN
        ("'a@b'.split('@', 0)", []),
        ("['a', 'b'].join('-')", "a-b"),
        ("'AbC'.lowerAscii()", "abc"),
    ],
)
def test_kubernetes_functions(expr, expected):
    compiled = crd_cel.compile_rule(expr)
    assert compiled.unsupported == ""
    assert compiled.program.evaluate({}) == expected


def test_a_rule_the_checker_cannot_evaluate_is_reported_not_passed():
    schema = {
        "type": "object",
        "properties": {
            "size": {
                "type": "string",
                "x-kubernetes-validations": [
                    {"rule": "quantity(self).isGreaterThan(quantity('1Gi'))", "message": "too small"}
                ],
            }
        },
    }
    (finding,) = crd_cel.check({"size": "2Gi"}, schema).findings
    assert finding.problem == "cannot evaluate: calls isGreaterThan, quantity, which this checker lacks"
