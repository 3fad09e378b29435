"""Deciding what polisen.se took back: suspected from the feed's answers, confirmed by re-reading the day.

One answer's absence proves nothing: the feed's window of ~500 events jitters, and real
answers dropped hundreds of ids for an answer or two that came back later. An answer holds
every id it carries, its invalid events' too. So:

1. **Suspicion** (the feed run, after its state is written): an id the state remembers,
   dated inside the answer's dense range (the days after its coverage start plus
   PUBLICATION_MARGIN, see gaps.py, up to its newest day), that the answer lacks is
   suspected; it is cleared when an answer holds it again. A withdrawn id that an answer
   holds again is suspected of a return. Suspicions are this host's hints
   (`LOG_DIR/withdrawal-hints.json`): cheap, never needed, they only bring the audit of the
   day forward once an id has been missing from RIPE_ANSWERS answers in a row.
2. **Confirmation** (the audit, audit.py, each time it re-reads a day with `?DateTime=`):
   an event archived under that day that the day's answer lacks is absent, unless the
   archive holds a newer version of it on another day (an edit moved it: moved_away, which
   reads the archive, as the state forgets). It is withdrawn when a second answer of the
   day, served CONFIRM_AFTER after the first or later, lacks it too, at the time the API
   served that second answer; the absences wait in the audit's progress. A withdrawn event
   an answer holds is republished, and so is one whose newest version the archive holds on
   another day (looked for when the feed showed it again, or along with the absences). A
   day's answer says nothing about absence when it is empty (a glitch, or a day older than
   the API serves), holds the API's cap of 500 events (it may be cut), or lacks more than
   DOUBT_SHARE of the day's events (an answer cut short): its returns still count.
3. The records go to the archive (archive/withdrawals.py) before the hints and the audit's
   progress learn of them, so a crash loses none and a rerun repeats none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from polisen_collector import readback
from polisen_collector.archive.events import Event
from polisen_collector.archive.layout import MOVE_WINDOW_DAYS, Version, read_day
from polisen_collector.archive.state import Entry
from polisen_collector.archive.withdrawals import (
    REPUBLISHED,
    WITHDRAWN,
    Record,
    histories,
    read_day_records,
    withdrawn_at,
    write_records,
)
from polisen_collector.messages import one_line
from polisen_collector.recovery.gaps import PUBLICATION_MARGIN, coverage_start
from polisen_collector.storage.base import Storage, StoredObject, update_object

if TYPE_CHECKING:  # a feed run uses this module, never backfill's
    from polisen_collector.recovery.backfill import DayAnswer

log = logging.getLogger("polisen.withdrawals")

HINTS_OBJECT = "withdrawal-hints.json"
HINTS_FORMAT = 1
RIPE_ANSWERS = 2
"""Answers in a row that must lack an id before the audit looks at its day: the jitter mostly lasts one."""
SUSPICION_DAYS = 31
"""A suspicion no audit has settled is dropped after this long (the audit is not installed)."""
DOUBT_SHARE = 0.5
"""A day's answer lacking more than this share of the day's events is taken as cut short."""
CONFIRM_AFTER = timedelta(minutes=30)
"""An event is withdrawn when two answers of its day lack it, the second served this long after the
first or more: one answer proves nothing, whether the feed's or the day's."""


@dataclass
class Hints:
    """What this host suspects, and which ids it knows to be withdrawn (to notice their return)."""

    absent: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    """Id -> (its day, when an answer first lacked it, how many answers in a row lacked it, up to RIPE_ANSWERS)."""
    returned: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Withdrawn id an answer held again -> (its day, when)."""
    withdrawn: dict[int, str] = field(default_factory=dict)
    """Id withdrawn as far as this host's audits know -> its day."""

    def as_document(self) -> dict[str, Any]:
        return {"format": HINTS_FORMAT,
                "absent": {str(k): list(v) for k, v in sorted(self.absent.items())},
                "returned": {str(k): list(v) for k, v in sorted(self.returned.items())},
                "withdrawn": {str(k): v for k, v in sorted(self.withdrawn.items())}}

    def encode(self) -> bytes:
        return json.dumps(self.as_document(), separators=(",", ":")).encode("utf-8")

    def suspect_days(self) -> list[str]:
        """Days whose audit the suspicions ask for, the longest-suspected first."""
        ripe = [(since, day) for day, since, answers in self.absent.values() if answers >= RIPE_ANSWERS]
        ripe += [(since, day) for day, since in self.returned.values()]
        days: list[str] = []
        for _, day in sorted(ripe):
            if day not in days:
                days.append(day)
        return days


