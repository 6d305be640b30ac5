"""`proxy-status POD`: istioctl's diff of a control plane's config for a proxy against its Envoy.

Both dumps are normalised the same way first (`istioctl/pkg/util/configdump`), so that what is
left is a difference in configuration, not in bookkeeping:

- clusters: dynamic active clusters only, sorted by name, `version_info` and `last_updated`
  cleared;
- listeners: dynamic listeners that have an active state, without their draining state, sorted
  by name, the active state's `version_info` and `last_updated` and the listener entry's own
  `name` cleared;
- routes: dynamic route configurations sorted by name, the virtual hosts of each sorted by
  name, `version_info` and `last_updated` cleared.

Static resources, secrets, endpoints and ECDS are not compared. Each side is then rendered as
protobuf JSON with a three-space indent, as istioctl's jsonpb marshaller does, and compared with
a unified diff of seven lines of context, the control plane being the "from" side.

Rendering a thousand clusters that way takes seconds, so each kind is first compared as plain
JSON data (`sections`); only a kind whose data differ is rendered and diffed. difflib's matcher
is quadratic on the many repeated lines of a big dump (minutes for a thousand clusters), so
past EXACT_DIFF_LINES lines the common head and tail of the two texts are matched directly and
difflib runs on the rest. That diff is as valid, but on such texts it may place a change that
fits in more than one place (a deleted line equal to its neighbour) elsewhere than istioctl.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meshctl.errors import MeshctlError
from meshctl.inspect.configdump import ConfigDump
from meshctl.status.envoyjson import Unconvertible
from meshctl.status.sections import CLUSTERS, KINDS, LISTENERS, ROUTES, SECTION_TYPES, EnvoyDump, Side

__all__ = [
    "CONTEXT_LINES",
    "EXACT_DIFF_LINES",
    "KindDiff",
    "compare",
    "comparison_text",
    "normalise",
    "render",
    "routes_loaded",
    "unified_diff",
]

CONTEXT_LINES = 7
EXACT_DIFF_LINES = 10_000
_INDENT = 3
_RFC1123 = "%a, %d %b %Y %H:%M:%S %Z"


@dataclass(frozen=True, slots=True)
class KindDiff:
    """One kind's comparison: the unified diff text, empty when both sides render the same."""

    kind: str
    diff: str

    @property
    def matches(self) -> bool:
        return not self.diff


def normalise(dump: ConfigDump, kind: str) -> Any:
    """The kind's admin section, reduced and ordered as istioctl compares it (module docstring).

    Raises MeshctlError when the dump has no such section.
    """
    return _NORMALISERS[kind](dump)


def render(section: Any, dump: ConfigDump) -> str:
    """A normalised section as jsonpb with istioctl's three-space indent."""
    from meshctl.inspect.protojson import message_object

    return json.dumps(message_object(section, dump.pool), indent=_INDENT, ensure_ascii=False)


def compare(control_plane: Side, envoy: Side) -> list[KindDiff]:
    """Clusters, listeners and routes of the two dumps, each as a unified diff.

    A side without the section is rendered as the error message, as istioctl does, so a missing
    section shows up as a difference instead of stopping the comparison.
    """
    diffs = []
    for kind in KINDS:
        if _same_data(control_plane, envoy, kind):
            diffs.append(KindDiff(kind, ""))
            continue
        expected = _text(_normalised(control_plane.parsed, kind), control_plane.parsed)
        actual = _text(_normalised(envoy.parsed, kind), envoy.parsed)
        diffs.append(KindDiff(kind, "" if expected == actual else unified_diff(expected, actual, kind)))
    return diffs


def unified_diff(expected: str, actual: str, kind: str) -> str:
    """go-difflib's unified diff as istioctl calls it (`Istiod X` against `Envoy X`)."""
    before, after = _split_lines(expected), _split_lines(actual)
    exact = max(len(before), len(after)) <= EXACT_DIFF_LINES
    matcher = (difflib.SequenceMatcher if exact else _HeadTailMatcher)(None, before, after)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(CONTEXT_LINES):
        if not out:
            out += [f"--- Istiod {kind}\n", f"+++ Envoy {kind}\n"]
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in before[i1:i2]]
                continue
            out += ["-" + line for line in before[i1:i2]]
            out += ["+" + line for line in after[j1:j2]]
    return "".join(out)


def routes_loaded(envoy: EnvoyDump) -> datetime | None:
    """When Envoy last took a dynamic route configuration (the newest `last_updated`), if known."""
    from google.protobuf.timestamp_pb2 import Timestamp

    try:
        routes = envoy.section(SECTION_TYPES[ROUTES])
    except MeshctlError:
        return None
    stamps = []
    for entry in routes.get("dynamic_route_configs", []):
        if "last_updated" in entry:
            stamp = Timestamp()
            stamp.FromJsonString(entry["last_updated"])
            stamps.append(stamp.ToDatetime(tzinfo=UTC))
    return max(stamps, default=None)


