"""Layout in a real browser: the desk's forms and tables hold together at 1280 px, and pages
reached in particular ways fit a 360 px phone. That every page each role can reach fits a
360 px phone is checked by the accessibility sweep (test_accessibility.py), which visits them
all anyway.

Widths are measured against the viewport the test sets, never `window.innerWidth`: a mobile
browser widens its layout viewport to content that does not fit, so a page 447 px wide would
report an `innerWidth` of 447 and pass a comparison with itself.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect
from processes import http_json, wait_for_status

from .conftest import DESKTOP, PHONE, DemoSystem, overflow, screenshot, sign_in


@pytest.fixture(scope="module")
def commune_wide(demo_system: DemoSystem) -> int:
    """A commune-wide notice the officer sent, played to the end by every receiver."""
    status, body = http_json(
        "POST",
        f"{demo_system.base}/api/v1/announcements",
        demo_system.tokens["canbo"],
        {"text": "Thông báo toàn xã: kiểm tra loa.", "zones": ["xa-hoang-hop"], "repeat": 1},
    )
    assert status == 201, body
    wait_for_status(demo_system.base, demo_system.api_token, body["id"], {"finished"})
    return int(body["id"])


def test_the_measure_catches_a_page_wider_than_the_phone(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    """The check itself: a page made 450 px wide is caught although the phone's browser widens
    its viewport (innerWidth) to the content."""
    page = phone.new_page()
    page.goto(f"{demo_system.base}/auth/login")
    page.evaluate("document.querySelector('main').style.minWidth = '450px'")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert overflow(page, PHONE["width"]), "a 450 px page passed as fitting 360 px"


def test_village_head_dashboard_and_reports_on_a_phone(
    demo_system: DemoSystem, phone: BrowserContext, commune_wide: int
) -> None:
    page = phone.new_page()
    sign_in(page, demo_system.base, "truongthon1")
    for name, path in (
        ("village-head-dashboard", "/"),
        ("village-head-monthly", "/reports/monthly"),
        ("village-head-reports", "/reports/"),
    ):
        page.goto(demo_system.base + path)
        assert overflow(page, PHONE["width"]) == [], path
        screenshot(page, name)


def test_pages_reached_by_a_form_fit_a_phone(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    """What no link leads to: the officer's broadcast script of a pasted text."""
    page = phone.new_page()
    sign_in(page, demo_system.base, "canbo")
    page.goto(f"{demo_system.base}/bulletins/new")
    page.get_by_label("Dán văn bản").fill(
        "Ủy ban nhân dân xã thông báo lịch tiêm phòng dại cho chó, mèo tại nhà văn hóa thôn."
    )
    page.get_by_role("button", name="Xem kịch bản đọc").click()
    page.get_by_role("heading", name="Kịch bản đọc").wait_for()
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "officer-script-phone")


# A label directly above its own field: left edges aligned, a small gap, nothing between.
LABELS_JS = """(form) => Array.from(form.querySelectorAll("label[for]")).map((label) => {
  const field = document.getElementById(label.htmlFor);
  const a = label.getBoundingClientRect(), b = field.getBoundingClientRect();
  return { label: label.textContent.trim(), dx: b.left - a.left, gap: b.top - a.bottom };
})"""

# Every cell of a table inside the table's box, and the cells of a row sharing its top and
# bottom (a cell laid out as anything but a table cell breaks the row's borders).
CELLS_JS = """(table) => {
  const outer = table.getBoundingClientRect();
  const problems = [];
  for (const row of table.querySelectorAll("tr")) {
    const where = row.dataset.user || `row ${row.rowIndex}`;
    const edges = new Set();
    for (const cell of row.children) {
      const box = cell.getBoundingClientRect();
      const display = getComputedStyle(cell).display;
      if (box.left < outer.left - 0.5 || box.right > outer.right + 0.5) {
        problems.push(`${where}: a cell outside the table`);
      }
      if (display !== "table-cell") problems.push(`${where}: a cell displayed as ${display}`);
      edges.add(`${Math.round(box.top)}-${Math.round(box.bottom)}`);
    }
    if (edges.size > 1) problems.push(`${where}: cells of unequal height`);
  }
  return problems;
}"""


def test_filters_and_the_users_table_hold_together_at_a_desk(
    demo_system: DemoSystem, desktop: BrowserContext
) -> None:
    page = desktop.new_page()
    sign_in(page, demo_system.base, "admin", demo_system.admin_password)
    for path, form in (("/reports/", "#log-filter"), ("/reports/monthly", "#month-filter")):
        page.goto(demo_system.base + path)
        placed = page.locator(form).evaluate(LABELS_JS)
        assert len(placed) >= 2, placed
        apart = [p for p in placed if abs(p["dx"]) > 1 or not 0 <= p["gap"] <= 12]
        assert apart == [], f"{path}: labels not directly above their fields: {apart}"
        assert overflow(page, DESKTOP["width"]) == [], path
        screenshot(page, f"desk{path.rstrip('/').replace('/', '-')}")
    page.goto(f"{demo_system.base}/admin/users")
    assert page.locator("#users").evaluate(CELLS_JS) == []
    screenshot(page, "desk-admin-users")


