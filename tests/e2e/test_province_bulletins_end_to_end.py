"""Bulletins from the province end to end (Thông tư 39/2020/TT-BTTTT), one test per priority
and one for a CAP alert from the source-information system:
the province editor sends over the API, the commune officer acts over the API, and real
receivers (`loa fleet`, file players sounding for as long as the audio lasts) on mosquitto play
what the rules say, in Xã A and never in Xã B.

* thông thường: nothing plays until Xã A's officer places it; then it plays at its slot;
* ưu tiên: two of them head Xã A's next programme run, in the order Xã A's officer chose,
  before the commune's own item of that run;
* khẩn cấp: it cuts what Xã A is playing at once; Xã B plays on undisturbed;
* a CAP 1.2 alert naming Xã A's administrative code plays there at once and nowhere else.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from processes import LoaProcess, http_json, played_lines, wait_devices, wait_for_status
from support import LOOPBACK, free_port, free_ports

from broadcast.const import LOCAL_TZ, Role, ScheduleKind, ZoneKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.fleet import registry
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.people import accounts, zones
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from broadcast.store.db import Database
from broadcast.store.models import Broadcast
from wire.config import PlayerSettings
from wire.protocol import Priority

XA_A = ("loa-a1-01", "loa-a1-02")
XA_B = ("loa-b1-01",)
RECEIVERS = {**dict.fromkeys(XA_A, "thon-a1"), **dict.fromkeys(XA_B, "thon-b1")}
PASSWORD = "correct horse battery"
ENDED = {"finished", "partial", "failed"}
LONG_TEXT = " ".join(
    ["Ủy ban nhân dân xã thông báo lịch họp dân về kế hoạch sản xuất vụ đông năm nay."] * 6
)


@dataclass
class Province:
    base: str
    data: Path
    database: Database
    admin: str  # API tokens
    editor: str
    officer_a: str
    officer_b: str
    source: str  # the province's source-information system (HTTT nguồn)
    commune_schedule: int | None  # the commune's own run, made before the server started


def _local(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M:%S")


def _seed(service: BroadcastService, commune_run_at: datetime | None, text: str) -> Province:
    settings = service.settings
    with service.db.session() as session:
        zones.create_zone(session, "tinh-x", "Tỉnh X", ZoneKind.PROVINCE, code="99")
        zones.create_zone(session, "xa-a", "Xã A", ZoneKind.COMMUNE, "tinh-x", "99001")
        zones.create_zone(session, "xa-b", "Xã B", ZoneKind.COMMUNE, "tinh-x", "99002")
        zones.create_zone(session, "thon-a1", "Thôn A1", ZoneKind.VILLAGE, "xa-a")
        zones.create_zone(session, "thon-b1", "Thôn B1", ZoneKind.VILLAGE, "xa-b")
        users = {
            name: accounts.create_user(session, name, PASSWORD, role, zone)
            for name, role, zone in (
                ("admin", Role.ADMIN, None),
                ("editor", Role.PROVINCE_EDITOR, "tinh-x"),
                ("officer-a", Role.OFFICER, "xa-a"),
                ("officer-b", Role.OFFICER, "xa-b"),
                ("nguon", Role.SOURCE, "tinh-x"),
            )
        }
        tokens = {name: accounts.create_token(session, user) for name, user in users.items()}
        ids = {name: user.id for name, user in users.items()}
        for device_id, village in RECEIVERS.items():
            player = PlayerSettings(
                kind="file", dir=str(settings.receivers_dir / device_id / "played"), realtime=True
            )
            registry.register_device(
                session, settings, service.fleet.public_key_text, device_id, village, player=player
            )
    schedule_id = None
    if commune_run_at is not None:  # both communes' programmes have a run at that time
        for officer, commune in (("officer-a", "xa-a"), ("officer-b", "xa-b")):
            bulletin = service.bulletins.create_bulletin(ids[officer], "Bản tin xã", text)
            service.bulletins.submit(ids[officer], bulletin)
            service.bulletins.approve(ids["admin"], bulletin)
            made = service.scheduling.schedule(
                ids[officer],
                ScheduleRequest(
                    bulletin_id=bulletin,
                    kind=ScheduleKind.ONCE,
                    zone_ids=[commune],
                    priority=Priority.NORMAL,
                    run_at=_local(commune_run_at),
                ),
            )
            schedule_id = schedule_id or made
    return Province(
        "", settings.data_dir, Database(settings.database_url), tokens["admin"],
        tokens["editor"], tokens["officer-a"], tokens["officer-b"], tokens["nguon"], schedule_id,
    )  # fmt: skip


@pytest.fixture
def start_province(tmp_path: Path, loa_processes: list[LoaProcess]) -> Iterator[Any]:
    """Start mosquitto, `loa serve` and `loa fleet` on a province of two communes; the
    communes' own run (if asked) at the given time."""
    brokers: list[MosquittoBroker] = []
    databases: list[Database] = []

    def start(commune_run_at: datetime | None = None, text: str = "Bản tin của xã.") -> Province:
        port, mqtt_port = free_ports(2)
        server_mqtt_port = free_port()
        settings = Settings(
            data_dir=tmp_path / "var",
            port=port,
            mqtt_port=server_mqtt_port,
            device_mqtt_port=mqtt_port,
        )
        service = BroadcastService(settings, connect_mqtt=False)
        province = _seed(service, commune_run_at, text)
        databases.append(province.database)
        with service.db.session() as session:
            access = registry.broker_access(session, service.secrets.mqtt_password)
        service.stop()
        broker = MosquittoBroker(
            tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
        )
        broker.start()
        brokers.append(broker)
        server = LoaProcess(
            "serve", "--data", str(settings.data_dir), "--port", str(port),
            "--mqtt-port", str(server_mqtt_port),
        )  # fmt: skip
        loa_processes.append(server)
        server.wait_for_line("Loa server on")
        fleet = LoaProcess(
            "fleet", "--config-dir", str(settings.devices_dir), "--count", str(len(RECEIVERS))
        )
        loa_processes.append(fleet)
        province.base = f"http://127.0.0.1:{port}"
        wait_devices(province.base, province.admin, len(RECEIVERS))
        return province

    yield start
    for database in databases:
        database.dispose()
    for broker in brokers:
        broker.stop()


