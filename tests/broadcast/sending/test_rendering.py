"""Content to media: the same text is synthesized and assembled once."""

from __future__ import annotations

from broadcast.service import BroadcastService


def test_repeat_is_served_from_cache(service: BroadcastService) -> None:
    first = service.renderer.render("Thông báo lịch tiêm chủng lúc 7h30 ngày 21/3.")
    again = service.renderer.render("Thông báo lịch tiêm chủng lúc 7h30 ngày 21/3.")
    assert first.sha256 == again.sha256
    assert not first.cached and again.cached
    assert service.media.exists(first.sha256)
    other = service.renderer.render("Thông báo mất điện.")
    assert other.sha256 != first.sha256


def test_lost_media_is_rendered_again(service: BroadcastService) -> None:
    first = service.renderer.render("Họp thôn lúc 19h00.")
    service.media.path(first.sha256).unlink()
    again = service.renderer.render("Họp thôn lúc 19h00.")
    assert again.sha256 == first.sha256
    assert service.media.exists(again.sha256)
