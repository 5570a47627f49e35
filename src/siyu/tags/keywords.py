"""Multi-pattern matching of rule words over Chinese chat text (Aho-Corasick), pure.

One automaton holds every word of a workspace's active rules, so a message is scanned
once whatever the number of rules (10,000 rules cost the same scan as ten). Text and
words are compared after NFKC folding and case folding, so full-width letters and
``SK-II`` / ``sk-ii`` match alike. No database here: services build a ``Matcher``
from rows and keep it in ``MatcherCache`` keyed by the rule set's revision.
"""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

import ahocorasick


def fold(text: str) -> str:
    """The form both text and words are matched in."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


@dataclass(frozen=True)
class RuleWords:
    rule_id: int
    words: tuple[str, ...]
    # exact: the whole (trimmed, folded) message must equal one of the words.
    exact: bool = False


class Matcher:
    """Which rules a text matches, and through which words."""

    def __init__(self, rules: Iterable[RuleWords]) -> None:
        contains: dict[str, set[int]] = {}
        exact: dict[str, set[int]] = {}
        for rule in rules:
            target = exact if rule.exact else contains
            for word in rule.words:
                folded = fold(word)
                if folded:
                    target.setdefault(folded, set()).add(rule.rule_id)
        self._exact = {word: tuple(sorted(ids)) for word, ids in exact.items()}
        self._automaton: ahocorasick.Automaton | None = None
        if contains:
            automaton = ahocorasick.Automaton()
            for word, ids in contains.items():
                automaton.add_word(word, (word, tuple(sorted(ids))))
            automaton.make_automaton()
            self._automaton = automaton
        self.size = len(contains) + len(exact)

    def match(self, text: str) -> set[int]:
        """Ids of the rules ``text`` matches (each rule at most once, however often its words occur)."""
        folded = fold(text)
        found: set[int] = set()
        ids = self._exact.get(folded)
        if ids:
            found.update(ids)
        if self._automaton is not None:
            for _, (_, ids) in self._automaton.iter(folded):
                found.update(ids)
        return found

    def match_words(self, text: str) -> dict[int, list[str]]:
        """Rule id -> the distinct words of that rule found in ``text``, in order of appearance."""
        folded = fold(text)
        out: dict[int, list[str]] = {}
        for rule_id in self._exact.get(folded, ()):
            out.setdefault(rule_id, []).append(folded)
        if self._automaton is not None:
            for _, (word, ids) in self._automaton.iter(folded):
                for rule_id in ids:
                    words = out.setdefault(rule_id, [])
                    if word not in words:
                        words.append(word)
        return out

    def match_many(self, texts: Sequence[str]) -> list[set[int]]:
        """``match`` over a batch, with the lookups hoisted out of the loop (the hot path)."""
        exact_get = self._exact.get
        scan = self._automaton.iter if self._automaton is not None else None
        normalize = unicodedata.normalize
        out: list[set[int]] = []
        append = out.append
        for text in texts:
            folded = normalize("NFKC", text).casefold().strip()
            found: set[int] = set()
            ids = exact_get(folded)
            if ids:
                found.update(ids)
            if scan is not None:
                for _, (_, ids) in scan(folded):
                    found.update(ids)
            append(found)
        return out


@dataclass(frozen=True)
class Hit:
    at: dt.datetime
    message_id: int
    new: bool  # arrived in the batch being evaluated


def window_trigger(hits: Sequence[Hit], min_matches: int, window: dt.timedelta | None) -> int | None:
    """The message that makes a customer qualify, or None.

    A customer qualifies when some span of ``window`` (any span when None) holds at least
    ``min_matches`` hits and at least one new hit: old hits alone were judged before. The
    trigger is the latest new hit of the first such span in time order.
    """
    ordered = sorted(hits, key=lambda h: (h.at, h.message_id))
    start = 0
    for end, hit in enumerate(ordered):
        if window is not None:
            while ordered[start].at < hit.at - window:
                start += 1
        if end - start + 1 < min_matches:
            continue
        span = ordered[start : end + 1]
        new = [h for h in span if h.new]
        if new:
            return new[-1].message_id
    return None


class MatcherCache:
    """Compiled matchers per key, rebuilt when the key's revision changes.

    The revision is read from the database on every batch (one small aggregate), so a rule
    edited in one process takes effect in every other process's next batch.
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, tuple[Hashable, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, revision: Hashable, build: Callable[[], object]) -> object:
        cached = self._items.get(key)
        if cached is not None and cached[0] == revision:
            return cached[1]
        value = build()
        with self._lock:
            self._items[key] = (revision, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
