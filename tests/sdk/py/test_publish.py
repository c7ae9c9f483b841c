"""Publishing and message management through the official Python SDK:
message.publish, message.publish_json, message.get / cancel / cancel_many / cancel_all."""

from __future__ import annotations

import json
import time

import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError

from harness import RecordingReceiver, assert_signed_delivery


def assert_gone(client: QStash, message_id: str) -> None:
    with pytest.raises(QStashError, match="404"):
        client.message.get(message_id)


def test_publish_delivers_the_raw_body_method_forwarded_headers_and_destination_query(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    destination = receiver.url("/publish/raw?source=sdk&n=1")
    body = "raw body: héllo ✓ \u0000 end"
    published = client.message.publish(
        url=destination,
        body=body.encode("utf-8"),
        method="PUT",
        content_type="text/plain; charset=utf-8",
        headers={"X-Custom-Header": "custom value"},
    )
    assert published.message_id
    assert published.deduplicated is False

    (delivery,) = receiver.wait_for("/publish/raw")
    assert delivery.method == "PUT"
    assert delivery.path == "/publish/raw?source=sdk&n=1"
    assert delivery.body == body.encode("utf-8")
    assert delivery.headers["content-type"] == "text/plain; charset=utf-8"
    assert delivery.headers["x-custom-header"] == "custom value"
    assert_signed_delivery(delivery, verifier=verifier, url=destination, message_id=published.message_id)


def test_publish_json_delivers_the_serialised_body_as_application_json(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    destination = receiver.url("/publish/json")
    payload = {"hello": "world", "n": 42, "nested": {"list": [1, 2, 3]}}
    published = client.message.publish_json(url=destination, body=payload, headers={"X-Trace": "t-1"})

    (delivery,) = receiver.wait_for("/publish/json")
    assert delivery.method == "POST"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["x-trace"] == "t-1"
    assert json.loads(delivery.body) == payload
    assert_signed_delivery(delivery, verifier=verifier, url=destination, message_id=published.message_id)


def test_publish_with_a_delay_delivers_only_after_the_delay(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    destination = receiver.url("/publish/delayed")
    published_at = time.monotonic()
    published = client.message.publish(url=destination, body="later", delay="2s")

    (delivery,) = receiver.wait_for("/publish/delayed", timeout=15)
    waited = delivery.received_at - published_at
    assert waited >= 1.9, f"delivered {waited:.3f} s after publish, expected >= 2 s"
    assert_signed_delivery(delivery, verifier=verifier, url=destination, message_id=published.message_id)


def test_message_get_returns_a_delayed_message_with_its_stored_fields(
    client: QStash, receiver: RecordingReceiver
) -> None:
    destination = receiver.url("/messages/get")
    before = int(time.time() * 1000)
    published = client.message.publish(
        url=destination,
        body="pending body",
        method="PATCH",
        delay="1h",
        retries=2,
        retry_delay="1000 * (1 + retried)",
        content_type="text/plain",
        headers={"test-header": "test-value"},
    )
    after = int(time.time() * 1000)

    message = client.message.get(published.message_id)
    assert message.message_id == published.message_id
    assert message.url == destination
    assert message.method == "PATCH"
    assert message.body == "pending body"
    assert message.headers is not None
    assert message.headers.get("Test-Header") == ["test-value"]
    assert message.headers.get("Content-Type") == ["text/plain"]
    assert message.max_retries == 2
    assert message.retry_delay_expression == "1000 * (1 + retried)"
    assert isinstance(message.created_at, int)
    assert before - 1000 <= message.created_at <= after + 1000
    assert isinstance(message.not_before, int)
    assert abs(message.not_before - message.created_at - 3_600_000) <= 2000

    client.message.cancel(published.message_id)


def test_message_get_reports_not_before_in_ms_for_a_publish_with_not_before_in_seconds(
    client: QStash, receiver: RecordingReceiver
) -> None:
    not_before = int(time.time()) + 7200
    published = client.message.publish(url=receiver.url("/messages/not-before"), body="x", not_before=not_before)

    assert client.message.get(published.message_id).not_before == not_before * 1000

    client.message.cancel(published.message_id)


def test_message_cancel_removes_a_pending_message_then_get_fails(
    client: QStash, receiver: RecordingReceiver
) -> None:
    published = client.message.publish(url=receiver.url("/messages/cancel"), body="never", delay=3600)
    client.message.get(published.message_id)

    client.message.cancel(published.message_id)
    assert_gone(client, published.message_id)


def test_message_cancel_many_cancels_the_given_messages_and_counts_them(
    client: QStash, receiver: RecordingReceiver
) -> None:
    destination = receiver.url("/messages/cancel-many")
    first = client.message.publish(url=destination, body="a", delay="1h")
    second = client.message.publish(url=destination, body="b", delay="1h")
    kept = client.message.publish(url=destination, body="c", delay="1h")

    assert client.message.cancel_many([first.message_id, second.message_id]) == 2
    assert_gone(client, first.message_id)
    assert_gone(client, second.message_id)
    assert client.message.get(kept.message_id).message_id == kept.message_id

    client.message.cancel(kept.message_id)


def test_message_cancel_all_cancels_every_pending_message(client: QStash, receiver: RecordingReceiver) -> None:
    destination = receiver.url("/messages/cancel-all")
    first = client.message.publish(url=destination, body="a", delay="1h")
    second = client.message.publish(url=destination, body="b", delay="1h")

    cancelled = client.message.cancel_all()
    assert cancelled >= 2
    assert_gone(client, first.message_id)
    assert_gone(client, second.message_id)


def test_deduplication_id_returns_the_first_message_id_and_delivers_once(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    destination = receiver.url("/dedup/id")
    deduplication_id = f"dedup-{time.time_ns()}"
    first = client.message.publish(url=destination, body="once", deduplication_id=deduplication_id)
    second = client.message.publish(url=destination, body="once", deduplication_id=deduplication_id)
    assert second.message_id == first.message_id
    assert second.deduplicated is True
    assert first.deduplicated is False

    (delivery,) = receiver.wait_for("/dedup/id")
    assert_signed_delivery(delivery, verifier=verifier, url=destination, message_id=first.message_id)
    # A later message to another path has been delivered, so a duplicate would have been too.
    client.message.publish(url=receiver.url("/dedup/marker"), body="marker")
    receiver.wait_for("/dedup/marker")
    receiver.expect_no_more("/dedup/id", 1)