def _plays(province: Province, device_id: str, broadcast_id: int) -> list[dict[str, Any]]:
    return [
        p for p in played_lines(province.data / "receivers", device_id)
        if p["broadcast_id"] == broadcast_id
    ]  # fmt: skip


def _runs_of(province: Province, schedule_id: int, timeout_s: float = 30.0) -> list[int]:
    """The planned rows of a schedule, once the leader has made them."""
    deadline = time.monotonic() + timeout_s
    while True:
        with province.database.session() as session:
            rows = session.query(Broadcast).filter(Broadcast.schedule_id == schedule_id).all()
            if rows or time.monotonic() > deadline:
                return [row.id for row in rows]
        time.sleep(0.3)


def _commune_run(province: Province, officer: str, commune: str, run_at: datetime) -> int:
    """The commune's own one-off run, as its officer makes it over the API (approved by the
    admin); returns the schedule's id."""
    status, bulletin = http_json(
        "POST",
        f"{province.base}/api/v1/bulletins",
        officer,
        {"title": "Bản tin xã", "text": "Bản tin của xã.", "submit": True},
    )
    assert status == 201, bulletin
    status, body = http_json(
        "POST", f"{province.base}/api/v1/bulletins/{bulletin['id']}/approve", province.admin, {}
    )
    assert status == 200, body
    status, schedule = http_json(
        "POST",
        f"{province.base}/api/v1/schedules",
        officer,
        {"bulletin": bulletin["id"], "kind": "once", "run_at": _local(run_at), "zones": [commune]},
    )
    assert status == 201, schedule
    return int(schedule["id"])


