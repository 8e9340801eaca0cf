"""Setting up an installation (thiết lập): the zone tree from nothing, for the CLI and the
admin pages.

A province's installation is a tree: the province (tỉnh, thành phố) → its communes (xã, phường,
đặc khu) → their villages (thôn, bản, tổ dân phố), with receivers under villages. A commune at
the root is a single-commune installation, as Loa was before provinces; `move_zone` places it
under a province later, with its villages, receivers and users.

`import_zones` reads the tree from a CSV file (columns code, name, kind, parent; an optional id
column), the way a province hands out its list of units. It is all or nothing: every row is
checked against the file and the database first, and one bad row (its line and column named)
writes nothing. It is idempotent: a row is matched to the zone it already made (by code, id,
or name under the same parent), so importing the same file again changes nothing and says so;
a changed name or parent in the file renames or moves the zone; zones absent from the file stay.

Every change is audited like any other admin change (`ZONE_CREATE`, `ZONE_UPDATE`). `user_id`
None is the operator at the server's console (the CLI); otherwise an admin.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcast.const import ZONE_KIND_WORDS, Role, ZoneKind
from broadcast.errors import N_, NotFound, ValidationError, format_message
from broadcast.people import accounts, audit, zones
from broadcast.people.permissions import Action
from broadcast.store.db import Database
from broadcast.store.models import Device, User, Zone
from wire.protocol import ID_PATTERN

_LOGGER = logging.getLogger(__name__)

MAX_NAME_CHARS = 200  # the name column's length
MAX_PROBLEMS = 20  # a file with hundreds of bad rows: the first ones say what is wrong
_RANK = {ZoneKind.PROVINCE: 0, ZoneKind.COMMUNE: 1, ZoneKind.VILLAGE: 2}

# The words a province's lists use for each level, Vietnamese and English; compared without
# case or diacritics, so "Xa", "xã" and "XÃ" are all a commune.
KIND_WORDS: dict[ZoneKind, tuple[str, ...]] = {
    ZoneKind.PROVINCE: ("tỉnh", "thành phố", "province", "city"),
    ZoneKind.COMMUNE: ("xã", "phường", "đặc khu", "commune", "ward", "special zone"),
    ZoneKind.VILLAGE: (
        "thôn", "bản", "tổ dân phố", "xóm", "ấp", "làng", "buôn", "bon", "sóc", "phum", "plei",
        "khu phố", "khối phố", "khóm", "tiểu khu", "village", "hamlet",
    ),
}  # fmt: skip
COLUMN_WORDS: dict[str, tuple[str, ...]] = {
    "code": ("code", "mã", "mã đơn vị hành chính", "mã đvhc"),
    "name": ("name", "tên"),
    "kind": ("kind", "loại", "cấp"),
    "parent": ("parent", "cấp trên", "thuộc", "trực thuộc"),
    "id": ("id", "mã khu vực"),
}
REQUIRED_COLUMNS = ("code", "name", "kind", "parent")


def fold(text: str) -> str:
    """Lowercase, without diacritics (đ → d), spaces and dashes collapsed: how words and
    names are compared."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().replace("_", " ").replace("-", " ").split())


_KINDS = {fold(word): kind for kind, words in KIND_WORDS.items() for word in words}
_COLUMNS = {fold(word): column for column, words in COLUMN_WORDS.items() for word in words}


# the district level (huyện, quận, thị xã) ended on 1 July 2025: communes sit under provinces
DISTRICT_WORDS = frozenset(fold(word) for word in ("huyện", "quận", "thị xã", "district"))


def parse_kind(word: str) -> ZoneKind | None:
    """The kind a word names (tỉnh, xã, thôn, province, …), or None."""
    return _KINDS.get(fold(word))


