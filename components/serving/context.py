"""Everything a serving component needs from the platform besides its own model config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    model_store: Any = None
    """The stack's ``ModelStore`` (components/serving/model_store.py) when ``modelStore.enabled``:
    models stream from it instead of downloading into their cache."""
    compile_cache: bool = False
    """``coldStart.compileCache``: vLLM's compile caches on the model cache volume."""
