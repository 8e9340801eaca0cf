"""Accessibility in a real browser (issue 17): axe-core's WCAG 2.1 A/AA rules on every page and
state a user can reach, and what axe cannot see on a village head's phone.

The sweep signs in as each role (the province's too), in Vietnamese and English, crawls every
kind of page its links lead to and the states no link leads to (forms with errors, the confirm
step, a notice playing live, every status of a list), and runs axe at 360 px and again at
1280 px. Every page route of the app must have been swept: a page added later fails
`test_every_page_route_is_swept` until the sweep reaches it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import axe_core
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from processes import http_json, wait_for_status
from werkzeug.exceptions import HTTPException

from broadcast.service import BroadcastService
from broadcast.settings import Settings
from web import create_app

from .conftest import (
    DESKTOP,
    PASSWORD,
    PHONE,
    ConsoleWatch,
    DemoSystem,
    artifacts_dir,
    axe_violations,
    crawl,
    overflow,
    sign_in,
    url_pattern,
)

# the sweep visits every page of every role in two languages at two widths, in one fixture: it
# grows with the app (about 300 s on a 2-core machine with the replay pages), past the suite's
# default per-test limit
pytestmark = pytest.mark.timeout(900)

USERS = ("truongthon1", "canbo", "lanhdao", "xem", "admin", "bientap", "quantri-tinh", "canbo-hai")
LANGS = ("vi", "en")
# GET routes that are not pages a person reads: files, streams, redirects, machine endpoints
NOT_PAGES = {
    "admin.device_config",  # JSON for a receiver
    "admin.device_config_svg",  # the QR code's image, shown inside admin.device_qr
    "admin.index",  # redirects to admin.users
    "announce.events",  # server-sent events of the delivery page
    "announce.status",  # JSON of the delivery page
    "calendar.feed",  # an iCalendar file for a phone's calendar app, linked from calendar.week
    "favicon",
    "listen.feed",  # the podcast's RSS
    "media.media",
    "metrics.metrics",
    "province.monthly_csv",
    "reports.broadcasts_csv",
    "reports.deliveries_csv",
    "reports.monthly_csv",
    "static",
}
BULLETIN_TEXT = (
    "Ủy ban nhân dân xã thông báo lịch tiêm phòng dại cho chó, mèo tại nhà văn hóa thôn,"
    " từ 7 giờ 30 đến 11 giờ sáng chủ nhật."
)


@dataclass
class Sweep:
    """What the sweep found: axe's violations, pages wider than the phone, the endpoints it
    swept, console errors."""

    violations: list[str] = field(default_factory=list)
    overflows: list[str] = field(default_factory=list)
    unmarked: list[str] = field(default_factory=list)
    endpoints: set[str] = field(default_factory=set)
    pages: int = 0
    console: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _page_routes() -> tuple[dict[str, str], Callable[[str], str]]:
    """The app's GET routes outside the API (endpoint: rule), and a matcher from a path to its
    endpoint, from the app itself (a route added later is in here)."""
    with tempfile.TemporaryDirectory() as scratch:
        service = BroadcastService(Settings(data_dir=Path(scratch)), connect_mqtt=False)
        try:
            app = create_app(service)
        finally:
            service.stop()
    routes = {
        rule.endpoint: rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.rule.startswith("/api")
    }
    adapter = app.url_map.bind("localhost")

    def endpoint(path: str) -> str:
        try:
            matched, _args = adapter.match(path.split("?", 1)[0], method="GET")
        except HTTPException:  # the error page of a missing page
            return ""
        return str(matched)

    return routes, endpoint


def _seed_states(system: DemoSystem) -> dict[str, int]:
    """Bulletins in every approval status and notices finished and stopped, through the API."""
    base = system.base

    def call(method: str, path: str, user: str, body: Any = None) -> dict[str, Any]:
        status, answer = http_json(method, f"{base}/api/v1{path}", system.tokens[user], body)
        assert status in (200, 201), (path, status, answer)
        return answer

    made = {}
    for state in ("draft", "submitted", "approved", "rejected"):
        made[state] = call(
            "POST",
            "/bulletins",
            "canbo",
            {"title": f"Bản tin {state}", "text": BULLETIN_TEXT, "submit": state != "draft"},
        )["id"]
    call("POST", f"/bulletins/{made['approved']}/approve", "lanhdao", {"comment": "Đồng ý."})
    call("POST", f"/bulletins/{made['rejected']}/reject", "lanhdao", {"comment": "Ghi rõ giờ."})
    finished = call(
        "POST",
        "/announcements",
        "canbo",
        {"text": "Thông báo toàn xã: kiểm tra loa.", "zones": ["xa-hoang-hop"], "repeat": 1},
    )["id"]
    wait_for_status(base, system.api_token, finished, {"finished"})
    stopped = call(
        "POST",
        "/announcements",
        "truongthon1",
        {"text": "Thông báo thôn 1: họp thôn tối nay.", "zones": ["thon-1"], "repeat": 3},
    )["id"]
    call("POST", f"/announcements/{stopped}/cancel", "truongthon1", {})
    made.update(finished=finished, stopped=stopped)
    return made


def _submit_unchecked(page: Page, form: str) -> None:
    """Submits the form past the browser's own checks, for the server's error page."""
    page.locator(form).first.evaluate("(form) => { form.noValidate = true; }")
    page.locator(f"{form} button[type=submit]").first.click()
    page.wait_for_load_state("load")


def _states(
    page: Page, base: str, user: str, seeded: dict[str, int], console: ConsoleWatch
) -> Iterator[str]:
    """The states of the user's pages no link leads to; yields a name once each is shown."""
    if user == "truongthon1":
        page.goto(f"{base}/announce/?mode=text")
        page.locator("#text").fill(" ")
        page.locator("#announce-form button[type=submit]").click()
        page.wait_for_load_state("load")
        console.allow(page.url, 400)
        yield "announce: empty text"
        page.goto(f"{base}/announce/?template=bao")
        yield "announce: a template"
        # the crawl sees one /announce/?mode=… page: the other modes are states of their own
        page.goto(f"{base}/announce/?mode=record")
        yield "announce: recording"
        page.goto(f"{base}/announce/?mode=template")
        yield "announce: the templates"
        page.goto(f"{base}/announce/?mode=text")
        page.locator("#text").fill("Thông báo thôn 1: mời bà con đi họp lúc 19 giờ.")
        page.locator("#announce-form button[type=submit]").click()
        page.locator("#confirm-form").wait_for()
        yield "announce: confirm"
        page.locator("#confirm-form button[value=send]").click()
        page.locator("#deliveries").wait_for()
        yield "announce: live"
        _stop(page)
        page.goto(f"{base}/announce/{seeded['stopped']}")
        yield "announce: stopped"
    if user == "canbo":
        page.goto(f"{base}/bulletins/new")
        _submit_unchecked(page, "form.card")
        console.allow(page.url, 400)
        yield "bulletin: empty"
        page.goto(f"{base}/bulletins/new")
        page.locator("textarea").first.fill(BULLETIN_TEXT)
        page.locator("form.card button[type=submit]").first.click()
        page.wait_for_load_state("load")
        yield "bulletin: script"
        for state in ("draft", "submitted", "approved", "rejected"):
            page.goto(f"{base}/bulletins/{seeded[state]}")
            yield f"bulletin: {state}"
        page.goto(f"{base}/bulletins/{seeded['rejected']}/edit")
        yield "bulletin: edit"
        yield from _replay_states(page, base, seeded, console)
    if user == "admin":
        page.goto(f"{base}/admin/users")
        _submit_unchecked(page, "#new-user")
        console.allow(page.url, 400)
        yield "admin: new user, empty"
        page.goto(f"{base}/reports/monthly?month=13-2026")
        console.allow(page.url, 400)
        yield "reports: a wrong month"
        console.allow(f"{base}/no-such-page", 404)
        response = page.goto(f"{base}/no-such-page")
        assert response is not None and response.status == 404
        yield "a missing page"


