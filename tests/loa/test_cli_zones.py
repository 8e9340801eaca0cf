"""`loa zones` as an operator runs it (a real `loa` process on a data directory): a province set
up from nothing with a CSV file, imported again, a broken file refused whole, zones added,
listed and moved; `loa serve` on an empty data directory says what to run; a single-commune
data directory of the previous release upgrades in place and joins its province."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from previous_head import PASSWORD, USERS, database_url, make_single_commune
from sqlalchemy import select
from support import REPO_ROOT, free_ports

from broadcast.people import accounts, audit
from broadcast.store.db import Database
from broadcast.store.models import AuditEntry

# Tỉnh Thanh Hóa (38), three communes with two villages each; real-looking codes.
PROVINCE_CSV = """code,name,kind,parent
38,Tỉnh Thanh Hóa,tỉnh,
16012,Xã Hoằng Hợp,xã,38
16015,Xã Hoằng Tiến,xã,38
14836,Phường Hạc Thành,phường,38
,Thôn 1,thôn,16012
,Thôn 2,thôn,16012
,Thôn Yên Vực,thôn,16015
,Thôn Tiến Thành,thôn,16015
,Tổ dân phố 1,tổ dân phố,14836
,Tổ dân phố Phú Sơn,tổ dân phố,14836
"""
TREE = """\
tinh-thanh-hoa  Tỉnh Thanh Hóa  (province 38)
  phuong-hac-thanh  Phường Hạc Thành  (commune 14836)
    phuong-hac-thanh-to-dan-pho-1  Tổ dân phố 1  (village)
    phuong-hac-thanh-to-dan-pho-phu-son  Tổ dân phố Phú Sơn  (village)
  xa-hoang-hop  Xã Hoằng Hợp  (commune 16012)
    xa-hoang-hop-thon-1  Thôn 1  (village)
    xa-hoang-hop-thon-2  Thôn 2  (village)
  xa-hoang-tien  Xã Hoằng Tiến  (commune 16015)
    xa-hoang-tien-thon-tien-thanh  Thôn Tiến Thành  (village)
    xa-hoang-tien-thon-yen-vuc  Thôn Yên Vực  (village)
"""


def loa(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "loa.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _refused(result: subprocess.CompletedProcess[str], *needles: str) -> list[str]:
    """Exit code 2, no traceback, every line of the error starts with `loa: `."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("loa: ")]
    assert lines, result.stderr
    for needle in needles:
        assert any(needle in line for line in lines), (needle, lines)
    return lines


def test_a_province_from_an_empty_data_directory(tmp_path: Path) -> None:
    data = str(tmp_path / "var")
    web_port, mqtt_port = free_ports(2)
    serve = ("serve", "--data", data, "--port", str(web_port), "--mqtt-port", str(mqtt_port))

    empty = loa(*serve)
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert "has no zones and no admin yet" in empty.stderr
    assert f"loa zones import ZONES.csv --data {data}" in empty.stderr
    assert f"loa user add admin --role admin --data {data}" in empty.stderr

    csv_file = tmp_path / "tinh-thanh-hoa.csv"
    csv_file.write_bytes(b"\xef\xbb\xbf" + PROVINCE_CSV.replace("\n", "\r\n").encode())
    imported = _ok(loa("zones", "import", str(csv_file), "--data", data))
    assert imported == f"{csv_file}: 10 zones read, 10 created\n"
    again = _ok(loa("zones", "import", str(csv_file), "--data", data))
    assert again == f"{csv_file}: nothing to change, its 10 zones are already there\n"
    assert _ok(loa("zones", "list", "--data", data)) == TREE

    broken = tmp_path / "broken.csv"
    broken.write_text(
        PROVINCE_CSV
        + "16020,Xã Mới,xã,38\n"  # line 12: fine, but not written since others are wrong
        + ",Thôn 3,thôn,99999\n"
        + "16012,Xã Khác,xã,38\n"
        + ",Thôn 4,thôn,38\n"
        + ",,thôn,16012\n",
        encoding="utf-8",
    )
    lines = _refused(
        loa("zones", "import", str(broken), "--data", data),
        f"{broken} line 13, column parent: không có nơi trực thuộc “99999”",
        f"{broken} line 14, column code: mã 16012 đã có ở dòng 3",
        f"{broken} line 15, column parent: thôn không thể thuộc tỉnh",
        f"{broken} line 16, column name: tên còn trống",
    )
    assert lines[-1] == f"loa: {broken}: 4 problems, nothing was written"
    assert _ok(loa("zones", "list", "--data", data)) == TREE

    added = loa("zones", "add", "--kind", "thôn", "--name", "Thôn 3", "--parent", "16012",
                "--data", data)  # fmt: skip
    assert _ok(added) == "created village xa-hoang-hop-thon-3 (Thôn 3) under xa-hoang-hop\n"
    under_province = ("--kind", "village", "--name", "Thôn 4", "--parent", "38")
    _refused(
        loa("zones", "add", *under_province, "--data", data),
        "--parent: thôn không thể thuộc tỉnh “tinh-thanh-hoa”",
    )
    _refused(
        loa("zones", "add", "--kind", "huyện", "--name", "Huyện Hoằng Hóa", "--data", data),
        "--kind: “huyện”: cấp huyện đã bỏ từ ngày 1/7/2025",
    )
    _refused(
        loa("zones", "add", "--kind", "xã", "--name", "Xã Sai", "--code", "1601", "--data", data),
        "--code: mã hành chính của xã có 5 chữ số",
    )
    _refused(loa("zones", "import", str(tmp_path / "nope.csv"), "--data", data), "no such file")

    _ok(loa("user", "add", "admin", "--password", PASSWORD, "--data", data))
    ready = loa(*serve)  # set up: it starts, and stops at the broker it cannot reach
    _refused(ready, f"127.0.0.1:{mqtt_port}", "unreachable")
    assert "nothing to serve" not in ready.stderr


