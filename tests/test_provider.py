"""The component provider (provider/): the package schema the SDK's analyzer infers, and the
hosted VllmModel rendering the same objects as the Python components for the same spec.

The schema is built in-process by ``ComponentProvider`` (what ``component_provider_host``
serves to ``pulumi package add``) and validated against Pulumi's package metaschema
(../shared/upstream/pulumi/package-metaschema.json, pulumi v3.259.0 pkg/codegen/schema/pulumi.json).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import typing
from functools import cache
from typing import Any

import jsonschema
import pulumi
import pytest
import yaml
from conftest import ROOT, objects
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.runtime import settings
from pulumi.runtime.stack import run_in_stack
from upstream import upstream_path

from llm_infra.components.addons.handles import AddonsHandle
from llm_infra.components.hosted import HOSTED, GpuArgs, TaintArgs, VllmModel, VllmModelArgs
from llm_infra.components.render import Recording
from llm_infra.components.render.mocks import RecordingMonitor, RenderMocks
from llm_infra.components.serving.context import ServingContext
from llm_infra.components.serving.namespace import ServingNamespace, ServingNamespaceArgs
from llm_infra.components.serving.vllm import VllmService, VllmServiceArgs
from llm_infra.config import ConfigError
from llm_infra.config.cluster import GpuFacts, NodePoolConfig, Taint
from llm_infra.config.model_planning import plan_model
from llm_infra.config.serving import AutoscalingConfig, CacheConfig, VllmModelConfig

PROVIDER_DIR = ROOT / "provider"
YAML_EXAMPLE = ROOT / "examples" / "yaml-vllm" / "Pulumi.yaml"


def provider_main():
    """provider/__main__.py as a module (its host call only runs as __main__)."""
    spec = importlib.util.spec_from_file_location("llm_infra_provider_main", PROVIDER_DIR / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def package_schema() -> dict[str, Any]:
    main = provider_main()
    provider = ComponentProvider(main.HOSTED, main.PACKAGE, version="0.1.0")
    assert provider.schema is not None
    return json.loads(provider.schema)


def token(component: type) -> str:
    return f"llm-infra:index:{component.__name__}"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# -- the plugin ----------------------------------------------------------------------------------


def test_plugin_manifest_runs_the_provider_in_python():
    manifest = yaml.safe_load((PROVIDER_DIR / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    main = provider_main()
    assert main.PACKAGE == "llm-infra"
    assert main.HOSTED is HOSTED and VllmModel in HOSTED
    source = (PROVIDER_DIR / "__main__.py").read_text()
    assert "component_provider_host(name=PACKAGE, components=HOSTED" in source
    # the plugin's virtualenv installs this repository (the folder above provider/)
    requirements = [
        line for line in (PROVIDER_DIR / "requirements.txt").read_text().splitlines() if line[:1] not in "#"
    ]
    assert requirements == [".."]


# -- the inferred schema -------------------------------------------------------------------------


def metaschema() -> dict[str, Any]:
    """The metaschema, with its ECMA-262 named groups ``(?<name>...)`` spelled as Python's
    ``re`` wants them (``(?P<name>...)``): the same patterns, in the dialect jsonschema uses."""
    text = upstream_path("pulumi", "package-metaschema.json").read_text()
    return json.loads(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", text))


def test_schema_validates_against_the_pulumi_package_metaschema():
    metaschema_ = metaschema()
    schema = package_schema()
    validator = jsonschema.Draft202012Validator(metaschema_)
    errors = sorted(validator.iter_errors(schema), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:10]]
    # the metaschema's own rules bite: a resource token that is not pkg:module:Name fails
    broken = json.loads(json.dumps(schema))
    broken["resources"]["not-a-token"] = broken["resources"].pop(token(VllmModel))
    assert list(validator.iter_errors(broken))


def test_every_component_type_and_property_has_a_description():
    schema = package_schema()
    missing = []
    for kind, section in (("resource", "resources"), ("type", "types")):
        for name, definition in schema.get(section, {}).items():
            if not (definition.get("description") or "").strip():
                missing.append(f"{kind} {name}")
            for group in ("inputProperties", "properties"):
                for prop, body in definition.get(group, {}).items():
                    if not (body.get("description") or "").strip():
                        missing.append(f"{name}.{group}.{prop}")
    assert not missing, missing
    assert set(schema["resources"]) == {token(c) for c in HOSTED}


def _schema_type(annotation: Any) -> tuple[str, bool]:
    """(schema type, plain) expected for an args annotation, derived from the annotation."""
    plain = True
    if typing.get_origin(annotation) is typing.NotRequired:
        (annotation,) = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union:  # pulumi.Input[T] = Union[T, Awaitable, Output]
        annotation = typing.get_args(annotation)[0]
        plain = False
    origin = typing.get_origin(annotation) or annotation
    names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
    if typing.is_typeddict(annotation):
        return f"#/types/llm-infra:index:{annotation.__name__}", plain
    return names[origin], plain


@pytest.mark.parametrize("args_type", [VllmModelArgs, GpuArgs, TaintArgs], ids=lambda t: t.__name__)
def test_every_args_field_is_in_the_schema_with_its_type(args_type):
    schema = package_schema()
    if args_type is VllmModelArgs:
        definition = schema["resources"][token(VllmModel)]
        props = definition["inputProperties"]
        required = set(definition.get("requiredInputs", []))
    else:
        definition = schema["types"][f"llm-infra:index:{args_type.__name__}"]
        props = definition["properties"]
        required = set(definition.get("required", []))
    hints = {k: v for k, v in inspect.get_annotations(args_type).items()}  # hosted.py: real objects, no strings
    assert set(props) == {camel(f) for f in hints}
    for field, annotation in hints.items():
        expected, plain = _schema_type(annotation)
        prop = props[camel(field)]
        assert prop.get("$ref", prop.get("type")) == expected, (field, prop)
        assert bool(prop.get("plain")) == plain, (field, prop)
    assert required == {camel(f) for f in args_type.__required_keys__}
    if args_type is VllmModelArgs:
        # credentials and the kubeconfig may come from other resources (secrets): never plain
        assert {"hfToken", "hfTokenSecretName", "kubeconfig"} <= {
            p for p, body in props.items() if not body.get("plain")
        }
        assert props["nodeSelector"]["additionalProperties"]["type"] == "string"
        assert required == {"name", "model", "namespace", "nodeSelector"}


def test_outputs_are_typed_and_required():
    definition = package_schema()["resources"][token(VllmModel)]
    types = {name: body["type"] for name, body in definition["properties"].items()}
    assert types == {
        "endpoint": "string",
        "serviceName": "string",
        "namespace": "string",
        "servedModelName": "string",
        "workloadKind": "string",
        "tensorParallelSize": "integer",
        "maxModelLen": "integer",
        "kvCacheTokens": "integer",
    }
    assert set(definition["required"]) == set(types)


# -- the hosted component under mocks -------------------------------------------------------------

ARGS: dict[str, Any] = {
    "name": "qwen25-7b",
    "model": "Qwen/Qwen2.5-7B-Instruct",
    "namespace": "llm-hosted",
    "max_model_len": 16384,
    "min_replicas": 1,
    "max_replicas": 4,
    "queue_depth_target": 5,
    "gpu": {"model": "NVIDIA L4", "count": 4, "memory_gib": 24, "product_label": "NVIDIA-L4", "hourly_usd": 3.4},
    "node_selector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
    "taint": {"key": "nvidia.com/gpu", "value": "true"},
    "min_nodes": 1,
    "max_nodes": 2,
    "cache_access_mode": "ReadWriteMany",
    "rwx_storage_class": "nfs-client",
    "autoscaler": "keda",
    "prometheus_url": "http://prometheus-operated.monitoring.svc:9090",
    "prometheus_namespace": "monitoring",
    "monitor_labels": {"release": "prometheus"},
}
"""Plain-dict args, as the provider hands them to the component (Python names)."""


def run(program) -> tuple[Recording, dict[str, Any]]:
    mocks = RenderMocks()
    monitor = RecordingMonitor(mocks)
    seen: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_mocks(mocks, project="llm-infra", stack="provider", preview=False, monitor=monitor)
        settings.ROOT.set(None)
        loop.run_until_complete(run_in_stack(lambda: program(seen)))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return Recording("llm-infra", "provider", monitor.records), seen


def capture(seen: dict[str, Any], component: Any, names: list[str]) -> None:
    for name in names:
        getattr(component, name).apply(lambda value, name=name: seen.__setitem__(name, value))


@cache
def hosted() -> tuple[Recording, dict[str, Any]]:
    def program(seen):
        model = VllmModel("qwen", typing.cast(VllmModelArgs, dict(ARGS)))
        capture(seen, model, ["endpoint", "service_name", "namespace", "tensor_parallel_size", "workload_kind"])

    return run(program)


def python_components() -> Recording:
    """The same model through the Python components, built from typed objects."""
    spec = VllmModelConfig(
        name="qwen25-7b",
        model="Qwen/Qwen2.5-7B-Instruct",
        node_pool="gpu",
        max_model_len=16384,
        autoscaling=AutoscalingConfig(min_replicas=1, max_replicas=4, queue_depth_target=5),
        cache=CacheConfig(access_mode="ReadWriteMany"),
    )
    pool = NodePoolConfig(
        name="gpu",
        gpu=GpuFacts(model="NVIDIA L4", count=4, memory_gib=24, product_label="NVIDIA-L4", hourly_usd=3.4),
        node_selector={"nvidia.com/gpu.product": "NVIDIA-L4"},
        taint=Taint(key="nvidia.com/gpu", value="true"),
        min_nodes=1,
        max_nodes=2,
    )
    plan = plan_model(spec, pool, rwx_storage_class="nfs-client")

    def program(seen):
        ns = ServingNamespace(
            "serving", ServingNamespaceArgs(namespace="llm-hosted", monitoring_namespaces=["monitoring"])
        )
        addons = AddonsHandle.existing(
            autoscaler="keda",
            prometheus_url="http://prometheus-operated.monitoring.svc:9090",
            monitor_labels={"release": "prometheus"},
            prometheus_namespace="monitoring",
        )
        context = ServingContext.create(ns, addons, rwx_storage_class="nfs-client")
        VllmService(spec.name, VllmServiceArgs(model=spec, plan=plan, context=context))

    return run(program)[0]


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def test_hosted_component_renders_the_same_objects_as_the_python_components():
    ours = sorted(objects(hosted()[0]), key=_key)
    theirs = sorted(objects(python_components()), key=_key)
    assert [_key(o) for o in ours] == [_key(o) for o in theirs]
    assert ours == theirs
    kinds = {o["kind"] for o in ours}
    assert {"Namespace", "Deployment", "Service", "ScaledObject", "ServiceMonitor", "PrometheusRule"} <= kinds


def test_hosted_component_outputs_name_the_service():
    rec, seen = hosted()
    name, ns = ARGS["name"], ARGS["namespace"]
    # the in-cluster DNS name of a Service: <service>.<namespace>.svc.cluster.local
    assert seen["endpoint"] == f"http://{name}.{ns}.svc.cluster.local:8000/v1"
    assert (seen["service_name"], seen["namespace"]) == (name, ns)
    [service] = [o for o in objects(rec, "Service", ns) if o["metadata"]["name"] == seen["service_name"]]
    assert service["spec"]["ports"][0]["port"] == 8000
    # Qwen2.5-7B bf16 (~15 GiB) and a 16k sequence fit one 24 GiB L4
    assert seen["tensor_parallel_size"] == 1
    assert seen["workload_kind"] == "Deployment"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"max_model_len": 1_000_000}, "maxModelLen: 1000000 exceeds the model's context of 32768 tokens"),
        ({"gpu": {"model": "X", "count": 1, "memory_gib": 8, "product_label": "X"}}, "model: does not fit"),
        ({"gpu": {**ARGS["gpu"], "memory_gib": "lots"}}, "gpu.memoryGib:"),
        ({"min_replicas": 5, "max_replicas": 2}, "minReplicas: minReplicas (5) is greater than maxReplicas (2)"),
        ({"instance_type": "g5.12xlarge"}, "instanceType: give gpu or instanceType, not both"),
        ({"autoscaler": "cpu"}, "autoscaler: 'cpu' is not one of keda, hpa, none"),
    ],
    ids=["too-long", "does-not-fit", "bad-gpu-facts", "replicas", "gpu-and-instance-type", "autoscaler"],
)
def test_hosted_component_errors_name_its_own_properties(change, expected):
    def program(seen):
        VllmModel("qwen", typing.cast(VllmModelArgs, {**ARGS, **change}))

    with pytest.raises(ConfigError) as err:
        run(program)
    message = str(err.value)
    assert f"VllmModel qwen25-7b: {expected}" in message, message
    assert "spec." not in message and "pool." not in message and "models[0]" not in message


def test_hosted_component_takes_a_catalogued_instance_type():
    def program(seen):
        args = {k: v for k, v in ARGS.items() if k != "gpu"}
        model = VllmModel("qwen", typing.cast(VllmModelArgs, {**args, "instance_type": "g6.12xlarge"}))
        capture(seen, model, ["tensor_parallel_size"])

    rec, seen = run(program)
    assert seen["tensor_parallel_size"] == 1
    [deployment] = objects(rec, "Deployment", ARGS["namespace"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


# -- the YAML example ----------------------------------------------------------------------------


def test_yaml_example_uses_only_properties_of_the_schema():
    program = yaml.safe_load(YAML_EXAMPLE.read_text())
    assert program["runtime"] == "yaml"
    assert (YAML_EXAMPLE.parent / program["packages"]["llm-infra"]).resolve() == PROVIDER_DIR
    schema = package_schema()
    used = [r for r in program["resources"].values() if r["type"].startswith("llm-infra:")]
    assert used
    for resource in used:
        definition = schema["resources"][resource["type"]]
        props = resource["properties"]
        assert set(props) <= set(definition["inputProperties"]), set(props) - set(definition["inputProperties"])
        assert set(definition.get("requiredInputs", [])) <= set(props)
        for name, value in props.items():
            ref = definition["inputProperties"][name].get("$ref")
            if ref:
                nested = schema["types"][ref.removeprefix("#/types/")]
                assert set(value) <= set(nested["properties"]), (name, set(value) - set(nested["properties"]))
                assert set(nested.get("required", [])) <= set(value)
    outputs = schema["resources"][used[0]["type"]]["properties"]
    for expression in program["outputs"].values():
        assert expression.startswith("${qwen.") and expression[len("${qwen.") : -1] in outputs, expression


def test_yaml_example_sets_the_same_model_as_the_mocked_args():
    """The YAML program is the ARGS above in schema spelling (so the mocked render stands for it)."""
    program = yaml.safe_load(YAML_EXAMPLE.read_text())
    props = {k: v for k, v in program["resources"]["qwen"]["properties"].items() if k != "kubeconfig"}

    def schema_spelling(value):
        if isinstance(value, dict) and value is not ARGS["node_selector"] and value is not ARGS["monitor_labels"]:
            return {camel(k): v for k, v in value.items()}
        return value

    expected = {camel(k): schema_spelling(v) for k, v in ARGS.items() if k != "namespace"}
    assert {k: v for k, v in props.items() if k != "namespace"} == expected


def test_hf_token_secret_name_may_come_from_another_resource():
    """A Secret the program manages itself: its name, an output, reaches the pods' volume."""

    def program(seen):
        import pulumi_kubernetes as k8s

        token = k8s.core.v1.Secret(
            "token", metadata={"name": "my-hf-token", "namespace": ARGS["namespace"]}, string_data={"token": "x"}
        )
        args = {**ARGS, "create_namespace": False, "hf_token_secret_name": token.metadata.apply(lambda m: m.name)}
        VllmModel("qwen", typing.cast(VllmModelArgs, args))

    rec, _ = run(program)
    [deployment] = objects(rec, "Deployment", ARGS["namespace"])
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"key": "token", "path": "token"} in next(v for v in volumes if "secret" in v)["secret"]["items"]
    assert [v["secret"]["secretName"] for v in volumes if "secret" in v] == ["my-hf-token"]
    # no namespace created here (it exists): only the model's objects and the Secret
    assert not objects(rec, "Namespace")