def read_hints(stored: StoredObject | None) -> Hints:
    """The hints in `stored`, every value checked as strictly as a setting (readback.py); unreadable
    ones are logged and started afresh (they are only hints)."""
    if stored is None:
        return Hints()
    try:
        document = json.loads(stored.data)
        if document.get("format") != HINTS_FORMAT:
            raise ValueError(f"not withdrawal hints of format {HINTS_FORMAT}")
        return Hints(
            absent={readback.event_id(k): (readback.iso_day(day), _since(since), _answers(answers))
                    for k, (day, since, answers) in document["absent"].items()},
            returned={readback.event_id(k): (readback.iso_day(day), _since(since))
                      for k, (day, since) in document["returned"].items()},
            withdrawn={readback.event_id(k): readback.iso_day(day) for k, day in document["withdrawn"].items()},
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        log.warning("%s is unreadable (%s); the withdrawal hints start afresh", HINTS_OBJECT, one_line(str(error)))
        return Hints()


def _since(value: Any) -> str:
    """A time as the hints keep it (UTC, to the second), which they compare as text."""
    return readback.utc_time(value).isoformat(timespec="seconds")


def _answers(value: Any) -> int:
    if type(value) is not int or not 1 <= value <= RIPE_ANSWERS:
        raise ValueError(f"{readback.shown(value)} is not a count of answers from 1 to {RIPE_ANSWERS}")
    return value


def load_hints(host: Storage) -> Hints:
    return read_hints(host.get(HINTS_OBJECT))


def dense_days(answered: list[Event]) -> tuple[str, str] | None:
    """(first, last) day an answer covers in full: after its coverage start and the publication margin."""
    if not answered:
        return None
    first = (coverage_start(answered) + PUBLICATION_MARGIN).date() + timedelta(days=1)
    return first.isoformat(), max(event.day for event in answered)


def note_answer(host: Storage, answered: list[Event], ids: frozenset[int], seen: dict[int, Entry],
                answered_at: datetime) -> int:
    """The feed's part: update this host's suspicions from an answer; how many ids it lacked.

    `answered` are the answer's valid events (they date its dense days), `ids` every id it held,
    its invalid events' too; `seen` is the state the answer was compared with. Runs after the
    run's state write.
    """
    window = dense_days(answered)
    answered_at = answered_at.astimezone(UTC)
    at = answered_at.isoformat(timespec="seconds")
    stale = (answered_at - timedelta(days=SUSPICION_DAYS)).isoformat(timespec="seconds")
    lacking: dict[int, str] = {}

    def change(stored: StoredObject | None) -> bytes | None:
        nonlocal lacking
        hints = read_hints(stored)
        before = hints.encode()
        lacking = {event_id: entry[1] for event_id, entry in seen.items()
                   if window and window[0] <= entry[1] <= window[1] and event_id not in ids
                   and event_id not in hints.withdrawn}
        absent = {event_id: (day, since, min(RIPE_ANSWERS, answers + (event_id in lacking)))  # ripe: no more writes
                  for event_id, (day, since, answers) in hints.absent.items() if event_id not in ids and since > stale}
        for event_id, day in lacking.items():
            absent.setdefault(event_id, (day, at, 1))
        hints.absent = absent
        hints.returned = {k: v for k, v in hints.returned.items() if v[1] > stale}
        for event_id in ids & hints.withdrawn.keys():
            hints.returned.setdefault(event_id, (hints.withdrawn[event_id], at))
        data = hints.encode()
        return None if stored is not None and data == before else data

    update_object(host, HINTS_OBJECT, change)
    return len(lacking)


@dataclass
class DayWithdrawals:
    """What a day's answer confirmed: ids withdrawn and republished, the ids withdrawn after it, and
    the ids it lacked that a later answer must lack too."""

    day: str
    withdrawn: list[int] = field(default_factory=list)
    republished: list[int] = field(default_factory=list)
    in_force: set[int] = field(default_factory=set)
    absent: dict[int, str] = field(default_factory=dict)
    """Id -> when the first answer of the day that lacked it was served, until a later one confirms it."""
    doubt: str | None = None
    """Why the answer could not confirm absences, when it lacked any."""


def confirm_day(storage: Storage, answer: DayAnswer, hints: Hints, run_id: str, now: datetime, *,
                absent: Mapping[int, str]) -> DayWithdrawals:
    """Compare a day's answer with the day's archive and its records; write the records it confirms.

    `absent` is what earlier answers of the day lacked (id -> when the first was served): an
    event is withdrawn when this answer lacks it too, CONFIRM_AFTER later or more.
    """
    day = answer.day
    at = (answer.served_at or now).astimezone(UTC)
    changes = histories(read_day_records(storage, day))
    in_force = {event_id for event_id, history in changes.items() if withdrawn_at(history)}
    hashes = {event.id: event.hash for event in answer.events}
    found = DayWithdrawals(day)
    lacking = sorted(answer.archived.keys() - answer.ids - in_force)
    withdrawn_here = (in_force - answer.ids) & answer.archived.keys()
    found.doubt = _doubt(answer) if lacking else None
    look = set(lacking) if lacking and not found.doubt else set()
    if look or withdrawn_here & hints.returned.keys():  # the feed shows a withdrawn event again: on another day?
        look |= withdrawn_here  # the archive says where the events an edit moved to another day are
    moved = moved_away(storage, day, {event_id: answer.archived[event_id] for event_id in look}, answer.seen) \
        if look else {}
    back_elsewhere = {event_id: version.event.hash for event_id, version in moved.items() if event_id in in_force}
    found.republished = sorted((in_force & answer.ids) | back_elsewhere.keys())
    if lacking and not found.doubt:
        lacking = [event_id for event_id in lacking if event_id not in moved]
        known = len((answer.archived.keys() | answer.ids) - in_force - moved.keys())
        if len(lacking) > DOUBT_SHARE * known:
            found.doubt = f"the answer lacks {len(lacking)} of the day's {known} events: cut short?"
    if not found.doubt:  # a doubtful answer proves nothing: what earlier ones lacked starts over (no day is
        # audited again and again while its answers cannot decide)
        for event_id in lacking:
            first = absent.get(event_id)
            if first is not None and at - datetime.fromisoformat(first) >= CONFIRM_AFTER:
                found.withdrawn.append(event_id)
            else:
                found.absent[event_id] = first or at.isoformat(timespec="seconds")
    if moved:
        log.info("audit %s: %d events its answer lacks are on another day now, an edit moved them%s%s", day,
                 len(moved), _ids(sorted(moved)), " (withdrawn here, republished there)" if back_elsewhere else "")
    records = [Record(event_id, WITHDRAWN, at, day, answer.archived[event_id].event.hash,
                      _suspected_at(hints, event_id, absent[event_id]))
               for event_id in found.withdrawn]
    records += [Record(event_id, REPUBLISHED, at, day, back_elsewhere.get(event_id) or hashes.get(event_id))
                for event_id in found.republished]
    if records:
        write_records(storage, day, sorted(records, key=lambda record: record.id), run_id)
    found.in_force = (in_force - set(found.republished)) | set(found.withdrawn)
    if found.doubt:
        log.warning("audit %s: not confirming the withdrawal of %d events: %s", day, len(lacking), found.doubt)
    if records:
        log.info("audit %s: %d withdrawn%s, %d republished%s", day, len(found.withdrawn), _ids(found.withdrawn),
                 len(found.republished), _ids(found.republished))
    if unconfirmed := sorted(found.absent.keys() - absent.keys()):
        log.info("audit %s: %d events absent%s, withdrawn if an answer %s later lacks them too", day,
                 len(unconfirmed), _ids(unconfirmed), _duration(CONFIRM_AFTER))
    return found


def _doubt(answer: DayAnswer) -> str | None:
    """Why the answer cannot prove that the events it lacks are gone, whatever they are; None when it may."""
    if not answer.fetched:
        return "the answer is empty (a glitch, or a day older than the API serves)"
    if answer.capped:
        return f"the answer holds {answer.fetched} events, the API's cap: it may be cut"
    return None


def moved_away(storage: Storage, day: str, lacking: Mapping[int, Version],
               seen: Mapping[int, Entry]) -> dict[int, Version]:
    """Of the events archived under `day` (id -> their latest version there) that its answer lacks,
    those whose newest archived version lies on another day, an edit having changed their date:
    id -> that version. The archive is looked at, not the state, which forgets: the
    MOVE_WINDOW_DAYS days each side, and the day the state gives an id while it remembers it."""
    center = date.fromisoformat(day)
    days = {(center + timedelta(days=offset)).isoformat() for offset in range(-MOVE_WINDOW_DAYS, MOVE_WINDOW_DAYS + 1)}
    days |= {seen[event_id][1] for event_id in lacking if event_id in seen}
    newest = dict(lacking)
    for other in sorted(days - {day}):
        for version in read_day(storage, other).versions:
            known = newest.get(version.event.id)
            if known is not None and version.last_run > known.last_run:
                newest[version.event.id] = version
    return {event_id: version for event_id, version in newest.items() if version.event.day != day}


def _suspected_at(hints: Hints, event_id: int, first_absent: str) -> datetime:
    """The first answer known to lack the event: the feed's (this host's hints) or the day's."""
    entry = hints.absent.get(event_id)
    return min(datetime.fromisoformat(when) for when in (first_absent, *(entry[1:2] if entry else ())))


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _ids(ids: list[int], shown: int = 10) -> str:
    if not ids:
        return ""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f" ({', '.join(map(str, ids[:shown]))}{more})"


def settle_day(host: Storage, found: DayWithdrawals, answered_at: datetime) -> None:
    """The audit's part of the hints: the day's suspicions raised before its answer are settled, and
    the ids withdrawn on that day are remembered (to notice their return in the feed)."""
    at = answered_at.astimezone(UTC).isoformat(timespec="seconds")

    def change(stored: StoredObject | None) -> bytes | None:
        hints = read_hints(stored)
        before = hints.encode()
        hints.absent = {k: v for k, v in hints.absent.items() if not (v[0] == found.day and v[1] <= at)}
        hints.returned = {k: v for k, v in hints.returned.items() if not (v[0] == found.day and v[1] <= at)}
        hints.withdrawn = {k: day for k, day in hints.withdrawn.items() if day != found.day}
        hints.withdrawn.update(dict.fromkeys(found.in_force, found.day))
        data = hints.encode()
        return None if stored is not None and data == before else data

    update_object(host, HINTS_OBJECT, change)
