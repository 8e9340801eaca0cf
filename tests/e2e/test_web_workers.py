"""Several web workers (gunicorn, 3 workers) on one data directory: whichever worker takes a
request publishes it, exactly one runs the scheduler, and every broadcast plays once on every
receiver it targets — the announcements sent through any worker and a scheduled bulletin fired
by the one scheduler."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from processes import LoaProcess, http_json, plays_of, wait_devices, wait_for_status
from support import LOOPBACK, free_port, free_ports

from broadcast.fleet import registry
from broadcast.fleet.brokers.mosquitto import MosquittoBroker
from broadcast.service import BroadcastService
from broadcast.settings import Settings
from loa import seed

from .test_faults import without_daily_bulletins

WORKERS = 3
RECEIVERS = 4
ANNOUNCEMENTS = 6
FINAL = {"finished", "partial", "failed"}


def test_three_workers_one_scheduler_every_broadcast_once(
    tmp_path: Path, loa_processes: list[LoaProcess]
) -> None:
    port, mqtt_port = free_ports(2)
    data = tmp_path / "var"
    server_mqtt_port = free_port()  # mosquitto: the server has a listener of its own
    settings = Settings(
        data_dir=data, port=port, mqtt_port=server_mqtt_port, device_mqtt_port=mqtt_port
    )
    service = BroadcastService(settings, connect_mqtt=False)
    demo = seed.seed_demo(service, receivers=RECEIVERS, realtime=False)
    without_daily_bulletins(service)
    with service.db.session() as session:
        access = registry.broker_access(session, service.secrets.mqtt_password)
    service.stop()
    broker = MosquittoBroker(
        tmp_path / "mosquitto", LOOPBACK, mqtt_port, access, server_port=server_mqtt_port
    )
    broker.start()
    try:
        web = LoaProcess(
            "--workers", str(WORKERS),
            "--threads", "4",
            "--bind", f"{LOOPBACK}:{port}",
            "--graceful-timeout", "20",
            "web.wsgi:app",
            module="gunicorn",
            env={
                "LOA_DATA_DIR": str(data),
                "LOA_PORT": str(port),
                "LOA_MQTT_PORT": str(server_mqtt_port),
            },
        )  # fmt: skip
        loa_processes.append(web)
        fleet = LoaProcess(
            "fleet", "--config-dir", str(settings.devices_dir), "--count", str(RECEIVERS)
        )
        loa_processes.append(fleet)
        base, token = f"http://{LOOPBACK}:{port}", demo.api_token
        _wait_serving(web, WORKERS)
        devices = {d["id"] for d in wait_devices(base, token, RECEIVERS, timeout_s=90)}

        # a bulletin scheduled for the next whole minute but one, through some worker
        status, bulletin = http_json(
            "POST",
            f"{base}/api/v1/bulletins",
            token,
            {"title": "Bản tin theo lịch", "text": "Lịch họp dân tháng mười hai.", "submit": True},
        )
        assert status == 201, bulletin
        status, approved = http_json(
            "POST", f"{base}/api/v1/bulletins/{bulletin['id']}/approve", token, {}
        )
        assert status == 200, approved
        local = ZoneInfo("Asia/Ho_Chi_Minh")
        run_at = (datetime.now(local) + timedelta(seconds=75)).replace(second=0, microsecond=0)
        status, schedule = http_json(
            "POST",
            f"{base}/api/v1/schedules",
            token,
            {
                "bulletin": bulletin["id"],
                "kind": "once",
                "run_at": run_at.strftime("%Y-%m-%dT%H:%M"),
                "zones": ["xa-hoang-hop"],
            },
        )
        assert status == 201, schedule

        sent = []
        for index in range(ANNOUNCEMENTS):
            zone = "thon-1" if index % 2 else "thon-2"
            status, created = http_json(
                "POST",
                f"{base}/api/v1/announcements",
                token,
                {"text": f"Thông báo số {index + 1}.", "zones": [zone], "priority": "priority"},
            )
            assert status == 201, created
            sent.append(created["id"])
        for broadcast_id in sent:
            body = wait_for_status(base, token, broadcast_id, FINAL, timeout_s=90)
            assert body["status"] == "finished", body

        deadline = time.monotonic() + 150
        runs: list[dict] = []
        while time.monotonic() < deadline:
            _s, listed = http_json("GET", f"{base}/api/v1/announcements?limit=50", token)
            runs = [b for b in listed if b["schedule"] == schedule["id"]]
            if runs and all(r["status"] in FINAL for r in runs):
                break
            time.sleep(1.0)
        assert len(runs) == 1 and runs[0]["status"] == "finished", runs
        for broadcast_id in [*sent, runs[0]["id"]]:
            plays = plays_of(data / "receivers", devices, broadcast_id)
            assert all(n <= 1 for n in plays.values()), (broadcast_id, plays)
        assert all(n == 1 for n in plays_of(data / "receivers", devices, runs[0]["id"]).values())

        assert fleet.stop() == 0
        assert web.stop() == 0
        log = web.output
        leaders = set(re.findall(r"this process \(pid (\d+)\) runs the scheduler", log))
        assert len(leaders) == 1, log[-4000:]
        fired = re.findall(rf"schedule {schedule['id']} fired: broadcast (\d+)", log)
        assert fired == [str(runs[0]["id"])], log[-4000:]
        workers = set(re.findall(r"web worker (\d+) serving", log))
        assert len(workers) == WORKERS, log[-4000:]
        assert "Traceback" not in log, log[-4000:]
    finally:
        broker.stop()


def _wait_serving(web: LoaProcess, workers: int, timeout_s: float = 90.0) -> None:
    """Until every worker has started its service (each logs "web worker <pid> serving")."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(set(re.findall(r"web worker (\d+) serving", web.output))) >= workers:
            return
        if web.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{web.output[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{workers} workers not serving within {timeout_s} s:\n{web.output}")
