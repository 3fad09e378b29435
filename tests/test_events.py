from datetime import datetime, timedelta, timezone

import pytest

from polisen_collector.archive.events import (
    InvalidEvent,
    content_hash,
    encode_jsonl,
    parse_event_datetime,
    partition_prefix,
    validate_event,
)

SAMPLE = {
    "id": 650297, "datetime": "2026-08-22 19:51:41 +02:00", "name": "22 augusti 17.59, Brand, Kävlinge",
    "summary": "Brand i förråd.", "url": "/aktuellt/handelser/2026/augusti/22/x/", "type": "Brand",
    "location": {"name": "Skåne län", "gps": "55.990257,13.595769"},
}


@pytest.mark.parametrize("text,expected", [
    ("2026-05-20 9:38:09 +02:00", datetime(2026, 5, 20, 9, 38, 9, tzinfo=timezone(timedelta(hours=2)))),
    ("2026-05-20 19:38:09 +02:00", datetime(2026, 5, 20, 19, 38, 9, tzinfo=timezone(timedelta(hours=2)))),
    ("2026-01-05 0:00:00 +01:00", datetime(2026, 1, 5, 0, 0, 0, tzinfo=timezone(timedelta(hours=1)))),
    ("2026-01-05T07:01:02-0130", datetime(2026, 1, 5, 7, 1, 2, tzinfo=timezone(-timedelta(hours=1, minutes=30)))),
])
def test_parse_event_datetime_accepts_the_apis_formats(text, expected):
    parsed = parse_event_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["", "2026-05-20", "2026-05-20 9:38 +02:00", "2026-13-01 10:00:00 +01:00",
                                  "2026-02-30 10:00:00 +01:00", "2026-05-20 25:00:00 +02:00", None, 20260520])
def test_parse_event_datetime_rejects_garbage(text):
    with pytest.raises(InvalidEvent):
        parse_event_datetime(text)


def test_validate_event_keeps_the_raw_object_and_derives_day_and_hash():
    event = validate_event(SAMPLE)
    assert (event.id, event.day, event.raw) == (650297, "2026-08-22", SAMPLE)
    assert event.hash == content_hash(dict(reversed(list(SAMPLE.items()))))
    assert event.hash != content_hash({**SAMPLE, "summary": "Brand i förråd, släckt."})


@pytest.mark.parametrize("raw,message", [
    ([], "not an object"),
    ({**SAMPLE, "id": "650297"}, "not a positive integer"),
    ({**SAMPLE, "id": True}, "not a positive integer"),
    ({**SAMPLE, "id": -1}, "not a positive integer"),
    ({k: v for k, v in SAMPLE.items() if k != "id"}, "not a positive integer"),
    ({**SAMPLE, "datetime": "yesterday"}, "id 650297: unparseable datetime"),
    ({k: v for k, v in SAMPLE.items() if k != "datetime"}, "id 650297: unparseable datetime"),
])
def test_validate_event_says_what_is_wrong(raw, message):
    with pytest.raises(InvalidEvent, match=message):
        validate_event(raw)


def test_jsonl_keeps_unicode_and_one_event_per_line():
    data = encode_jsonl([SAMPLE, {**SAMPLE, "id": 1}])
    assert data.decode("utf-8").count("\n") == 2
    assert "Kävlinge" in data.decode("utf-8")
    assert partition_prefix("2026-05-09") == "events/2026/05/09/"
