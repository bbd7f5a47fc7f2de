"""What every cross-field check gets: the stack it reads (never changed) and a list of its own to report into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import Issue, did_you_mean
from ..stack import StackConfig


@dataclass(frozen=True)
class Stack:
    """The parsed config with the credentials and provider settings beside it: read-only input of the checks."""

    config: StackConfig
    secrets: frozenset[str]
    providers: Mapping[str, str] = field(default_factory=dict)
    api_key_clients: tuple[str, ...] | None = None
    """Client names of the ``apiKeys`` secret (never its values); None: not known here."""
    partial: bool = False
    """Some list entries failed to parse and were left out: references to them are not errors."""

    def has_credential(self, key: str) -> bool:
        """A credential is available from Pulumi (set as a secret) or from the secret manager."""
        return key in self.secrets or self.config.credentials.source(key).source == "secretManager"


class Issues(list[Issue]):
    """The issues one check found (path + message); each check makes its own and returns it."""

    def add(self, path: str, message: str) -> None:
        self.append(Issue(path, message))


def missing_pool(stack: Stack, path: str, name: str) -> Issues:
    """A reference to a pool without facts: a pool that is configured but failed its own
    checks was reported there already (no follow-on error); any other name is unknown."""
    out = Issues()
    configured = [p.name for p in stack.config.cluster.node_pools]
    if name not in configured:
        out.add(
            path,
            f"no node pool '{name}'{did_you_mean(name, configured)} (pools: {', '.join(sorted(configured)) or 'none'})",
        )
    return out
