"""Schedules through the official Python SDK: client.schedule.create/create_json/get/list/
delete/pause/resume. `parse_schedule_response` requires scheduleId, destination, cron,
createdAt, method and retries, and turns lastScheduleStates into its enum, so every answer
here is parsed the strict way. The server runs on the real clock: one test waits for a cron
minute (at most about a minute) to see a firing and its states."""

from __future__ import annotations

import time

import pytest
from qstash import QStash
from qstash.errors import QStashError
from qstash.schedule import ScheduleState

from harness import RecordingReceiver, wait_until


def test_create_answers_an_id_and_get_parses_every_setting(
    client: QStash, receiver: RecordingReceiver
) -> None:
    destination = receiver.url("/py/schedule")
    schedule_id = client.schedule.create_json(
        destination=destination,
        cron="*/10 * * * *",
        body={"hello": "world"},
        headers={"X-Custom": "custom"},
        method="PUT",
        retries=2,
        delay=25,
        timeout="30s",
        callback=receiver.url("/py/callback"),
        callback_headers={"X-Cb": "cb"},
        flow_control={"key": "py-schedule-fc", "parallelism": 3},
        label="py-label",
        redact={"header": ["X-Custom"]},
    )
    assert schedule_id.startswith("scd_")

    s = client.schedule.get(schedule_id)
    assert s.schedule_id == schedule_id
    assert s.destination == destination
    assert s.cron == "*/10 * * * *"
    assert s.method == "PUT"
    assert s.body == '{"hello": "world"}'
    assert s.headers is not None
    assert s.headers["Content-Type"] == ["application/json"]
    assert s.headers["X-Custom"][0].startswith("REDACTED:")
    assert s.callback_headers == {"X-Cb": ["cb"]}
    assert s.retries == 2
    assert s.delay == 25
    assert s.timeout == 30
    assert s.callback == receiver.url("/py/callback")
    assert s.flow_control is not None
    assert (s.flow_control.key, s.flow_control.parallelism) == ("py-schedule-fc", 3)
    assert s.label == "py-label"
    assert s.caller_ip == "127.0.0.1"
    assert s.paused is False
    assert isinstance(s.created_at, int)
    assert s.next_schedule_time is not None and s.next_schedule_time % 60_000 == 0
    assert s.last_schedule_states is None
    client.schedule.delete(schedule_id)


def test_create_with_a_schedule_id_replaces_it_and_list_shows_it_once(
    client: QStash, receiver: RecordingReceiver
) -> None:
    client.schedule.create(
        destination=receiver.url("/py/first"),
        cron="0 * * * *",
        schedule_id="py-upsert",
        body="first",
    )
    again = client.schedule.create(
        destination=receiver.url("/py/second"),
        cron="TZ=Europe/Berlin @daily",
        schedule_id="py-upsert",
    )
    assert again == "py-upsert"
    s = client.schedule.get("py-upsert")
    assert s.cron == "TZ=Europe/Berlin @daily"
    assert s.destination == receiver.url("/py/second")
    assert s.body is None, "the old body is cleared"

    mine = [x for x in client.schedule.list() if x.schedule_id == "py-upsert"]
    assert len(mine) == 1
    client.schedule.delete("py-upsert")


def test_pause_and_resume_toggle_paused_and_delete_removes_it(
    client: QStash, receiver: RecordingReceiver
) -> None:
    schedule_id = client.schedule.create(destination=receiver.url("/py/paused"), cron="@hourly")
    client.schedule.pause(schedule_id)
    assert client.schedule.get(schedule_id).paused is True
    client.schedule.pause(schedule_id)
    assert client.schedule.get(schedule_id).paused is True, "pausing is idempotent"
    client.schedule.resume(schedule_id)
    assert client.schedule.get(schedule_id).paused is False

    client.schedule.delete(schedule_id)
    with pytest.raises(QStashError, match="404"):
        client.schedule.get(schedule_id)
    assert all(x.schedule_id != schedule_id for x in client.schedule.list())


@pytest.mark.parametrize(
    ("cron", "schedule_id"),
    [("* * *", None), ("CRON_TZ=Mars/Base * * * * *", None), ("* * * * *", "not valid!")],
)
def test_create_refuses_an_invalid_cron_zone_or_id_with_400(
    client: QStash, receiver: RecordingReceiver, cron: str, schedule_id: str | None
) -> None:
    destination = receiver.url("/py/invalid")
    with pytest.raises(QStashError, match="400"):
        client.schedule.create(destination=destination, cron=cron, schedule_id=schedule_id)
    assert all(x.destination != destination for x in client.schedule.list())


def test_a_schedule_fires_at_its_minute_and_its_state_parses_into_the_sdk_enum(
    client: QStash, receiver: RecordingReceiver
) -> None:
    schedule_id = client.schedule.create(
        destination=receiver.url("/py/fires"), cron="* * * * *", body="tick"
    )
    try:
        created = time.time()
        [delivery] = receiver.wait_for("/py/fires", 1, timeout=75.0)
        fired_at = time.time()
        assert delivery.headers.get("upstash-schedule-id") == schedule_id
        assert delivery.body == b"tick"
        # A minute boundary passed, and the delivery followed it within seconds (qpost fires
        # within one second; the rest is delivery and polling).
        assert int(fired_at // 60) > int(created // 60)
        assert fired_at % 60 < 3.0, f"delivered {fired_at % 60:.2f}s after the minute"

        message_id = delivery.headers["upstash-message-id"]
        s = wait_until(
            lambda: (
                (got := client.schedule.get(schedule_id)).last_schedule_states
                and got.last_schedule_states.get(message_id) == ScheduleState.SUCCESS
                and got
            ),
            what=f"SUCCESS for {message_id}",
        )
        assert s.last_schedule_time is not None
        assert s.next_schedule_time is not None and s.next_schedule_time > s.last_schedule_time
    finally:
        client.schedule.delete(schedule_id)