def _replay_states(
    page: Page, base: str, seeded: dict[str, int], console: ConsoleWatch
) -> Iterator[str]:
    """Nghe lại: the officer opens the commune's public page (once: the second language finds
    it open), then a listener's page, the feedback form, refused empty, and its thanks."""
    page.goto(f"{base}/replay/?commune=xa-hoang-hop")
    if page.locator("#replay-switch input[name=public][value='1']").count():
        page.locator("#replay-switch button[type=submit]").click()
        page.wait_for_load_state("load")
    yield "replay: open"
    page.goto(f"{base}/nghe-lai/xa-hoang-hop/")
    yield "replay: the public page"
    form = f"{base}/nghe-lai/xa-hoang-hop/{seeded['finished']}/gop-y"
    page.goto(form)
    yield "replay: feedback form"
    page.locator("form.card button[type=submit]").click()
    page.wait_for_load_state("load")
    console.allow(page.url, 400)
    yield "replay: feedback empty"
    page.locator("#text").fill("Loa ở thôn 2 nghe nhỏ, xin chỉnh to hơn.")
    page.locator("form.card button[type=submit]").click()
    page.wait_for_load_state("load")
    yield "replay: thanks"
    page.goto(f"{base}/replay/feedback")
    yield "replay: feedback to moderate"


