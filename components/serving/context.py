"""Everything a serving component needs from the platform besides its own model config."""

from __future__ import annotations

from dataclasses import dataclass

from llm_infra.components.addons.handles import AddonsHandle
from llm_infra.config.security import SecurityConfig
from llm_infra.config.stack import AlertThresholds


@dataclass(frozen=True)
class ServingContext:
    namespace: str
    addons: AddonsHandle
    alerts: AlertThresholds
    security: SecurityConfig
    hf_token_secret: str | None
    """Name of the Kubernetes Secret (key ``token``) with the Hugging Face token, if any."""
    storage_class: str | None
    rwx_storage_class: str | None
    cloud: str = "existing"
    """``cluster.cloud``: on GKE a model's httpRoute goes through a GKE Gateway (gke_gateway.py)."""
    protect: bool = False
    """``cluster.protect``: model caches outlive ``pulumi destroy``, renames and replacements."""
    api_key_secret: str | None = None
    """Secret (client -> key) whose keys vLLM itself requires (``--api-key``) when the gateway
    cannot check them (GKE); None when the gateway checks them or there is no gateway."""
    api_key_clients: tuple[str, ...] = ()
    gateway_wake_up: bool = False
    """Models sit behind ``edge.gateway``: a scaled-to-zero model wakes on its endpoint picker's requests."""