def test_a_single_commune_upgrades_in_place_and_joins_its_province(tmp_path: Path) -> None:
    data = tmp_path / "var"
    url = database_url(data)
    make_single_commune(url)  # migration 0006, as the previous release left it

    province = loa("zones", "add", "--kind", "province", "--name", "Tỉnh Thanh Hóa",
                   "--code", "38", "--data", str(data))  # fmt: skip
    assert _ok(province) == "created province tinh-thanh-hoa (Tỉnh Thanh Hóa, code 38)\n"
    moved = loa("zones", "move", "xa-hoang-hop", "--parent", "38", "--data", str(data))
    assert _ok(moved) == (
        "xa-hoang-hop is now under tinh-thanh-hoa (was at the root)\n"
        "bound to xa-hoang-hop, which was the whole installation for them: chi"
        " (admins stay installation-wide)\n"
    )
    assert f"run `loa device refresh --data {data}`" in moved.stderr
    again = loa("zones", "move", "xa-hoang-hop", "--parent", "tinh-thanh-hoa", "--data", str(data))
    assert _ok(again) == "xa-hoang-hop is already under tinh-thanh-hoa: nothing to change\n"
    _refused(
        loa("zones", "move", "thon-a", "--parent", "38", "--data", str(data)),
        "--parent: thôn không thể thuộc tỉnh “tinh-thanh-hoa”",
    )
    _refused(loa("zones", "move", "nope", "--parent", "38", "--data", str(data)), "“nope”")
    assert _ok(loa("zones", "list", "--data", str(data))) == (
        "tinh-thanh-hoa  Tỉnh Thanh Hóa  (province 38)\n"
        "  xa-hoang-hop  Xã Hoằng Hợp  (commune)\n"
        "    thon-a  Thôn A  (village, 1 receiver)\n"
        "    thon-b  Thôn B  (village)\n"
    )

    database = Database(url)
    try:
        with database.session() as session:
            # roles kept; the officer, unbound while the installation was the commune, is bound
            # to it now (unbound, it would see the province); the admin stays unbound
            for username, (role, zone) in USERS.items():
                user = accounts.authenticate(session, username, PASSWORD)
                expected = "xa-hoang-hop" if role == "officer" else zone
                assert user is not None and (user.role, user.zone_id) == (role, expected)
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
            assert [(e.action, e.target) for e in entries] == [
                (audit.Action.ZONE_CREATE.value, "zone:tinh-thanh-hoa"),
                (audit.Action.ZONE_UPDATE.value, "zone:xa-hoang-hop"),
            ]
            assert all(e.origin.startswith("cli ") for e in entries)
            assert audit.verify(session).ok
    finally:
        database.dispose()
