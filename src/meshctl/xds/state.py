"""Per stream, per type: what the client subscribed to, what it was sent, what it acknowledged.

Tracking names and versions per resource (not one version per response) is what makes partial
EDS/RDS pushes, Delta, NACK handling and the "resend EDS after a cluster changed" rule possible,
and what lets a restarted server recognise that a reconnecting Envoy already holds everything.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


from meshctl.memokeys import Same
from meshctl.resources import BY_TYPE_URL, FULL_STATE, Packed, Placeholder
from meshctl.resources import protowire
from meshctl.xds.limits import MAX_NAMES, MAX_UNDEFINED_ANSWERED, RequestRefused

__all__ = ["MAX_SHARED", "NO_NAMES", "Shared", "WILDCARD", "Watch", "placeholder", "version_of"]

WILDCARD = "*"
MAX_SHARED = 50_000
"""Entries of Shared kept within one generation (a few per view and type in a normal mesh)."""


def placeholder(type_url: str, name: str) -> Placeholder | None:
    """What to send for a name the config does not define, for kinds that have one (see
    Kind.placeholder): an empty resource, so Envoy does not wait for a timeout. Encoded
    directly (a message holding only its name is that one field), as a client may name many."""
    tag = _name_tag(type_url)
    if tag is None:
        return None
    value = protowire.field(tag, name.encode())
    return Placeholder(name, hashlib.blake2b(value, digest_size=8).hexdigest(), type_url, value)


@functools.cache
def _name_tag(type_url: str) -> bytes | None:
    """The tag of the name field of a kind that has placeholders (None for the others)."""
    kind = BY_TYPE_URL.get(type_url)
    if kind is None or not kind.placeholder:
        return None
    return protowire.tags(kind.message_class(), kind.name_field)[0]


def _within(names: frozenset[str], mapping: Mapping[str, object]) -> list[str]:
    """The names that are keys of `mapping`, walking the smaller of the two (`names &
    mapping.keys()` walks `names`, which may hold 100,000 names a proxy has nothing for)."""
    if len(mapping) < len(names):
        return [name for name in mapping if name in names]
    return [name for name in names if name in mapping]


def version_of(resources: Mapping[str, Packed]) -> str:
    """A SotW type version derived from content, so it survives a server restart unchanged.
    (The hash of `name NUL version LF` per resource in name order, taken in one call.)"""
    text = "".join(f"{name}\0{resources[name].version}\n" for name in sorted(resources))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Shared:
    """What streams with the same view share within one configuration generation: the
    resources a subscription selects, their versions and the differences between two of them.
    Proxies with the same view are handed the very same mappings by the translator, so these
    are computed once for all of them, and every stream holds the same objects rather than
    copies: the per-proxy work of a change is a few lookups, and the memory a stream adds is
    its own state, not its resources. Entries keep their keys' objects alive (see Same), and
    are dropped with the generation, or all at once beyond MAX_SHARED entries: clients that
    keep asking for new subsets between two changes must not grow it without end."""

    def __init__(self) -> None:
        self._memo: dict[Hashable, Any] = {}

    def next_generation(self) -> None:
        self._memo = {}

    def _remember(self, key: Hashable, value: Any) -> Any:
        if len(self._memo) >= MAX_SHARED:
            self._memo = {}
        self._memo[key] = value
        return value

    def subset(self, available: Mapping[str, Packed], names: frozenset[str]) -> Mapping[str, Packed]:
        """The resources of `available` a subscription names (never copied again for an equal
        subscription: SotW subscriptions are interned, see limits.Names)."""
        key = ("subset", Same(available), names)
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, {name: available[name] for name in _within(names, available)})
        return found

    def versions(self, desired: Mapping[str, Packed]) -> dict[str, str]:
        """Name → version of a mapping of resources: what a stream was sent, shared, never
        modified (Watch copies it before its own changes)."""
        key = ("versions", Same(desired))
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, {name: item.version for name, item in desired.items()})
        return found

    def version_of(self, desired: Mapping[str, Packed]) -> str:
        key = ("version", Same(desired))
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, version_of(desired))
        return found

    def changes(self, sent: Mapping[str, str], desired: Mapping[str, Packed]) -> tuple[list[Packed], list[str]]:
        """What `Watch.changes` computes, once per pair of shared mappings."""
        key = ("changes", Same(sent), Same(desired))
        found = self._memo.get(key)
        if found is None:
            found = self._remember(key, _changes(sent, desired))
        return found


def _changes(sent: Mapping[str, str], desired: Mapping[str, Packed]) -> tuple[list[Packed], list[str]]:
    updated = [item for name, item in desired.items() if sent.get(name) != item.version]
    removed = [name for name in sent if name not in desired]
    return updated, removed


NO_NAMES: frozenset[str] = frozenset()
"""The one empty set of names every watch holds when it has none: each `frozenset()` is a new
216-byte object, and four watches a stream kept one each, a thousand streams 860 KB."""


@dataclass(slots=True, eq=False)
class Watch:
    """One type on one stream.

    `sent` maps each name to the version the client holds as far as the server knows; `requested`
    holds names asked for that must be answered even if unchanged; `resumed` marks a stream whose
    client said what it already holds (SotW `client_version`, Delta initial versions), so a
    restarted server can recognise it is in sync without pushing; `stale` marks a push that was
    held back while the last one was unacknowledged, so the ACK must be answered with it.

    `pushed` is what the unacknowledged push brought the client, `rejected` what the last NACK is
    pinned on and `origins` the input it came from; `placeholders` answer names the config does
    not define (see desired).

    Subscribed names are interned frozensets (limits.Names): every proxy asks for the same names,
    thousands of streams share one copy of each, and a subscription changes by set operations.
    `sent` is likewise shared with every stream sent the same resources (see Shared) while
    `sent_shared` says so: it is copied before this watch changes it. `basis` is the mapping of
    available resources this watch was last brought in line with: handed the very same mapping
    again, with nothing asked meanwhile, it has nothing to push and compares nothing.
    """

    type_url: str
    names: frozenset[str] = NO_NAMES
    wildcard: bool = False
    named: bool = False
    sent: dict[str, str] = field(default_factory=dict)
    requested: frozenset[str] = NO_NAMES
    answer_due: bool = False
    resumed: bool = False
    client_version: str = ""
    nonce_sent: str = ""
    nonce_acked: str = ""
    version_sent: str = ""
    version_acked: str = ""
    pending: bool = False
    error: str = ""
    last_updated: float = 0.0
    push_started: float = 0.0
    in_sync_by_version: bool = False
    stale: bool = False
    pushed: tuple[Packed, ...] = ()
    placeholders: dict[str, Placeholder] = field(default_factory=dict)
    rejected: tuple[Packed, ...] = ()
    origins: tuple[str, ...] = ()
    sent_shared: bool = False
    basis: Mapping[str, Packed] | None = None

    @property
    def resumable(self) -> bool:
        """Whether versions the client reports on a new stream may spare a resend: only for the
        full-state kinds (CDS, LDS), whose version stands for everything the client holds of them.
        For the others a version says what the client last accepted, not that every subscriber
        holds it: Envoy re-creates a changed cluster and keeps it warming until a new
        ClusterLoadAssignment arrives, even one equal to the assignment it holds; a listener
        re-added while its route configuration went unanswered warms until it is answered. A
        server that restarted cannot see either, so it answers those kinds in full."""
        return self.type_url in FULL_STATE

    def subscribed(self, name: str) -> bool:
        return self.wildcard or name in self.names

    def set_names(self, names: frozenset[str]) -> None:
        """A SotW request's complete subscription (checked and interned: limits.Names). An empty
        list means wildcard only for LDS/CDS and only while nothing was ever named (the legacy
        wildcard rule). Set operations only: a subscription may hold 100,000 names.

        An ACK repeats the subscription it was sent under, as the very same set (limits.check_names
        hands out one copy per content): once its wildcard state is settled, the same set changes
        nothing, and the watch stays in line with what it was last brought (`basis`)."""
        if names is self.names and (self.wildcard or self.named or self.type_url not in FULL_STATE):
            return
        self.basis = None
        if self.type_url in FULL_STATE:
            if not names and not self.named:
                if not self.wildcard:
                    self.answer_due = True
                self.wildcard = True
                return
            self.named = True
            wildcard = WILDCARD in names
            if wildcard and not self.wildcard:
                self.answer_due = True
            self.wildcard = wildcard
        if WILDCARD in names:
            names = names - {WILDCARD}
        if self.names:
            self._want(names - self.names)
            self.forget(self.names - names)
        else:
            self._want(names)
        self.names = names

    def subscribe(self, names: frozenset[str]) -> None:
        """Delta subscribe: every name is answered, even one the client seems to hold already."""
        self.basis = None
        if WILDCARD in names:
            names = names - {WILDCARD}
            if self.type_url in FULL_STATE:
                self.wildcard = True
                self.answer_due = True
        subscribed = self.names | names
        if len(subscribed) > MAX_NAMES:
            raise RequestRefused(f"a subscription may name at most {MAX_NAMES} resources of one type")
        self.names = subscribed
        self._want(names)

    def unsubscribe(self, names: frozenset[str]) -> None:
        self.basis = None
        if WILDCARD in names:
            names = names - {WILDCARD}
            self.wildcard = False
            self.forget(self.sent.keys() - self.names - names)
        self.names = self.names - names
        if not self.wildcard:
            self.forget(names)

    def _want(self, names: frozenset[str]) -> None:
        self._unsend(_within(names, self.sent))
        self.requested = self.requested | names if self.requested else names

    def forget(self, names: Iterable[str]) -> None:
        """The client drops these: they must be sent again if it asks again."""
        names = names if isinstance(names, frozenset) else frozenset(names)
        self._unsend(_within(names, self.sent))
        for name in _within(names, self.placeholders):
            del self.placeholders[name]
        if self.requested:
            self.requested -= names

    def _unsend(self, names: list[str]) -> None:
        """Take names out of `sent`, on a copy of our own when it is shared."""
        self.basis = None
        if not names:
            return
        self.own_sent()
        for name in names:
            del self.sent[name]

    def own_sent(self) -> dict[str, str]:
        """`sent`, made this watch's own before it is changed (see Shared.versions)."""
        if self.sent_shared:
            self.sent = dict(self.sent)
            self.sent_shared = False
        self.basis = None
        return self.sent

    def desired(self, available: Mapping[str, Packed], shared: Shared) -> Mapping[str, Packed]:
        """What this subscription should hold, given everything the proxy may have of this type:
        the mapping itself or one shared by equal subscriptions, unless names the config does
        not define are answered, with placeholders (kept with the watch), at most
        MAX_UNDEFINED_ANSWERED of them: see limits.py."""
        kind = BY_TYPE_URL.get(self.type_url)
        placeholders = kind is not None and kind.placeholder
        if self.wildcard:
            if not placeholders:
                return available
            wanted = dict(available)
        else:
            subset = shared.subset(available, self.names)
            if len(subset) == len(self.names) or not placeholders:
                return subset
            wanted = dict(subset)
        for name in [name for name in self.placeholders if name in available]:
            del self.placeholders[name]  # defined now
        wanted.update(self.placeholders)
        fresh = (name for name in self.names if name not in wanted)
        for name in itertools.islice(fresh, max(0, MAX_UNDEFINED_ANSWERED - len(self.placeholders))):
            item = placeholder(self.type_url, name)
            if item is not None:
                wanted[name] = self.placeholders[name] = item
        return wanted

    def changes(self, desired: Mapping[str, Packed], shared: Shared | None = None) -> tuple[list[Packed], list[str]]:
        """Resources the client lacks or holds in another version, and names it should drop."""
        if shared is not None and self.sent_shared:
            return shared.changes(self.sent, desired)
        return _changes(self.sent, desired)

    def blame(self, updated: list[Packed], desired: Mapping[str, Packed]) -> None:
        """Remember what a push brings the client: what is new to it, and what it rejected last
        time and is sent again unchanged (a SotW CDS or LDS response repeats it), so that a NACK
        of the push can be pinned on them."""
        new = {item.name for item in updated}
        again = [desired[item.name] for item in self.rejected
                 if item.name not in new and item.name in desired and desired[item.name].version == item.version]
        self.pushed = (*updated, *again)

    def record_push(self, nonce: str, sent: dict[str, str], version: str, now: float, started: float) -> None:
        """A response was sent; `sent` (what the client holds now) is shared, see Shared.versions."""
        self.sent = sent
        self.sent_shared = True
        self.nonce_sent = nonce
        self.version_sent = version
        self.pending = True
        self.answer_due = False
        self.requested = NO_NAMES
        self.resumed = False
        self.client_version = ""
        self.last_updated = now
        self.push_started = started
        self.in_sync_by_version = False

    def record_reply(self, version: str, error: str) -> None:
        """An ACK (no error) or a NACK of the latest push. The client keeps its last good config
        on a NACK; `sent` stays as pushed so the same bytes are not pushed again until they change."""
        self.pending = False
        if error:
            self.error = error
            named = tuple(item for item in self.pushed if item.name in error)
            self.rejected = named or self.pushed
        else:
            self.error = ""
            self.rejected = ()
            self.origins = ()
            self.nonce_acked = self.nonce_sent
            self.version_acked = version
        self.pushed = ()
