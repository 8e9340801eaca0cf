"""The province pages (Toàn tỉnh) in a real browser: the demo commune put under a province
with two more communes, read by a province editor, fit a 360 px phone in both languages, and
the nav link leads there."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext

from .conftest import PHONE, DemoSystem, overflow, screenshot, sign_in


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_province_pages_fit_a_phone(
    demo_system: DemoSystem, phone: BrowserContext, province: str, lang: str
) -> None:
    page = phone.new_page()
    sign_in(page, demo_system.base, province)
    page.goto(f"{demo_system.base}/?lang={lang}")
    page.locator("#nav-province").click()
    page.wait_for_url(lambda url: "/province/" in url)
    for name, path in (("province", "/province/"), ("province-monthly", "/province/monthly")):
        response = page.goto(demo_system.base + path)
        assert response is not None and response.status == 200, path
        assert page.locator("tr[data-zone]").count() >= 3, path
        assert overflow(page, PHONE["width"]) == [], path
        screenshot(page, f"{name}-{lang}")
    # the pages whose province view this issue reshaped: counts per commune, communes listed
    for name, path in (
        ("province-dashboard", "/"),
        ("province-reports-monthly", "/reports/monthly"),
    ):
        response = page.goto(demo_system.base + path)
        assert response is not None and response.status == 200, path
        assert overflow(page, PHONE["width"]) == [], path
        screenshot(page, f"{name}-{lang}")
    # the province's week: its own runs and a line per commune
    response = page.goto(f"{demo_system.base}/calendar/")
    assert response is not None and response.status == 200
    assert page.locator("#communes tbody tr").count() >= 3
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, f"province-calendar-{lang}")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_province_bulletin_pages_fit_a_phone(
    demo_system: DemoSystem, phone: BrowserContext, province: str, lang: str
) -> None:
    """The province editor's send-down page and a bulletin's per-commune states."""
    page = phone.new_page()
    sign_in(page, demo_system.base, province)
    page.goto(f"{demo_system.base}/?lang={lang}")
    response = page.goto(f"{demo_system.base}/province-bulletins/")
    assert response is not None and response.status == 200
    page.wait_for_load_state("load")
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, f"province-bulletins-{lang}")
    page.get_by_text("Lịch tiêm phòng dại toàn tỉnh").first.click()
    page.wait_for_load_state("load")
    assert "/province-bulletins/" in page.url
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, f"province-bulletin-{lang}")


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_a_commune_inbox_fits_a_phone(
    demo_system: DemoSystem, phone: BrowserContext, province: str, lang: str
) -> None:
    officer = phone.new_page()
    sign_in(officer, demo_system.base, "canbo-hai")
    officer.goto(f"{demo_system.base}/?lang={lang}")
    response = officer.goto(f"{demo_system.base}/province-bulletins/inbox")
    assert response is not None and response.status == 200
    officer.wait_for_load_state("load")
    assert officer.get_by_text("Lịch tiêm phòng dại toàn tỉnh").count() >= 1
    assert overflow(officer, PHONE["width"]) == []
    screenshot(officer, f"province-inbox-{lang}")
