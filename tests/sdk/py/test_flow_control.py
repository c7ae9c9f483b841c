"""Flow control (qstash-api.md §12) through the official Python SDK: message.publish with
`flow_control`, and flow_control.get / pause / resume / pin / unpin / reset_rate /
get_global_parallelism."""

from __future__ import annotations

from typing import List

import pytest
from qstash import QStash
from qstash.errors import QStashError

from harness import Recorded, RecordingReceiver, wait_until


def max_concurrency(records: List[Recorded], delay: float) -> int:
    """The most requests answered at once, each taking `delay` seconds from its arrival."""
    return max(
        (sum(1 for o in records if o.received_at <= r.received_at < o.received_at + delay) for r in records),
        default=0,
    )


def test_publish_with_flow_control_keeps_to_the_keys_parallelism_and_shows_its_limits(
    client: QStash, receiver: RecordingReceiver
) -> None:
    receiver.script("/fc/py/par", {"delay": 0.6})
    flow_control = {"key": "sdk-py-par", "parallelism": 2, "rate": 20, "period": 60}
    for n in range(6):
        client.message.publish(url=receiver.url("/fc/py/par"), body=str(n), flow_control=flow_control)
    delivered = receiver.wait_for("/fc/py/par", 6)
    assert max_concurrency(delivered, 0.6) == 2

    info = wait_until(
        lambda: (i := client.flow_control.get("sdk-py-par")).parallelism_count == 0 and i,
        what="no attempt in flight",
    )
    assert info.key == "sdk-py-par"
    assert (info.parallelism_max, info.rate_max, info.rate_period) == (2, 20, 60)
    assert (info.rate_count, info.wait_list_size, info.is_paused) == (6, 0, False)


def test_pause_holds_a_keys_messages_and_resume_releases_them(client: QStash, receiver: RecordingReceiver) -> None:
    flow_control = {"key": "sdk-py-pause", "parallelism": 1}
    client.message.publish(url=receiver.url("/fc/py/pause"), body="0", flow_control=flow_control)
    receiver.wait_for("/fc/py/pause", 1)
    client.flow_control.pause("sdk-py-pause")
    assert client.flow_control.get("sdk-py-pause").is_paused is True
    client.message.publish(url=receiver.url("/fc/py/pause"), body="1", flow_control=flow_control)
    receiver.expect_no_more("/fc/py/pause", 1, quiet=0.5)
    assert client.flow_control.get("sdk-py-pause").wait_list_size == 1

    client.flow_control.resume("sdk-py-pause")
    receiver.wait_for("/fc/py/pause", 2)


def test_pin_overrides_the_messages_limits_until_unpinned(client: QStash, receiver: RecordingReceiver) -> None:
    receiver.script("/fc/py/pin", {"delay": 0.6})
    flow_control = {"key": "sdk-py-pin", "parallelism": 1}
    client.message.publish(url=receiver.url("/fc/py/pin"), body="first", flow_control=flow_control)
    receiver.wait_for("/fc/py/pin", 1)

    client.flow_control.pin("sdk-py-pin", {"parallelism": 3, "rate": 100, "period": 60})
    pinned = client.flow_control.get("sdk-py-pin")
    assert (pinned.is_pinned_parallelism, pinned.is_pinned_rate) == (True, True)
    assert (pinned.parallelism_max, pinned.rate_max, pinned.rate_period) == (3, 100, 60)
    for n in range(6):
        client.message.publish(url=receiver.url("/fc/py/pin"), body=str(n), flow_control=flow_control)
    delivered = receiver.wait_for("/fc/py/pin", 7)
    assert max_concurrency(delivered[1:], 0.6) == 3

    client.flow_control.unpin("sdk-py-pin", {"parallelism": True, "rate": True})
    client.flow_control.reset_rate("sdk-py-pin")
    unpinned = client.flow_control.get("sdk-py-pin")
    assert (unpinned.is_pinned_parallelism, unpinned.is_pinned_rate) == (False, False)
    assert (unpinned.parallelism_max, unpinned.rate_count) == (1, 0)


def test_an_unknown_key_is_a_404_and_global_parallelism_reports_the_workers(client: QStash) -> None:
    with pytest.raises(QStashError, match="404"):
        client.flow_control.get("sdk-py-never-used")
    with pytest.raises(QStashError, match="404"):
        client.flow_control.resume("sdk-py-never-used")
    info = client.flow_control.get_global_parallelism()
    assert info.parallelism_max == 256
    assert info.parallelism_count >= 0