def _wait_forward(
    province: Province, bulletin_id: int, state: str, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Xã A's row of a sent bulletin, once it reached `state` (as the province sees it)."""
    deadline = time.monotonic() + timeout_s
    row: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = http_json(
            "GET", f"{province.base}/api/v1/province-bulletins/{bulletin_id}", province.editor
        )
        assert status == 200, body
        row = next(r for r in body["communes"] if r["commune"] == "xa-a")
        if row["state"] == state:
            return row
        time.sleep(0.5)
    raise AssertionError(f"bulletin {bulletin_id} not {state} in Xã A within {timeout_s} s: {row}")


def _send(province: Province, text: str, priority: str) -> dict[str, Any]:
    status, body = http_json(
        "POST",
        f"{province.base}/api/v1/province-bulletins",
        province.editor,
        {"title": text, "text": text, "communes": ["xa-a"], "priority": priority},
    )
    assert status == 201, body
    return body


def test_a_normal_bulletin_waits_until_placed_then_plays_at_its_slot(start_province: Any) -> None:
    province = start_province()
    sent = _send(province, "Tỉnh thông báo lịch tiêm phòng dại.", "normal")
    [row] = sent["communes"]
    assert row["state"] == "received"
    time.sleep(5.0)  # in the inbox, not on the loudspeakers
    for device_id in RECEIVERS:
        assert not played_lines(province.data / "receivers", device_id), device_id
    status, inbox = http_json(
        "GET", f"{province.base}/api/v1/province-bulletins/inbox", province.officer_a
    )
    assert status == 200 and [item["id"] for item in inbox["waiting"]] == [row["id"]]

    slot = datetime.now(UTC) + timedelta(seconds=20)
    status, placed = http_json(
        "POST",
        f"{province.base}/api/v1/province-bulletins/inbox/{row['id']}/place",
        province.officer_a,
        {"run_at": _local(slot)},
    )
    assert status == 200 and placed["state"] == "placed", placed
    played = _wait_forward(province, sent["bulletin"], "played")
    assert played["deliveries"] == 2 and played["finished"] == 2 and played["rate"] == 1.0
    [run_id] = _runs_of(province, played["schedule"])
    for device_id in XA_A:
        [play] = _plays(province, device_id, run_id)
        started = datetime.fromisoformat(play["started_at"])
        assert abs((started - slot.replace(microsecond=0)).total_seconds()) < 2.0, play
    assert not _plays(province, XA_B[0], run_id)


def test_priority_bulletins_head_the_next_run_in_the_communes_order(start_province: Any) -> None:
    province = start_province()
    run_at = (datetime.now(UTC) + timedelta(seconds=75)).replace(microsecond=0)
    own_schedule = _commune_run(province, province.officer_a, "xa-a", run_at)
    _commune_run(province, province.officer_b, "xa-b", run_at)  # Xã B's plays alone
    first = _send(province, "Ưu tiên một: tỉnh thông báo nắng nóng.", "priority")
    second = _send(province, "Ưu tiên hai: tỉnh thông báo cấp nước.", "priority")
    heads = [first["communes"][0], second["communes"][0]]
    assert [row["state"] for row in heads] == ["placed", "placed"], heads
    assert all(row["run_at"].startswith(run_at.isoformat()[:19]) for row in heads), heads
    status, inbox = http_json(
        "POST",
        f"{province.base}/api/v1/province-bulletins/inbox/reorder",
        province.officer_a,
        {"order": [heads[1]["id"], heads[0]["id"]]},
    )
    assert status == 200, inbox
    assert [i["id"] for i in inbox["runs"][0]["items"]] == [heads[1]["id"], heads[0]["id"]]

    [commune_run] = _runs_of(province, own_schedule)
    body = wait_for_status(province.base, province.admin, commune_run, ENDED, 240)
    assert body["status"] == "finished", body
    assert {d["device"] for d in body["deliveries"]} == set(XA_A)
    for row in reversed(heads):
        _wait_forward(province, row["bulletin"], "played", 60)
    ids = [_runs_of(province, row["schedule"])[0] for row in (heads[1], heads[0])]
    for device_id in XA_A:
        order = [
            play["broadcast_id"]
            for play in played_lines(province.data / "receivers", device_id)
            if play["broadcast_id"] in (*ids, commune_run)
        ]
        assert order == [*ids, commune_run], (device_id, order)
        [start] = [
            datetime.fromisoformat(p["started_at"]) for p in _plays(province, device_id, ids[0])
        ]
        assert abs((start - run_at).total_seconds()) < 2.0, start
    for broadcast_id in ids:  # Xã B's own run plays alone
        assert not _plays(province, XA_B[0], broadcast_id)


def test_an_emergency_cuts_in_at_once_in_the_target_commune_only(start_province: Any) -> None:
    run_at = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
    province = start_province(run_at, LONG_TEXT)
    assert province.commune_schedule is not None
    [commune_run] = _runs_of(province, province.commune_schedule)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # Xã A's own long bulletin is on the air
        _status, body = http_json(
            "GET", f"{province.base}/api/v1/announcements/{commune_run}", province.admin
        )
        if all(d["state"] == "playing" for d in body["deliveries"]):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"Xã A's run never played: {body}")
    sent = _send(province, "Khẩn cấp: lũ quét, di dời ngay khỏi bờ suối.", "emergency")
    [row] = sent["communes"]
    assert row["state"] == "placed" and row["broadcast"] is not None
    emergency = wait_for_status(province.base, province.editor, row["broadcast"], ENDED, 60)
    assert emergency["status"] == "finished", emergency
    assert {d["device"] for d in emergency["deliveries"]} == set(XA_A)
    for device_id in XA_A:
        cut = _plays(province, device_id, commune_run)
        assert cut and cut[0]["stopped"], (device_id, cut)  # cut by the emergency
        [alert] = _plays(province, device_id, row["broadcast"])
        assert alert["priority"] == "emergency"
        assert alert["started_at"] >= cut[0]["started_at"]
    elsewhere = played_lines(province.data / "receivers", XA_B[0])
    assert all(p["broadcast_id"] != row["broadcast"] for p in elsewhere), elsewhere
    assert not any(p["stopped"] for p in elsewhere), elsewhere  # Xã B played on undisturbed
    played = _wait_forward(province, sent["bulletin"], "played", 30)
    assert played["rate"] == 1.0


