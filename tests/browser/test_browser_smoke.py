"""The browser reaches the demo: sign-in page in both languages, the officer's dashboard."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from .conftest import PHONE, DemoSystem, overflow, screenshot, sign_in


def test_sign_in_page_in_vietnamese_and_english(
    demo_system: DemoSystem, desktop: BrowserContext
) -> None:
    page = desktop.new_page()
    page.goto(f"{demo_system.base}/auth/login")
    expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    page.get_by_role("link", name="Tiếng Việt").click()
    expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
    screenshot(page, "login")


def test_wrong_password_is_refused_politely(
    demo_system: DemoSystem, desktop: BrowserContext
) -> None:
    page = desktop.new_page()
    page.goto(f"{demo_system.base}/auth/login")
    page.get_by_label("Tên đăng nhập").fill("canbo")
    page.get_by_label("Mật khẩu").fill("not the password")
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_role("alert")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu")
    expect(page.get_by_label("Tên đăng nhập")).to_have_value("canbo")  # kept, to retype less
    expect(page.get_by_label("Mật khẩu")).to_be_focused()


def test_officer_sees_the_dashboard(demo_system: DemoSystem, desktop: BrowserContext) -> None:
    page = desktop.new_page()
    sign_in(page, demo_system.base, "canbo")
    expect(page.get_by_role("link", name="Phát thông báo khẩn")).to_be_visible()
    screenshot(page, "dashboard")


def test_main_pages_render_without_browser_errors(
    demo_system: DemoSystem, desktop: BrowserContext, phone: BrowserContext
) -> None:
    """Each main page, as the admin on a desktop and as a village head on a phone: no console
    error (a content-security-policy violation shows as one), nothing wider than the phone."""
    pages = {
        "bulletins": "/bulletins/",
        "calendar": "/calendar/",
        "reports": "/reports/",
        "reports-monthly": "/reports/monthly",
        "admin-users": "/admin/users",
        "admin-devices": "/admin/devices",
        "admin-device-qr": f"/admin/devices/{demo_system.devices['thon-1'][0]}/qr",
        "admin-audit": "/admin/audit",
        "dashboard-en": "/?lang=en",
    }
    admin = desktop.new_page()
    errors: list[str] = []
    admin.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    sign_in(admin, demo_system.base, "admin", demo_system.admin_password)
    for name, path in pages.items():
        response = admin.goto(demo_system.base + path)
        assert response is not None and response.status == 200, path
        screenshot(admin, name)
    assert errors == []

    head = phone.new_page()
    head.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    sign_in(head, demo_system.base, "truongthon1")
    for path in ("/", "/calendar/", "/reports/", "/announce/?mode=template"):
        response = head.goto(demo_system.base + path)
        assert response is not None and response.status == 200, path
        assert overflow(head, PHONE["width"]) == [], f"{path} is wider than a 360 px phone"
    screenshot(head, "village-head-templates")
    assert errors == []