def test_the_users_table_on_a_phone(demo_system: DemoSystem, phone: BrowserContext) -> None:
    page = phone.new_page()
    sign_in(page, demo_system.base, "admin", demo_system.admin_password)
    page.goto(f"{demo_system.base}/admin/users")
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "phone-admin-users")


def test_a_village_head_reads_their_own_clusters_of_a_commune_wide_notice(
    demo_system: DemoSystem, phone: BrowserContext, commune_wide: int
) -> None:
    page = phone.new_page()
    sign_in(page, demo_system.base, "truongthon1")
    page.goto(f"{demo_system.base}/announce/{commune_wide}")
    deliveries = page.locator("#deliveries li.delivery")
    expect(deliveries).to_have_count(len(demo_system.devices["thon-1"]))
    expect(page.locator("#deliveries .zone")).to_have_text(["Thôn 1"] * deliveries.count())
    expect(page.locator("#summary")).to_contain_text("2/2 cụm loa đã phát xong")
    expect(page.get_by_role("button", name="Dừng phát")).to_have_count(0)
    expect(page.get_by_role("button", name="Đính chính")).to_have_count(0)
    expect(page.locator(".announce-meta")).to_contain_text("Xã Hoằng Hợp")
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "village-head-commune-wide")


def test_an_english_template_form_on_a_phone(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    page = phone.new_page()
    sign_in(page, demo_system.base, "truongthon1")
    page.goto(f"{demo_system.base}/announce/?template=bao&lang=en")
    expect(page.get_by_label("When the storm hits")).to_be_visible()
    page.get_by_label("When the storm hits").fill("chiều nay")
    expect(page.locator("#template-preview")).to_contain_text("từ chiều nay.")
    expect(page.locator("#spoken-language")).to_contain_text("in Vietnamese")
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "village-head-template-en")


def test_the_replay_page_on_a_phone(
    demo_system: DemoSystem, phone: BrowserContext, commune_wide: int
) -> None:
    """Nghe lại: the officer opens the commune's replay page; then anyone, signed out, sees the
    notice with its player on a 360 px phone, every target a finger's size, and the player's
    file and the podcast are served."""
    base = demo_system.base
    officer = phone.new_page()
    sign_in(officer, base, "canbo")
    officer.goto(f"{base}/replay/?commune=xa-hoang-hop")
    switch = officer.locator("#replay-switch")
    if switch.locator("input[name=public][value='1']").count():  # closed: open it
        switch.locator("button[type=submit]").click()
        officer.wait_for_load_state("load")
    link = officer.locator("#replay-switch a").first
    expect(link).to_be_visible()
    public_path = link.get_attribute("href") or ""
    assert public_path == "/nghe-lai/xa-hoang-hop/"
    officer.close()
    phone.clear_cookies()
    page = phone.new_page()
    response = page.goto(base + public_path)
    assert response is not None and response.status == 200
    assert "public" in response.headers["cache-control"] and response.headers["etag"]
    item = page.locator(f"#b{commune_wide}")
    expect(item).to_contain_text("Thông báo toàn xã: kiểm tra loa.")
    player = item.locator("audio")
    expect(player).to_have_count(1)
    expect(player).to_be_visible()
    media = page.request.get(base + (player.get_attribute("src") or ""))
    assert media.status == 200 and media.headers["content-type"] == "audio/mpeg"
    assert len(media.body()) > 1000
    assert overflow(page, PHONE["width"]) == []
    heights = page.locator("main a, main button, audio, summary").evaluate_all(
        "els => els.map(el => el.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 44, heights
    screenshot(page, "replay-phone")
    feed = page.request.get(f"{base}{public_path}podcast.xml")
    assert feed.status == 200 and "/media/" in feed.text() and "<enclosure" in feed.text()


def test_the_internal_choice_on_a_phone(demo_system: DemoSystem, phone: BrowserContext) -> None:
    """A village head ticks "Nội bộ" by its label on a 360 px phone; the confirmation says the
    notice stays off the replay page; both pages fit (nothing is sent)."""
    page = phone.new_page()
    sign_in(page, demo_system.base, "truongthon1")
    page.goto(f"{demo_system.base}/announce/")
    choice = page.get_by_label("Nội bộ (không đăng lên trang Nghe lại)")
    expect(choice).not_to_be_checked()
    assert overflow(page, PHONE["width"]) == []
    page.get_by_text("Nội bộ (không đăng lên trang Nghe lại)").click()
    expect(choice).to_be_checked()
    page.get_by_label("Nội dung thông báo").fill("Họp chi bộ thôn lúc 19 giờ tối nay.")
    page.get_by_role("button", name="Xem lại trước khi phát").click()
    expect(page.locator("#internal-note")).to_contain_text("không đăng lên trang Nghe lại")
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "village-head-internal-confirm")
