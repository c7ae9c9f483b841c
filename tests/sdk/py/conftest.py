"""Fixtures for the Python SDK conformance tests: one qpost server and one recording receiver
for the session, plus `start_qpost` for tests that need a server of their own."""

from __future__ import annotations

from typing import Callable, Iterator, List

import pytest
from qstash import QStash, Receiver

from harness import QpostServer, RecordingReceiver


@pytest.fixture(scope="session")
def qpost() -> Iterator[QpostServer]:
    server = QpostServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def receiver() -> Iterator[RecordingReceiver]:
    recording = RecordingReceiver()
    yield recording
    recording.close()


@pytest.fixture(scope="session")
def client(qpost: QpostServer) -> QStash:
    return qpost.client()


@pytest.fixture(scope="session")
def verifier(qpost: QpostServer) -> Receiver:
    return qpost.verifier()


@pytest.fixture
def start_qpost() -> Iterator[Callable[[], QpostServer]]:
    """Starts extra servers (e.g. for key rotation); stops whatever is still running afterwards."""
    started: List[QpostServer] = []

    def start() -> QpostServer:
        server = QpostServer()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
