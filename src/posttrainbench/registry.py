"""Named implementations, registered once: the one registry idea behind agents, sandboxes and
launchers (and the catalog's lookup errors).

An implementation registers itself where it is defined (``@AGENTS.register`` on its class);
everything else looks it up by name and gets :class:`UnknownNameError`, which lists the close
and the known names, for a name nobody registered. Tests register their own implementations
for a while with :meth:`Registry.registered`, which restores the previous state on exit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from difflib import get_close_matches
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists the close and the known names."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        close = get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known))}")

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry(Generic[T]):
    """Implementations of one kind (``"agent"``, ``"sandbox"``, ...) by name, in registration order.

    ``key`` gives the name an entry registers under (e.g. a class's ``spec.id``); a name can be
    registered only once, so two implementations never silently shadow each other.
    """

    def __init__(self, kind: str, key: Callable[[T], str]) -> None:
        self.kind = kind
        self._key = key
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add ``entry`` under its name and return it (usable as a class decorator)."""
        name = self._key(entry)
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self._entries[name]!r}, {entry!r})")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove ``name`` (UnknownNameError if it is not registered)."""
        self.get(name)
        del self._entries[name]

    @contextmanager
    def registered(self, entry: T) -> Iterator[T]:
        """Register ``entry`` for the duration of a ``with`` block, replacing an entry of the same
        name; the previous state (that entry, or none) is restored on exit."""
        name = self._key(entry)
        previous = self._entries.pop(name, None)
        self._entries[name] = entry
        try:
            yield entry
        finally:
            if self._entries.get(name) is entry:
                del self._entries[name]
            if previous is not None:
                self._entries[name] = previous

    def get(self, name: str) -> T:
        """The entry registered as ``name``; UnknownNameError otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._entries)) from None

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs, in registration order."""
        return list(self._entries.items())

    def values(self) -> list[T]:
        """Entries, in registration order."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
