"""``coldStart``: the stack's settings for cold starts (the estimate itself is config/cold_start.py).

Apart from the estimate so that the stack config does not depend on the plan (config.stack must
not reach config.plan, which holds the StackConfig it plans).
"""

from __future__ import annotations

from pydantic import Field

from .base import ConfigModel


class ColdStartConfig(ConfigModel):
    """What shortens cold starts beyond the model store, and how much margin the probes keep."""

    prepull_images: bool = Field(
        default=True, description="a DaemonSet on every GPU pool pulls the serving images as nodes join"
    )
    compile_cache: bool = Field(
        default=True,
        description="vLLM's torch.compile/Triton caches on the model cache volume (keyed by model, revision and "
        "vLLM version): restarts and replicas sharing the volume skip recompilation",
    )
    startup_margin: float = Field(
        default=2.0, ge=1.2, le=5, description="startup probe window = estimated engine start x this margin"
    )
