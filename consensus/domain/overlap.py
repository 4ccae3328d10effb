"""Which amendments overlap: a pure rule the consolidation page and its tests share.

An amendment claims a stretch of a version's paragraphs, by index: a replacement claims
[first, last]; an insertion after paragraph i claims the point i + ½ (between i and i+1).
Two amendments overlap when their claims share a point — two replacements touching a
common paragraph, or two insertions at the same place. Overlap is made transitive: a
group is every amendment connected to another by overlap, so deciding a group settles
every competing text for its stretch at once.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Claim(Generic[K]):
    key: K
    first: int
    last: int
    insertion: bool = False

    @property
    def span(self) -> tuple[Fraction, Fraction]:
        if self.insertion:
            point = Fraction(2 * self.first + 1, 2)
            return point, point
        return Fraction(self.first), Fraction(self.last)


def overlaps(a: Claim[K], b: Claim[K]) -> bool:
    (a1, a2), (b1, b2) = a.span, b.span
    return a1 <= b2 and b1 <= a2


def groups(claims: Sequence[Claim[K]]) -> list[list[K]]:
    """The claims in groups of connected overlaps, each group in input order, the groups
    in the order of their first stretch (then of input). A claim overlapping no other is
    a group of one."""
    ordered = sorted(range(len(claims)), key=lambda i: (claims[i].span, i))
    result: list[list[int]] = []
    reach: Fraction | None = None
    for i in ordered:
        start, end = claims[i].span
        if result and reach is not None and start <= reach:
            result[-1].append(i)
            reach = max(reach, end)
        else:
            result.append([i])
            reach = end
    return [[claims[i].key for i in sorted(group)] for group in result]