def unknown_kind(word: str) -> ValidationError:
    """Why `word` is not a kind, with the words that are (code `bad_kind`, on `kind`)."""
    shown = word.strip()[:40]
    if fold(word) in DISTRICT_WORDS:
        message = N_("“%(word)s”: cấp huyện đã bỏ từ ngày 1/7/2025; hãy đặt các xã trực thuộc tỉnh")
    elif shown:
        message = N_(
            "“%(word)s” không phải loại khu vực: tỉnh/thành phố, xã/phường/đặc khu hoặc"
            " thôn/bản/tổ dân phố (hay province, commune, village)"
        )
    else:
        message = N_(
            "chưa ghi loại khu vực: tỉnh/thành phố, xã/phường/đặc khu hoặc thôn/bản/tổ dân"
            " phố (hay province, commune, village)"
        )
    return ValidationError("kind", message, "bad_kind", word=shown)


def slug(text: str) -> str:
    """A zone id from a Vietnamese name: "Xã Hoằng Hợp" → "xa-hoang-hop" (at most 63)."""
    words = re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")
    return words[:63].rstrip("-")


def clean_name(text: str) -> str:
    """NFC (a name typed on another system may come decomposed), spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def name_key(text: str) -> str:
    """How two names are the same zone's: case and spacing aside, diacritics kept (Thôn Đông
    and Thôn Đồng are two villages)."""
    return clean_name(text).casefold()


def natural_key(text: str) -> tuple[Any, ...]:
    """Thôn 2 before Thôn 10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", fold(text)))


# --- what the desk answers ------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneLine:
    """One zone of the tree, with its depth (0: at the root) and its receivers."""

    id: str
    name: str
    kind: str
    code: str | None
    parent_id: str | None
    depth: int
    devices: int


