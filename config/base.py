"""Base model for every stack-config section.

Stack files use Pulumi's camelCase convention; Python code uses snake_case. Unknown
keys are rejected (``extra="forbid"``) so a typo in ``Pulumi.<stack>.yaml`` is an error,
never a silently ignored field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")
"""Names that become Kubernetes object names and label values (RFC 1035 label, kept
short so derived names such as ``<name>-model-cache`` stay under 63 characters)."""


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(f"'{value}' is not a lowercase DNS label of at most 40 characters")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
"""A config value that becomes a Kubernetes object name or label value."""


class ConfigModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )
