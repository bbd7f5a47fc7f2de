"""A canary of a vLLM model: another revision, image or flag set served next to the stable one."""

from __future__ import annotations

from pydantic import Field

from .base import ConfigModel


class CanaryConfig(ConfigModel):
    """`models[].canary`: a second Deployment `<name>-canary` with its own InferencePool, taking `weight` percent."""

    weight: int = Field(ge=1, le=50)
    """Percent of the model's requests routed to the canary (the stable pool gets the rest)."""
    revision: str | None = None
    """Hugging Face revision the canary serves (default: the stable one's)."""
    image: str | None = None
    """vLLM image the canary runs (default: the stable one's); pinned like every image."""
    extra_args: list[str] = Field(default_factory=list)
    """vLLM flags added to the stable one's (validated like `extraArgs`)."""
