"""Browser tests: Debian's chromium driven by Playwright against `loa demo` (real web server,
embedded broker, simulated receivers that really play), with users of every role.

No browser is downloaded: Playwright launches the system chromium (`LOA_CHROMIUM`, default
/usr/bin/chromium; `.ci/run` installs it). A missing chromium fails the tests, never skips them.
Screenshots go to `test-artifacts/screenshots/` (or `LOA_ARTIFACTS_DIR`), kept by CI.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import axe_core
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)
from processes import LoaProcess, wait_devices
from support import REPO_ROOT, free_ports

from broadcast.const import Role, ZoneKind
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from loa import seed
from loa.seed import COMMUNE

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a microphone that beeps (live broadcasts); a page still asks for it (context permissions)
    "--use-fake-device-for-media-stream",
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
def demo_system(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[DemoSystem]:
    """`loa demo` on free ports with the demo commune, its receivers and the test users (and
    the test module's `DEMO_ARGS`, if it has any)."""
    data = tmp_path_factory.mktemp("browser") / "var"
    port, mqtt_port = free_ports(2)
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
        *getattr(request.module, "DEMO_ARGS", ()),
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


class ConsoleWatch:
    """Console errors and uncaught exceptions of every page of a test's browser contexts: a
    test fails on any it did not cause on purpose (a 404 icon, a CSP violation, a script
    error)."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []  # (page or resource URL, message)
        self._allowed: list[tuple[str, int]] = []

    def watch(self, context: BrowserContext) -> None:
        context.on("page", self._watch_page)

    def _watch_page(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append((message.location.get("url") or page.url, message.text))

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append((page.url, f"uncaught: {error}")))

    def allow(self, url: str, status: int) -> None:
        """A page the test opens expecting an error status (the browser logs its load)."""
        self._allowed.append((url, status))

    def unexpected(self) -> list[str]:
        return [
            f"{url}: {text}"
            for url, text in self.errors
            if not any(
                url == allowed and f"status of {status}" in text
                for allowed, status in self._allowed
            )
        ]


@pytest.fixture
def console() -> Iterator[ConsoleWatch]:
    watch = ConsoleWatch()
    yield watch
    assert watch.unexpected() == [], "errors in the browser console"


@pytest.fixture
def desktop(browser: Browser, console: ConsoleWatch) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(15_000)
    console.watch(context)
    yield context
    context.close()


@pytest.fixture
def phone(browser: Browser, console: ConsoleWatch) -> Iterator[BrowserContext]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
    )
    context.set_default_timeout(15_000)
    console.watch(context)
    yield context
    context.close()


def sign_in(page: Page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/auth/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


# Every element's box against the configured width; an element inside a scroll container is
# clipped by it (the container itself is measured). Closed <details> are opened first.
MEASURE_JS = """(width) => {
  const closed = Array.from(document.querySelectorAll("details:not([open])"));
  for (const details of closed) details.open = true;
  // an overflow container clips a descendant, except an absolutely positioned one whose
  // containing block lies outside it (a fixed one: always outside)
  const clippedBy = (el) => {
    const position = getComputedStyle(el).position;
    if (position === "fixed") return false;
    let escaping = position === "absolute";
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (escaping && style.position !== "static") escaping = false;
      if (!escaping && style.overflowX !== "visible") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className.trim()
       ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (!box.width && !box.height) continue;
    if (box.right <= width + 0.5 && box.left >= -0.5) continue;
    if (clippedBy(el)) continue;
    wide.push(`${name(el)} [${Math.round(box.left)}, ${Math.round(box.right)}]`);
  }
  const scrollWidth = document.documentElement.scrollWidth;
  for (const details of closed) details.open = false;
  return { scrollWidth, wide: wide.slice(0, 6) };
}"""


def overflow(page: Page, width: int) -> list[str]:
    """What sticks out of a `width` px wide screen on the current page (empty: it fits)."""
    measured: dict[str, Any] = page.evaluate(MEASURE_JS, width)
    problems = list(measured["wide"])
    if measured["scrollWidth"] > width:
        problems.insert(0, f"the page is {measured['scrollWidth']} px wide")
    return problems


def screenshot(page: Page, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def province(demo_system: DemoSystem) -> str:
    """Tỉnh Thử over the demo commune, Xã Hai and Xã Ba, with a province editor (its username
    is returned), a province admin `quantri-tinh` and Xã Hai's officer `canbo-hai`, whose
    inbox holds a bulletin the editor sent down."""
    service = BroadcastService(Settings(data_dir=demo_system.data), connect_mqtt=False)
    try:
        with service.db.session() as session:
            zones.create_zone(session, "tinh-thu", "Tỉnh Thử Nghiệm Dài Tên", ZoneKind.PROVINCE)
            zones.move_zone(
                session, zones.get_zone(session, COMMUNE[0]), zones.get_zone(session, "tinh-thu")
            )
            for key, name in (("xa-hai", "Xã Hai"), ("xa-ba", "Phường Ba Đình Rất Dài Tên")):
                zones.create_zone(session, key, name, ZoneKind.COMMUNE, "tinh-thu")
            editor = accounts.create_user(
                session, "bientap", PASSWORD, Role.PROVINCE_EDITOR, "tinh-thu"
            ).id
            accounts.create_user(session, "quantri-tinh", PASSWORD, Role.ADMIN, "tinh-thu")
            accounts.create_user(session, "canbo-hai", PASSWORD, Role.OFFICER, "xa-hai")
        # a normal bulletin sent down: it waits in each commune's inbox (nothing to dispatch)
        bulletin = service.bulletins.create_bulletin(
            editor, "Lịch tiêm phòng dại toàn tỉnh", "Tỉnh thông báo lịch tiêm phòng dại."
        )
        service.source_bulletins.send_down(editor, bulletin, ["xa-hai", "xa-ba"], "normal")
    finally:
        service.stop()
    return "bientap"


MAX_PAGES_PER_ROLE = 60
# links a crawl must not follow: files, streams, the API, leaving the session or the language
SKIPPED = re.compile(r"^/(auth/logout|media/|metrics|api/)|\.(csv|json|svg|mp3|xml|ics)$|/events$")


def url_pattern(url: str) -> str:
    """One page per kind: numbers and ids do not make a new page, nor do query values, except
    a list's status filter (each status is a state of its own)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    keys = sorted({key for key, _value in query} - {"page", "status"})
    keys += sorted(f"status={value}" for key, value in query if key == "status")
    return re.sub(r"\d+", "N", parts.path) + ("?" + "&".join(keys) if keys else "")


def crawl(page: Page, base: str) -> Iterator[str]:
    """Every kind of page reachable by links from the dashboard (each kind once), visited in
    turn; yields each path once the page has loaded."""
    queue = ["/"]
    seen = {url_pattern("/")}
    for _visit in range(MAX_PAGES_PER_ROLE):
        if not queue:
            return
        path = queue.pop(0)
        response = page.goto(base + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        yield path
        hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        for href in hrefs:
            parts = urlsplit(urljoin(page.url, href))
            if parts.netloc != urlsplit(base).netloc or "lang=" in parts.query:
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if SKIPPED.search(parts.path) or url_pattern(target) in seen:
                continue
            seen.add(url_pattern(target))
            queue.append(target)
    raise AssertionError(f"more than {MAX_PAGES_PER_ROLE} kinds of page: {sorted(seen)}")


# WCAG 2.1 A and AA; a serious or critical violation of any of them fails a test.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_RUN_JS = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: { type: "tag", values: tags }, resultTypes: ["violations"],
  });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   targets: v.nodes.slice(0, 4).map((n) => n.target.join(" ")) }));
}"""


def axe_script() -> str:
    if not axe_core.AXE_JS.exists():
        pytest.fail(
            f"axe-core {axe_core.VERSION} missing at {axe_core.AXE_JS}: "
            "run `make test` or `python tests/axe_core.py` (needs npm)"
        )
    return axe_core.AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Page, where: str) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it stands, one
    line each: rule, impact, selectors, page. Injected with `evaluate` (a devtools call, not a
    script tag), so the site's CSP stays as it is."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_script())
    found: list[dict[str, Any]] = page.evaluate(AXE_RUN_JS, AXE_TAGS)
    return [
        f"{where}: {v['id']} ({v['impact']}: {v['help']}) at {' | '.join(v['targets'])}"
        for v in found
    ]