CAP_ALERT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>X-PCTT-{stamp}</identifier>
  <sender>pctt@tinh-x.example</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Lũ quét</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <expires>{expires}</expires>
    <headline>Cảnh báo lũ quét</headline>
    <instruction>Bà con ven suối di chuyển ngay lên chỗ cao.</instruction>
    <area>
      <areaDesc>Xã A, và một xã của tỉnh khác</areaDesc>
      <geocode><valueName>VN-ADMIN</valueName><value>99001</value></geocode>
      <geocode><valueName>VN-ADMIN</valueName><value>98001</value></geocode>
    </area>
  </info>
</alert>
"""


def _post_cap(province: Province, alert: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{province.base}/api/v1/source/cap",
        data=alert.encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"Bearer {province.source}",
            "Content-Type": "application/cap+xml",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_cap_alert_plays_where_its_code_points_and_nowhere_else(start_province: Any) -> None:
    province = start_province()
    now = datetime.now(UTC).replace(microsecond=0)
    alert = CAP_ALERT.format(
        stamp=int(now.timestamp()),
        sent=now.isoformat(),
        expires=(now + timedelta(hours=2)).isoformat(),
    )
    status, item = _post_cap(province, alert)
    assert status == 201, item
    assert (item["disposition"], item["priority"], item["communes"]) == (
        "broadcast",
        "emergency",
        ["xa-a"],
    )
    assert item["reason"].endswith("98001")  # another province's commune: left out, said
    row = _wait_forward(province, item["sent_id"], "placed", 30)
    emergency = wait_for_status(province.base, province.editor, row["broadcast"], ENDED, 60)
    assert emergency["status"] == "finished", emergency
    assert {d["device"] for d in emergency["deliveries"]} == set(XA_A)
    for device_id in XA_A:
        [played] = _plays(province, device_id, row["broadcast"])
        assert played["priority"] == "emergency"
    assert not played_lines(province.data / "receivers", XA_B[0])  # Xã B heard nothing
    again, same = _post_cap(province, alert)  # the agency retries: nothing is made twice
    assert (again, same) == (200, item)
    time.sleep(2.0)
    for device_id in XA_A:
        assert len(_plays(province, device_id, row["broadcast"])) == 1
