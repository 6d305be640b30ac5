"""Output formats, and the one JSON and YAML writer for data every command prints.

istioctl writes YAML through sigs.k8s.io/yaml (keys sorted, sequences not indented under their
key), as kubectl does. Every YAML meshctl prints (translate,
bootstrap, proxy-config, proxy-status) goes through `to_yaml`, so the outputs read alike and
diff cleanly against istioctl's. JSON data is printed with istioctl's 4-space indent.

Importing this module is cheap (the CLI needs `OutputFormat` for its flags); PyYAML is
imported on first use.
"""

from __future__ import annotations

import enum
import functools
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

__all__ = ["DocumentFormat", "OutputFormat", "structured_text", "to_json", "to_yaml"]


class OutputFormat(enum.StrEnum):
    """istioctl's `-o`: `short` for the human table, `json` and `yaml` for programs."""

    short = "short"
    json = "json"
    yaml = "yaml"


class DocumentFormat(enum.StrEnum):
    """`-o` of commands that write a document (a bootstrap, manifests), not a table."""

    yaml = "yaml"
    json = "json"


def to_yaml(data: Any) -> str:
    """JSON-ready data as YAML, like sigs.k8s.io/yaml writes it; multi-line strings become
    literal blocks, so PEM certificates and Lua code stay readable."""
    import yaml

    text: str = yaml.dump(data, Dumper=_dumper(), sort_keys=True, allow_unicode=True, default_flow_style=False)
    return text


def to_json(data: Any) -> str:
    """JSON-ready data with istioctl's 4-space indent, non-ASCII text left as is."""
    return json.dumps(data, indent=4, ensure_ascii=False)


def structured_text(data: Any, *, as_yaml: bool) -> str:
    """JSON-ready data as `-o yaml` or `-o json` prints it."""
    return to_yaml(data) if as_yaml else to_json(data)


@functools.cache
def _dumper() -> type[yaml.SafeDumper]:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, represent_string)
    return Dumper