@dataclass(frozen=True)
class Problem:
    """What is wrong with one cell of an imported file (`line` 1 is the first): a coded,
    marked message id and its parameters, as errors carry them (`broadcast.errors`)."""

    line: int
    column: str
    msgid: str
    code: str
    params: dict[str, object] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return format_message(self.msgid, self.params)

    def __str__(self) -> str:
        where = f"dòng {self.line}" + (f", cột {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class ZoneFileError(ValidationError):
    """A file that cannot be imported; nothing was written. `problems` names each bad cell."""

    def __init__(self, problems: list[Problem], more: int = 0) -> None:
        count = len(problems) + more
        super().__init__(
            "file",
            N_("%(count)s lỗi, chưa ghi gì: %(first)s"),
            problems[0].code,
            count=count,
            first=str(problems[0]),
        )
        self.problems = problems
        self.more = more


@dataclass
class ImportResult:
    """What an import changed, zone ids per kind of change."""

    rows: int = 0
    created: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    coded: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    bound: list[str] = field(default_factory=list)  # staff bound to their commune (`bind_staff`)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.renamed or self.coded or self.moved)


@dataclass(frozen=True)
class MoveResult:
    zone_id: str
    previous_parent: str | None
    parent: str | None
    changed: bool
    receivers: int  # under the moved zone: each now hears one more zone above it
    bound: tuple[str, ...] = ()  # the commune's staff bound to it (`zones.move_zone`)


@dataclass(frozen=True)
class Readiness:
    """Whether an installation can serve anyone: a zone to broadcast to, an admin to sign in."""

    zones: int
    communes: int
    admins: int

    @property
    def ready(self) -> bool:
        return self.zones > 0 and self.admins > 0


# --- reading a file -------------------------------------------------------------------------


@dataclass
class _Row:
    line: int
    kind: ZoneKind
    name: str
    code: str | None
    parent_ref: str
    given_id: str | None
    zone: Zone | None = None  # the existing zone it describes
    zone_id: str = ""
    parent_id: str | None = None


class _Problems:
    def __init__(self) -> None:
        self.found: list[Problem] = []
        self.lines: set[int] = set()
        self.bad_refs: set[str] = set()  # codes and ids of bad lines: their children wait

    def add(self, line: int, column: str, msgid: str, code: str, **params: object) -> None:
        self.found.append(Problem(line, column, msgid, code, params))
        self.lines.add(line)

    def raise_any(self) -> None:
        if self.found:
            ordered = sorted(self.found, key=lambda p: p.line)
            raise ZoneFileError(ordered[:MAX_PROBLEMS], max(0, len(ordered) - MAX_PROBLEMS))


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ZoneFileError(
            [Problem(line, "", N_("không phải chữ UTF-8: hãy lưu tệp dạng CSV UTF-8"), "encoding")]
        ) from None


def _delimiter(text: str) -> str:
    """Comma, or what a spreadsheet in Vietnamese saves with (a semicolon: the comma is the
    decimal separator there), or a tab."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    for candidate in (",", ";", "\t"):
        if candidate in first:
            return candidate
    return ","


def _read_rows(text: str, problems: _Problems) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    columns: dict[str, int] | None = None
    rows: list[_Row] = []
    previous = 0
    try:
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = _header(cells, line, problems)
                if columns is None:
                    return []
                continue
            row = _row(cells, columns, line, problems)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        problems.add(reader.line_num, "", N_("không phải tệp CSV: %(why)s"), "csv", why=str(exc))
        return []
    if columns is None:
        problems.add(1, "", N_("tệp trống: cần dòng tiêu đề (code,name,kind,parent)"), "empty")
    elif not rows and not problems.found:
        problems.add(previous, "", N_("tệp không có khu vực nào dưới dòng tiêu đề"), "empty")
    return rows


def _header(cells: list[str], line: int, problems: _Problems) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        column = _COLUMNS.get(fold(cell))
        if column is None:
            continue  # a remark column, say: ignored
        if column in columns:
            problems.add(
                line, cell.strip(), N_("cột %(column)s có hai lần"), "header", column=column
            )
        columns[column] = index
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        problems.add(
            line,
            missing[0],
            N_("dòng tiêu đề thiếu %(missing)s: dòng đầu phải ghi các cột code,name,kind,parent"),
            "header",
            missing=", ".join(missing),
        )
        return None
    return columns


def _row(cells: list[str], columns: dict[str, int], line: int, problems: _Problems) -> _Row | None:
    def cell(column: str) -> str:
        index = columns.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    before = len(problems.found)
    kind = parse_kind(cell("kind"))
    if kind is None:
        refused = unknown_kind(cell("kind"))
        problems.add(line, "kind", refused.msgid, "bad_kind", **refused.params)
    name = clean_name(cell("name"))
    if not name:
        problems.add(line, "name", N_("tên còn trống"), "empty_name")
    elif len(name) > MAX_NAME_CHARS:
        problems.add(line, "name", N_("tên dài quá %(max)s ký tự"), "long", max=MAX_NAME_CHARS)
    code = None
    if kind is not None:
        try:
            code = zones.clean_code(kind, cell("code"))
        except ValidationError as exc:
            problems.add(line, "code", exc.msgid, exc.code, **exc.params)
    given_id = cell("id") or None
    if given_id is not None and not ID_PATTERN.fullmatch(given_id):
        problems.add(
            line,
            "id",
            N_("“%(id)s” không phải mã khu vực (a-z, 0-9 và -, tối đa 63)"),
            "bad_id",
            id=given_id[:70],
        )
    if len(problems.found) > before or kind is None:
        problems.bad_refs.update(ref for ref in (cell("code"), cell("id")) if ref)
        return None
    return _Row(line, kind, name, code, cell("parent"), given_id)


# --- the desk -------------------------------------------------------------------------------


class Setup:
    """The zone tree: import, add, move, list; and whether an installation is ready to serve."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def readiness(self) -> Readiness:
        with self._db.session() as session:
            count = session.scalar(select(func.count()).select_from(Zone)) or 0
            communes = session.scalar(
                select(func.count()).where(Zone.kind == ZoneKind.COMMUNE.value)
            )
            admins = session.scalar(
                select(func.count()).where(User.role == Role.ADMIN.value, User.active.is_(True))
            )
            return Readiness(int(count), int(communes or 0), int(admins or 0))

    def tree(self, user_id: int | None) -> list[ZoneLine]:
        """Every zone, parents before their children: provinces, then communes, by name; for
        an admin bound to a zone, that zone and the zones below it."""
        with self._db.session() as session:
            return zone_tree(session, _actor(session, user_id))

    def add_zone(
        self,
        user_id: int | None,
        kind: str,
        name: str,
        code: str = "",
        parent: str = "",
        zone_id: str = "",
    ) -> ZoneLine:
        """One zone; without `zone_id`, its id is made from its name (a village's is prefixed
        with its commune's id, since every commune has its Thôn 1)."""
        with self._db.session() as session:
            actor = _actor(session, user_id)
            zone = add_zone(session, actor, kind, name, code=code, parent=parent, zone_id=zone_id)
            return ZoneLine(zone.id, zone.name, zone.kind, zone.code, zone.parent_id, 0, 0)

    def move_zone(self, user_id: int | None, zone_ref: str, parent_ref: str) -> MoveResult:
        """Put a zone (by id or code) under another (item 7: a single commune under the
        province its operator names). Users keep their zones and roles: nothing else moves.
        Only the console or an installation-wide admin reshapes the tree."""
        with self._db.session() as session:
            actor = _installation_actor(session, user_id)
            zone = zones.find_zone(session, zone_ref)
            if zone is None:
                raise NotFound(
                    N_("không có khu vực nào mang mã hay mã hành chính “%(ref)s”"),
                    "not_found",
                    ref=zone_ref.strip()[:70],
                )
            parent = _parent(session, parent_ref)
            previous = zone.parent_id
            new = None if parent is None else parent.id
            receivers = len(zones.target_devices([zone]))
            if previous == new:
                return MoveResult(zone.id, previous, new, False, receivers)
            bound = zones.move_zone(session, zone, parent)
            _audit_move(session, actor, zone, previous, bound)
            return MoveResult(zone.id, previous, new, True, receivers, tuple(bound))

    def import_zones(self, user_id: int | None, data: bytes | str) -> ImportResult:
        """The zones a CSV file describes, created or brought in line, in one transaction;
        ZoneFileError (naming every bad cell, up to MAX_PROBLEMS) and nothing written else."""
        problems = _Problems()
        rows = _read_rows(_decode(data), problems)
        with self._db.session() as session:
            actor = _installation_actor(session, user_id)
            planned = _Plan(session, rows, problems).run()
            problems.raise_any()
            result = ImportResult(rows=len(rows))
            for row in planned:
                _apply(session, actor, row, result)
            _LOGGER.info(
                "zones imported: %d rows, %d created, %d renamed, %d coded, %d moved",
                len(rows),
                len(result.created),
                len(result.renamed),
                len(result.coded),
                len(result.moved),
            )
            return result


def zone_tree(session: Session, actor: User | None) -> list[ZoneLine]:
    """The zones `actor` works in (every zone for the console or an installation-wide
    account), parents before their children, each level by rank and name; depth 0 is the
    top of what is listed."""
    counts = dict(
        session.execute(select(Device.zone_id, func.count()).group_by(Device.zone_id)).all()
    )
    found = list(session.scalars(select(Zone)))
    children: dict[str | None, list[Zone]] = {}
    known = {zone.id for zone in found}
    for zone in found:
        parent = zone.parent_id if zone.parent_id in known else None
        children.setdefault(parent, []).append(zone)
    top = children.get(None, []) if actor is None or actor.zone is None else [actor.zone]
    lines: list[ZoneLine] = []
    seen: set[str] = set()
    stack = [(zone, 0) for zone in reversed(_ordered(top))]
    while stack:
        zone, depth = stack.pop()
        if zone.id in seen:
            continue
        seen.add(zone.id)
        lines.append(
            ZoneLine(
                zone.id,
                zone.name,
                zone.kind,
                zone.code,
                zone.parent_id,
                depth,
                int(counts.get(zone.id, 0)),
            )
        )
        below = _ordered(children.get(zone.id, []))
        stack.extend((child, depth + 1) for child in reversed(below))
    return lines


def add_zone(
    session: Session,
    actor: User | None,
    kind: str,
    name: str,
    *,
    code: str = "",
    parent: str = "",
    zone_id: str = "",
) -> Zone:
    """One zone, checked against the tree rules (`zones.check_placement`, `zones.clean_code`)
    and audited; an admin bound to a zone creates only below it (a commune admin: villages of
    its commune; a province admin: communes of its province and their villages), so only the
    console or an installation-wide admin adds a zone at the root (a province)."""
    zone_kind = parse_kind(kind)
    if zone_kind is None:
        raise unknown_kind(kind)
    clean = clean_name(name)
    if not clean:
        raise ValidationError("name", N_("tên khu vực trống"), "empty_name")
    if len(clean) > MAX_NAME_CHARS:
        raise ValidationError("name", N_("tên dài quá %(max)s ký tự"), "long", max=MAX_NAME_CHARS)
    clean_code = zones.clean_code(zone_kind, code)
    if clean_code is not None:
        taken = zones.by_code(session, clean_code)
        if taken is not None:
            raise ValidationError(
                "code",
                N_("mã hành chính %(value)s đã là của khu vực “%(id)s”"),
                "taken",
                value=clean_code,
                id=taken.id,
            )
    parent_zone = _parent(session, parent, actor)
    if parent_zone is None and actor is not None and actor.zone is not None:
        raise ValidationError(
            "parent",
            N_("hãy chọn nơi trực thuộc trong “%(zone)s”"),
            "zone_out_of_reach",
            zone=actor.zone.name,
        )
    zones.check_placement(zone_kind, parent_zone)
    _check_new_name(session, zone_kind, clean, parent_zone)
    new_id = zone_id.strip()
    if not new_id:
        base = _derived_id(zone_kind, clean, parent_zone)
        if not base:
            raise ValidationError(
                "name", N_("tên này không cho ra mã khu vực: hãy ghi mã (--id)"), "bad_id"
            )
        new_id = _free_id(base, clean_code, lambda i: session.get(Zone, i) is not None)
        if new_id is None:
            raise ValidationError(
                "id", N_("mã khu vực “%(id)s” đã có: hãy ghi mã khác"), "taken", id=base
            )
    elif session.get(Zone, new_id) is not None:
        raise ValidationError(
            "id", N_("mã khu vực “%(id)s” đã có: hãy ghi mã khác"), "taken", id=new_id
        )
    zone = zones.create_zone(
        session, new_id, clean, zone_kind, None if parent_zone is None else parent_zone.id,
        clean_code,
    )  # fmt: skip
    _audit_create(session, actor, zone)
    return zone


class _Plan:
    """Every row matched to the zone it describes (or a new id) and its parent resolved,
    against the database and the rest of the file; problems collected, nothing written."""

    def __init__(self, session: Session, rows: list[_Row], problems: _Problems) -> None:
        self.session = session
        self.rows = rows
        self.problems = problems
        self.by_code: dict[str, _Row] = {}
        self.by_given_id: dict[str, _Row] = {}
        self.by_id: dict[str, _Row] = {}  # rows already planned, by their zone's id
        self.claimed: dict[str, _Row] = {}  # existing zone id → the row that describes it
        self.by_name: dict[tuple[ZoneKind, str | None, str], _Row] = {}
        self.bad: set[int] = set(problems.lines)

    def run(self) -> list[_Row]:
        for row in self.rows:
            self._index(row)
        ordered = sorted(self.rows, key=lambda row: (_RANK[row.kind], row.line))
        planned: list[_Row] = []
        for row in ordered:
            if row.line in self.bad:
                continue
            if self._plan(row):
                planned.append(row)
            else:
                self.bad.add(row.line)
        return planned

    def _fail(self, row: _Row, column: str, msgid: str, code: str, **params: object) -> bool:
        self.problems.add(row.line, column, msgid, code, **params)
        self.bad.add(row.line)
        return False

    def _index(self, row: _Row) -> None:
        if row.code is not None:
            first = self.by_code.setdefault(row.code, row)
            if first is not row:
                self._fail(
                    row, "code", N_("mã %(zone_code)s đã có ở dòng %(at)s"), "dup",
                    zone_code=row.code, at=first.line,
                )  # fmt: skip
        if row.given_id is not None:
            first = self.by_given_id.setdefault(row.given_id, row)
            if first is not row:
                self._fail(
                    row, "id", N_("id %(id)s đã có ở dòng %(at)s"), "dup",
                    id=row.given_id, at=first.line,
                )  # fmt: skip

    def _plan(self, row: _Row) -> bool:
        if not self._resolve_parent(row):
            return False
        key = (row.kind, row.parent_id if row.parent_ref else None, name_key(row.name))
        first = self.by_name.setdefault(key, row)
        if first is not row:
            return self._fail(
                row, "name", N_("“%(name)s” đã có ở dòng %(at)s, cùng nơi trực thuộc"), "dup",
                name=row.name, at=first.line,
            )  # fmt: skip
        if not self._match(row):
            return False
        if row.zone is None and not self._new_id(row):
            return False
        self.by_id[row.zone_id] = row
        return True

    def _resolve_parent(self, row: _Row) -> bool:
        """`row.parent_id` from the parent column (a code or an id, of the file or the
        database), with the tree rules; False after reporting a problem."""
        ref = row.parent_ref
        allowed = zones.PARENT_KINDS[row.kind]
        if not ref:
            if None in allowed:
                return True
            return self._fail(
                row, "parent", N_("%(kind)s cần ghi %(parent)s trực thuộc (mã hoặc id)"),
                "no_parent", kind=ZONE_KIND_WORDS[row.kind], parent=ZONE_KIND_WORDS[allowed[0]],
            )  # fmt: skip
        if ref in self.problems.bad_refs:
            self.bad.add(row.line)  # its parent's line is reported already
            return False
        in_file = self.by_code.get(ref) or self.by_given_id.get(ref) or self.by_id.get(ref)
        if in_file is not None and in_file.line in self.bad:
            self.bad.add(row.line)  # its parent's line is reported already
            return False
        if in_file is not None:
            kind, parent_id = in_file.kind, in_file.zone_id
            where = f"{ZONE_KIND_WORDS[in_file.kind]} ở dòng {in_file.line}"
        else:
            existing = zones.by_code(self.session, ref) or self.session.get(Zone, ref)
            if existing is None:
                return self._fail(
                    row,
                    "parent",
                    N_(
                        "không có nơi trực thuộc “%(ref)s”: tệp và cơ sở dữ liệu không có khu vực"
                        " nào mang mã hay id đó"
                    ),
                    "unknown_parent",
                    ref=ref[:70],
                )
            if existing.id in self.claimed:  # the file describes it: its line decides
                claimed = self.claimed[existing.id]
                kind, parent_id = claimed.kind, claimed.zone_id
            else:
                kind, parent_id = ZoneKind(existing.kind), existing.id
            where = f"{ZONE_KIND_WORDS[kind]} “{existing.id}”"
        if kind not in allowed:
            wanted = " hoặc ".join(ZONE_KIND_WORDS[k] for k in allowed if k is not None)
            return self._fail(
                row,
                "parent",
                N_("%(kind)s không thể thuộc %(where)s (nơi trực thuộc: %(wanted)s)"),
                "wrong_parent",
                kind=ZONE_KIND_WORDS[row.kind],
                where=where,
                wanted=wanted or "không có",
            )
        row.parent_id = parent_id or None
        return True

    def _match(self, row: _Row) -> bool:
        """`row.zone`: the existing zone this row describes, if any (by id, code, or the same
        name and kind under the same parent, or a code-less one at the root the row now
        places: a single commune joining its province)."""
        session = self.session
        zone: Zone | None = None
        if row.given_id is not None:
            zone = session.get(Zone, row.given_id)
            if zone is not None and row.code is not None and zone.code not in (None, row.code):
                return self._fail(
                    row, "code", N_("khu vực “%(id)s” mang mã %(has)s, không phải %(zone_code)s"),
                    "code", id=zone.id, has=zone.code, zone_code=row.code,
                )  # fmt: skip
        if row.code is not None:
            coded = zones.by_code(session, row.code)
            if coded is not None and zone is not None and coded is not zone:
                return self._fail(
                    row, "code", N_("mã %(zone_code)s đã là của khu vực “%(id)s”"), "taken",
                    zone_code=row.code, id=coded.id,
                )  # fmt: skip
            zone = zone or coded
        if zone is None and row.given_id is None:
            same = self._same_name(row)
            if len(same) > 1:
                ids = ", ".join(found.id for found in same[:5])
                return self._fail(
                    row, "name", N_("nhiều khu vực cùng tên “%(name)s” (%(ids)s): hãy thêm cột id"),
                    "dup", name=row.name, ids=ids,
                )  # fmt: skip
            zone = same[0] if same else None
        if zone is None:
            return True
        if zone.kind != row.kind:
            return self._fail(
                row, "kind", N_("khu vực “%(id)s” là %(kind)s: cấp khu vực không đổi được"),
                "kind", id=zone.id, kind=ZONE_KIND_WORDS[zone.kind],
            )  # fmt: skip
        earlier = self.claimed.get(zone.id)
        if earlier is not None:
            return self._fail(
                row, "name", N_("dòng %(at)s đã ghi khu vực “%(id)s”"), "dup",
                at=earlier.line, id=zone.id,
            )  # fmt: skip
        self.claimed[zone.id] = row
        row.zone, row.zone_id = zone, zone.id
        return True

    def _same_name(self, row: _Row) -> list[Zone]:
        """Existing zones of the row's kind and name it may describe: under the same parent;
        a code-less commune at the root that the row places under its province; anywhere
        when the row leaves the parent empty (a commune moved since keeps its place)."""
        name = name_key(row.name)
        found = [
            zone
            for zone in self.session.scalars(select(Zone).where(Zone.kind == row.kind.value))
            if name_key(zone.name) == name
            and (row.code is None or zone.code is None)
            and zone.id not in self.claimed
        ]
        if not row.parent_ref:
            return found
        exact = [zone for zone in found if zone.parent_id == row.parent_id]
        if exact or row.kind != ZoneKind.COMMUNE:
            return exact
        return [zone for zone in found if zone.parent_id is None and zone.code is None]

    def _new_id(self, row: _Row) -> bool:
        if row.given_id is not None:
            row.zone_id = row.given_id
            return True
        parent = None if row.parent_id is None else _Parent(row.parent_id)
        base = _derived_id(row.kind, row.name, parent)
        if not base:
            return self._fail(row, "name", N_("tên không tạo được id: hãy thêm cột id"), "bad_id")
        candidate = _free_id(base, row.code, self._taken)
        if candidate is None:
            return self._fail(
                row, "name", N_("id “%(id)s” đã có khu vực dùng: hãy thêm cột id"), "taken",
                id=base,
            )  # fmt: skip
        row.zone_id = candidate
        return True

    def _taken(self, zone_id: str) -> bool:
        return (
            zone_id in self.by_id
            or zone_id in self.by_given_id
            or self.session.get(Zone, zone_id) is not None
        )


@dataclass(frozen=True)
class _Parent:
    id: str


def _free_id(base: str, code: str | None, taken: Callable[[str], bool]) -> str | None:
    """`base`, or when another zone has it (Thôn Đông, Thôn Đồng: thon-dong) `base-CODE`,
    else `base-2`, `base-3`, …; None when even those are taken."""
    if not taken(base):
        return base
    suffixes = ([code] if code else []) + [str(n) for n in range(2, 100)]
    for suffix in suffixes:
        candidate = f"{base[: 62 - len(suffix)].rstrip('-')}-{suffix}"
        if not taken(candidate):
            return candidate
    return None


def _derived_id(kind: ZoneKind, name: str, parent: Zone | _Parent | None) -> str:
    made = slug(name)
    if kind == ZoneKind.VILLAGE and parent is not None and made:
        made = f"{parent.id}-{made}"[:63].rstrip("-")
    return made


def _apply(session: Session, actor: User | None, row: _Row, result: ImportResult) -> None:
    zone = row.zone
    if zone is None:
        zone = zones.create_zone(session, row.zone_id, row.name, row.kind, row.parent_id, row.code)
        _audit_create(session, actor, zone)
        result.created.append(zone.id)
        return
    detail: dict[str, Any] = {}
    if zone.name != row.name:
        detail.update(name=row.name, previous_name=zone.name)
        zone.name = row.name
        result.renamed.append(zone.id)
    if row.code is not None and zone.code != row.code:
        detail.update(zone_code=row.code, previous_code=zone.code)
        zone.code = row.code
        result.coded.append(zone.id)
    if row.parent_ref and zone.parent_id != row.parent_id:
        detail.update(parent=row.parent_id, previous_parent=zone.parent_id)
        was_root = zone.parent_id is None
        zone.parent_id = row.parent_id
        result.moved.append(zone.id)
        session.flush()
        if was_root:
            session.refresh(zone)
            result.bound.extend(zones.bind_staff(session, zone))
    if detail:
        session.flush()
        audit.record(session, actor, audit.Action.ZONE_UPDATE, f"zone:{zone.id}", detail)


def _check_new_name(session: Session, kind: ZoneKind, name: str, parent: Zone | None) -> None:
    """Two zones of a kind with one name under one parent would be one zone twice."""
    query = select(Zone).where(
        Zone.kind == kind.value,
        Zone.parent_id.is_(None) if parent is None else Zone.parent_id == parent.id,
    )
    for zone in session.scalars(query):
        if name_key(zone.name) == name_key(name):
            if parent is None:
                raise ValidationError(
                    "name",
                    N_("%(kind)s “%(id)s” ở cấp gốc đã mang tên này"),
                    "taken",
                    kind=ZONE_KIND_WORDS[kind],
                    id=zone.id,
                )
            raise ValidationError(
                "name",
                N_("%(kind)s “%(id)s” thuộc “%(parent)s” đã mang tên này"),
                "taken",
                kind=ZONE_KIND_WORDS[kind],
                id=zone.id,
                parent=parent.id,
            )


def _actor(session: Session, user_id: int | None) -> User | None:
    return None if user_id is None else accounts.require_user(session, user_id, Action.ADMINISTER)


def _installation_actor(session: Session, user_id: int | None) -> User | None:
    """The console (None) or an installation-wide admin: who may reshape the whole tree."""
    if user_id is None:
        return None
    return accounts.require_installation_admin(session, user_id)


def _parent(session: Session, reference: str, actor: User | None = None) -> Zone | None:
    """The zone named by id or administrative code; for an admin bound to a zone, one of
    its zones only (another reads as unknown: it does not tell them it exists)."""
    text = reference.strip()
    if not text:
        return None
    found = zones.find_zone(session, text)
    if found is not None and actor is not None and not zones.in_scope(session, actor, found.id):
        found = None
    if found is None:
        raise ValidationError(
            "parent",
            N_("không có khu vực nào mang mã hay mã hành chính “%(ref)s”"),
            "unknown_parent",
            ref=text[:70],
        )
    return found


def _ordered(found: Iterable[Zone]) -> list[Zone]:
    return sorted(found, key=lambda zone: (_rank(zone.kind), natural_key(zone.name), zone.id))


def _rank(kind: str) -> int:
    try:
        return _RANK[ZoneKind(kind)]
    except ValueError:
        return len(_RANK)


def _audit_create(session: Session, actor: User | None, zone: Zone) -> None:
    audit.record(
        session,
        actor,
        audit.Action.ZONE_CREATE,
        f"zone:{zone.id}",
        {"name": zone.name, "kind": zone.kind, "parent": zone.parent_id, "code": zone.code},
    )


def _audit_move(
    session: Session, actor: User | None, zone: Zone, previous: str | None, bound: list[str]
) -> None:
    detail: dict[str, Any] = {"parent": zone.parent_id, "previous_parent": previous}
    if bound:
        detail["bound_users"] = bound
    audit.record(session, actor, audit.Action.ZONE_UPDATE, f"zone:{zone.id}", detail)


__all__ = [
    "KIND_WORDS",
    "ImportResult",
    "MoveResult",
    "Problem",
    "Readiness",
    "Setup",
    "ZoneFileError",
    "ZoneLine",
    "parse_kind",
    "slug",
]