# Text in Vietnamese (its own letters: ă â đ ê ô ơ ư, and the tones on them) whose element says
# it is not: a screen reader reading English would mispronounce it.
UNMARKED_VI_JS = """() => {
  const vietnamese = /[ăâđêôơưĂÂĐÊÔƠƯạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]/;
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest("script") || !vietnamese.test(node.textContent)) continue;
    const marked = el.closest("[lang]");
    if (!marked || !marked.lang.startsWith("vi")) {
      found.push(`<${el.tagName.toLowerCase()}${el.className ? "." + el.className : ""}> `
        + node.textContent.trim().slice(0, 40));
    }
  }
  return found.slice(0, 5);
}"""


def _check(page: Page, where: str, found: Sweep) -> None:
    """axe at 360 px and at 1280 px; the width of the page at 360 px; Vietnamese marked as
    such on an English page."""
    page.wait_for_load_state("load")
    found.pages += 1
    if page.evaluate("document.documentElement.lang") == "en":
        found.unmarked += [f"{where}: {text}" for text in page.evaluate(UNMARKED_VI_JS)]
    found.violations += axe_violations(page, f"{where} @360")
    found.overflows += [f"{where}: {problem}" for problem in overflow(page, PHONE["width"])]
    page.set_viewport_size(DESKTOP)
    found.violations += axe_violations(page, f"{where} @1280")
    page.set_viewport_size(PHONE)


@pytest.fixture(scope="module")
def sweep(demo_system: DemoSystem, province: str, browser: Browser) -> Sweep:
    started = time.monotonic()
    routes, endpoint = _page_routes()
    seeded = _seed_states(demo_system)
    base = demo_system.base
    found = Sweep()
    console = ConsoleWatch()
    for lang in LANGS:
        context = _phone(browser, console)
        try:
            page = context.new_page()
            page.goto(f"{base}/auth/login?lang={lang}")
            _check(page, f"{lang} anonymous /auth/login", found)
            found.endpoints.add("auth.login")
            page.locator("#username").fill("canbo")
            page.locator("#password").fill("sai-mat-khau")
            page.locator("form button[type=submit]").click()
            page.wait_for_load_state("load")
            for status in (400, 401, 403):
                console.allow(page.url, status)
            _check(page, f"{lang} anonymous: a wrong password", found)
        finally:
            context.close()
        for user in USERS:
            context = _phone(browser, console)
            try:
                page = context.new_page()
                password = demo_system.admin_password if user == "admin" else PASSWORD
                sign_in(page, base, user, password)
                page.goto(f"{base}/?lang={lang}")
                for path in crawl(page, base):
                    found.endpoints.add(endpoint(path))
                    _check(page, f"{lang} {user} {url_pattern(path)}", found)
                for state in _states(page, base, user, seeded, console):
                    found.endpoints.add(endpoint(urlsplit(page.url).path))
                    _check(page, f"{lang} {user} {state}", found)
            finally:
                context.close()
            print(f"{lang} {user}: {found.pages} pages, {time.monotonic() - started:.0f} s")
    found.console = console.unexpected()
    found.seconds = time.monotonic() - started
    found.endpoints &= set(routes)
    return found


def _phone(browser: Browser, console: ConsoleWatch) -> BrowserContext:
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
    return context


def test_no_serious_wcag_violation_on_any_page(sweep: Sweep) -> None:
    print(f"swept {sweep.pages} pages in {sweep.seconds:.0f} s")
    assert sweep.violations == [], "\n".join(sweep.violations)


def test_every_page_fits_a_phone(sweep: Sweep) -> None:
    assert sweep.overflows == [], "\n".join(sweep.overflows)


def test_vietnamese_content_is_marked_on_english_pages(sweep: Sweep) -> None:
    assert sweep.unmarked == [], "Vietnamese without lang=vi:\n" + "\n".join(sweep.unmarked)


def test_every_page_route_is_swept(sweep: Sweep) -> None:
    routes, _endpoint = _page_routes()
    missing = sorted(set(routes) - NOT_PAGES - sweep.endpoints)
    assert missing == [], (
        f"pages the accessibility sweep never reached: {missing}; give the sweep a way there"
        " (a link, or a state in _states) or, if it is no page, add it to NOT_PAGES"
    )


def test_the_sweep_met_no_console_error(sweep: Sweep) -> None:
    assert sweep.console == []


# ---- what axe cannot see: a village head's phone (issue 17) ----

# Interactive elements as a finger meets them: a checkbox or radio by its label (the label is
# what takes the tap), hidden ones and those in closed <details> left out.
TARGETS_JS = """() => {
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${
    (el.textContent || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 30)}"`;
  const found = [];
  for (const el of document.querySelectorAll(
      "a[href], button, input:not([type=hidden]), select, textarea, summary")) {
    if (!el.checkVisibility()) continue;
    const target = (el.type === "checkbox" || el.type === "radio") && el.closest("label")
      ? el.closest("label") : el;
    const box = target.getBoundingClientRect();
    found.push({ name: name(el), width: box.width, height: box.height,
                 box: [box.left, box.top, box.right, box.bottom] });
  }
  return found;
}"""

# Every visible piece of text: its font size and its contrast with the background it sits on
# (the first opaque background of its ancestors; the page's is #fafafa).
TEXT_JS = """() => {
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = (el) => {
    for (let up = el; up; up = up.parentElement) {
      const color = rgb(getComputedStyle(up).backgroundColor);
      if (color.length === 3 || color[3] === 1) return color.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (!text || !el || !el.checkVisibility() || el.closest("script, .visually-hidden")) continue;
    const style = getComputedStyle(el);
    const [l1, l2] = [luminance(rgb(style.color)), luminance(background(el))];
    const contrast = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    found.push({ text: text.slice(0, 40), tag: el.tagName.toLowerCase(),
                 size: parseFloat(style.fontSize), contrast });
  }
  return found;
}"""


def _stop(page: Page) -> None:
    """Stops the notice on its delivery page (the village's receivers are free again)."""
    if page.locator("#cancel-form").count():
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator("#cancel-form button[type=submit]").click()
        page.wait_for_load_state("load")


def _village_head_path(page: Page, base: str, lang: str, stop: bool = True) -> Iterator[str]:
    """The pages of a village head's urgent notice, in order: sign in, dashboard, the form
    (recording, template list, a template, text), the confirm step, the live delivery page
    (the notice stopped afterwards unless `stop` is false)."""
    page.goto(f"{base}/auth/login?lang={lang}")
    yield "sign in"
    page.locator("#username").fill("truongthon1")
    page.locator("#password").fill(PASSWORD)
    page.locator("form.card button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    yield "dashboard"
    page.goto(f"{base}/announce/?mode=record")
    yield "recording"
    page.goto(f"{base}/announce/?mode=template")
    yield "templates"
    page.goto(f"{base}/announce/?template=hop_thon")
    yield "a template"
    page.goto(f"{base}/announce/?mode=text")
    yield "text"
    page.locator("#text").fill("Thông báo: mời bà con thôn 1 đi họp lúc 19 giờ tối nay.")
    page.locator("#announce-form button[type=submit]").click()
    page.locator("#confirm-form").wait_for()
    yield "confirm"
    page.locator("#confirm-form button[value=send]").click()
    page.locator("#deliveries").wait_for()
    yield "live"
    if stop:
        _stop(page)


@pytest.mark.parametrize("lang", LANGS)
def test_every_action_on_a_village_heads_path_is_44px(
    demo_system: DemoSystem, phone: BrowserContext, lang: str
) -> None:
    page = phone.new_page()
    small = []
    for step in _village_head_path(page, demo_system.base, lang):
        page.wait_for_load_state("load")
        for target in page.evaluate(TARGETS_JS):
            if target["width"] < 44 or target["height"] < 44:
                small.append(
                    f"{step}: {target['name']} {target['width']:.0f}×{target['height']:.0f}"
                )
    assert small == [], "smaller than 44 × 44 px:\n" + "\n".join(small)


@pytest.mark.parametrize("lang", LANGS)
def test_text_on_a_village_heads_path_is_16px_with_aa_contrast(
    demo_system: DemoSystem, phone: BrowserContext, lang: str
) -> None:
    page = phone.new_page()
    problems = []
    for step in _village_head_path(page, demo_system.base, lang):
        page.wait_for_load_state("load")
        for text in page.evaluate(TEXT_JS):
            if text["size"] < 15.9 or text["contrast"] < 4.5:
                problems.append(
                    f"{step}: <{text['tag']}> {text['text']!r} {text['size']:.1f} px,"
                    f" contrast {text['contrast']:.2f}"
                )
    assert problems == [], "too small or too faint:\n" + "\n".join(sorted(set(problems)))


def test_sign_out_is_far_from_the_urgent_button_and_asks_first(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    page = phone.new_page()
    sign_in(page, demo_system.base, "truongthon1")
    for path in ("/", "/announce/?mode=text"):
        page.goto(demo_system.base + path)
        out = page.locator("#logout-form button").bounding_box()
        assert out is not None
        for urgent in page.locator("a.urgent, button.urgent").all():
            box = urgent.bounding_box()
            assert box is not None
            gap = out["y"] - (box["y"] + box["height"])
            assert gap >= 120, f"{path}: sign-out {gap:.0f} px below an urgent button"
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("#logout-form button").click()
    page.wait_for_timeout(300)
    assert len(asked) == 1, "signing out did not ask first"
    page.goto(demo_system.base + "/")
    assert "/auth/login" not in page.url, "a dismissed sign-out signed the village head out"


# Controls drawn over one another, and boxes that cut their own text off.
OVERLAP_JS = """() => {
  const controls = Array.from(document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, label"))
    .filter((el) => el.checkVisibility());
  const boxes = controls.map((el) => [el, el.getBoundingClientRect()]);
  const problems = [];
  for (let i = 0; i < boxes.length; i++) {
    const [a, p] = boxes[i];
    for (let j = i + 1; j < boxes.length; j++) {
      const [b, q] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const dx = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const dy = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (dx > 1 && dy > 1) {
        problems.push(`overlap: ${a.outerHTML.slice(0, 60)} / ${b.outerHTML.slice(0, 60)}`);
      }
    }
  }
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (style.overflowX === "visible" && style.overflowY === "visible") continue;
    if (el.matches(".visually-hidden, table.stack thead") || !el.checkVisibility()) continue;
    const cutX = style.overflowX === "hidden" && el.scrollWidth > el.clientWidth + 1;
    const cutY = style.overflowY === "hidden" && el.scrollHeight > el.clientHeight + 1;
    if (cutX || cutY) {
      problems.push(`clipped: ${el.outerHTML.slice(0, 80)}`);
    }
  }
  return problems;
}"""


@pytest.mark.parametrize("lang", LANGS)
def test_a_village_heads_path_at_200_percent_text_on_a_320px_phone(
    demo_system: DemoSystem, browser: Browser, console: ConsoleWatch, lang: str
) -> None:
    """Android's text scaling at 200 % (the root font size doubled: every size is in rem or em)
    on the narrowest phone: nothing wider than the screen, no control over another, no text cut
    off."""
    context = browser.new_context(
        viewport={"width": 320, "height": 640}, is_mobile=True, has_touch=True, locale="vi-VN"
    )
    console.watch(context)
    try:
        context.add_init_script(
            "document.addEventListener('DOMContentLoaded', () => {"
            " document.documentElement.style.fontSize = '200%'; });"
        )
        page = context.new_page()
        problems = []
        for step in _village_head_path(page, demo_system.base, lang):
            page.wait_for_load_state("load")
            assert page.evaluate("getComputedStyle(document.body).fontSize") == "32px"
            problems += [f"{step}: {problem}" for problem in overflow(page, 320)]
            problems += [f"{step}: {problem}" for problem in page.evaluate(OVERLAP_JS)]
            if problems:
                page.screenshot(path=str(_artifact(f"text-200-{lang}-{step}")), full_page=True)
        assert problems == [], "\n".join(problems)
    finally:
        context.close()


def _artifact(name: str) -> Path:
    return artifacts_dir() / f"{name.replace(' ', '-')}.png"


# The element focused after each Tab: where it is and whether its focus ring shows.
FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2
    || style.boxShadow !== "none";
  const box = el.getBoundingClientRect();
  const text = (el.textContent || el.name || "").trim().slice(0, 30);
  return { name: `${el.tagName.toLowerCase()} ${text}`,
           ring, top: box.top + window.scrollY, key: el.outerHTML.slice(0, 120) };
}"""


def _tab_through(page: Page, limit: int = 60) -> list[dict[str, Any]]:
    page.evaluate(
        "() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }"
    )
    seen: list[dict[str, Any]] = []
    for _press in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        if focused is None or (seen and focused["key"] == seen[0]["key"]):
            break
        seen.append(focused)
    return seen


def _wait_for_the_player(page: Page, timeout_s: float = 60) -> None:
    """The delivery page shows the notice's player once its speech is made; the tab order
    is checked with it there, whatever the machine's speed."""
    deadline = time.monotonic() + timeout_s
    while page.locator("audio").count() == 0:
        assert time.monotonic() < deadline, "the delivery page never showed the notice's player"
        page.wait_for_timeout(500)
        page.reload()
        page.wait_for_load_state("load")


def test_keyboard_reaches_every_action_in_order_with_a_visible_focus(
    demo_system: DemoSystem, desktop: BrowserContext
) -> None:
    page = desktop.new_page()
    problems = []
    reached: dict[str, list[str]] = {}
    for step in _village_head_path(page, demo_system.base, "vi"):
        page.wait_for_load_state("load")
        if step not in ("sign in", "a template", "confirm", "live"):
            continue
        if step == "live":
            _wait_for_the_player(page)
        order = _tab_through(page)
        reached[step] = [item["name"] for item in order]
        problems += [
            f"{step}: no focus ring on {item['name']}" for item in order if not item["ring"]
        ]
        tops = [item["top"] for item in order]
        problems += [
            f"{step}: focus jumps up from {order[i - 1]['name']} to {order[i]['name']}"
            for i in range(1, len(tops))
            if tops[i] < tops[i - 1] - 60
        ]
        positive = page.locator("[tabindex]:not([tabindex='0']):not([tabindex='-1'])").count()
        if positive:
            problems.append(f"{step}: {positive} elements reorder the tab sequence (tabindex > 0)")
    assert problems == [], "\n".join(problems)
    assert any("Đăng nhập" in name for name in reached["sign in"])
    assert any("Xem lại trước khi phát" in name for name in reached["a template"])
    assert any("Xác nhận phát" in name for name in reached["confirm"])
    assert any("Dừng phát" in name or "Đính chính" in name for name in reached["live"])
    assert any(name.startswith("audio") for name in reached["live"])


def test_the_live_delivery_page_announces_its_progress(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    """The summary is a polite live region that ends by saying what the list shows."""
    page = phone.new_page()
    for _step in _village_head_path(page, demo_system.base, "vi", stop=False):
        pass
    summary = page.locator("#summary")
    assert summary.get_attribute("role") == "status"
    assert summary.get_attribute("aria-live") == "polite"
    total = page.locator("#deliveries li.delivery").count()
    expect(summary).to_contain_text(f"{total}/{total} cụm loa đã phát xong", timeout=90_000)
    expect(page.locator("#deliveries li.state-finished")).to_have_count(total)


def test_a_templates_examples_are_placeholders_not_values(
    demo_system: DemoSystem, phone: BrowserContext
) -> None:
    """An example shows in the field's placeholder style and is gone once the head types:
    nothing looks filled in that was not."""
    page = phone.new_page()
    sign_in(page, demo_system.base, "truongthon1")
    page.goto(f"{demo_system.base}/announce/?template=bao")
    fields = page.locator("#announce-form input[type=text]")
    assert fields.count() >= 1
    for field_ in fields.all():
        assert field_.input_value() == ""
        assert (field_.get_attribute("placeholder") or "").startswith("Ví dụ: ")
    style = fields.first.evaluate(
        "(el) => { const s = getComputedStyle(el, '::placeholder');"
        " return [s.fontStyle, s.color, getComputedStyle(el).color]; }"
    )
    assert style[0] == "italic" and style[1] != style[2], style


def test_axe_core_is_taken_only_from_the_pinned_tarball(tmp_path: Path) -> None:
    """A tarball whose sha512 is not the pinned release's is refused before anything is read
    from it; the script in place is the pinned release."""
    with pytest.raises(SystemExit, match="integrity"):
        axe_core.extract(b"not the axe-core release", tmp_path / "axe.min.js")
    assert not (tmp_path / "axe.min.js").exists()
    assert axe_core.AXE_JS.read_text(encoding="utf-8").startswith(f"/*! axe v{axe_core.VERSION}")
