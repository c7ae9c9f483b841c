"""URL groups through the official Python SDK: url_group.upsert_endpoints / remove_endpoints /
get / list / delete, and message.publish to a `url_group` fanning out per endpoint."""

from __future__ import annotations

import time
from typing import List

import pytest
from qstash import QStash, Receiver
from qstash.dlq import DlqMessage
from qstash.errors import QStashError

from harness import RecordingReceiver, assert_signed_delivery, wait_until


def test_url_group_upsert_get_list_remove_and_delete(client: QStash) -> None:
    before = int(time.time() * 1000)
    client.url_group.upsert_endpoints(
        url_group="py-lifecycle",
        endpoints=[{"url": "https://a.example.com/hook", "name": "a"}, {"url": "https://b.example.com/hook"}],
    )

    group = client.url_group.get("py-lifecycle")
    assert group.name == "py-lifecycle"
    assert isinstance(group.created_at, int) and group.created_at >= before
    assert isinstance(group.updated_at, int)
    assert sorted(e.url for e in group.endpoints) == ["https://a.example.com/hook", "https://b.example.com/hook"]
    assert {e.url: e.name for e in group.endpoints}["https://a.example.com/hook"] == "a"
    assert any(g.name == "py-lifecycle" for g in client.url_group.list())

    # Upserting a known URL renames it instead of adding a second endpoint.
    client.url_group.upsert_endpoints(
        url_group="py-lifecycle", endpoints=[{"url": "https://b.example.com/hook", "name": "b"}]
    )
    group = client.url_group.get("py-lifecycle")
    assert sorted((e.url, e.name) for e in group.endpoints) == [
        ("https://a.example.com/hook", "a"),
        ("https://b.example.com/hook", "b"),
    ]

    client.url_group.remove_endpoints(url_group="py-lifecycle", endpoints=[{"name": "a"}])
    assert [e.url for e in client.url_group.get("py-lifecycle").endpoints] == ["https://b.example.com/hook"]

    client.url_group.delete("py-lifecycle")
    with pytest.raises(QStashError, match="404"):
        client.url_group.get("py-lifecycle")
    assert not any(g.name == "py-lifecycle" for g in client.url_group.list())


def test_removing_the_last_endpoint_deletes_the_group_and_bad_input_is_refused(client: QStash) -> None:
    client.url_group.upsert_endpoints(url_group="py-last", endpoints=[{"url": "https://only.example.com"}])
    client.url_group.remove_endpoints(url_group="py-last", endpoints=[{"url": "https://only.example.com"}])
    with pytest.raises(QStashError, match="404"):
        client.url_group.get("py-last")

    with pytest.raises(QStashError, match="400"):
        client.url_group.upsert_endpoints(url_group="py-bad", endpoints=[{"url": "no-scheme.example.com"}])
    with pytest.raises(QStashError, match="404"):
        client.url_group.remove_endpoints(url_group="py-missing", endpoints=[{"url": "https://x.example.com"}])
    with pytest.raises(QStashError, match="404"):
        client.url_group.get("py-bad")


def test_publish_to_a_url_group_returns_a_list_and_delivers_to_every_endpoint(
    client: QStash, receiver: RecordingReceiver, verifier: Receiver
) -> None:
    urls = [receiver.url("/py-ug/one"), receiver.url("/py-ug/two")]
    client.url_group.upsert_endpoints(url_group="py-fanout", endpoints=[{"url": urls[0], "name": "one"}, {"url": urls[1]}])

    published = client.message.publish(url_group="py-fanout", body="to everyone", headers={"X-Tag": "t"})
    assert isinstance(published, list), published
    assert sorted(p.url for p in published) == sorted(urls)
    assert len({p.message_id for p in published}) == 2
    assert all(p.deduplicated is False for p in published)

    for url in urls:
        pathname = url[len(receiver.base_url):]
        (delivery,) = receiver.wait_for(pathname)
        assert delivery.body == b"to everyone"
        assert delivery.headers["upstash-topic-name"] == "py-fanout"
        assert delivery.headers["x-tag"] == "t"
        message_id = next(p.message_id for p in published if p.url == url)
        assert_signed_delivery(delivery, verifier=verifier, url=url, message_id=message_id)


def test_one_failing_endpoint_dead_letters_alone_with_its_url_group(
    client: QStash, receiver: RecordingReceiver
) -> None:
    receiver.script("/py-ug/broken", {"status": 500, "body": "down"})
    ok, broken = receiver.url("/py-ug/fine"), receiver.url("/py-ug/broken")
    client.url_group.upsert_endpoints(
        url_group="py-partial", endpoints=[{"url": ok}, {"url": broken, "name": "broken"}]
    )

    published = client.message.publish_json(url_group="py-partial", body={"n": 1}, retries=0)
    broken_id = next(p.message_id for p in published if p.url == broken)
    receiver.wait_for("/py-ug/fine")

    entries: List[DlqMessage] = []

    def probe() -> bool:
        nonlocal entries
        entries = client.dlq.list(filter={"url_group": "py-partial"}).messages
        return len(entries) == 1

    wait_until(probe, what="the DLQ entry of the failing endpoint")
    (entry,) = entries
    assert entry.message_id == broken_id
    assert entry.url == broken
    assert entry.url_group == "py-partial"
    assert entry.endpoint == "broken"
    assert entry.response_status == 500
    receiver.expect_no_more("/py-ug/fine", 1)
    receiver.expect_no_more("/py-ug/broken", 1, quiet=0)
