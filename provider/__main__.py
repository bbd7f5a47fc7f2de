"""The llm-infra component provider: VllmModel for TypeScript, Go, C#, Java and YAML programs.

``pulumi package add <this folder>`` (or the repository's ``.git/provider`` path) runs this
file; Pulumi's Python component provider infers the package schema from the components'
annotations and constructs them when a program in any language declares one.
"""

from pulumi.provider.experimental import component_provider_host

from llm_infra.components import __version__
from llm_infra.components.hosted import HOSTED

PACKAGE = "llm-infra"
"""The package name: resource types are ``llm-infra:index:<Component>``."""

if __name__ == "__main__":
    # a source checkout that is not installed reports 0+unknown, which is no semver
    component_provider_host(name=PACKAGE, components=HOSTED, version="0.0.0" if "+" in __version__ else __version__)
