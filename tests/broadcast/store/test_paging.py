"""The one page arithmetic the receiver, audit and broadcast-log pages share."""

from __future__ import annotations

import pytest

from broadcast.desks.administration import AuditPage, DevicePage
from broadcast.desks.reporting import LogPage
from broadcast.store.paging import Page, clamp_page, page_count


@pytest.mark.parametrize(("total", "pages"), [(0, 1), (1, 1), (10, 1), (11, 2), (25, 3)])
def test_page_count(total: int, pages: int) -> None:
    assert page_count(total, 10) == pages


@pytest.mark.parametrize(("asked", "shown"), [(-3, 1), (0, 1), (2, 2), (3, 3), (99, 3)])
def test_a_page_out_of_range_shows_the_nearest(asked: int, shown: int) -> None:
    assert clamp_page(asked, 25, 10) == shown


@pytest.mark.parametrize("kind", [DevicePage, AuditPage, LogPage])
def test_every_page_type_is_a_page(kind: type) -> None:
    assert issubclass(kind, Page)


def test_previous_and_next() -> None:
    first, middle, last = (Page(rows=[], page=n, per_page=10, total=25) for n in (1, 2, 3))
    assert (first.pages, first.has_previous, first.has_next) == (3, False, True)
    assert (middle.has_previous, middle.has_next) == (True, True)
    assert (last.has_previous, last.has_next) == (True, False)
