"""Callbacks and failure callbacks (qstash-api.md §5) published through the official Python SDK."""

from __future__ import annotations

import json

from qstash import QStash, Receiver

from harness import RecordingReceiver, assert_signed_delivery, from_base64


def test_a_successful_delivery_calls_the_callback_with_the_response_and_the_source_message(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    receiver.script("/cb/ok/destination", {"status": 200, "headers": {"X-Reply": "r1"}, "body": "destination says hi"})
    destination = receiver.url("/cb/ok/destination")
    callback = receiver.url("/cb/ok/callback")
    failure_callback = receiver.url("/cb/ok/failure")
    source_body = "source body ✓"
    published = client.message.publish(
        url=destination,
        body=source_body.encode("utf-8"),
        headers={"X-Custom": "c1"},
        callback=callback,
        failure_callback=failure_callback,
    )

    (delivery,) = receiver.wait_for("/cb/ok/destination")
    assert_signed_delivery(delivery, verifier=verifier, url=destination, message_id=published.message_id)

    (request,) = receiver.wait_for("/cb/ok/callback")
    assert request.method == "POST"
    assert_signed_delivery(request, verifier=verifier, url=callback)
    assert request.headers["upstash-message-id"] != published.message_id

    body = json.loads(request.body)
    assert body["status"] == 200
    assert body["sourceMessageId"] == published.message_id
    assert from_base64(body["sourceBody"]).decode("utf-8") == source_body
    assert from_base64(body["body"]).decode("utf-8") == "destination says hi"
    assert body.get("header", {}).get("X-Reply") == ["r1"]
    assert body.get("sourceHeader", {}).get("X-Custom") == ["c1"]
    assert body["url"] == destination
    assert body["method"] == "POST"
    assert not body.get("retried"), f"retried = {body.get('retried')} on the first attempt"
    assert "dlqId" not in body
    assert isinstance(body["createdAt"], int)

    receiver.expect_no_more("/cb/ok/failure", 0)


def test_an_exhausted_message_calls_the_failure_callback_with_its_dlq_id(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    receiver.script("/cb/fail/destination", {"status": 500, "body": "server error"})
    destination = receiver.url("/cb/fail/destination")
    callback = receiver.url("/cb/fail/callback")
    failure_callback = receiver.url("/cb/fail/failure")
    published = client.message.publish(
        url=destination,
        body="doomed",
        retries=0,
        callback=callback,
        failure_callback=failure_callback,
    )

    (request,) = receiver.wait_for("/cb/fail/failure")
    assert_signed_delivery(request, verifier=verifier, url=failure_callback)
    body = json.loads(request.body)
    assert body["status"] == 500
    assert body["sourceMessageId"] == published.message_id
    assert from_base64(body["sourceBody"]) == b"doomed"
    assert from_base64(body["body"]) == b"server error"
    assert body["url"] == destination
    assert body.get("dlqId"), "failure callback has no dlqId"

    entry = client.dlq.get(body["dlqId"])
    assert entry.message_id == published.message_id

    # The callback is called after every attempt, failed ones included.
    (attempt,) = receiver.wait_for("/cb/fail/callback")
    assert_signed_delivery(attempt, verifier=verifier, url=callback)
    assert json.loads(attempt.body)["status"] == 500
    assert json.loads(attempt.body)["sourceMessageId"] == published.message_id
