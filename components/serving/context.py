"""Everything a serving component needs from the platform besides its own model config.

Built by ``ServingContext.create`` from the components that provide it (serving namespace,
cluster handle, add-ons handle): the one place this wiring exists, used by ``LlmPlatform``
and by programs that compose the components themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from llm_infra.components.addons.handles import AddonsHandle
from llm_infra.config.security import SecurityConfig
from llm_infra.config.stack import AlertThresholds

if TYPE_CHECKING:
    from llm_infra.components.cluster.base import ClusterHandle

    from .namespace import ServingNamespace


@dataclass(frozen=True)
class ServingContext:
    namespace: str
    """Namespace the serving objects go to (a plain string: it is part of alert rules, PromQL
    queries and dashboards, which are text)."""
    addons: AddonsHandle
    """Prometheus, autoscaler and CRD owners (``ClusterAddons.handle`` or ``AddonsHandle.existing``)."""
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    """Thresholds of the models' alert rules."""
    security: SecurityConfig = field(default_factory=SecurityConfig)
    """Pod hardening and NetworkPolicies (the serving namespace's settings)."""
    hf_token_secret: pulumi.Input[str] | None = None
    """Name of the Kubernetes Secret (key ``token``) with the Hugging Face token, if any; may be
    another resource's output (e.g. ``ServingNamespace.hf_token_secret_name``, or a Secret you
    manage: ``secret.metadata.name``)."""
    storage_class: str | None = None
    """StorageClass of ReadWriteOnce model caches (None: the cluster default)."""
    rwx_storage_class: str | None = None
    """ReadWriteMany StorageClass for shared model caches, if the cluster has one."""
    cloud: str = "existing"
    """``cluster.cloud``: on GKE a model's httpRoute goes through a GKE Gateway (gke_gateway.py)."""
    protect: bool = False
    """``cluster.protect``: model caches outlive ``pulumi destroy``, renames and replacements."""
    model_store: Any = None
    """The stack's ``ModelStore`` (components/serving/model_store.py) when ``modelStore.enabled``:
    models stream from it instead of downloading into their cache."""
    compile_cache: bool = False
    """``coldStart.compileCache``: vLLM's compile caches on the model cache volume."""

    api_key_secret: str | None = None
    """Secret (client -> key) whose keys vLLM itself requires (``--api-key``) when the gateway
    cannot check them (GKE); None when the gateway checks them or there is no gateway."""
    api_key_clients: tuple[str, ...] = ()
    gateway_wake_up: bool = False
    """Models sit behind ``edge.gateway``: a scaled-to-zero model wakes on its endpoint picker's requests."""

    @classmethod
    def create(
        cls,
        namespace: ServingNamespace,
        addons: AddonsHandle,
        *,
        cluster: ClusterHandle | None = None,
        alerts: AlertThresholds | None = None,
        cloud: str = "existing",
        storage_class: str | None = None,
        rwx_storage_class: str | None = None,
        model_store: Any = None,
        compile_cache: bool = False,
        api_key_secret: str | None = None,
        api_key_clients: tuple[str, ...] = (),
        gateway_wake_up: bool = False,
    ) -> ServingContext:
        """The context of models in ``namespace``: its name, security settings, token Secret and
        protection; StorageClasses from ``cluster`` (or given, without a cluster component)."""
        return cls(
            namespace=namespace.args.namespace,
            addons=addons,
            alerts=alerts or AlertThresholds(),
            security=namespace.args.security,
            hf_token_secret=namespace.hf_token_secret,
            storage_class=cluster.storage_class if cluster is not None else storage_class,
            rwx_storage_class=cluster.rwx_storage_class if cluster is not None else rwx_storage_class,
            cloud=cloud,
            protect=namespace.args.protect,
            model_store=model_store,
            compile_cache=compile_cache,
            api_key_secret=api_key_secret,
            api_key_clients=api_key_clients,
            gateway_wake_up=gateway_wake_up,
        )
