"""Browser tests: Debian's chromium driven by Playwright against `loa demo` (real web server,
embedded broker, simulated receivers that really play), with users of every role.

No browser is downloaded: Playwright launches the system chromium (`LOA_CHROMIUM`, default
/usr/bin/chromium; `.ci/run` installs it). A missing chromium fails the tests, never skips them.
Screenshots go to `test-artifacts/screenshots/` (or `LOA_ARTIFACTS_DIR`), kept by CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from processes import LoaProcess, wait_devices
from support import REPO_ROOT, free_port

from broadcast import accounts, seed
from broadcast.const import Role
from broadcast.service import BroadcastService
from broadcast.settings import Settings

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
RECEIVERS = 4
PASSWORD = "mat-khau-thu-nghiem-2026"
USERS = {  # username: (role, village)
    "canbo": (Role.OFFICER, None),
    "lanhdao": (Role.LEADER, None),
    "truongthon1": (Role.VILLAGE_HEAD, "thon-1"),
    "truongthon2": (Role.VILLAGE_HEAD, "thon-2"),
    "xem": (Role.VIEWER, None),
}


@dataclass
class DemoSystem:
    base: str
    data: Path
    api_token: str
    process: LoaProcess
    devices: dict[str, list[str]] = field(default_factory=dict)  # village id: device ids
    tokens: dict[str, str] = field(default_factory=dict)  # username: API token
    admin_password: str = ""

    @property
    def receivers_dir(self) -> Path:
        return self.data / "receivers"


def artifacts_dir() -> Path:
    path = Path(os.environ.get("LOA_ARTIFACTS_DIR", REPO_ROOT / "test-artifacts")) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    executable = os.environ.get("LOA_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists() and shutil.which(executable) is None:
        pytest.fail(
            f"chromium not found at {executable}: install Debian's chromium (.ci/run does) "
            "or set LOA_CHROMIUM"
        )
    launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def demo_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSystem]:
    """`loa demo` on free ports with the demo commune, its receivers and the test users."""
    data = tmp_path_factory.mktemp("browser") / "var"
    port, mqtt_port = free_port(), free_port()
    settings = Settings(data_dir=data, port=port, mqtt_port=mqtt_port)
    service = BroadcastService(settings, connect_mqtt=False)
    try:
        seeded = seed.seed_demo(service, receivers=RECEIVERS, realtime=False)
        tokens = {}
        with service.db.session() as session:
            for username, (role, village) in USERS.items():
                user = accounts.create_user(session, username, PASSWORD, role, village)
                tokens[username] = accounts.create_token(session, user)
    finally:
        service.stop()
    process = LoaProcess(
        "demo",
        "--data",
        str(data),
        "--port",
        str(port),
        "--mqtt-port",
        str(mqtt_port),
        "--receivers",
        str(RECEIVERS),
    )
    try:
        token = process.wait_for_line("API token:").split(":", 1)[1].strip()
        login = process.wait_for_line("Login:")  # "Login:      admin / <password>"
        admin_password = login.split("/", 1)[1].strip()
        base = f"http://127.0.0.1:{port}"
        system = DemoSystem(
            base, data, token, process, tokens=tokens, admin_password=admin_password
        )
        for device in wait_devices(base, token, RECEIVERS, timeout_s=60):
            system.devices.setdefault(device["zone"], []).append(device["id"])
        del seeded
        yield system
        assert process.stop() == 0
        assert "Traceback" not in process.output, process.output[-4000:]
    finally:
        if process.process.poll() is None:
            process.kill()


@pytest.fixture
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


def sign_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/auth/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def screenshot(page: Page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
