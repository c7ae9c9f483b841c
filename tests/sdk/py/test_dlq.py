"""Retries and the dead-letter queue through the official Python SDK:
dlq.list (filter, cursor paging), dlq.get, dlq.delete, dlq.delete_many.

This SDK version has no DLQ retry method; the single-entry retry endpoint is called through the
SDK's own HTTP client (`client.http.request`)."""

from __future__ import annotations

from typing import List, Tuple

import pytest
from qstash import QStash, Receiver
from qstash.dlq import DlqMessage
from qstash.errors import QStashError

from harness import RecordingReceiver, assert_signed_delivery, wait_until


def dlq_entries_for(client: QStash, destination: str, count: int) -> List[DlqMessage]:
    """Waits until the DLQ holds exactly `count` entries for `destination`; returns them."""
    seen: List[DlqMessage] = []

    def probe() -> bool:
        nonlocal seen
        seen = client.dlq.list(filter={"url": destination}).messages
        return len(seen) == count

    wait_until(probe, what=f"{count} DLQ entr(ies) for {destination}")
    return seen


def fail_into_dlq(
    client: QStash, receiver: RecordingReceiver, pathname: str, count: int = 1
) -> Tuple[str, List[str], List[DlqMessage]]:
    """Publishes `count` messages with no retries to a path answering 500; waits for the DLQ entries."""
    receiver.script(pathname, {"status": 500, "body": "boom"})
    destination = receiver.url(pathname)
    ids = [client.message.publish(url=destination, body=f"body {i}", retries=0).message_id for i in range(count)]
    return destination, ids, dlq_entries_for(client, destination, count)


def test_a_message_failing_with_retries_0_lands_in_the_dlq_with_the_last_response(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    pathname = "/dlq/fail"
    receiver.script(pathname, {"status": 500, "headers": {"X-Reply": "r1"}, "body": "boom"})
    destination = receiver.url(pathname)
    published = client.message.publish(
        url=destination,
        body="failing body",
        retries=0,
        content_type="text/plain",
        headers={"X-Custom": "c1"},
    )

    (delivery,) = receiver.wait_for(pathname)
    assert_signed_delivery(delivery, verifier=verifier, url=destination, message_id=published.message_id)

    (entry,) = dlq_entries_for(client, destination, 1)
    assert entry.dlq_id
    assert entry.message_id == published.message_id
    assert entry.url == destination
    assert entry.method == "POST"
    assert entry.body == "failing body"
    assert entry.headers is not None and entry.headers.get("X-Custom") == ["c1"]
    assert entry.max_retries == 0
    assert isinstance(entry.created_at, int)
    assert entry.response_status == 500
    assert entry.response_body == "boom"
    assert entry.response_headers is not None and entry.response_headers.get("X-Reply") == ["r1"]


def test_retries_follow_upstash_retry_delay_with_upstash_retried_counting_up_then_the_dlq(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    pathname = "/dlq/retried"
    receiver.script(pathname, {"status": 500, "body": "still failing"})
    destination = receiver.url(pathname)
    published = client.message.publish(url=destination, body="retry me", retries=1, retry_delay="100")

    first, second = receiver.wait_for(pathname, 2)
    assert_signed_delivery(first, verifier=verifier, url=destination, message_id=published.message_id, retried=0)
    assert_signed_delivery(second, verifier=verifier, url=destination, message_id=published.message_id, retried=1)
    gap = second.received_at - first.received_at
    assert gap >= 0.08, f"retry came after {gap:.3f} s"

    (entry,) = dlq_entries_for(client, destination, 1)
    assert entry.message_id == published.message_id
    assert entry.max_retries == 1
    assert entry.response_status == 500
    receiver.expect_no_more(pathname, 2)


def test_489_with_upstash_nonretryable_error_fails_at_once_despite_retries_left(
    client: QStash, receiver: RecordingReceiver
) -> None:
    pathname = "/dlq/non-retryable"
    receiver.script(pathname, {"status": 489, "headers": {"Upstash-NonRetryable-Error": "true"}, "body": "no"})
    destination = receiver.url(pathname)
    published = client.message.publish(url=destination, body="x", retries=3, retry_delay="100")

    (entry,) = dlq_entries_for(client, destination, 1)
    assert entry.message_id == published.message_id
    assert entry.response_status == 489
    receiver.expect_no_more(pathname, 1)


def test_dlq_list_pages_with_count_1_and_a_cursor(client: QStash, receiver: RecordingReceiver) -> None:
    destination, ids, _ = fail_into_dlq(client, receiver, "/dlq/paged", 3)

    seen: List[str] = []
    cursor = None
    pages = 0
    while True:
        page = client.dlq.list(filter={"url": destination}, count=1, cursor=cursor)
        assert len(page.messages) <= 1, f"page of {len(page.messages)} with count 1"
        if pages < 3:
            assert len(page.messages) == 1, f"page {pages} is empty"
        if pages < 2:
            assert page.cursor, f"page {pages} has no cursor"
        seen.extend(m.message_id for m in page.messages)
        cursor = page.cursor or None
        pages += 1
        if cursor is None or pages >= 10:
            break

    assert cursor is None, "paging did not end"
    assert sorted(seen) == sorted(ids)


def test_dlq_get_returns_one_entry(client: QStash, receiver: RecordingReceiver) -> None:
    destination, ids, entries = fail_into_dlq(client, receiver, "/dlq/get", 1)

    entry = client.dlq.get(entries[0].dlq_id)
    assert entry.dlq_id == entries[0].dlq_id
    assert entry.message_id == ids[0]
    assert entry.url == destination
    assert entry.body == "body 0"
    assert entry.response_status == 500
    assert entry.response_body == "boom"


def test_dlq_delete_removes_one_entry_and_a_second_delete_fails(
    client: QStash, receiver: RecordingReceiver
) -> None:
    destination, _, entries = fail_into_dlq(client, receiver, "/dlq/delete", 1)

    client.dlq.delete(entries[0].dlq_id)
    with pytest.raises(QStashError, match="404"):
        client.dlq.delete(entries[0].dlq_id)
    with pytest.raises(QStashError, match="404"):
        client.dlq.get(entries[0].dlq_id)
    assert client.dlq.list(filter={"url": destination}).messages == []


def test_dlq_delete_many_removes_the_given_entries(client: QStash, receiver: RecordingReceiver) -> None:
    destination, _, entries = fail_into_dlq(client, receiver, "/dlq/delete-many", 3)

    assert client.dlq.delete_many([entries[0].dlq_id, entries[1].dlq_id]) == 2
    remaining = client.dlq.list(filter={"url": destination}).messages
    assert [m.dlq_id for m in remaining] == [entries[2].dlq_id]


def test_dlq_retry_of_one_entry_republishes_it_as_a_new_message(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    pathname = "/dlq/retry"
    receiver.script(pathname, [{"status": 500}, {"status": 200}])
    destination = receiver.url(pathname)
    published = client.message.publish(url=destination, body="second chance", retries=0)
    (entry,) = dlq_entries_for(client, destination, 1)

    response = client.http.request(path=f"/v2/dlq/retry/{entry.dlq_id}", method="POST")
    retried_id = response["messageId"]
    assert retried_id and retried_id != published.message_id

    _, redelivery = receiver.wait_for(pathname, 2)
    assert redelivery.body == b"second chance"
    assert_signed_delivery(redelivery, verifier=verifier, url=destination, message_id=retried_id)
    dlq_entries_for(client, destination, 0)
