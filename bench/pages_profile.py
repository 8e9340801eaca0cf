"""What the pages a province editor and a commune officer open cost at a province's size (issue 13
item 6), in-process: `stack.seed_tree` (communes × 5 villages × 4 receivers, a daily bulletin
twice a day in every commune, a week of history per commune), plus province-wide broadcasts
delivered to every receiver and bulletins the province sent down to every commune; then the
Flask test client, signed in as each, asks every page and counts the SQL statements
(`before_cursor_execute`), the median time of `--repeat` requests and the response's size.

SQLite unless `--database-url`; the figures are relative (no gunicorn, no network, no load).

    python bench/pages_profile.py --communes 100
    python bench/pages_profile.py --communes 100 --page /reports/ --pstats /tmp/reports.pstats
"""

from __future__ import annotations

import argparse
import cProfile
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

from sqlalchemy import event  # noqa: E402
from stack import BULLETIN_TEXT, PROVINCE_ID, USER_PASSWORD, Tree, seed_tree  # noqa: E402

from broadcast.const import BroadcastStatus, DeliveryState, Role  # noqa: E402
from broadcast.people import zones  # noqa: E402
from broadcast.sending import broadcasts  # noqa: E402
from broadcast.service import BroadcastService  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.models import User, utcnow  # noqa: E402
from web import create_app  # noqa: E402
from wire import protocol  # noqa: E402

PAGES = ("/", "/bulletins/", "/calendar/", "/reports/", "/reports/monthly", "/province/")
PROVINCE_BROADCASTS = 5
SENT_DOWN = 5


def seed(
    service: BroadcastService, communes: int, province_broadcasts: int = PROVINCE_BROADCASTS
) -> tuple[str, str]:
    """The province and its history; the usernames of a province editor and a commune officer."""
    province = seed_tree(service, Tree(communes=communes, editors=1))
    editor = next(name for name, role in province.roles.items() if role == Role.PROVINCE_EDITOR)
    officer = next(name for name, role in province.roles.items() if role == Role.OFFICER)
    now = utcnow()
    with service.db.session() as session:
        admin = session.query(User).filter_by(username="bench-admin").one()
        zone = zones.get_zone(session, PROVINCE_ID)
        for n in range(province_broadcasts):
            at = now - timedelta(hours=3 + n)
            broadcasts.create_broadcast(
                session,
                text=BULLETIN_TEXT,
                zone_list=[zone],
                priority=protocol.Priority.NORMAL,
                repeat=1,
                source="announcement",
                created_by=admin,
                title=f"Thông báo toàn tỉnh {n + 1}",
                status=BroadcastStatus.FINISHED,
                delivery_state=DeliveryState.FINISHED,
                created_at=at,
                dispatched_at=at,
                play_at=at,
            )
        editor_id = session.query(User).filter_by(username=editor).one().id
    desk = service.source_bulletins
    for n in range(SENT_DOWN):
        title = f"Tin tỉnh {n + 1}"
        bulletin_id = service.bulletins.create_bulletin(editor_id, title, BULLETIN_TEXT)
        desk.send_down(editor_id, bulletin_id, None)
    return editor, officer


def login(client: Any, username: str) -> None:
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    response = client.post(
        "/auth/login",
        data={"username": username, "password": USER_PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302, response.status_code


def measure(service: BroadcastService, client: Any, url: str, repeat: int) -> dict[str, Any]:
    """Statements of one request, its median time and its size."""
    seen: list[tuple[str, float]] = []
    began: list[float] = []

    def start(*_a: Any) -> None:
        began.append(time.perf_counter())

    def end(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        seen.append((statement, time.perf_counter() - began.pop()))

    client.get(url)  # warm: templates compiled, caches filled
    event.listen(service.db.engine, "before_cursor_execute", start)
    event.listen(service.db.engine, "after_cursor_execute", end)
    try:
        response = client.get(url)
    finally:
        event.remove(service.db.engine, "before_cursor_execute", start)
        event.remove(service.db.engine, "after_cursor_execute", end)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - started)
    return {
        "status": response.status_code,
        "statements": len(seen),
        "sql_ms": sum(took for _s, took in seen) * 1000,
        "slowest": sorted(seen, key=lambda item: -item[1]),
        "ms": statistics.median(times) * 1000,
        "kb": len(response.get_data()) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--communes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--province-broadcasts",
        type=int,
        default=PROVINCE_BROADCASTS,
        help="emergencies delivered to every receiver (the province bench sends ~60)",
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--postgres", action="store_true", help="start one (tests/postgres.py)")
    parser.add_argument("--page", action="append", help="only these pages")
    parser.add_argument("--pstats", help="profile the --page requests into this file")
    parser.add_argument("--slowest", type=int, default=0, help="show each page's N slowest SQL")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="loa-pages-"))
    options: dict[str, Any] = {"data_dir": folder, "mqtt_port": 1, "port": 8099}
    server = None
    if args.postgres:
        sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
        from postgres import PostgresServer

        server = PostgresServer(Path(tempfile.mkdtemp(prefix="loa-pages-pg-")))
        server.start()
        args.database_url = server.create_database("pages")
    if args.database_url:
        options["database_url"] = args.database_url
    service = BroadcastService(Settings(**options), connect_mqtt=False)
    started = time.perf_counter()
    people = seed(service, args.communes, args.province_broadcasts)
    print(f"seeded {args.communes} communes in {time.perf_counter() - started:.1f} s")
    if server is not None:  # as autovacuum would have by then: plans from the real sizes
        with service.db.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    app = create_app(service, {"TESTING": True})
    profiler = cProfile.Profile() if args.pstats else None
    print(f"{'who':<10} {'page':<18} {'status':>6} {'stmts':>6} {'sql ms':>7} {'ms':>8} {'kB':>7}")
    for who, username in zip(("editor", "officer"), people, strict=True):
        client = app.test_client()
        login(client, username)
        for url in args.page or PAGES:
            if profiler is not None:
                profiler.enable()
            got = measure(service, client, url, args.repeat)
            if profiler is not None:
                profiler.disable()
            print(
                f"{who:<10} {url:<18} {got['status']:>6} {got['statements']:>6} "
                f"{got['sql_ms']:>7.1f} {got['ms']:>8.1f} {got['kb']:>7.1f}"
            )
            for statement, took in got["slowest"][: args.slowest]:
                print(f"    {took * 1000:7.1f} ms  {' '.join(statement.split())[:150]}")
    if profiler is not None:
        profiler.dump_stats(args.pstats)
    service.stop()
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
