"""Batch publishing through the official Python SDK: message.batch and message.batch_json with
URL, URL-group and queue entries, answered with a list aligned with the request.

The SDK's batch parser has no shape for an entry's error, so the partial-failure answer is read
through the SDK's own HTTP client (`client.http.request`)."""

from __future__ import annotations

import json

import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError
from qstash.message import BatchResponse

from harness import RecordingReceiver, assert_signed_delivery


def test_batch_publishes_to_a_url_a_url_group_and_a_queue_in_request_order(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    group_urls = [receiver.url("/py-batch/g1"), receiver.url("/py-batch/g2")]
    client.url_group.upsert_endpoints(url_group="py-batch-group", endpoints=[{"url": u} for u in group_urls])
    single = receiver.url("/py-batch/single?x=1")
    queued = receiver.url("/py-batch/queued")

    responses = client.message.batch(
        [
            {"url": single, "body": "first", "method": "PUT", "headers": {"X-Custom": "c"}},
            {"url_group": "py-batch-group", "body": "for the group"},
            {"url": queued, "body": "through the queue", "queue": "py-batch-queue"},
        ]
    )
    assert len(responses) == 3
    first, group, via_queue = responses
    assert isinstance(first, BatchResponse) and first.message_id
    assert isinstance(group, list)
    assert sorted(r.url for r in group) == sorted(group_urls)
    assert isinstance(via_queue, BatchResponse) and via_queue.message_id

    (delivery,) = receiver.wait_for("/py-batch/single")
    assert delivery.method == "PUT"
    assert delivery.path == "/py-batch/single?x=1"
    assert delivery.body == b"first"
    assert delivery.headers["x-custom"] == "c"
    assert_signed_delivery(delivery, verifier=verifier, url=single, message_id=first.message_id)

    for url in group_urls:
        (got,) = receiver.wait_for(url[len(receiver.base_url):])
        assert got.body == b"for the group"
        assert got.headers["upstash-topic-name"] == "py-batch-group"
    (got,) = receiver.wait_for("/py-batch/queued")
    assert got.body == b"through the queue"
    assert_signed_delivery(got, verifier=verifier, url=queued, message_id=via_queue.message_id)


def test_batch_json_serialises_each_body_as_application_json(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    payloads = [{"n": 1}, {"n": 2, "list": ["a"]}]
    urls = [receiver.url("/py-batch/json1"), receiver.url("/py-batch/json2")]
    responses = client.message.batch_json(
        [{"url": url, "body": body, "retries": 1} for url, body in zip(urls, payloads)]
    )
    assert len(responses) == 2
    for url, payload, response in zip(urls, payloads, responses):
        assert isinstance(response, BatchResponse)
        (got,) = receiver.wait_for(url[len(receiver.base_url):])
        assert got.headers["content-type"] == "application/json"
        assert json.loads(got.body) == payload
        assert_signed_delivery(got, verifier=verifier, url=url, message_id=response.message_id)


def test_a_bad_entry_gets_an_error_element_while_the_others_are_created(
    client: QStash, receiver: RecordingReceiver
) -> None:
    good = receiver.url("/py-batch/good")
    body = json.dumps(
        [
            {"destination": "ftp://not-http.example.com", "headers": {}, "body": "bad", "queue": None},
            {"destination": good, "headers": {"Upstash-Method": "POST"}, "body": None, "queue": None},
        ]
    )
    response = client.http.request(
        path="/v2/batch", method="POST", headers={"Content-Type": "application/json"}, body=body
    )
    assert len(response) == 2
    assert response[0]["error"]
    assert response[1]["messageId"]
    (got,) = receiver.wait_for("/py-batch/good")
    assert got.body == b""


def test_a_batch_body_that_is_not_a_list_is_refused(client: QStash) -> None:
    with pytest.raises(QStashError, match="400"):
        client.http.request(
            path="/v2/batch",
            method="POST",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"destination": "https://example.com"}),
        )
