"""The browser reaches the demo: sign-in page in both languages, the officer's dashboard."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from .conftest import DemoSystem, screenshot, sign_in


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


def test_officer_sees_the_dashboard(demo_system: DemoSystem, desktop: BrowserContext) -> None:
    page = desktop.new_page()
    sign_in(page, demo_system.base, "canbo")
    expect(page.get_by_role("link", name="Phát thông báo khẩn")).to_be_visible()
    screenshot(page, "dashboard")
