"""Bulk load data for benchmarks: an organisation tree and a million cases, by COPY.

Used by ``manage.py generate_load_data`` (and the read/http benchmarks, which
run against a database it built). Nothing here goes through the services: the
rows are written with PostgreSQL's COPY, in parallel worker processes, and are
made to look exactly like rows the services write:

- a tree of about 5,000 organisations (province → 21 cities → districts and
  universities → branches and service stations), with handlers, verifiers and
  supervisors, and the categories each organisation handles;
- cases in every state, each with the timeline its state implies (submitted,
  routed, escalated, accepted, verification, resolution, feedback, rating …),
  hash-chained exactly as ``casework.events`` chains them, so
  ``manage.py verify_timeline`` passes;
- a few cases with timelines of 200 events (for the timeline benchmark);
- a rating for every rated case, an in-app notification (outbox row, sent) for
  the latest event of every open case, and one viewflow process with its open
  task for every open case.

Secondary indexes and foreign keys of the big tables are dropped before the
load and recreated (and so validated) after it; the database is analysed at
the end. The generator is deterministic for a given ``--seed`` and ``now``.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# --- the organisation tree ----------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # treebeard's MP_Node alphabet, steplen 4
CITY_CODES = [
    "440100", "440200", "440300", "440400", "440500", "440600", "440700",
    "440800", "440900", "441200", "441300", "441400", "441500", "441600",
    "441700", "441800", "441900", "442000", "445100", "445200", "445300",
]  # fmt: skip
DISTRICTS_PER_CITY = 13
UNIVERSITIES_PER_CITY = 2
BRANCHES_PER_DISTRICT = 14
STATIONS_PER_DISTRICT = 2
BRANCHES_PER_UNIVERSITY = 8


def _segment(n: int) -> str:
    digits = ""
    while n:
        n, r = divmod(n, len(ALPHABET))
        digits = ALPHABET[r] + digits
    return digits.rjust(4, "0")


@dataclass
class OrgSpec:
    index: int  # position in the list; the id is index + 1 on a fresh database
    path: str
    level: int
    kind: str
    name: str
    region_code: str
    routes_by_region: bool
    role: str  # "province", "city", "district", "university", "branch", "station"
    children: list[int] = field(default_factory=list)
    parent: int | None = None


def build_org_tree() -> list[OrgSpec]:
    """The tree, parents before children, siblings in path (and name) order."""
    orgs: list[OrgSpec] = []

    def add(parent: OrgSpec | None, **kw) -> OrgSpec:
        path = _segment(1) if parent is None else parent.path + _segment(len(parent.children) + 1)
        spec = OrgSpec(index=len(orgs), path=path, parent=parent.index if parent else None, **kw)
        orgs.append(spec)
        if parent is not None:
            parent.children.append(spec.index)
        return spec

    province = add(
        None,
        level=1,
        kind="league",
        name="共青团广东省委",
        region_code="440000",
        routes_by_region=True,
        role="province",
    )
    for c, code in enumerate(CITY_CODES, 1):
        city = add(
            province,
            level=2,
            kind="league",
            name=f"市团委{c:02d}",
            region_code=code,
            routes_by_region=True,
            role="city",
        )
        # Districts first, then universities: names sort as the paths do (node_order_by).
        for d in range(1, DISTRICTS_PER_CITY + UNIVERSITIES_PER_CITY + 1):
            university = d > DISTRICTS_PER_CITY
            district = add(
                city,
                level=3,
                kind="league",
                name=f"{city.name}-{d:02d}{'高校团委' if university else '区团委'}",
                region_code=code if university else f"{code[:4]}{d:02d}",
                routes_by_region=not university,
                role="university" if university else "district",
            )
            branches = BRANCHES_PER_UNIVERSITY if university else BRANCHES_PER_DISTRICT
            stations = 0 if university else STATIONS_PER_DISTRICT
            for b in range(1, branches + stations + 1):
                station = b > branches
                add(
                    district,
                    level=4,
                    kind="station" if station else "league",
                    name=f"{district.name}-{b:02d}{'青年之家' if station else '团支部'}",
                    region_code=district.region_code,
                    routes_by_region=False,
                    role="station" if station else "branch",
                )
    return orgs


# --- plan of one case --------------------------------------------------------------

# State mix of a platform that has run for a while: most cases are finished.
STATE_WEIGHTS = [
    ("closed", 55),
    ("rejected", 5),
    ("withdrawn", 3),
    ("submitted", 6),
    ("accepted", 5),
    ("verifying", 5),
    ("coordinating", 8),
    ("awaiting_youth", 3),
    ("resolved", 4),
    ("feedback_given", 6),
]
OPEN_STATES = (
    "submitted",
    "accepted",
    "verifying",
    "coordinating",
    "awaiting_youth",
    "resolved",
    "feedback_given",
)
# The transitions that lead to each state (after submitted and routed).
PATH_TO = {
    "submitted": [],
    "accepted": ["accepted"],
    "verifying": ["accepted", "verification_scheduled"],
    "coordinating": ["accepted", "verification_scheduled", "verification_confirmed"],
    "awaiting_youth": [
        "accepted",
        "verification_scheduled",
        "verification_confirmed",
        "info_requested",
    ],
    "resolved": ["accepted", "verification_scheduled", "verification_confirmed", "resolved"],
    "feedback_given": [
        "accepted",
        "verification_scheduled",
        "verification_confirmed",
        "resolved",
        "feedback_given",
    ],
    "closed": [
        "accepted",
        "verification_scheduled",
        "verification_confirmed",
        "resolved",
        "feedback_given",
        "rated",
    ],
    "rejected": ["rejected"],
    "withdrawn": ["withdrawn"],
}
# kind → (from_state, to_state) of that transition event.
TRANSITION_STATES = {
    "accepted": ("submitted", "accepted"),
    "verification_scheduled": ("accepted", "verifying"),
    "verification_confirmed": ("verifying", "coordinating"),
    "info_requested": ("coordinating", "awaiting_youth"),
    "resolved": ("coordinating", "resolved"),
    "feedback_given": ("resolved", "feedback_given"),
    "rated": ("feedback_given", "closed"),
    "rejected": ("submitted", "rejected"),
    "withdrawn": ("submitted", "withdrawn"),
}
LONG_TIMELINE_EVENTS = 200  # events of each of the long-timeline cases
LONG_TIMELINE_CASES = 20  # how many (at 1,000,000 cases; fewer on small loads)
ESCALATED_SHARE = 0.04  # cases escalated once by the SLA sweep, district → city
OVERDUE_SHARE = 0.01  # open cases past their stage deadline (the sweep's backlog)
CASE_ID_SPACE = 12  # event ids reserved per case in a chunk (the long ones have their own)


def case_states(cases: int, seed: int) -> Callable[[int], str]:
    weights = [w for _, w in STATE_WEIGHTS]
    names = [s for s, _ in STATE_WEIGHTS]
    total = sum(weights)
    cumulative = []
    acc = 0
    for w in weights:
        acc += w
        cumulative.append(acc)

    def state_of(i: int) -> str:
        # Deterministic from (seed, i) and spread evenly: a hash, not the row order.
        h = (i * 2654435761 + seed * 97) % total
        for name, edge in zip(names, cumulative, strict=True):
            if h < edge:
                return name
        return names[-1]

    return state_of


def reference_for(i: int) -> str:
    """A unique ``YV-XXXXXXXX`` reference for case number i (a bijection of i, scrambled)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    n = (i * 0x9E3779B97 + 0x5BD1E995) % (1 << 40)
    chars = []
    for _ in range(8):
        n, r = divmod(n, 32)
        chars.append(alphabet[r])
    return "YV-" + "".join(chars)