def comparison_text(diffs: Sequence[KindDiff], loaded: datetime | None) -> str:
    """istioctl's output: `X Match`, or `X Don't Match` followed by the diff and a blank line.

    The routes line tells when Envoy last loaded routes, in `loaded`'s time zone (istioctl uses
    the local one), in Go's RFC 1123 layout.
    """
    out = []
    for diff in diffs:
        suffix = f" (RDS last loaded at {loaded.strftime(_RFC1123)})" if diff.kind == ROUTES and loaded else ""
        out.append(f"{diff.kind} Don't Match{suffix}\n{diff.diff}\n" if diff.diff else f"{diff.kind} Match{suffix}\n")
    return "".join(out)


def _same_data(control_plane: Side, envoy: Side, kind: str) -> bool:
    try:
        return control_plane.entries(kind) == envoy.entries(kind)
    except (MeshctlError, Unconvertible):
        return False


def _normalised(dump: ConfigDump, kind: str) -> Any:
    try:
        return normalise(dump, kind)
    except MeshctlError as exc:
        return exc


def _text(section: Any, dump: ConfigDump) -> str:
    return str(section) if isinstance(section, MeshctlError) else render(section, dump)


def _split_lines(text: str) -> list[str]:
    """go-difflib's SplitLines: every line keeps its newline, and the last one gets one."""
    return [line + "\n" for line in text.split("\n")]


def _range(start: int, stop: int) -> str:
    """A hunk's `start,length` in the unified format (1-based; `start` alone for one line)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


class _HeadTailMatcher(difflib.SequenceMatcher[str]):
    """difflib's matcher, run only between the longest common head and tail of the texts."""

    # difflib's own attributes, which its stubs leave out.
    a: Sequence[str]
    b: Sequence[str]
    matching_blocks: list[difflib.Match] | None

    def get_matching_blocks(self) -> list[difflib.Match]:
        if self.matching_blocks is not None:
            return self.matching_blocks
        a, b = self.a, self.b
        limit = min(len(a), len(b))
        head = 0
        while head < limit and a[head] == b[head]:
            head += 1
        tail = 0
        while tail < limit - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
            tail += 1
        inner = difflib.SequenceMatcher(None, a[head : len(a) - tail], b[head : len(b) - tail])
        blocks = [difflib.Match(0, 0, head)] if head else []
        blocks += [difflib.Match(i + head, j + head, size) for i, j, size in inner.get_matching_blocks() if size]
        if tail:
            blocks.append(difflib.Match(len(a) - tail, len(b) - tail, tail))
        merged: list[difflib.Match] = []
        for block in blocks:
            if merged and merged[-1].a + merged[-1].size == block.a and merged[-1].b + merged[-1].size == block.b:
                previous = merged.pop()
                block = difflib.Match(previous.a, previous.b, previous.size + block.size)
            merged.append(block)
        merged.append(difflib.Match(len(a), len(b), 0))
        self.matching_blocks = merged
        return merged


def _unpacked(value: Any, message_class: type) -> Any:
    message = message_class()
    message.ParseFromString(value.value)
    return message


def _clusters(dump: ConfigDump) -> Any:
    from envoy.admin.v3.config_dump_shared_pb2 import ClustersConfigDump
    from envoy.config.cluster.v3.cluster_pb2 import Cluster

    section = dump.section(SECTION_TYPES[CLUSTERS])
    out = ClustersConfigDump()
    for item in sorted(section.dynamic_active_clusters, key=lambda item: _unpacked(item.cluster, Cluster).name):
        entry = out.dynamic_active_clusters.add()
        entry.CopyFrom(item)
        entry.ClearField("version_info")
        entry.ClearField("last_updated")
    return out


def _listeners(dump: ConfigDump) -> Any:
    from envoy.admin.v3.config_dump_shared_pb2 import ListenersConfigDump
    from envoy.config.listener.v3.listener_pb2 import Listener

    section = dump.section(SECTION_TYPES[LISTENERS])
    active = [item for item in section.dynamic_listeners if item.HasField("active_state")]
    out = ListenersConfigDump()
    for item in sorted(active, key=lambda item: _unpacked(item.active_state.listener, Listener).name):
        entry = out.dynamic_listeners.add()
        entry.CopyFrom(item)
        entry.ClearField("draining_state")
        entry.ClearField("name")
        entry.active_state.ClearField("version_info")
        entry.active_state.ClearField("last_updated")
    return out


def _routes(dump: ConfigDump) -> Any:
    from envoy.admin.v3.config_dump_shared_pb2 import RoutesConfigDump
    from envoy.config.route.v3.route_pb2 import RouteConfiguration

    section = dump.section(SECTION_TYPES[ROUTES])
    configs = [(item, _unpacked(item.route_config, RouteConfiguration)) for item in section.dynamic_route_configs]
    out = RoutesConfigDump()
    for item, config in sorted(configs, key=lambda pair: pair[1].name):
        hosts = sorted(config.virtual_hosts, key=lambda host: host.name)
        config.ClearField("virtual_hosts")
        config.virtual_hosts.extend(hosts)
        entry = out.dynamic_route_configs.add()
        entry.CopyFrom(item)
        entry.route_config.Pack(config)
        entry.ClearField("version_info")
        entry.ClearField("last_updated")
    return out


_NORMALISERS: dict[str, Callable[[ConfigDump], Any]] = {CLUSTERS: _clusters, LISTENERS: _listeners, ROUTES: _routes}
