"""Per stream, per type: what the client subscribed to, what it was sent, what it acknowledged.

Tracking names and versions per resource (not one version per response) is what makes partial
EDS/RDS pushes, Delta, NACK handling and the "resend EDS after a cluster changed" rule possible,
and what lets a restarted server recognise that a reconnecting Envoy already holds everything.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from meshctl.resources import BY_TYPE_URL, FULL_STATE, Packed

WILDCARD = "*"


@lru_cache(maxsize=4096)
def placeholder(type_url: str, name: str) -> Packed | None:
    """What to send for a name the config does not define, for kinds that have one (see
    Kind.placeholder): an empty resource, so Envoy does not wait for a timeout."""
    kind = BY_TYPE_URL.get(type_url)
    if kind is None or not kind.placeholder:
        return None
    return Packed.of(name, kind.empty(name))


def version_of(resources: Mapping[str, Packed]) -> str:
    """A SotW type version derived from content, so it survives a server restart unchanged.
    (The hash of `name NUL version LF` per resource in name order, taken in one call.)"""
    text = "".join(f"{name}\0{resources[name].version}\n" for name in sorted(resources))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(slots=True, eq=False)
class Watch:
    """One type on one stream.

    `sent` maps each name to the version the client holds as far as the server knows; `requested`
    holds names asked for that must be answered even if unchanged; `resumed` marks a stream whose
    client said what it already holds (SotW `client_version`, Delta initial versions), so a
    restarted server can recognise it is in sync without pushing; `stale` marks a push that was
    held back while the last one was unacknowledged, so the ACK must be answered with it.

    Subscribed names are interned: every proxy asks for the same names, and thousands of streams
    then share one copy of each instead of holding their own.
    """

    type_url: str
    names: set[str] = field(default_factory=set)
    wildcard: bool = False
    named: bool = False
    sent: dict[str, str] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)
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
    rejected: tuple[Packed, ...] = ()
    origins: tuple[str, ...] = ()

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

    def set_names(self, names: Iterable[str]) -> None:
        """A SotW request's complete subscription. An empty list means wildcard only for
        LDS/CDS and only while nothing was ever named (the legacy wildcard rule)."""
        wanted = {sys.intern(name) for name in names}
        if self.type_url in FULL_STATE:
            if not wanted and not self.named:
                if not self.wildcard:
                    self.answer_due = True
                self.wildcard = True
                return
            self.named = True
            wildcard = WILDCARD in wanted
            if wildcard and not self.wildcard:
                self.answer_due = True
            self.wildcard = wildcard
        wanted.discard(WILDCARD)
        for name in wanted - self.names:
            self._want(name)
        self.forget(self.names - wanted)
        self.names = wanted

    def subscribe(self, names: Iterable[str]) -> None:
        """Delta subscribe: every name is answered, even one the client seems to hold already."""
        for name in names:
            if name == WILDCARD:
                if self.type_url in FULL_STATE:
                    self.wildcard = True
                    self.answer_due = True
                continue
            name = sys.intern(name)
            self.names.add(name)
            self._want(name)

    def unsubscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name == WILDCARD:
                self.wildcard = False
                self.forget([n for n in self.sent if n not in self.names])
                continue
            self.names.discard(name)
            if not self.wildcard:
                self.forget([name])

    def _want(self, name: str) -> None:
        self.sent.pop(name, None)
        self.requested.add(name)

    def forget(self, names: Iterable[str]) -> None:
        """The client drops these: they must be sent again if it asks again."""
        for name in names:
            self.sent.pop(name, None)
            self.requested.discard(name)

    def desired(self, available: Mapping[str, Packed]) -> dict[str, Packed]:
        """What this subscription should hold, given everything the proxy may have of this type."""
        if self.wildcard:
            wanted = dict(available)
            names: Iterable[str] = (n for n in self.names if n not in wanted)
        else:
            wanted = {}
            names = self.names
        for name in names:
            item = available.get(name) or placeholder(self.type_url, name)
            if item is not None:
                wanted[name] = item
        return wanted

    def changes(self, desired: Mapping[str, Packed]) -> tuple[list[Packed], list[str]]:
        """Resources the client lacks or holds in another version, and names it should drop."""
        updated = [item for name, item in desired.items() if self.sent.get(name) != item.version]
        removed = [name for name in self.sent if name not in desired]
        return updated, removed

    def blame(self, updated: list[Packed], desired: Mapping[str, Packed]) -> None:
        """Remember what a push brings the client: what is new to it, and what it rejected last
        time and is sent again unchanged (a SotW CDS or LDS response repeats it), so that a NACK
        of the push can be pinned on them."""
        new = {item.name for item in updated}
        again = [desired[item.name] for item in self.rejected
                 if item.name not in new and item.name in desired and desired[item.name].version == item.version]
        self.pushed = (*updated, *again)

    def record_push(self, nonce: str, sent: Mapping[str, str], version: str, now: float, started: float) -> None:
        self.sent = dict(sent)
        self.nonce_sent = nonce
        self.version_sent = version
        self.pending = True
        self.answer_due = False
        self.requested.clear()
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
