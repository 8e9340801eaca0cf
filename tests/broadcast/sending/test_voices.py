"""The voices communes choose (`loa voice add`, then the admin page or `loa voice use`): what is
sent to a commune is read in its voice, its villages follow it, a commune that chose nothing
follows its province, and targets in places that chose differently are read in the default."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from piper_voice import make_voice
from service_support import Province, broadcast_status, wait_for

import tts
from broadcast.errors import NotFound, ValidationError
from broadcast.people import zones
from broadcast.service import BroadcastService
from broadcast.store.models import AuditEntry, Broadcast

from ..conftest import Leader

NOTICE = "Thông báo: chiều nay họp thôn lúc 19 giờ tại nhà văn hóa."


def _install(service: BroadcastService, tmp_path: Path, name: str = "giong-thu") -> str:
    model = make_voice(tmp_path / "download", [tts.normalize(NOTICE), tts.normalize(
        "Xin chào bà con, đây là giọng đọc thử của đài truyền thanh xã.")])  # fmt: skip
    installed, check = service.voices.add(model, name)
    assert check.language == "vi"
    return installed


def _engine_of(leader: Leader, broadcast_id: int) -> str:
    wait_for(
        lambda: broadcast_status(leader.service, broadcast_id) == "dispatched", 60, "dispatched"
    )
    with leader.service.db.session() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        return row.tts_engine


def test_a_commune_is_read_in_the_voice_it_chose(leader: Leader, tmp_path: Path) -> None:
    service, users = leader.service, leader.users
    name = _install(service, tmp_path)
    assert service.voices.names() == [name]
    first = service.announcements.announce(users.officer, NOTICE, ["thon-a"])
    assert _engine_of(leader, first) == "espeak"  # nothing chosen yet

    assert service.admin.set_voice(users.admin, "xa-test", name) == "xa-test"
    again = service.announcements.announce(users.officer, NOTICE + " Xin cảm ơn.", ["thon-a"])
    assert _engine_of(leader, again) == "piper"  # a village follows its commune
    with service.db.session() as session:
        entry = session.query(AuditEntry).filter(AuditEntry.target == "zone:xa-test").one()
        assert entry.detail == {"voice": name, "previous_voice": ""}

    service.admin.set_voice(users.admin, "xa-test", "")
    back = service.announcements.announce(users.officer, NOTICE + " Trân trọng.", ["thon-a"])
    assert _engine_of(leader, back) == "espeak"


def test_a_commune_follows_its_province_unless_it_chose(
    service: BroadcastService, province: Province, tmp_path: Path
) -> None:
    name = _install(service, tmp_path)
    other = _install(service, tmp_path, "giong-khac")
    with service.db.session() as session:
        assert zones.voice_for(session, [province.village_a]) == ""
    service.admin.set_voice(province.province_admin, province.province, name)
    service.admin.set_voice(province.admin_b, province.commune_b, other)
    with service.db.session() as session:
        assert zones.voice_for(session, [province.village_a]) == name  # the province's
        assert zones.voice_for(session, [], [province.device_a]) == name
        assert zones.voice_for(session, [province.commune_b]) == other  # its own
        assert zones.voice_for(session, [province.village_a, province.village_b]) == ""
        assert zones.voice_for(session, ["no-such-zone", province.village_b]) == other


def test_only_an_installed_voice_on_a_province_or_commune_of_ones_own(
    service: BroadcastService, province: Province, tmp_path: Path
) -> None:
    name = _install(service, tmp_path)
    with pytest.raises(ValidationError) as refused:
        service.admin.set_voice(province.admin_a, province.commune_a, "not-installed")
    assert refused.value.field == "voice"
    with pytest.raises(ValidationError) as refused:
        service.admin.set_voice(province.admin_a, province.commune_a, ["x"])
    assert refused.value.field == "voice"
    with pytest.raises(ValidationError, match="thôn theo xã"):
        service.admin.set_voice(province.admin_a, province.village_a, name)
    with pytest.raises(NotFound):
        service.admin.set_voice(province.admin_a, province.commune_b, name)  # not theirs
    assert service.admin.set_voice(province.admin_a, "99001", name) == province.commune_a
    page = service.admin.voice_page(province.admin_a)
    assert page.voices == (name,)
    assert [(p.zone_id, p.voice) for p in page.places] == [(province.commune_a, name)]


def test_a_bad_voice_file_installs_nothing(service: BroadcastService, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    config = {
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "vi"},
        "phoneme_id_map": {"a": [1]},
    }
    broken.with_name("broken.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(tts.TtsError, match=r"broken\.onnx"):
        service.voices.add(broken)
    with pytest.raises(ValidationError, match="tên giọng đọc"):
        service.voices.add(broken, "../escape")
    assert service.voices.names() == []
    assert not service.settings.voices_dir.exists() or not any(
        service.settings.voices_dir.iterdir()
    )


def test_a_voice_taken_off_the_server_reads_in_the_default(
    service: BroadcastService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = _install(service, tmp_path)
    (service.settings.voices_dir / f"{name}.onnx").unlink()
    with caplog.at_level(logging.WARNING):
        rendered = service.renderer.render(NOTICE, voice=name)
    assert rendered.engine == "espeak"
    assert f"voice {name} cannot be used" in caplog.text
