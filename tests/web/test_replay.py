"""Nghe lại over HTTP: the public page and podcast without an account, their caching (ETag,
Last-Modified, 304s), the feed as a podcast app reads it (valid RSS 2.0, absolute enclosures
that resolve to the media's bytes), the feedback form's refusals (400s, 429, never a 5xx), and
the officer's pages: the commune's switch, internal items and moderation."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from media_support import silent_mp3
from service_support import Province
from web_support import csrf_token, login

from broadcast.service import BroadcastService
from broadcast.store.models import Broadcast, Bulletin, Feedback, Zone, utcnow
from web import create_app

ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
TRICKY_TITLE = 'Họp <thôn> & "xã" ]]>'


@dataclass
class World:
    service: BroadcastService
    province: Province
    app: Flask
    ids: dict[str, int]
    sha: str
    media: bytes


def _broadcast(session: object, title: str, zones: list[str], sha: str, **fields: object) -> int:
    broadcast = Broadcast(
        title=title,
        text=fields.pop("text", f"Nội dung {title}."),
        priority="normal",
        zone_ids=zones,
        source="announcement",
        status=fields.pop("status", "finished"),
        play_at=fields.pop("play_at", utcnow() - timedelta(hours=2)),
        media_sha256=sha,
        **fields,
    )
    session.add(broadcast)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return broadcast.id


@pytest.fixture
def world(service: BroadcastService, province: Province) -> World:
    media = silent_mp3()
    sha = service.media.put_bytes(media)
    ids: dict[str, int] = {}
    with service.db.session() as session:
        session.get(Zone, province.commune_a).replay_public = True
        ids["newest"] = _broadcast(
            session, TRICKY_TITLE, [province.commune_a], sha, play_at=utcnow() - timedelta(hours=1)
        )
        ids["village"] = _broadcast(session, "Tin thôn An", [province.village_a], sha)
        ids["cancelled"] = _broadcast(
            session, "Tin đã dừng", [province.village_a], sha, status="cancelled"
        )
        ids["internal"] = _broadcast(
            session, "Tin nội bộ", [province.village_a], sha, internal=True
        )
        ids["old"] = _broadcast(
            session, "Tin tháng trước", [province.village_a], sha,
            play_at=utcnow() - timedelta(days=40),
        )  # fmt: skip
        ids["other"] = _broadcast(session, "Tin xã Bình", [province.village_b], sha)
    app = create_app(service, {"TESTING": True})
    return World(service, province, app, ids, sha, media)


def _client(world: World) -> FlaskClient:
    return world.app.test_client()


def _page_url(world: World, commune: str | None = None) -> str:
    return f"/nghe-lai/{commune or world.province.commune_a}/"


# --- the page ---------------------------------------------------------------------------------


def test_the_page_needs_no_account_and_lists_what_was_broadcast(world: World) -> None:
    response = _client(world).get(_page_url(world))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert '<html lang="vi">' in body and "Nghe lại" in body
    assert "Họp &lt;thôn&gt; &amp; &#34;xã&#34; ]]&gt;" in body  # escaped
    assert body.index("Họp &lt;thôn&gt;") < body.index("Tin thôn An")  # newest first
    for hidden in ("Tin đã dừng", "Tin nội bộ", "Tin tháng trước", "Tin xã Bình"):
        assert hidden not in body
    assert body.count(f'src="/media/{world.sha}.mp3"') == 2
    assert "Set-Cookie" not in response.headers  # no session: the same page for everyone


def test_the_page_in_english(world: World) -> None:
    body = _client(world).get(_page_url(world) + "?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in body and "Replay" in body
    assert '<span lang="vi">Tin thôn An</span>' in body


@pytest.mark.parametrize("commune", ["xa-binh", "thon-an-1", "tinh-thu", "khong-co", "x" * 300])
def test_a_closed_or_unknown_commune_is_not_found(world: World, commune: str) -> None:
    assert _client(world).get(f"/nghe-lai/{commune}/").status_code == 404
    assert _client(world).get(f"/nghe-lai/{commune}/podcast.xml").status_code == 404


def test_the_media_is_served_without_an_account(world: World) -> None:
    response = _client(world).get(f"/media/{world.sha}.mp3")
    assert response.status_code == 200 and response.data == world.media


# --- caching ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "podcast.xml"])
def test_caching_headers_and_304s(world: World, path: str) -> None:
    client, url = _client(world), _page_url(world) + path
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] in ("public, max-age=300", "max-age=300, public")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    with world.service.db.session() as session:
        newest = session.get(Broadcast, world.ids["newest"])
        assert newest is not None and newest.play_at is not None
        expected = newest.play_at.replace(microsecond=0)
    assert parsedate_to_datetime(modified).replace(tzinfo=None) == expected
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and "max-age=300" in again.headers["Cache-Control"]
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(seconds=1), usegmt=True)
    assert client.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # another language is another representation
    assert client.get(url + "?lang=en", headers={"If-None-Match": etag}).status_code == 200
    # an item hidden changes what is shown: the old copy is stale
    world.service.replay.set_internal(world.province.officer_a, world.ids["village"], True)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


# --- the podcast --------------------------------------------------------------------------------


def test_the_feed_is_rss_a_podcast_app_reads(world: World) -> None:
    client = _client(world)
    response = client.get(_page_url(world) + "podcast.xml")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/rss+xml")
    root = ET.fromstring(response.data)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "Nghe lại · Xã An"
    assert channel.findtext("language") == "vi"
    assert channel.findtext("link") == "http://127.0.0.1:8099/nghe-lai/xa-an/"
    assert channel.find(f"{ITUNES}explicit") is not None
    items = channel.findall("item")
    assert [item.findtext("title") for item in items] == [TRICKY_TITLE, "Tin thôn An"]
    guids = [item.findtext("guid") for item in items]
    assert len(set(guids)) == 2 and all(g and g.startswith("http://127.0.0.1:8099/") for g in guids)
    for item in items:
        enclosure = item.find("enclosure")
        assert enclosure is not None and enclosure.get("type") == "audio/mpeg"
        url = enclosure.get("url") or ""
        assert url == f"http://127.0.0.1:8099/media/{world.sha}.mp3"
        assert int(enclosure.get("length") or 0) == len(world.media)
        fetched = client.get(urlsplit(url).path)
        assert fetched.status_code == 200 and fetched.data == world.media
        published = parsedate_to_datetime(item.findtext("pubDate") or "")
        assert published.tzinfo is not None  # RFC 822 with a zone
        assert int(item.findtext(f"{ITUNES}duration") or "0") >= 1
    assert items[0].findtext("description") == f"Nội dung {TRICKY_TITLE}."


def test_the_feed_drops_what_xml_cannot_carry(world: World) -> None:
    with world.service.db.session() as session:
        _broadcast(session, "Tin\x0bcó ký tự lạ", [world.province.commune_a], world.sha)
    response = _client(world).get(_page_url(world) + "podcast.xml")
    titles = [t.text for t in ET.fromstring(response.data).iter("title")]
    assert "Tincó ký tự lạ" in titles


# --- feedback -----------------------------------------------------------------------------------


def _form_url(world: World, item: str = "newest") -> str:
    return f"{_page_url(world)}{world.ids[item]}/gop-y"


def _post(client: FlaskClient, url: str, **data: object) -> tuple[int, str]:
    token = csrf_token(client, url)
    response = client.post(url, data={"csrf_token": token, **data})
    return response.status_code, response.get_data(as_text=True)


def test_feedback_is_thanked_and_waits_for_the_officer(world: World) -> None:
    client = _client(world)
    form = client.get(_form_url(world))
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    token = csrf_token(client, _form_url(world))
    response = client.post(
        _form_url(world),
        data={"csrf_token": token, "name": "Bác Ba", "text": "Loa thôn 2 nhỏ <quá>."},
    )
    assert response.status_code == 302 and "/cam-on" in response.headers["Location"]
    assert client.get(response.headers["Location"]).status_code == 200
    assert "Loa thôn 2" not in client.get(_page_url(world)).get_data(as_text=True)
    officer = _client(world)
    login(officer, "an-officer")
    listed = officer.get("/replay/feedback").get_data(as_text=True)
    assert "Loa thôn 2 nhỏ &lt;quá&gt;." in listed
    [feedback_id] = re.findall(r'id="feedback-(\d+)"', listed)
    other = _client(world)
    login(other, "binh-officer")
    assert "Loa thôn 2" not in other.get("/replay/feedback").get_data(as_text=True)
    token = csrf_token(other, "/replay/feedback")
    refused = other.post(
        f"/replay/feedback/{feedback_id}", data={"csrf_token": token, "decision": "approved"}
    )
    assert refused.status_code == 404
    token = csrf_token(officer, "/replay/feedback")
    approved = officer.post(
        f"/replay/feedback/{feedback_id}", data={"csrf_token": token, "decision": "approved"}
    )
    assert approved.status_code == 302
    assert "Loa thôn 2 nhỏ &lt;quá&gt;." in client.get(_page_url(world)).get_data(as_text=True)
    bad = officer.post(f"/replay/feedback/{feedback_id}", data={"csrf_token": token,
                                                               "decision": "xoá"})  # fmt: skip
    assert bad.status_code == 400


def test_feedback_without_the_csrf_token_is_refused(world: World) -> None:
    response = _client(world).post(_form_url(world), data={"text": "Góp ý."})
    assert response.status_code == 400
    with world.service.db.session() as session:
        assert session.query(Feedback).count() == 0


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 1001},
        {"text": "Tốt.", "name": "y" * 81},
        {"text": "có\x00NUL"},
        {"text": "Tốt.", "name": "hai\ndòng"},
        {"text": "\x1b[31m"},
        {"text": "x" * 100_000},
    ],
)
def test_bad_feedback_is_a_400_naming_what_is_wrong(world: World, data: dict[str, str]) -> None:
    status, body = _post(_client(world), _form_url(world), **data)
    assert status == 400
    if "\x00" not in data.get("text", ""):  # a NUL is refused before any view (`web.inputs`)
        assert 'role="alert"' in body and 'aria-invalid="true"' in body
    with world.service.db.session() as session:
        assert session.query(Feedback).count() == 0


@pytest.mark.parametrize(
    "path",
    [
        "{page}999999/gop-y",
        "{page}{cancelled}/gop-y",
        "{page}{internal}/gop-y",
        "{page}{other}/gop-y",
        "/nghe-lai/xa-binh/{other}/gop-y",
        "{page}99999999999999999999/gop-y",
        "{page}-1/gop-y",
        "{page}{newest}/cam-on?lang=en",
    ],
)
def test_feedback_on_what_is_not_public_is_not_found(world: World, path: str) -> None:
    url = path.format(page=_page_url(world), **{k: v for k, v in world.ids.items()})
    expected = 200 if url.endswith("cam-on?lang=en") else 404
    client = _client(world)
    assert client.get(url).status_code == expected
    assert client.post(url, data={"text": "Góp ý."}).status_code in (expected, 400, 405)


def test_feedback_is_rate_limited_with_a_429(world: World) -> None:
    client = _client(world)
    for _ in range(2):
        status, _body = _post(client, _form_url(world), text="Góp ý.")
        assert status == 302
    status, body = _post(client, _form_url(world), text="Lần ba.")
    assert status == 429 and "thử lại sau" in body


# --- the officer's pages ------------------------------------------------------------------------


def test_the_officer_opens_and_closes_the_commune_page(world: World) -> None:
    officer = _client(world)
    login(officer, "binh-officer")
    page = officer.get("/replay/").get_data(as_text=True)
    assert "Xã Bình" in page and "Xã An" not in page
    assert _client(world).get("/nghe-lai/xa-binh/").status_code == 404
    token = csrf_token(officer, "/replay/")
    response = officer.post(
        "/replay/public", data={"csrf_token": token, "commune": "xa-binh", "public": "1"}
    )
    assert response.status_code == 302
    assert "Tin xã Bình" in _client(world).get("/nghe-lai/xa-binh/").get_data(as_text=True)
    refused = officer.post(
        "/replay/public", data={"csrf_token": token, "commune": "xa-an", "public": "0"}
    )
    assert refused.status_code == 403
    bad = officer.post(
        "/replay/public", data={"csrf_token": token, "commune": "thon-binh-1", "public": "1"}
    )
    assert bad.status_code == 400
    officer.post("/replay/public", data={"csrf_token": token, "commune": "xa-binh"})
    assert _client(world).get("/nghe-lai/xa-binh/").status_code == 404


def test_the_officer_marks_an_item_internal(world: World) -> None:
    officer = _client(world)
    login(officer, "an-officer")
    assert "Tin thôn An" in officer.get("/replay/").get_data(as_text=True)
    token = csrf_token(officer, "/replay/")
    url = f"/replay/broadcasts/{world.ids['village']}/internal"
    assert officer.post(url, data={"csrf_token": token, "internal": "1"}).status_code == 302
    assert "Tin thôn An" not in _client(world).get(_page_url(world)).get_data(as_text=True)
    other = f"/replay/broadcasts/{world.ids['other']}/internal"
    assert officer.post(other, data={"csrf_token": token, "internal": "1"}).status_code == 404


def test_a_village_head_and_a_viewer_may_not_manage(world: World) -> None:
    head = _client(world)
    login(head, "an-head")
    assert head.get("/replay/").status_code == 403
    assert head.get("/replay/feedback").status_code == 403
    assert "/replay/" not in head.get("/").get_data(as_text=True)


def test_feedback_counts_in_the_monthly_report(world: World) -> None:
    client = _client(world)
    _post(client, _form_url(world), text="Góp ý một.")
    _post(client, _form_url(world, "village"), text="Góp ý hai.")
    officer = _client(world)
    login(officer, "an-officer")
    [first, *_rest] = world.service.replay.feedback(world.province.officer_a)
    world.service.replay.moderate(world.province.officer_a, first.id, "approved")
    report = officer.get("/reports/monthly").get_data(as_text=True)
    row = re.search(r'id="feedback-summary".*?</table>', report, re.S)
    assert row is not None
    assert re.search(r'class="num received">2<', row.group(0))
    assert re.search(r'class="num approved">1<', row.group(0))


# --- the internal choice when sending (nội bộ) ---------------------------------------------------


def _confirm_page(client: FlaskClient, data: dict[str, str]) -> str:
    token = csrf_token(client, "/announce/")
    body = {"csrf_token": token, "mode": "text", "priority": "emergency", "repeat": "1", **data}
    response = client.post("/announce/", data=body, content_type="multipart/form-data")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _send(client: FlaskClient, page: str, action: str = "send") -> FlaskClient:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    pending = re.search(r'name="pending" value="([^"]+)"', page)
    assert token is not None and pending is not None
    return client.post(  # type: ignore[return-value]
        "/announce/confirm",
        data={"csrf_token": token.group(1), "pending": pending.group(1), "action": action},
    )


def test_the_announcement_form_offers_internal_and_keeps_it_off_the_page(world: World) -> None:
    """A village head ticks "Nội bộ": the confirmation says so, "Sửa lại" keeps the tick, and
    the notice is stored internal, so the commune's page never lists it."""
    head = _client(world)
    login(head, "an-head")
    form = head.get("/announce/").get_data(as_text=True)
    assert "Nội bộ (không đăng lên trang Nghe lại)" in form and 'name="internal"' in form
    data = {"text": "Họp chi bộ lúc 19 giờ.", "zones": world.province.village_a, "internal": "1"}
    page = _confirm_page(head, data)
    assert 'id="internal-note"' in page
    again = _send(head, page, "edit").get_data(as_text=True)  # type: ignore[attr-defined]
    assert re.search(r'name="internal" value="1"\s+checked', again)
    sent = _send(head, _confirm_page(head, data))
    assert sent.status_code == 303  # type: ignore[attr-defined]
    broadcast_id = int(sent.headers["Location"].rstrip("/").rsplit("/", 1)[-1])  # type: ignore[attr-defined]
    with world.service.db.session() as session:
        assert session.get(Broadcast, broadcast_id).internal is True  # type: ignore[union-attr]
    plain = _confirm_page(head, {**data, "internal": ""})
    assert 'id="internal-note"' not in plain
    plain_id = int(
        _send(head, plain).headers["Location"].rstrip("/").rsplit("/", 1)[-1]  # type: ignore[attr-defined]
    )
    with world.service.db.session() as session:
        assert session.get(Broadcast, plain_id).internal is False  # type: ignore[union-attr]


def test_a_bulletin_is_saved_internal_from_its_form(world: World) -> None:
    officer = _client(world)
    login(officer, "an-officer")
    assert "Nội bộ (không đăng lên trang Nghe lại)" in officer.get("/bulletins/new").get_data(
        as_text=True
    )
    token = csrf_token(officer, "/bulletins/new")
    for internal, expected in (("1", True), ("", False)):
        response = officer.post(
            "/bulletins/new",
            data={
                "csrf_token": token,
                "action": "save",
                "title": f"Tin {internal or 'công khai'}",
                "script": "Họp dân lúc 8 giờ.",
                "internal": internal,
            },
        )
        assert response.status_code == 302
        bulletin_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        with world.service.db.session() as session:
            assert session.get(Bulletin, bulletin_id).internal is expected  # type: ignore[union-attr]
