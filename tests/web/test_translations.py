"""The English catalog is complete: every message the UI can show has a checked translation.

A string newly wrapped in `_()` (template or Python) with no English fails
`test_every_extracted_message_is_translated` with its text and where it is; fix it with
`pybabel extract -F web/babel.cfg -o /tmp/messages.pot .`, then
`pybabel update -i /tmp/messages.pot -d web/translations -l en` and a translation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask.testing import FlaskClient
from service_support import Users, approved_bulletin
from web_support import login

from broadcast.const import ScheduleKind
from broadcast.desks.scheduling import ScheduleRequest
from broadcast.service import BroadcastService
from web import i18n
from wire.protocol import Priority

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "web" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
BABEL_CFG = ROOT / "web" / "babel.cfg"
SOURCE_DIRS = ("web", "broadcast")  # what web/babel.cfg maps
# as in web/babel.cfg, also stated here should an older Babel ignore per-section keywords
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


def _catalog() -> Catalog:
    with CATALOG.open("rb") as source:
        return read_po(source, locale="en")


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _only_sources(path: str) -> bool:
    relative = Path(path).relative_to(ROOT).parts
    if not relative:
        return True
    hidden = any(part.startswith((".", "_")) for part in relative)
    return relative[0] in SOURCE_DIRS and not hidden


def _extracted() -> Iterator[tuple[str, int, str, str | None]]:
    """(file, line, msgid, context) of every message the code and templates mark."""
    with BABEL_CFG.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, str(BABEL_CFG))
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT),
        method_map,
        options_map,
        keywords=KEYWORDS,
        directory_filter=_only_sources,
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            yield filename, lineno, msgid, context


def test_catalog_entries_are_translated_and_keep_placeholders(tmp_path: Path) -> None:
    catalog = _catalog()
    problems = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        where = f"{message.id!r} (context {message.context!r})"
        if message.fuzzy:
            problems.append(f"fuzzy: {where}")
        if not all(strings):
            problems.append(f"empty: {where}")
        expected = _placeholders(message.id if isinstance(message.id, str) else message.id[0])
        for string in strings:
            if string and _placeholders(string) != expected:
                problems.append(f"placeholders {sorted(expected)} changed: {where} -> {string!r}")
    for message, errors in catalog.check():
        problems.extend(f"{error}: {message.id!r}" for error in errors)
    problems.extend(f"obsolete: {msgid!r}" for msgid in catalog.obsolete)
    assert not problems, "\n".join(problems)
    mo_file = i18n.compile_catalogs(tmp_path) / "en" / "LC_MESSAGES" / "messages.mo"
    assert mo_file.stat().st_size > 0


def test_every_extracted_message_is_translated() -> None:
    catalog = _catalog()
    missing = []
    seen = 0
    for filename, lineno, msgid, context in _extracted():
        seen += 1
        message = catalog.get(msgid, context=context)
        if message is None or not message.string or message.fuzzy:
            missing.append(f"{filename}:{lineno}: {msgid!r}" + (f" ({context})" if context else ""))
    assert seen > 100  # the extraction really ran over web/ and its templates
    assert not missing, "no English translation in web/translations/en for:\n" + "\n".join(
        sorted(set(missing))
    )


# --- pages in English ---------------------------------------------------------------------

VIETNAMESE_ONLY = re.compile("[ăâđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.I)
USER_DATA = ("Xã Thử", "Thôn A", "Thôn B", "Tiếng Việt")
ATTRIBUTES_READ = ("title", "aria-label", "placeholder", "alt", "data-confirm")


class _VisibleText(HTMLParser):
    """Text nodes and read-aloud attributes, without scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(value for name, value in attrs if name in ATTRIBUTES_READ and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _left_in_vietnamese(page: str) -> list[str]:
    reader = _VisibleText()
    reader.feed(page)
    lines = []
    for part in reader.parts:
        for name in USER_DATA:
            part = part.replace(name, "")
        lines.extend(line.strip() for line in part.splitlines() if VIETNAMESE_ONLY.search(line))
    return lines


@pytest.fixture
def planned(service: BroadcastService, users: Users) -> None:
    """Schedules of each wording, so their descriptions and weekday names show."""
    bulletin = approved_bulletin(service, users.officer, "Evening news", "Evening news.")
    start = date.today() + timedelta(days=2)
    daily = ScheduleRequest(
        bulletin_id=bulletin,
        kind=ScheduleKind.DAILY,
        zone_ids=["thon-b"],
        priority=Priority.NORMAL,
        time_of_day="17:00",
        valid_to=(start + timedelta(days=7)).isoformat(),
    )
    weekdays = replace(
        daily, kind=ScheduleKind.WEEKDAYS, time_of_day="06:00", weekdays=(0, 2, 4), valid_to=""
    )
    once = replace(
        daily, kind=ScheduleKind.ONCE, time_of_day="", run_at=f"{start}T09:30", valid_to=""
    )
    for request in (daily, weekdays, once):
        service.scheduling.schedule(users.officer, request)


@pytest.mark.parametrize(
    "url",
    ["/", "/bulletins/", "/calendar/", "/announce/", "/reports/", "/admin/users"],
)
def test_pages_in_english_have_no_vietnamese_left(
    client: FlaskClient, planned: None, url: str
) -> None:
    login(client, "admin")
    response = client.get(url, query_string={"lang": "en"})
    assert response.status_code == 200, url
    page = response.get_data(as_text=True)
    assert 'lang="en"' in page
    assert not _left_in_vietnamese(page), f"{url} still shows: {_left_in_vietnamese(page)}"


def test_schedule_wording_in_both_languages(client: FlaskClient, planned: None) -> None:
    login(client, "admin")
    english = client.get("/bulletins/?lang=en").get_data(as_text=True)
    assert "Daily at 17:00 (from … to " in english
    assert "Monday, Wednesday, Friday at 06:00" in english
    vietnamese = client.get("/bulletins/?lang=vi").get_data(as_text=True)
    assert "Hằng ngày 17:00 (từ … đến " in vietnamese
    assert "Thứ Hai, Thứ Tư, Thứ Sáu lúc 06:00" in vietnamese


def test_workers_starting_together_compile_the_catalogs_without_clashing(tmp_path: Path) -> None:
    """Every gunicorn worker compiles the catalogs into the same data directory at start."""
    failures: list[BaseException] = []

    def compile_often() -> None:
        try:
            for _ in range(20):
                i18n.compile_catalogs(tmp_path)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=compile_often) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert [p.name for p in (tmp_path / "en" / "LC_MESSAGES").iterdir()] == ["messages.mo"]
