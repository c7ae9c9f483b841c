"""Signing keys through the official Python SDK: signing_key.get, signing_key.rotate.
Rotation changes the server's keys, so it runs on a server of its own."""

from __future__ import annotations

import re
from typing import Callable

import pytest
from qstash import QStash
from qstash.errors import SignatureError

from harness import (
    DEV_CURRENT_SIGNING_KEY,
    DEV_NEXT_SIGNING_KEY,
    DEV_TOKEN,
    QpostServer,
    RecordingReceiver,
    assert_signed_delivery,
)


def test_the_printed_credentials_default_to_the_public_dev_server_ones(qpost: QpostServer) -> None:
    assert qpost.token == DEV_TOKEN
    assert qpost.current_signing_key == DEV_CURRENT_SIGNING_KEY
    assert qpost.next_signing_key == DEV_NEXT_SIGNING_KEY
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", qpost.url)


def test_signing_key_get_answers_the_printed_keys(client: QStash, qpost: QpostServer) -> None:
    keys = client.signing_key.get()
    assert keys.current == qpost.current_signing_key
    assert keys.next == qpost.next_signing_key


def test_signing_key_rotate_promotes_next_to_current_and_signs_with_the_new_key(
    start_qpost: Callable[[], QpostServer], receiver: RecordingReceiver
) -> None:
    server = start_qpost()
    client = server.client()
    old = client.signing_key.get()

    rotated = client.signing_key.rotate()
    assert rotated.current == old.next
    assert re.fullmatch(r"sig_\w+", rotated.next)
    # PyJWT (the Python Receiver) warns about HMAC keys shorter than 32 bytes.
    assert len(rotated.next) >= 32, f"new key {rotated.next!r} is shorter than 32 bytes"
    assert rotated.next not in (old.current, old.next)
    again = client.signing_key.get()
    assert (again.current, again.next) == (rotated.current, rotated.next)

    destination = receiver.url("/keys/after-rotate")
    published = client.message.publish(url=destination, body="signed with the new key")
    (delivery,) = receiver.wait_for("/keys/after-rotate")
    new_verifier = server.verifier(rotated.current, rotated.next)
    assert_signed_delivery(delivery, verifier=new_verifier, url=destination, message_id=published.message_id)

    old_only = server.verifier(old.current, old.current)
    with pytest.raises(SignatureError):
        old_only.verify(
            signature=delivery.headers["upstash-signature"],
            body=delivery.body.decode("utf-8"),
            url=destination,
        )


def test_a_server_stops_gracefully_on_sigterm_right_after_printing_its_block(start_qpost: Callable[[], QpostServer]) -> None:
    server = start_qpost()
    code = server.stop()
    assert code == 0, f"exit code {code}:\n{server.log()}"
