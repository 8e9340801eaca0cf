"""The three flows of the web app in a real browser against real receivers (`loa demo`).

1. The culture officer writes a bulletin, a leader approves it, the officer schedules it and
   finds it on the week calendar.
2. A village head, on a phone-sized screen, sends an urgent notice to their village, confirms
   it, and watches the loudspeaker clusters play it live; the receivers really played it.
3. A village head can neither see nor target another village, in the pages or the API.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import BrowserContext, Dialog, Page, expect
from processes import http_json, played_lines

from .conftest import PHONE, ConsoleWatch, DemoSystem, overflow, screenshot, sign_in

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
BULLETIN_TEXT = (
    "Ủy ban nhân dân xã thông báo: từ ngày 01/12/2026, trạm y tế tổ chức tiêm phòng dại cho chó,"
    " mèo tại nhà văn hóa thôn, từ 7 giờ 30 đến 11 giờ. Đề nghị bà con đưa vật nuôi đến tiêm."
)


def _accept_dialogs(page: Page) -> None:
    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)


def _no_sideways_scroll(page: Page) -> None:
    """Measured against the phone's configured width, not innerWidth (which a mobile browser
    widens to the content). A layout is only measured once the stylesheets have loaded."""
    page.wait_for_load_state("load")
    problems = overflow(page, PHONE["width"])
    assert problems == [], f"{page.url} is wider than the phone: {problems}"


def test_officer_writes_leader_approves_officer_schedules_and_sees_the_calendar(
    demo_system: DemoSystem, desktop: BrowserContext, browser: Any, console: ConsoleWatch
) -> None:
    base = demo_system.base
    officer = desktop.new_page()
    _accept_dialogs(officer)
    sign_in(officer, base, "canbo")
    officer.goto(f"{base}/bulletins/new")
    officer.get_by_label("Dán văn bản").fill(BULLETIN_TEXT)
    officer.get_by_role("button", name="Xem kịch bản đọc").click()
    expect(officer.get_by_role("heading", name="Kịch bản đọc")).to_be_visible()
    script = officer.get_by_label("Nội dung đọc").input_value()
    assert script.startswith("Đài truyền thanh xã Hoằng Hợp xin thông báo"), script
    assert "tiêm phòng dại" in script
    officer.get_by_label("Tiêu đề").fill("Tiêm phòng dại tháng 12")
    officer.get_by_role("button", name="Lưu bản tin").click()
    expect(officer.get_by_role("heading", name="Tiêm phòng dại tháng 12")).to_be_visible()
    bulletin_url = officer.url
    expect(officer.locator("#needs-approval")).to_be_visible()  # not schedulable yet
    officer.get_by_role("button", name="Trình duyệt").click()
    expect(officer.get_by_role("button", name="Trình duyệt")).to_have_count(0)

    leader_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    console.watch(leader_context)
    try:
        leader = leader_context.new_page()
        sign_in(leader, base, "lanhdao")
        leader.goto(f"{base}/bulletins/")
        leader.get_by_role("link", name="Tiêm phòng dại tháng 12").click()
        expect(leader.get_by_role("button", name="Đặt lịch")).to_have_count(0)  # leaders approve
        leader.get_by_label("Ý kiến").fill("Đồng ý phát.")
        screenshot(leader, "leader-approval")
        leader.get_by_role("button", name="Duyệt", exact=True).click()
        expect(leader.get_by_text("Đồng ý phát.").first).to_be_visible()
    finally:
        leader_context.close()

    officer.goto(bulletin_url)
    tomorrow = (datetime.now(LOCAL) + timedelta(days=1)).date()
    schedule = officer.locator("#schedule-form")
    schedule.get_by_label("Một lần vào").check()
    schedule.get_by_label("Thời điểm phát một lần").fill(f"{tomorrow.isoformat()}T09:15")
    schedule.get_by_label("Thôn 1").check()
    schedule.get_by_role("button", name="Đặt lịch").click()
    expect(officer.get_by_role("heading", name="Lịch phát của bản tin")).to_be_visible()

    officer.goto(f"{base}/calendar/?zone=thon-1&week={tomorrow.isoformat()}")
    entry = officer.locator("li.entry", has_text="Tiêm phòng dại tháng 12")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("09:15")
    screenshot(officer, "officer-calendar")
    officer.goto(f"{base}/calendar/?zone=thon-2&week={tomorrow.isoformat()}")
    expect(officer.locator("li.entry", has_text="Tiêm phòng dại tháng 12")).to_have_count(0)


def test_village_head_sends_an_urgent_notice_from_a_phone_and_watches_it_play(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    base = demo_system.base
    page = phone.new_page()
    _accept_dialogs(page)
    sign_in(page, base, "truongthon1")
    page.goto(f"{base}/announce/")
    expect(page.get_by_role("heading", name="Phát thông báo khẩn")).to_be_visible()
    _no_sideways_scroll(page)
    screenshot(page, "village-head-phone")
    page.get_by_label("Nội dung thông báo").fill(
        "Thông báo khẩn: nước sông lên nhanh, bà con thôn 1 di chuyển đồ đạc lên cao ngay."
    )
    page.get_by_label("Số lần phát").fill("1")
    page.get_by_role("button", name="Xem lại trước khi phát").click()
    what = page.locator("#what")
    expect(what).to_contain_text("Sẽ phát 1 lần tới 2 cụm loa ở Thôn 1")
    # proofread in the page's own font (a monospace one splits Vietnamese tone marks)
    notice = page.locator(".announce-content .text")
    expect(notice).to_contain_text("nước sông lên nhanh")
    page.wait_for_load_state("load")  # a style read before the stylesheet arrives is the default
    body_font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert notice.evaluate("el => getComputedStyle(el).fontFamily") == body_font
    assert notice.evaluate("el => getComputedStyle(el).whiteSpace") == "pre-wrap"
    _no_sideways_scroll(page)
    screenshot(page, "village-head-confirm")
    page.get_by_role("button", name="Xác nhận phát").click()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("2/2 cụm loa đã phát xong", timeout=60_000)
    expect(page.locator("#deliveries li.state-finished")).to_have_count(2)
    expect(page.locator("#deliveries .zone")).to_have_text(["Thôn 1", "Thôn 1"])
    # it has ended: "Dừng phát" goes without a reload, a correction can still be sent
    expect(page.locator("#cancel-form")).to_have_count(0)
    expect(page.locator("#correct-form")).to_be_visible()
    expect(page.locator("#status")).to_have_text("Đã phát xong")
    _no_sideways_scroll(page)
    screenshot(page, "village-head-delivery")

    broadcast_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    for device_id in demo_system.devices["thon-1"]:
        plays = [
            p
            for p in played_lines(demo_system.receivers_dir, device_id)
            if p["broadcast_id"] == broadcast_id
        ]
        assert len(plays) == 1, (device_id, plays)
    for device_id in demo_system.devices["thon-2"]:
        assert all(
            p["broadcast_id"] != broadcast_id
            for p in played_lines(demo_system.receivers_dir, device_id)
        )


def test_village_head_cannot_see_or_target_another_village(
    demo_system: DemoSystem, phone: BrowserContext, console: ConsoleWatch
) -> None:
    base = demo_system.base
    refused = (f"{base}/calendar/?zone=thon-2", f"{base}/bulletins/", f"{base}/admin/users")
    for url in (*refused, f"{base}/reports/?zone=thon-2"):
        console.allow(url, 403)  # opened on purpose: the browser logs the refused load
    page = phone.new_page()
    sign_in(page, base, "truongthon1")
    page.goto(f"{base}/announce/")
    targets = page.locator("#announce-form")
    expect(targets.get_by_label("Thôn 1")).to_be_checked()
    expect(targets.get_by_label("Thôn 2")).to_have_count(0)
    for url in refused:
        response = page.goto(url)
        assert response is not None and response.status == 403, url
        expect(page.get_by_text("Bạn không có quyền")).to_be_visible()
    response = page.goto(f"{base}/reports/?zone=thon-2")
    assert response is not None and response.status == 403

    # the form posted by hand, with a village it does not offer
    page.goto(f"{base}/announce/")
    token = page.locator("#announce-form input[name=csrf_token]").input_value()
    sent = page.request.post(
        f"{base}/announce/",
        multipart={
            "csrf_token": token,
            "mode": "text",
            "text": "Thông báo giả cho thôn khác.",
            "zones": "thon-2",
            "priority": "emergency",
            "repeat": "1",
        },
    )
    assert sent.status in (400, 403), sent.status
    assert "Xác nhận phát" not in sent.text()

    # and the API with the village head's own token
    api = demo_system.tokens["truongthon1"]
    status, zones = http_json("GET", f"{base}/api/v1/zones", api)
    assert status == 200 and [zone["id"] for zone in zones] == ["thon-1"]
    status, devices = http_json("GET", f"{base}/api/v1/devices", api)
    assert status == 200 and {d["zone"] for d in devices} == {"thon-1"}
    status, refused = http_json(
        "POST",
        f"{base}/api/v1/announcements",
        api,
        {"text": "Thông báo giả.", "zones": ["thon-2"]},
    )
    assert status == 403, refused
    status, _ = http_json("GET", f"{base}/api/v1/schedules", api)
    assert status == 403
    status, recent = http_json(
        "GET", f"{base}/api/v1/announcements?limit=50", demo_system.tokens["xem"]
    )
    assert status == 200
    assert not [b for b in recent if b["title"].startswith("Thông báo giả")], recent


def test_the_zone_choice_follows_the_role_on_the_users_page(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    """The server says which zones each role may be bound to (data-when); the page shows only
    those for the chosen role, so the form offers nothing the server refuses."""
    page = phone.new_page()
    sign_in(page, demo_system.base, "admin", demo_system.admin_password)
    page.goto(f"{demo_system.base}/admin/users")
    form = page.locator("#new-user")

    def shown() -> set[str]:
        return set(
            form.locator("#zone option").evaluate_all(
                "options => options.filter(o => !o.hidden && !o.disabled).map(o => o.value)"
            )
        )

    form.locator("#role").select_option("village_head")
    villages = shown()
    assert villages and "" not in villages and "xa-hoang-hop" not in villages
    assert form.locator("#zone").input_value() in villages
    form.locator("#role").select_option("admin")
    assert "" in shown() and not shown() & villages
    _no_sideways_scroll(page)
