"""Pure logic of attendance: the face tracker (synthetic boxes and observations), access rules
with time windows, and CSV escaping / the daily report. No models, no database (EntryRecord is
only the record type)."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from faceapp.core.access import (
    AccessRuleError,
    AccessRules,
    DoorPolicy,
    TimeWindow,
    decide_access,
    format_hours,
    parse_hours,
)
from faceapp.core.csvexport import (
    BOM,
    ENTRY_HEADER,
    REPORT_HEADER,
    csv_text,
    daily_attendance,
    entries_csv_rows,
    format_distance,
    local_iso,
    neutralize,
    report_csv_rows,
)
from faceapp.core.settings import Settings
from faceapp.core.tracking import (
    KNOWN,
    PENDING,
    UNKNOWN,
    Observation,
    Tracker,
    TrackerConfig,
    frame_observations,
)
from faceapp.core.types import BBox
from faceapp.store.attendance import EntryRecord

ALICE, BOB, CAROL = 1, 2, 3
T = 0.62  # threshold


def box(x: float, y: float = 100.0, size: float = 100.0) -> BBox:
    return BBox(x, y, x + size, y + size)


def seen(tracker: Tracker, boxes, now: float, observations=None, threshold: float = T, embeddings=None):
    """One frame: associate, observe the tracks that need it, resolve. ``observations`` maps the
    detection index to an Observation (or a callable giving one); returns (ids, views, requests, embedded)."""
    ids = tracker.update(boxes, [0.9] * len(boxes), now)
    embedded = []
    for i, tid in enumerate(ids):
        if tracker.needs_embedding(tid):
            embedded.append(i)
            obs = (observations or {}).get(i, Observation(None, math.inf))
            emb = embeddings[i] if embeddings is not None else None
            tracker.observe(tid, obs, emb)
    views, requests = tracker.resolve(ids, threshold, now)
    return ids, views, requests, embedded


def sees(person: int | None, distance: float = 0.4, margin: float = 0.5) -> Observation:
    return Observation(person, distance, margin)


# -- association ----------------------------------------------------------------------------------
def test_a_moving_face_keeps_its_track_and_two_faces_stay_apart():
    tr = Tracker()
    first = None
    for k in range(20):
        ids, *_ = seen(tr, [box(10 + 8 * k), box(400 - 8 * k, 300)], k * 0.04)
        if first is None:
            first = ids
        assert ids == first
    assert first[0] != first[1]


def test_a_fast_jump_of_a_similar_box_is_followed_by_its_centre():
    tr = Tracker()
    a, *_ = seen(tr, [box(100)], 0.0)
    b, *_ = seen(tr, [box(150)], 0.1)   # IoU 0.33 ... then no overlap at all:
    c, *_ = seen(tr, [box(205)], 0.2)
    assert a == b == c
    d, *_ = seen(tr, [box(600)], 0.3)   # far away: someone else
    assert d != a


def test_a_lost_face_gets_a_new_track_after_max_missed_frames_or_seconds():
    cfg = TrackerConfig(max_missed=3, max_gap_seconds=2.0)
    tr = Tracker(cfg)
    a, *_ = seen(tr, [box(100)], 0.0)
    for k in range(1, 3):
        seen(tr, [], k * 0.04)
    b, *_ = seen(tr, [box(100)], 0.2)
    assert b == a   # missed only 2 frames
    for k in range(4):
        seen(tr, [], 0.3 + k * 0.04)
    c, *_ = seen(tr, [box(100)], 0.6)
    assert c != a
    d, *_ = seen(tr, [box(100)], 3.0)  # a stalled stream: too long ago
    assert d != c


# -- votes -----------------------------------------------------------------------------------------
def test_identity_needs_a_majority_of_vote_frames():
    tr = Tracker(TrackerConfig(vote_frames=5))
    statuses = []
    for k in range(5):
        _, views, requests, _ = seen(tr, [box(100)], k * 0.04, {0: sees(ALICE)})
        statuses.append(views[0].status)
        if views[0].status == KNOWN:
            assert views[0].person_id == ALICE and requests and requests[0].person_id == ALICE
            break
    assert statuses == [PENDING, PENDING, KNOWN]  # 3 of 5 votes decide


def test_small_margin_or_distance_over_threshold_votes_unknown():
    tr = Tracker(TrackerConfig(vote_frames=3, min_margin=0.05))
    for k in range(3):
        _, views, requests, _ = seen(tr, [box(100)], k * 0.04, {0: sees(ALICE, 0.4, margin=0.01)})
    assert views[0].status == UNKNOWN and views[0].candidate_id == ALICE
    assert requests and requests[0].person_id is None   # logged as an unknown face
    assert sees(ALICE, 0.7).vote(T, 0.05) is None
    assert sees(ALICE, 0.4).vote(T, 0.05) == ALICE


def test_a_mixed_window_is_unknown_and_keeps_looking_every_frame():
    tr = Tracker(TrackerConfig(vote_frames=3))
    looks = [sees(ALICE), sees(BOB), sees(None, math.inf)]
    for k, obs in enumerate(looks):
        _, views, requests, embedded = seen(tr, [box(100)], k * 0.04, {0: obs})
        assert embedded == [0] and not requests
    assert views[0].status == UNKNOWN and not views[0].settled
    _, _, _, embedded = seen(tr, [box(100)], 0.2, {0: sees(ALICE)})
    assert embedded == [0]


def test_the_slider_re_decides_without_new_embeddings():
    tr = Tracker(TrackerConfig(vote_frames=3, reembed_every=50))
    ids = tr.update([box(100)], [0.9], 0.0)
    for _ in range(3):
        tr.observe(ids[0], sees(ALICE, 0.5))
    assert tr.resolve(ids, T, 0.0)[0][0].status == KNOWN
    _, views, _, embedded = seen(tr, [box(100)], 0.2, threshold=0.45)
    assert embedded == [] and views[0].status == UNKNOWN
    _, views, _, embedded = seen(tr, [box(100)], 0.24, threshold=0.55)
    assert embedded == [] and views[0].status == KNOWN


def test_frame_observations_never_give_one_person_to_two_faces():
    person_ids = np.array([ALICE, BOB])
    dist = np.array([[0.30, 0.90], [0.35, 0.50], [0.40, 0.95]])
    obs = frame_observations(dist, person_ids, T)
    votes = [o.vote(T, 0.05) for o in obs]
    assert votes == [ALICE, BOB, None]          # the closest face gets Alice, the next one Bob
    assert obs[2].candidate_id is None          # nobody is left for the third face
    blocked = frame_observations(dist[:1], person_ids, T, blocked={ALICE})
    assert blocked[0].vote(T, 0.05) is None     # Alice is held by a face not embedded this frame
    empty = frame_observations(np.zeros((2, 0)), np.zeros(0, np.int64), T)
    assert [o.candidate_id for o in empty] == [None, None]


def test_two_tracks_never_show_the_same_person_the_closer_keeps_it():
    tr = Tracker(TrackerConfig(vote_frames=1))
    # Each track was embedded in a different frame, so per-frame exclusivity could not see both.
    ids, *_ = seen(tr, [box(100)], 0.0, {0: sees(ALICE, 0.45)})
    ids, views, requests, _ = seen(tr, [box(100), box(400)], 0.04, {1: sees(ALICE, 0.30)})
    known = [v for v in views if v.status == KNOWN]
    assert [v.person_id for v in known] == [ALICE] and known[0].distance == pytest.approx(0.30)
    assert views[0].status == UNKNOWN


# -- logging and cooldown -----------------------------------------------------------------------------
def test_a_track_in_view_is_logged_once_however_long_it_stays():
    tr = Tracker(TrackerConfig(cooldown_seconds=60))
    logged = []
    for k in range(3000):  # 2 minutes at 25 fps, longer than the cooldown
        _, _, requests, _ = seen(tr, [box(100 + (k % 7))], k * 0.04, {0: sees(ALICE)})
        logged += requests
    assert [r.person_id for r in logged] == [ALICE]


def test_cooldown_is_per_person_across_tracks_and_counts_from_last_sight():
    tr = Tracker(TrackerConfig(cooldown_seconds=60, max_missed=2))

    def visit(t0: float, frames: int = 10) -> list:
        out = []
        for k in range(frames):
            out += seen(tr, [box(100)], t0 + k * 0.04, {0: sees(ALICE)})[2]
        for k in range(4):  # leaves: the track ends
            seen(tr, [], t0 + (frames + k) * 0.04)
        return out

    assert len(visit(0.0)) == 1
    assert visit(30.0) == []         # back after 30 s: same visit
    assert visit(85.0) == []         # 55 s after last being seen (t=30.4)
    assert len(visit(200.0)) == 1    # a new visit
    other = []
    for k in range(5):
        other += seen(tr, [box(400)], 200.5 + k * 0.04, {0: sees(BOB)})[2]
    assert [r.person_id for r in other] == [BOB]   # cooldowns are per person


def test_note_person_seen_starts_a_cooldown_after_restart():
    tr = Tracker(TrackerConfig(cooldown_seconds=60))
    tr.note_person_seen(ALICE, 100.0)
    logged = []
    for k in range(5):
        logged += seen(tr, [box(100)], 110.0 + k * 0.04, {0: sees(ALICE)})[2]
    assert logged == []


def test_unknown_faces_are_logged_once_when_clear_and_not_twice_for_the_same_stranger():
    cfg = TrackerConfig(vote_frames=3, max_missed=1)
    tr = Tracker(cfg)
    rng = np.random.default_rng(0)
    stranger = rng.normal(size=512)
    other = rng.normal(size=512)

    def walk(x, t0, emb, size=100.0, score=0.9, frames=6):
        out = []
        for k in range(frames):
            ids = tr.update([box(x, size=size)], [score], t0 + k * 0.04)
            if tr.needs_embedding(ids[0]):
                tr.observe(ids[0], sees(ALICE, 0.9), emb + rng.normal(scale=0.05, size=512))
            out += tr.resolve(ids, T, t0 + k * 0.04)[1]
        for k in range(3):
            tr.update([], [], t0 + (frames + k) * 0.04)
        return out

    first = walk(100, 0.0, stranger)
    assert [r.person_id for r in first] == [None]
    assert walk(100, 5.0, stranger) == []                   # same stranger again, within the cooldown
    assert [r.person_id for r in walk(100, 10.0, other)] == [None]   # someone else
    assert walk(300, 20.0, rng.normal(size=512), size=20) == []     # too small to judge
    assert walk(300, 30.0, rng.normal(size=512), score=0.5) == []   # a doubtful detection
    assert len(walk(100, 200.0, stranger)) == 1             # the cooldown is over


def test_unknown_then_recognised_logs_the_person_but_known_then_unknown_logs_nothing_more():
    tr = Tracker(TrackerConfig(vote_frames=3, reembed_every=1))
    logged = []
    for k in range(3):
        logged += seen(tr, [box(100)], k * 0.04, {0: sees(None, math.inf)})[2]
    for k in range(3, 6):   # turns to the camera
        logged += seen(tr, [box(100)], k * 0.04, {0: sees(BOB)})[2]
    for k in range(6, 12):  # turns away again
        logged += seen(tr, [box(100)], k * 0.04, {0: sees(None, math.inf)})[2]
    assert [r.person_id for r in logged] == [None, BOB]


# -- re-embedding policy ----------------------------------------------------------------------------------
def test_a_settled_track_is_re_embedded_periodically_with_backoff():
    tr = Tracker(TrackerConfig(vote_frames=3, reembed_every=5, max_backoff=4))
    frames_embedded = []
    for k in range(120):
        _, _, _, embedded = seen(tr, [box(100)], k * 0.04, {0: sees(ALICE)})
        if embedded:
            frames_embedded.append(k)
    # 2 looks settle the vote, then 5, 10, 20, 20... frames apart
    assert frames_embedded[:6] == [0, 1, 6, 16, 36, 56]
    assert len(frames_embedded) < 120 / 5


def test_a_moved_or_grown_box_or_a_dissenting_look_is_embedded_again():
    tr = Tracker(TrackerConfig(vote_frames=3, reembed_every=100))
    for k in range(3):
        seen(tr, [box(100)], k * 0.04, {0: sees(ALICE)})
    assert seen(tr, [box(102)], 0.12)[3] == []
    assert seen(tr, [box(150)], 0.16, {0: sees(ALICE)})[3] == [0]          # moved by half a face
    assert seen(tr, [box(140, size=130)], 0.20, {0: sees(ALICE)})[3] == [0]  # came closer
    _, views, _, embedded = seen(tr, [box(141, size=130)], 0.24)
    assert embedded == []
    # A look that clearly says someone else is another face: a new track, still voting, looked at
    # again next frame (logic issue item 2: it must not inherit Alice's votes).
    tr._tracks[views[0].track_id].since_embed = 1000
    old = views[0].track_id
    _, views, _, embedded = seen(tr, [box(141, size=130)], 0.28, {0: sees(BOB)})
    assert embedded == [0] and views[0].track_id != old and views[0].status == PENDING and not views[0].settled
    assert seen(tr, [box(141, size=130)], 0.32, {0: sees(ALICE)})[3] == [0]


def test_touching_faces_reset_the_backoff_and_votes_can_be_cleared():
    tr = Tracker(TrackerConfig(vote_frames=1, reembed_every=2, max_backoff=8))
    for k in range(30):
        ids, *_ = seen(tr, [box(100), box(230)], k * 0.04, {0: sees(ALICE), 1: sees(BOB)})
    assert all(tr._tracks[t].interval > 2 for t in ids)
    looked: set[int] = set()
    for k in range(3):  # the faces touch: each is looked at again within reembed_every frames
        touching, _, _, embedded = seen(tr, [box(120), box(210)], 1.3 + k * 0.04, {0: sees(ALICE), 1: sees(BOB)})
        looked.update(embedded)
    assert touching == ids and looked == {0, 1}
    tr.clear_votes()
    assert seen(tr, [box(120), box(210)], 1.34, {0: sees(ALICE), 1: sees(BOB)})[3] == [0, 1]


def test_config_from_settings_clamps_bad_values():
    cfg = TrackerConfig.from_settings(Settings(vote_frames=0, min_margin=-1, cooldown_seconds=-5, reembed_every=0))
    assert (cfg.vote_frames, cfg.min_margin, cfg.cooldown_seconds, cfg.reembed_every) == (1, 0.0, 0.0, 1)
    assert TrackerConfig.from_settings(Settings()).vote_frames == 3


def test_relabel_only_flips_when_the_distance_crosses_the_threshold():
    from faceapp.service.pipeline import TrackedFace

    denied = TrackedFace(box(0), 1, 0.9, 0.45, ALICE, "Alice", True, "denied", "denied", 0.62)
    assert denied.relabel(0.40).decision == "unknown"
    assert denied.relabel(0.40).relabel(0.60).decision == "denied"   # not "granted"
    margin_unknown = TrackedFace(box(0), 2, 0.9, 0.45, ALICE, "Alice", False, "unknown", "granted", 0.62)
    assert margin_unknown.relabel(0.70).decision == "unknown"        # the vote said no; the slider did not cross
    far = TrackedFace(box(0), 3, 0.9, 0.70, BOB, "Bob", False, "unknown", "granted", 0.62)
    assert far.relabel(0.75).known and far.relabel(0.75).decision == "granted"
    pending = TrackedFace(box(0), 4, 0.9, 0.3, BOB, "Bob", False, "pending", "granted", 0.62)
    assert pending.relabel(0.1) is pending


# -- access rules ---------------------------------------------------------------------------------
UTC = timezone.utc
MON_0800 = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)   # a Monday


@pytest.mark.parametrize("spec, canonical", [
    ("Mon-Fri 07:00-19:00", "Mon-Fri 07:00-19:00"),
    ("mon,wed , fri 8:00-12:30; sat 09:00-13:00", "Mon,Wed,Fri 08:00-12:30; Sat 09:00-13:00"),
    ("07:00-19:00", "daily 07:00-19:00"),
    ("weekend", "Sat,Sun"),
    ("Fri-Mon 22:00-06:00", "Mon,Fri-Sun 22:00-06:00"),
    ("Tuesday 18:00-00:00", "Tue 18:00-24:00"),
    ("always", "always"),
    ("", "always"),
])
def test_hours_parse_and_print_canonically(spec, canonical):
    windows = parse_hours(spec)
    assert format_hours(windows) == canonical
    assert parse_hours(format_hours(windows)) == windows


@pytest.mark.parametrize("bad", ["Mon-Fry 07:00-19:00", "Mon 7-19", "Mon 25:00-26:00", "Mon 08:00-08:00",
                                 "Mon 08:61-09:00", "Mon,,Tue", "24:00-06:00"])
def test_bad_hours_are_refused_with_the_offending_part(bad):
    with pytest.raises(AccessRuleError) as e:
        parse_hours(bad)
    assert bad in str(e.value) or bad.split()[-1] in str(e.value)


def test_windows_include_start_exclude_end_and_run_overnight_into_the_next_day():
    (w,) = parse_hours("Mon-Fri 07:00-19:00")
    assert w.contains(datetime(2024, 3, 4, 7, 0)) and w.contains(datetime(2024, 3, 8, 18, 59))
    assert not w.contains(datetime(2024, 3, 4, 19, 0)) and not w.contains(datetime(2024, 3, 9, 12, 0))
    (night,) = parse_hours("Fri 22:00-06:00")
    assert night.contains(datetime(2024, 3, 8, 23, 0)) and night.contains(datetime(2024, 3, 9, 5, 59))
    assert not night.contains(datetime(2024, 3, 9, 23, 0)) and not night.contains(datetime(2024, 3, 8, 5, 0))
    assert TimeWindow(frozenset()).contains(datetime(2024, 3, 8, 12, 0)) is False


def test_access_groups_and_hours_in_local_time():
    staff, night = 10, 11
    rules = AccessRules(
        doors={"lab": DoorPolicy("Lab", (), {staff: (), night: parse_hours("daily 20:00-06:00")}),
               "lobby": DoorPolicy("Lobby", parse_hours("Mon-Fri 07:00-19:00"), {}),
               "open": DoorPolicy("Open")},
        person_groups={ALICE: frozenset({staff}), BOB: frozenset({night})},
        group_names={staff: "staff", night: "night shift"})
    assert rules.decide("LAB", ALICE, MON_0800).granted
    bob = rules.decide("Lab", BOB, MON_0800)
    assert not bob.granted and "night shift" in bob.reason
    assert rules.decide("Lab", BOB, MON_0800.replace(hour=22)).granted
    carol = rules.decide("Lab", CAROL, MON_0800)
    assert (carol.decision, carol.reason) == ("denied", "not in a group admitted at Lab")
    assert rules.decide("Open", CAROL, MON_0800).granted          # no groups: everyone enrolled
    # Once doors exist, a door that is not one of them (a typo, a removed door) admits nobody;
    # before any door is configured every door admits every enrolled person.
    nowhere = rules.decide("Nowhere", CAROL, MON_0800)
    assert not nowhere.granted and "not configured" in nowhere.reason
    assert AccessRules().decide("Nowhere", CAROL, MON_0800).granted
    assert rules.decide("Lobby", CAROL, MON_0800).granted
    closed = rules.decide("Lobby", CAROL, MON_0800.replace(hour=20))
    assert not closed.granted and "opening hours" in closed.reason
    # 06:30 UTC is 08:30 in UTC+2 (inside the hours) but 06:30 in UTC (outside): local time counts.
    early = MON_0800.replace(hour=6, minute=30)
    assert decide_access(rules.doors["lobby"], frozenset(), early, timezone(timedelta(hours=2))).granted
    assert not decide_access(rules.doors["lobby"], frozenset(), early, UTC).granted


# -- CSV ------------------------------------------------------------------------------------------------
def E(id, time, door, person_id, person_name, decision, distance, reason=None) -> EntryRecord:  # noqa: N802
    return EntryRecord(id, time, door, person_id, person_name, decision, distance, reason, None, False)


@pytest.mark.parametrize("value, cell", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("Ann = Bob", "Ann = Bob"), ("", ""), (None, ""), (7, "7"),
])
def test_formula_starts_are_neutralised(value, cell):
    assert neutralize(value) == cell


def test_entries_csv_round_trips_with_quoting_offsets_and_bom():
    plus2 = timezone(timedelta(hours=2))
    entries = [
        E(1, "2024-03-04T06:59:12.345+00:00", "Main, front", 7, 'O\'Brien, "Pat"', "granted", 0.41234),
        E(2, "2024-03-04T07:00:00.000+00:00", "Lab", None, None, "unknown", 0.93),
        E(3, "2024-03-04T07:01:00.000+00:00", "Lab", 8, "=cmd|' /C calc'!A0", "denied", -1e-7, "not in a group"),
        E(4, "2024-03-04T07:02:00.000+00:00", "Lab", 9, "Zoë Ωmega", "granted", None),
    ]
    people = {7: ("E-7", "=Finance"), 9: ("", "R&D")}
    text = csv_text(ENTRY_HEADER, entries_csv_rows(entries, plus2, people), bom=True)
    assert text.startswith(BOM) and "\r\n" in text
    rows = list(csv.reader(io.StringIO(text[len(BOM):], newline="")))
    assert rows[0] == list(ENTRY_HEADER)
    assert rows[1] == ["2024-03-04T08:59:12+02:00", "Main, front", "O'Brien, \"Pat\"", "7", "E-7", "'=Finance",
                       "granted", "0.4123", "", "1"]
    assert rows[2][2:7] == ["", "", "", "", "unknown"]
    assert rows[3][2] == "'=cmd|' /C calc'!A0" and rows[3][4:6] == ["", ""]  # no info for person 8
    assert rows[3][7] == "0.0000" and rows[3][8] == "not in a group"
    assert rows[4][2] == "Zoë Ωmega" and rows[4][4:6] == ["", "R&D"] and rows[4][7] == ""
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert format_distance(math.inf) == "" and local_iso("2024-03-04T23:30:00+00:00", plus2) == "2024-03-05T01:30:00+02:00"


def test_daily_report_first_in_last_out_per_local_day_from_granted_entries():
    plus2 = timezone(timedelta(hours=2))
    entries = [
        E(1, "2024-03-04T06:10:00+00:00", "Main", 7, "Ann", "granted", 0.4),
        E(2, "2024-03-04T10:00:00+00:00", "Lab", 7, "Ann", "denied", 0.4),     # not a way in
        E(3, "2024-03-04T15:45:00+00:00", "Lab", 7, "Ann", "granted", 0.4),
        E(4, "2024-03-04T22:30:00+00:00", "Main", 7, "Ann", "granted", 0.4),   # 00:30 next local day
        E(5, "2024-03-04T08:00:00+00:00", "Main", None, "Gone Person", "granted", 0.4),
        E(6, "2024-03-04T08:00:00+00:00", "Main", None, None, "unknown", 0.9),
    ]
    days = daily_attendance(entries, plus2)
    assert [(d.day.isoformat(), d.person, d.entries) for d in days] == [
        ("2024-03-04", "Ann", 2), ("2024-03-04", "Gone Person", 1), ("2024-03-05", "Ann", 1)]
    ann = days[0]
    assert ann.first_in.isoformat() == "2024-03-04T08:10:00+02:00"
    assert ann.last_out.isoformat() == "2024-03-04T17:45:00+02:00"
    assert ann.doors == ("Main", "Lab")
    rows = list(csv.reader(io.StringIO(csv_text(REPORT_HEADER, report_csv_rows(days, {7: ("E-7", "Ops")})),
                                       newline="")))
    assert rows[0] == list(REPORT_HEADER)
    assert rows[1] == ["2024-03-04", "Ann", "7", "E-7", "Ops", "2024-03-04T08:10:00+02:00",
                       "2024-03-04T17:45:00+02:00", "2", "Main, Lab"]
