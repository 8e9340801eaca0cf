"""One page of a long list: what the receiver, audit and broadcast-log pages share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

RowT = TypeVar("RowT")


def page_count(total: int, per_page: int) -> int:
    """How many pages `total` rows fill; an empty list still has one (empty) page."""
    return max(1, math.ceil(total / per_page))


def clamp_page(page: int, total: int, per_page: int) -> int:
    """The page to show for a requested number: the first below 1, the last past the end."""
    return min(max(1, page), page_count(total, per_page))


@dataclass(frozen=True)
class Page(Generic[RowT]):
    """`rows` of page `page` (from 1) of `total` rows, `per_page` to a page."""

    rows: list[RowT]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages
