"""A village head goes live from a phone (360 px): Chromium's fake microphone (a beep) is the
voice, `loa demo` runs a real Icecast on a free port, every receiver of the village plays the
stream and none elsewhere, "Kết thúc" stops it and the broadcast's page plays the recording."""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext, expect
from processes import http_json, played_lines
from support import free_port

from broadcast.fleet import streaming

from .conftest import PHONE, ConsoleWatch, DemoSystem, overflow, screenshot, sign_in

DEMO_ARGS = ("--stream-port", str(free_port()))


def _deliveries(demo_system: DemoSystem, broadcast_id: int) -> dict[str, str]:
    status, body = http_json(
        "GET", f"{demo_system.base}/api/v1/announcements/{broadcast_id}", demo_system.api_token
    )
    assert status == 200, body
    return {delivery["device"]: delivery["state"] for delivery in body["deliveries"]}


def _wait(what: str, check, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"not {what} within {timeout_s} s"
        time.sleep(0.3)
    return value


def test_village_head_goes_live_from_a_phone(
    demo_system: DemoSystem, phone: BrowserContext, console: ConsoleWatch
) -> None:
    assert streaming.find_icecast(), streaming.MISSING_MESSAGE
    base = demo_system.base
    phone.grant_permissions(["microphone"], origin=base)
    page = phone.new_page()
    sign_in(page, base, "truongthon1")
    page.goto(f"{base}/announce/")
    page.locator("#go-live").click()
    expect(page.get_by_role("heading", name="Phát trực tiếp")).to_be_visible()
    expect(page.get_by_label("Thôn 1")).to_be_checked()
    expect(page.locator("#live-on-air")).to_be_hidden()
    page.wait_for_load_state("load")
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "village-head-live")

    page.get_by_role("button", name="Bắt đầu phát trực tiếp").click()
    # amber while the loudspeakers ring their chime, counting down to when the voice is heard
    expect(page.locator("#live-status")).to_contain_text(
        "Loa đang đổ chuông báo: bắt đầu nói sau", timeout=15_000
    )
    expect(page.locator("#live-on-air")).to_have_class("card live-on-air chime")
    expect(page.locator("#live-status")).to_have_text(
        "Đang phát trực tiếp: mời nói", timeout=15_000
    )
    expect(page.locator("#live-on-air")).to_have_class("card live-on-air on")
    expect(page.locator("#live-form")).to_be_hidden()
    broadcast_id = int(
        page.locator("#live-on-air").get_attribute("action").rstrip("/").split("/")[-2]  # type: ignore[union-attr]
    )
    village = set(demo_system.devices["thon-1"])
    _wait(
        "playing on every receiver of Thôn 1",
        lambda: _deliveries(demo_system, broadcast_id) == dict.fromkeys(village, "playing"),
    )
    _wait(
        "the microphone heard",
        lambda: float(page.locator("#live-level").get_attribute("value") or 0) > 0,
    )
    assert overflow(page, PHONE["width"]) == []
    screenshot(page, "village-head-on-air")
    time.sleep(2)  # a little speech

    page.get_by_role("button", name="Kết thúc").click()
    page.wait_for_url(f"{base}/announce/{broadcast_id}", timeout=15_000)
    expect(page.locator("#status")).to_have_text("Đã kết thúc")  # by its speaker: not a stop
    _wait(
        "stopped on every receiver",
        lambda: set(_deliveries(demo_system, broadcast_id).values()) == {"stopped"},
    )
    for device_id in village:
        plays = [
            p
            for p in played_lines(demo_system.receivers_dir, device_id)
            if p["broadcast_id"] == broadcast_id
        ]
        chime, *voice = plays  # the chime first, as every notice begins
        assert chime["content"] == "media", plays
        assert voice and all(p["content"] == "relay" and p["bytes"] > 0 for p in voice), plays
    for device_id in demo_system.devices["thon-2"]:
        assert all(
            p["broadcast_id"] != broadcast_id
            for p in played_lines(demo_system.receivers_dir, device_id)
        )

    def recorded() -> bool:
        page.reload()
        return page.locator("audio").count() == 1

    _wait("the recording on the broadcast's page", recorded)
    assert "token=" not in page.content()
    assert overflow(page, PHONE["width"]) == []