# --- the hash chain, fast --------------------------------------------------------


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(
    case_id: int,
    seq: int,
    kind: str,
    from_state: str,
    to_state: str,
    actor: int | None,
    org: int | None,
    at_text: str,
    payload_json: str,
    prev: str,
) -> str:
    """``casework.events.compute_hash`` for plain values, without building a dict.

    The JSON text is the one ``json.dumps(sort_keys=True, separators=(",", ":"))``
    writes for the event (keys in sorted order); the strings here never need
    escaping (ASCII states and kinds, ISO times, hex hashes). The command checks
    it against ``compute_hash`` on the first event of every chunk.
    """
    blob = (
        f'{{"actor":{"null" if actor is None else actor},"at":"{at_text}","case":{case_id},'
        f'"from":"{from_state}","kind":"{kind}","org":{"null" if org is None else org},'
        f'"payload":{payload_json},"prev":"{prev}","seq":{seq},"to":"{to_state}"}}'
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _iso(at: datetime) -> str:
    # As compute_hash writes it: UTC, microseconds always present.
    return at.isoformat(timespec="microseconds")


# --- COPY helpers -----------------------------------------------------------------


class LineReader(io.RawIOBase):
    """A file-like object over an iterator of text lines, for ``copy_expert``."""

    def __init__(self, lines: Iterator[str]):
        self._lines = lines
        self._buffer = b""

    def readable(self):
        return True

    def readinto(self, target):
        while len(self._buffer) < len(target):
            chunk = []
            size = 0
            for line in self._lines:
                chunk.append(line)
                size += len(line)
                if size > 1 << 16:
                    break
            if not chunk:
                break
            self._buffer += "".join(chunk).encode()
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def copy_lines(cursor, table: str, columns: list[str], lines: Iterator[str]) -> None:
    cols = ", ".join(f'"{c}"' for c in columns)
    # 64 KiB a read (psycopg2's default is 8 KiB): an eighth of the calls into libpq.
    cursor.copy_expert(
        f'COPY "{table}" ({cols}) FROM STDIN',
        io.BufferedReader(LineReader(lines), buffer_size=1 << 16),
        size=1 << 16,
    )


def text(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return r"\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, datetime):
        return value.isoformat()
    s = str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


CASE_ROW_COLUMNS = frozenset(
    [
        "id",
        "reference",
        "public_token",
        "youth_id",
        "category_id",
        "urgency",
        "region_code",
        "title",
        "description",
        "is_public",
        "requested_org_id",
        "org_id",
        "assignee_id",
        "station_id",
        "state",
        "resume_state",
        "version",
        "stage_due_at",
        "stage_started_at",
        "sla_paused_remaining",
        "sla_breached",
        "remind_at",
        "stage_reminded",
        "escalation_count",
        "reject_reason",
        "outcome",
        "outcome_note",
        "submitted_at",
        "closed_at",
        "updated_at",
        "last_event_seq",
        "last_event_hash",
    ]
)


def row_template(columns: list[str], constants: dict[str, str]) -> str:
    """A ``str.format_map`` template of one COPY line: ``{column}`` for the values each row
    gives (already COPY text, or numbers and datetimes, whose ``str`` PostgreSQL reads),
    the constant's text for every other column."""
    parts = []
    for c in columns:
        if c in constants and c not in CASE_ROW_COLUMNS:
            parts.append(constants[c].replace("{", "{{").replace("}", "}}"))
        else:
            parts.append("{" + c + "}")
    return "\t".join(parts) + "\n"


# --- the world the workers share (plain data, pickled once per worker) -------------


@dataclass
class World:
    cases: int
    seed: int
    now: datetime
    chunk: int
    orgs: list[OrgSpec]
    org_ids: list[int]
    handler_of: dict[int, int]  # org index → user id
    verifier_of: dict[int, int]
    youth_ids: tuple[int, int]  # first id, count
    categories: list[tuple[int, str, bool]]  # (id, code, sensitive)
    case_columns: list[str]
    case_constants: dict[str, str]  # column → COPY text for columns not set per row
    event_table: str
    case_table: str
    rating_table: str
    rating_columns: list[str]
    notification_table: str
    notification_columns: list[str]
    titles: list[str]  # encrypted
    descriptions: list[str]
    solved_outcome: str  # encrypted outcome note
    db_params: dict
    long_cases: frozenset[int]

    # holders of cases: indices of orgs by role
    def by_role(self, role: str) -> list[int]:
        return [o.index for o in self.orgs if o.role == role]


@dataclass
class ChunkResult:
    cases: int = 0
    events: int = 0
    ratings: int = 0
    notifications: int = 0
    states: dict = field(default_factory=dict)
    max_event_id: int = 0
    checked_hash: bool = False


def _payload_json(payload: dict) -> str:
    return _canonical(payload)


EMPTY = "{}"
NULL = r"\N"
RESOLVED_PAYLOAD = {
    True: _canonical({"outcome": "solved"}),
    False: _canonical({"outcome": "partly"}),
}
REJECTED_PAYLOAD = _canonical({"reason": "out_of_scope"})
PAUSED = "36000 seconds"  # what is left of an awaiting-youth case's stage
HASH_CHECKED_CASES = 40  # the first cases of every chunk: each event hashed both ways


def generate_chunk(world: World, start: int, stop: int, event_id_base: int, out) -> ChunkResult:
    """Write cases ``start`` … ``stop - 1`` (0-based) with their events, ratings and
    notifications, through the cursor factory ``out`` (one COPY per table)."""
    from .events import compute_hash  # the reference the fast path is checked against

    rnd = random.Random(world.seed * 1_000_003 + start)
    state_of = case_states(world.cases, world.seed)
    orgs = world.orgs
    org_ids = world.org_ids
    districts = world.by_role("district")
    universities = world.by_role("university")
    branches = world.by_role("branch")
    stations_of: dict[int, list[int]] = {}
    for o in orgs:
        if o.role == "station":
            stations_of.setdefault(o.parent, []).append(o.index)
    world.by_role("city")
    youth_first, youth_count = world.youth_ids
    categories = world.categories
    now = world.now
    result = ChunkResult()

    case_rows: list[str] = []
    event_rows: list[str] = []
    rating_rows: list[str] = []
    notification_rows: list[str] = []
    next_event_id = event_id_base

    case_template = row_template(world.case_columns, world.case_constants)
    rating_template = row_template(world.rating_columns, {})
    note_template = row_template(world.notification_columns, {})
    titles = [text(t) for t in world.titles]
    descriptions = [text(d) for d in world.descriptions]
    solved_outcome = text(world.solved_outcome)

    def station_for(org_index: int) -> int:
        o = orgs[org_index]
        district = o.index if o.role == "district" else o.parent
        while district is not None and orgs[district].role not in ("district", "university"):
            district = orgs[district].parent
        candidates = stations_of.get(district) if district is not None else None
        if not candidates:
            # universities and higher levels: a station of some district of the same city
            return stations_of[districts[org_index % len(districts)]][0]
        return candidates[org_index % len(candidates)]

    def stream() -> Iterator[str]:
        # Generates every case of the chunk, yielding its events' COPY lines as they are
        # made: the events' COPY (the biggest) runs in PostgreSQL while Python builds the
        # next cases, and the case, rating and notification rows gather for their own COPY.
        nonlocal next_event_id
        for i in range(start, stop):
            case_id = i + 1
            state = state_of(i)
            is_open = state in OPEN_STATES
            long_timeline = i in world.long_cases
            if long_timeline:
                state = "coordinating"
                is_open = True
            result.states[state] = result.states.get(state, 0) + 1
            category_id, category_code, sensitive = categories[i % len(categories)]
            youth = youth_first + (i * 7919) % youth_count
            urgency = "normal" if i % 10 < 7 else ("high" if i % 10 < 9 else "urgent")

            # Who holds it: mostly districts and their branches, some universities.
            r = rnd.random()
            if r < 0.45:
                holder = districts[rnd.randrange(len(districts))]
            elif r < 0.90:
                holder = branches[rnd.randrange(len(branches))]
            else:
                holder = universities[rnd.randrange(len(universities))]
            escalated = (not long_timeline) and rnd.random() < ESCALATED_SHARE
            first_holder = holder
            if escalated:
                # The sweep moved it up: from a branch to its district, or a district to its city.
                holder = orgs[holder].parent
            region = orgs[first_holder].region_code

            # Times: open cases are recent, finished ones spread over two years.
            if is_open:
                age = timedelta(seconds=rnd.randrange(3600, 60 * 86400))
            else:
                age = timedelta(seconds=rnd.randrange(7 * 86400, 730 * 86400))
            submitted_at = (now - age).replace(microsecond=rnd.randrange(1_000_000))
            step = max(age / 12, timedelta(minutes=5))

            org_id = org_ids[first_holder]
            handler = world.handler_of.get(holder)
            station_index = None
            steps = PATH_TO[state]
            events: list[tuple] = []  # (kind, from, to, actor, org, at, payload_json)
            at = submitted_at
            # Payloads as _canonical writes them (keys sorted, no spaces): formatted directly,
            # their values being plain ASCII codes and numbers (checked per chunk below).
            payload = f'{{"category":"{category_code}","region":"{region}","urgency":"{urgency}"}}'
            events.append(("submitted", "", "submitted", youth, org_id, at, payload))
            payload = f'{{"considered":{1 + (i % 4)},"org":{org_id},"rule":"region"}}'
            events.append(("routed", "", "", None, org_id, at, payload))
            if escalated:
                at = at + step
                new_org = org_ids[holder]
                payload = f'{{"from_org":{org_id},"reason":"sla_breach","to_org":{new_org}}}'
                org_id = new_org
                events.append(("escalated", "", "", None, org_id, at, payload))
            for kind in steps:
                at = at + step
                from_state, to_state = TRANSITION_STATES[kind]
                actor = handler
                payload = EMPTY
                if kind == "verification_scheduled":
                    station_index = station_for(holder)
                    payload = f'{{"station":{org_ids[station_index]}}}'
                elif kind == "verification_confirmed":
                    actor = world.verifier_of.get(station_index, handler)
                elif kind == "resolved":
                    payload = RESOLVED_PAYLOAD[i % 5 != 0]
                elif kind == "rated" or kind == "withdrawn":
                    actor = youth
                elif kind == "rejected":
                    payload = REJECTED_PAYLOAD
                events.append((kind, from_state, to_state, actor, org_id, at, payload))
            if long_timeline:
                while len(events) < LONG_TIMELINE_EVENTS:
                    at = at + timedelta(minutes=17)
                    events.append(("comment", "", "", handler, org_id, at, EMPTY))
            last_at = at

            # The chain.
            prev = ""
            for seq, (kind, from_state, to_state, actor, ev_org, ev_at, payload) in enumerate(
                events, 1
            ):
                at_text = _iso(ev_at)
                digest = chain_hash(
                    case_id, seq, kind, from_state, to_state, actor, ev_org, at_text, payload, prev
                )
                if i - start < HASH_CHECKED_CASES:
                    if _canonical(json.loads(payload)) != payload:
                        raise RuntimeError(f"a loaded payload is not canonical JSON: {payload}")
                    expected = compute_hash(
                        case_id=case_id,
                        seq=seq,
                        kind=kind,
                        from_state=from_state,
                        to_state=to_state,
                        actor_id=actor,
                        org_id=ev_org,
                        at=ev_at,
                        payload=json.loads(payload),
                        prev_hash=prev,
                    )
                    if expected != digest:
                        raise RuntimeError("the fast hash differs from events.compute_hash")
                    result.checked_hash = True
                next_event_id += 1
                event_rows.append(
                    f"{next_event_id}\t{case_id}\t{seq}\t{kind}\t{from_state}\t{to_state}\t"
                    f"{NULL if actor is None else actor}\t{ev_org}\t{at_text}\t{payload}\t"
                    f"{prev}\t{digest}\n"
                )
                prev = digest
            last_event_id = next_event_id
            result.events += len(events)

            # The case row.
            if state == "awaiting_youth":
                stage_due = None
                remind = None
            elif is_open:
                if rnd.random() < OVERDUE_SHARE:
                    stage_due = now - timedelta(seconds=rnd.randrange(60, 7200))
                    remind = None
                else:
                    stage_due = now + timedelta(seconds=rnd.randrange(3600, 10 * 86400))
                    remind = stage_due - timedelta(hours=6) if state != "feedback_given" else None
            else:
                stage_due = remind = None
            closed_at = last_at if not is_open else None
            outcome = ""
            if state in ("resolved", "feedback_given", "closed"):
                outcome = "solved" if i % 5 else "partly"
            # Every per-row value already in COPY text (no escaping needed: numbers, ASCII
            # codes, hex, base64 and the escaped text pools); the rest are the constants.
            case_rows.append(
                case_template.format_map(
                    {
                        "id": case_id,
                        "reference": reference_for(i),
                        "public_token": f"{case_id:x}-{rnd.getrandbits(96):024x}",
                        "youth_id": youth,
                        "category_id": category_id,
                        "urgency": urgency,
                        "region_code": region,
                        "title": titles[i % len(titles)],
                        "description": descriptions[i % len(descriptions)],
                        "is_public": "t" if not sensitive and i % 10 != 3 else "f",
                        "requested_org_id": NULL,
                        "org_id": org_id,
                        "assignee_id": NULL
                        if handler is None or state in ("submitted", "rejected", "withdrawn")
                        else handler,
                        "station_id": org_ids[station_index] if station_index is not None else NULL,
                        "state": state,
                        "resume_state": "coordinating" if state == "awaiting_youth" else "",
                        "version": len(events) - 1,
                        "stage_due_at": NULL if stage_due is None else stage_due,
                        "stage_started_at": last_at if is_open else NULL,
                        "sla_paused_remaining": PAUSED if state == "awaiting_youth" else NULL,
                        "sla_breached": "f",
                        "remind_at": NULL if remind is None else remind,
                        "stage_reminded": "f",
                        "escalation_count": 1 if escalated else 0,
                        "reject_reason": "out_of_scope" if state == "rejected" else "",
                        "outcome": outcome,
                        "outcome_note": solved_outcome if outcome else "",
                        "submitted_at": submitted_at,
                        "closed_at": NULL if closed_at is None else closed_at,
                        "updated_at": last_at,
                        "last_event_seq": len(events),
                        "last_event_hash": prev,
                    }
                )
            )
            if state == "closed":
                stars = 3 + (i % 3)
                rating = {
                    "case_id": case_id,
                    "timeliness": stars,
                    "attitude": min(5, stars + 1),
                    "outcome": stars,
                    "solved": "solved" if outcome == "solved" else "partly",
                    "comment": "",
                    "created_at": last_at,
                    "updated_at": last_at,
                }
                rating_rows.append(rating_template.format_map(rating))
                result.ratings += 1
            if is_open and handler is not None:
                # The in-app message to the holder about the latest event: sent, as the
                # workers leave it.
                note = {
                    "key": f"load-{last_event_id}-inapp-{handler}",
                    "event_id": last_event_id,
                    "case_id": case_id,
                    "recipient_id": handler,
                    "kind": events[-1][0],
                    "channel": "inapp",
                    "audience": "handler",
                    "context": EMPTY,
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": last_at,
                    "relay_after": last_at,
                    "lease_until": NULL,
                    "last_error": "",
                    "created_at": last_at,
                    "sent_at": last_at,
                }
                notification_rows.append(note_template.format_map(note))
                result.notifications += 1
            result.cases += 1
            yield from event_rows
            event_rows.clear()

    out(world.event_table, EVENT_COLUMNS, stream())

    result.max_event_id = next_event_id
    out(world.case_table, world.case_columns, case_rows)
    out(world.rating_table, world.rating_columns, rating_rows)
    out(world.notification_table, world.notification_columns, notification_rows)
    return result


EVENT_COLUMNS = [
    "id",
    "case_id",
    "seq",
    "kind",
    "from_state",
    "to_state",
    "actor_id",
    "org_id",
    "at",
    "payload",
    "prev_hash",
    "hash",
]


# --- worker processes ---------------------------------------------------------------

_WORLD: World | None = None


def _init_worker(world: World) -> None:
    global _WORLD
    _WORLD = world


def _run_chunk(args: tuple[int, int, int]) -> ChunkResult:
    import psycopg2

    start, stop, base = args
    world = _WORLD
    conn = psycopg2.connect(**world.db_params)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")

            def out(table, columns, rows):
                if rows:
                    copy_lines(cursor, table, columns, iter(rows))

            result = generate_chunk(world, start, stop, base, out)
        conn.commit()
    finally:
        conn.close()
    return result


def run_chunks(
    world: World, workers: int, on_done: Callable[[ChunkResult], None]
) -> list[ChunkResult]:
    """Generate and COPY every chunk, ``workers`` processes at a time."""
    chunks = []
    base = 0
    for start in range(0, world.cases, world.chunk):
        stop = min(start + world.chunk, world.cases)
        chunks.append((start, stop, base))
        long_here = sum(1 for i in world.long_cases if start <= i < stop)
        base += (stop - start) * CASE_ID_SPACE + long_here * LONG_TIMELINE_EVENTS
    results = []
    if workers <= 1:
        _init_worker(world)
        for chunk in chunks:
            result = _run_chunk(chunk)
            results.append(result)
            on_done(result)
        return results
    # A worker that dies (killed, out of memory) fails the load with BrokenProcessPool;
    # multiprocessing.Pool would wait for its chunk for ever.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(world,)
    ) as pool:
        for future in as_completed([pool.submit(_run_chunk, chunk) for chunk in chunks]):
            result = future.result()
            results.append(result)
            on_done(result)
    return results


# --- progress -------------------------------------------------------------------------


class Progress:
    """tqdm on a terminal; otherwise a plain line every ``every`` seconds."""

    def __init__(self, total: int, unit: str, stream=None, every: float = 5.0):
        self.stream = stream or sys.stderr
        self.total = total
        self.unit = unit
        self.done = 0
        self.every = every
        self.started = self.last = time.perf_counter()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=unit, unit_scale=True, file=self.stream)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            print(
                f"  {self.done:,}/{self.total:,} {self.unit} ({rate:,.0f}/s)",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- orchestration --------------------------------------------------------------------


class LoadError(Exception):
    """The database is not one the generator may fill (not PostgreSQL, or not empty)."""


def _model_columns(model, overrides: dict) -> tuple[list[str], dict[str, str]]:
    """Every concrete column and the COPY text of the value it takes when a row sets none."""
    from django.db.models import NOT_PROVIDED

    columns = []
    constants = {}
    for f in model._meta.concrete_fields:
        columns.append(f.column)
        if f.attname in overrides:
            constants[f.column] = text(overrides[f.attname])
        elif f.default is not NOT_PROVIDED:
            value = f.get_default()
            if isinstance(value, dict | list):
                constants[f.column] = _canonical(value)
            elif value is None or isinstance(value, bool | datetime):
                constants[f.column] = text(value)
            else:
                constants[f.column] = text(f.get_prep_value(value))
        elif f.null:
            constants[f.column] = text(None)
        else:
            constants[f.column] = ""
    return columns, constants


def _copy_model(cursor, model, rows: list[dict], overrides: dict | None = None) -> None:
    columns, constants = _model_columns(model, overrides or {})
    by_attname = {f.column: f.attname for f in model._meta.concrete_fields}
    columns = [c for c in columns if not (c == "id" and "id" not in rows[0])]

    def lines():
        for row in rows:
            yield (
                "\t".join(
                    text(row[by_attname[c]]) if by_attname[c] in row else constants[c]
                    for c in columns
                )
                + "\n"
            )

    copy_lines(cursor, model._meta.db_table, columns, lines())


def _indexes_and_constraints(cursor, table: str) -> tuple[list[tuple], list[tuple]]:
    """(secondary indexes, foreign keys) of ``table`` as (name, how to recreate)."""
    cursor.execute(
        """SELECT ci.relname, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)
           FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
           LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
           WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY 1""",
        [table],
    )
    indexes = []
    for index_name, index_def, constraint, constraint_def in cursor.fetchall():
        if constraint:
            indexes.append(
                (
                    f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}"',
                    f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint}" {constraint_def}',
                )
            )
        else:
            indexes.append((f'DROP INDEX "{index_name}"', index_def))
    cursor.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY 1""",
        [table],
    )
    foreign = [
        (
            f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"',
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}',
        )
        for name, definition in cursor.fetchall()
    ]
    return indexes, foreign


def _run_parallel(db_params: dict, statements: list[str], workers: int, log) -> None:
    """Run independent DDL statements on ``workers`` connections at once."""
    import queue
    import threading

    import psycopg2

    todo: queue.Queue = queue.Queue()
    for statement in statements:
        todo.put(statement)
    errors: list[BaseException] = []

    def work():
        conn = psycopg2.connect(**db_params)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                # Index builds sort in memory (the events' unique key at 1M cases is ~6 M
                # entries); VACUUM keeps its dead-tuple list in it.
                cursor.execute("SET maintenance_work_mem = '1GB'")
                cursor.execute("SET max_parallel_maintenance_workers = 0")
                while True:
                    try:
                        statement = todo.get_nowait()
                    except queue.Empty:
                        return
                    started = time.perf_counter()
                    cursor.execute(statement)
                    log(f"    {time.perf_counter() - started:5.1f} s  {statement[:110]}")
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work) for _ in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _encrypted_pool(field, values: list[str]) -> list[str]:
    return [field.get_prep_value(v) for v in values]


TITLES = [
    "学校食堂问题需要帮助",
    "实习单位拖欠工资",
    "宿舍噪音影响学习",
    "求职遇到虚假招聘",
    "家庭困难申请帮扶",
    "奖学金评定有疑问",
    "社区活动场地申请",
    "网络欺凌求助",
]
DESCRIPTIONS = [
    "情况已经持续一段时间，希望得到团组织的帮助和协调。",
    "已与相关单位沟通但没有结果，请帮忙跟进。",
    "具体情况可以电话联系，谢谢。",
]


def generate(
    *,
    cases: int,
    seed: int = 1,
    workers: int = 2,
    chunk: int = 20_000,
    validate_foreign_keys: bool = False,
    now: datetime | None = None,
    log: Callable[[str], None] = print,
    detail: Callable[[str], None] | None = None,
    progress_stream=None,
) -> dict:
    """Fill the (empty, migrated, PostgreSQL) default database; return what was written."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from notifications.models import Notification
    from workflows.flows import CaseFlow
    from workflows.models import CaseProcess, CaseTask

    from .models import Case, CaseEvent, Category, Membership, Organisation, Rating, Region, User

    if connection.vendor != "postgresql":
        raise LoadError(
            "generate_load_data needs PostgreSQL (COPY, parallel loaders); the database "
            f"configured is {connection.vendor}. Set DATABASE_URL=postgres://… to a fresh database."
        )
    if cases < 1:
        raise LoadError("--cases must be at least 1.")
    if Case.objects.exists() or Organisation.objects.exists():
        raise LoadError(
            "The database already holds organisations or cases: generate_load_data fills a "
            "freshly migrated, empty database (create one and run migrate first)."
        )
    detail = detail or (lambda line: None)  # one line per index and key rebuilt
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    now = now or utc_now()
    now = now.replace(microsecond=0)

    # --- organisations, people, memberships (small; one transaction) -----------------
    orgs = build_org_tree()
    log(f"organisations: {len(orgs):,}")
    categories = list(Category.objects.order_by("pk").values_list("pk", "code", "sensitive"))
    if not categories:
        raise LoadError("No categories: run migrate first (it loads them).")
    youth_count = max(100, cases // 5)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute("SET LOCAL synchronous_commit = off")
        known_regions = set(Region.objects.values_list("code", flat=True))
        new_regions = {}
        for o in orgs:
            if o.level == 3 and o.region_code not in known_regions:
                new_regions[o.region_code] = o
        Region.objects.bulk_create(
            [
                Region(
                    code=code,
                    name=f"区{code[-2:]}",
                    name_en=f"District {code}",
                    level=3,
                    parent_id=code[:4] + "00",
                )
                for code, o in sorted(new_regions.items())
            ],
            ignore_conflicts=True,
        )
        _copy_model(
            raw,
            Organisation,
            [
                {
                    "path": o.path,
                    "depth": o.level,
                    "numchild": len(o.children),
                    "name": o.name,
                    "name_en": "",
                    "level": o.level,
                    "kind": o.kind,
                    "region_code": o.region_code,
                    "capacity": 100 if o.level == 4 else 1000,
                    "opening_hours": (
                        '{"mon":[["09:00","18:00"]],"tue":[["09:00","18:00"]],'
                        '"wed":[["09:00","18:00"]],"thu":[["09:00","18:00"]],'
                        '"fri":[["09:00","18:00"]]}'
                        if o.kind == "station"
                        else "{}"
                    ),
                    "routes_by_region": o.routes_by_region,
                    "is_active": True,
                }
                for o in orgs
            ],
        )
        raw.execute(f'SELECT id FROM "{Organisation._meta.db_table}" ORDER BY path')
        org_ids = [row[0] for row in raw.fetchall()]
        through = Organisation.categories.through
        _copy_model(
            raw,
            through,
            [
                {"organisation_id": org_ids[o.index], "category_id": c[0]}
                for o in orgs
                for c in categories
            ],
        )
        # Staff: a handler in every district, university, branch and station; a verifier in
        # every station; a supervisor at the province, the cities, districts, universities.
        staff = []  # (username, org index, role)
        for o in orgs:
            if o.level >= 3:
                staff.append((f"h{o.index:05d}", o.index, "handler"))
            if o.role == "station":
                staff.append((f"v{o.index:05d}", o.index, "verifier"))
            if o.level <= 3:
                staff.append((f"s{o.index:05d}", o.index, "supervisor"))
        password = make_password("youthvoice-load")  # one hash for every loaded account
        users = [
            {
                "username": name,
                "password": password,
                "is_active": True,
                "is_staff": False,
                "is_superuser": False,
                "date_joined": now,
                "requires_2fa": False,
            }
            for name, _o, _r in staff
        ] + [
            {
                "username": f"y{n:07d}",
                "password": "!",
                "is_active": True,
                "is_staff": False,
                "is_superuser": False,
                "date_joined": now,
                "birth_date": None,
                "requires_2fa": False,
            }
            for n in range(youth_count)
        ]
        _copy_model(raw, User, users)
        raw.execute(
            f'SELECT id, username FROM "{User._meta.db_table}" '
            "WHERE username ~ '^[hvs][0-9]{5}$' OR username ~ '^y[0-9]{7}$'"
        )
        user_ids = dict((name, pk) for pk, name in raw.fetchall())
        _copy_model(
            raw,
            Membership,
            [
                {
                    "user_id": user_ids[name],
                    "organisation_id": org_ids[o],
                    "role": role,
                    "created_at": now,
                }
                for name, o, role in staff
            ],
        )
        youth_first = user_ids["y0000000"]
        if user_ids[f"y{youth_count - 1:07d}"] != youth_first + youth_count - 1:
            raise LoadError("youth ids are not consecutive (is another writer using the database?)")
    handler_of = {o: user_ids[name] for name, o, role in staff if role == "handler"}
    verifier_of = {o: user_ids[name] for name, o, role in staff if role == "verifier"}
    timings["organisations_people"] = time.perf_counter() - t0
    log(
        f"people: {len(staff):,} staff, {youth_count:,} youth "
        f"({timings['organisations_people']:.1f} s)"
    )

    # --- drop secondary indexes and foreign keys of the big tables ---------------------
    big = [
        Case._meta.db_table,
        CaseEvent._meta.db_table,
        Rating._meta.db_table,
        Notification._meta.db_table,
        CaseProcess._meta.db_table,
        CaseTask._meta.db_table,
    ]
    recreate_indexes: list[str] = []
    recreate_foreign: list[str] = []
    t = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        dropped = []
        for table in big:
            indexes, foreign = _indexes_and_constraints(raw, table)
            dropped += foreign + indexes
        # Foreign keys first (a unique index may back one), then the indexes.
        for drop, create in dropped:
            raw.execute(drop)
            (recreate_foreign if "FOREIGN KEY" in create else recreate_indexes).append(create)
    log(f"dropped {len(recreate_indexes)} indexes and {len(recreate_foreign)} foreign keys")
    # The events go in before their cases (each worker streams a chunk's events first):
    # the trigger that copies counted events for the scores (it reads the case's
    # category) is off during the load, and their rows are written in one statement after.
    from .services.scores import SCORE_EVENT_TRIGGER, fill_score_events

    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{CaseEvent._meta.db_table}" DISABLE TRIGGER "{SCORE_EVENT_TRIGGER}"'
        )

    db_params = connection.get_connection_params()
    db_params.pop("cursor_factory", None)
    db_params.pop("context", None)
    try:
        # --- cases, events, ratings, notifications: parallel COPY ----------------------
        case_columns, case_constants = _model_columns(Case, {})
        rating_columns = [c for c in _model_columns(Rating, {})[0] if c != "id"]
        note_columns = [c for c in _model_columns(Notification, {})[0] if c != "id"]
        long_count = max(1, min(LONG_TIMELINE_CASES, cases // 1000))
        long_cases = frozenset((k * cases) // long_count for k in range(long_count))
        world = World(
            cases=cases,
            seed=seed,
            now=now,
            chunk=chunk,
            orgs=orgs,
            org_ids=org_ids,
            handler_of=handler_of,
            verifier_of=verifier_of,
            youth_ids=(youth_first, youth_count),
            categories=categories,
            case_columns=case_columns,
            case_constants=case_constants,
            event_table=CaseEvent._meta.db_table,
            case_table=Case._meta.db_table,
            rating_table=Rating._meta.db_table,
            rating_columns=rating_columns,
            notification_table=Notification._meta.db_table,
            notification_columns=note_columns,
            titles=_encrypted_pool(Case._meta.get_field("title"), TITLES),
            descriptions=_encrypted_pool(Case._meta.get_field("description"), DESCRIPTIONS),
            solved_outcome=Case._meta.get_field("outcome_note").get_prep_value("已协调解决"),
            db_params=db_params,
            long_cases=long_cases,
        )
        connection.close()  # the workers are forked: no connection may cross the fork
        t = time.perf_counter()
        bar = Progress(cases, "cases", stream=progress_stream)
        totals = ChunkResult()

        def done(result: ChunkResult) -> None:
            totals.cases += result.cases
            totals.events += result.events
            totals.ratings += result.ratings
            totals.notifications += result.notifications
            totals.max_event_id = max(totals.max_event_id, result.max_event_id)
            for state, n in result.states.items():
                totals.states[state] = totals.states.get(state, 0) + n
            bar.update(result.cases)

        run_chunks(world, workers, done)
        bar.close()
        timings["cases_events"] = time.perf_counter() - t
        log(
            f"cases: {totals.cases:,}, events: {totals.events:,}, ratings: {totals.ratings:,}, "
            f"notifications: {totals.notifications:,} ({timings['cases_events']:.1f} s)"
        )

        # --- one process and one open task per open case (set-based) ------------------
        t = time.perf_counter()
        flow_class = CaseProcess._meta.get_field("flow_class").get_prep_value(CaseFlow)
        task_field = CaseTask._meta.get_field("flow_task")
        nodes = {
            state: task_field.get_prep_value(CaseFlow.node_for_state(state))
            for state in OPEN_STATES
            if CaseFlow.node_for_state(state) is not None
        }
        whens = " ".join(f"WHEN '{s}' THEN %s" for s in nodes)
        case_t, proc_t, task_t = (
            Case._meta.db_table,
            CaseProcess._meta.db_table,
            CaseTask._meta.db_table,
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(
                f"""INSERT INTO "{proc_t}" (flow_class, status, created, case_id)
                    SELECT %s, 'NEW', submitted_at, id FROM "{case_t}"
                    WHERE state IN ({", ".join(["%s"] * len(OPEN_STATES))})""",
                [flow_class, *OPEN_STATES],
            )
            # The task is held by the case's organisation, or the verifying station.
            cursor.execute(
                f"""INSERT INTO "{task_t}"
                       (flow_task, flow_task_type, status, created, token, case_id, org_id,
                        process_id)
                    SELECT CASE c.state {whens} END, 'HUMAN', 'NEW', c.updated_at, 'start',
                           c.id,
                           CASE WHEN c.state = 'verifying' THEN c.station_id ELSE c.org_id END,
                           p.id
                    FROM "{proc_t}" p JOIN "{case_t}" c ON c.id = p.case_id
                    WHERE c.state IN ({", ".join(["%s"] * len(nodes))})""",
                [*nodes.values(), *nodes],
            )
            tasks = cursor.rowcount
        timings["processes_tasks"] = time.perf_counter() - t
        log(f"open tasks: {tasks:,} ({timings['processes_tasks']:.1f} s)")

        # --- the counted events' narrow rows for the scores (set-based) -----------------
        t = time.perf_counter()
        with transaction.atomic():
            score_events = fill_score_events()
        timings["score_events"] = time.perf_counter() - t
        log(f"counted events for the scores: {score_events:,} ({timings['score_events']:.1f} s)")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f'ALTER TABLE "{CaseEvent._meta.db_table}" ENABLE TRIGGER "{SCORE_EVENT_TRIGGER}"'
            )
        # --- indexes and foreign keys back (validated), sequences, statistics ----------
        t = time.perf_counter()
        log(f"recreating {len(recreate_indexes)} indexes")
        _run_parallel(db_params, recreate_indexes, workers, detail)
        timings["indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        if validate_foreign_keys:
            log(f"re-adding and validating {len(recreate_foreign)} foreign keys")
        else:
            # Checked for every row written from now on; the loaded rows are consistent by
            # construction (tests/casework/test_generate_load_data.py validates a small load),
            # and ``ALTER TABLE … VALIDATE CONSTRAINT`` checks them whenever wanted.
            log(f"re-adding {len(recreate_foreign)} foreign keys (NOT VALID: not re-checked)")
            recreate_foreign = [f"{statement} NOT VALID" for statement in recreate_foreign]
        _run_parallel(db_params, recreate_foreign, 1, detail)
        timings["foreign_keys"] = time.perf_counter() - t
    t = time.perf_counter()
    with connection.cursor() as cursor:
        for table in [*big, User._meta.db_table, Organisation._meta.db_table]:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                f'GREATEST((SELECT max(id) FROM "{table}"), 1))',
                [table],
            )
        # The big tables: VACUUM sets their visibility maps (index-only scans) and hint
        # bits, with their statistics; every other table only needs its statistics.
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        small = [name for (name,) in cursor.fetchall() if name not in big]
    _run_parallel(
        db_params,
        [f'VACUUM ANALYZE "{t}"' for t in big] + [f'ANALYZE "{t}"' for t in small],
        workers,
        detail,
    )
    timings["analyze"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return {
        "cases": totals.cases,
        "events": totals.events,
        "ratings": totals.ratings,
        "notifications": totals.notifications,
        "open_tasks": tasks,
        "organisations": len(orgs),
        "staff": len(staff),
        "youth": youth_count,
        "states": dict(sorted(totals.states.items())),
        "long_timeline_cases": len(long_cases),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
