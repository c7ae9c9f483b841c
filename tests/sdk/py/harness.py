"""Test harness for the Python SDK conformance tests.

Starts a real qpost server on a free port with a throw-away data directory, and a recording
receiver that plays the destination (and callback) side. Tests talk to qpost only through the
official `qstash` SDK.
"""

from __future__ import annotations

import base64
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union
from urllib.parse import urlsplit

from qstash import QStash, Receiver

REPO_ROOT = Path(__file__).resolve().parents[3]
QPOST_BIN = os.environ.get("QPOST_BIN") or str(REPO_ROOT / "target" / "debug" / "qpost")

# `QPOST_MODE=aws` runs every test against AWS mode instead of local mode: each server is
# `qpost-aws-local` (crates/aws/examples, the AWS backend on an emulator reached through
# AWS_ENDPOINT_URL, with the deliver and failure-callback functions fed by emulated SQS event
# sources) on a fresh table and queues made by infra/local/bootstrap.py.
AWS_MODE = os.environ.get("QPOST_MODE") == "aws"
QPOST_AWS_BIN = os.environ.get("QPOST_AWS_BIN") or str(
    REPO_ROOT / "target" / "debug" / "examples" / "qpost-aws-local"
)

def bootstrap_aws_stack() -> Dict[str, str]:
    """Creates a fresh AWS-mode stack in the emulator; returns the variables qpost-aws reads."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise RuntimeError(
            "QPOST_MODE=aws needs AWS_ENDPOINT_URL (an emulator such as moto_server); scripts/test sets it"
        )
    prefix = f"qpost-sdk-py-{os.getpid()}-{os.urandom(4).hex()}"
    script = REPO_ROOT / "infra" / "local" / "bootstrap.py"
    python = os.environ.get("QPOST_PYTHON") or sys.executable
    out = subprocess.run(
        [python, str(script), "--prefix", prefix], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"infra/local/bootstrap.py failed:\n{out.stderr}")
    pairs = (line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return {key: value for key, value in pairs}

# The public QStash dev-server credentials (user 1), qpost's defaults (qstash-api.md §13).
DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
DEV_CURRENT_SIGNING_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
DEV_NEXT_SIGNING_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
REQUIRED_VARS = (
    "QSTASH_URL",
    "QSTASH_TOKEN",
    "QSTASH_CURRENT_SIGNING_KEY",
    "QSTASH_NEXT_SIGNING_KEY",
)
VAR_LINE = re.compile(r"""^\s*(?:export\s+)?(QSTASH_[A-Z_]+)=["']?([^"'\s]*)["']?\s*$""")


def wait_until(
    probe: Callable[[], Any],
    *,
    timeout: float = 10.0,
    interval: float = 0.025,
    what: str = "condition",
) -> Any:
    """Polls `probe` until it returns a truthy value, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last_error = None
        except Exception as error:  # noqa: BLE001 - reported if the deadline passes
            last_error = error
        if time.monotonic() >= deadline:
            cause = f"; last error: {last_error!r}" if last_error else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{cause}")
        time.sleep(interval)


class QpostServer:
    """`qpost --bind 127.0.0.1 --port 0 --data-dir <tmp>` (in AWS mode `qpost-aws-local` on a
    fresh stack, see `AWS_MODE`), parsed from its printed block."""

    def __init__(self) -> None:
        # Without QPOST_* settings, so every test server starts from the defaults.
        env = {k: v for k, v in os.environ.items() if not k.startswith("QPOST_")}
        if AWS_MODE:
            env.update(bootstrap_aws_stack())
            # The maximum GET /v2/globalParallelism reports: the local worker's default, so
            # the suites expect one figure in both modes (on AWS the stack sets it).
            env["QPOST_GLOBAL_PARALLELISM"] = "256"
        self.data_dir = tempfile.mkdtemp(prefix="qpost-sdk-py-")
        self._log: List[str] = []
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        if AWS_MODE:
            binary, hint = QPOST_AWS_BIN, "cargo build -p qpost-aws --example qpost-aws-local or set QPOST_AWS_BIN"
            argv = [binary, "--bind", "127.0.0.1", "--port", "0"]
        else:
            binary, hint = QPOST_BIN, "cargo build -p qpost or set QPOST_BIN"
            argv = [binary, "--bind", "127.0.0.1", "--port", "0", "--data-dir", self.data_dir]
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as error:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise RuntimeError(f"cannot start {binary}: {error} (build it with {hint})") from error
        threading.Thread(target=self._pump, args=(self._process.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self._process.stderr, False), daemon=True).start()
        try:
            variables = self._read_printed_block()
        except BaseException:
            self._process.kill()
            self._process.wait()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        self.url = variables["QSTASH_URL"]
        self.token = variables["QSTASH_TOKEN"]
        self.current_signing_key = variables["QSTASH_CURRENT_SIGNING_KEY"]
        self.next_signing_key = variables["QSTASH_NEXT_SIGNING_KEY"]

    def _pump(self, stream: Any, is_stdout: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self._log.append(line)
            del self._log[:-400]
            if is_stdout:
                self._lines.put(line)
        if is_stdout:
            self._lines.put(None)

    def log(self) -> str:
        return "\n".join(self._log)

    def _read_printed_block(self) -> Dict[str, str]:
        variables: Dict[str, str] = {}
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not all(variables.get(name) for name in REQUIRED_VARS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"qpost did not print its QSTASH_* block in time:\n{self.log()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self._process.wait()
                raise RuntimeError(f"qpost exited early (code {code}):\n{self.log()}")
            match = VAR_LINE.match(line)
            if match:
                variables[match.group(1)] = match.group(2)
        return variables

    def client(self) -> QStash:
        return QStash(self.token, base_url=self.url)

    def verifier(
        self, current_signing_key: Optional[str] = None, next_signing_key: Optional[str] = None
    ) -> Receiver:
        return Receiver(
            current_signing_key=current_signing_key or self.current_signing_key,
            next_signing_key=next_signing_key or self.next_signing_key,
        )

    def stop(self) -> int:
        """SIGTERM, wait for a graceful exit (SIGKILL after a deadline), remove the data dir."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return code


@dataclass
class Recorded:
    """One request the receiver got: `headers` has lower-cased names, `body` the raw bytes."""

    method: str
    path: str
    pathname: str
    headers: Dict[str, str]
    raw_headers: List[tuple]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)


Behaviour = Dict[str, Any]
Script = Union[Behaviour, List[Behaviour], Callable[[Recorded, int], Optional[Behaviour]]]


class RecordingReceiver:
    """A threaded HTTP server on 127.0.0.1:0 that records every request and answers as scripted.

    A script is a behaviour `{"status", "headers", "body", "delay"}` (delay in seconds), a list
    of behaviours (one per call to that path, the last repeating), or a function
    `(recorded, index) -> behaviour`. Unscripted paths answer 200 "ok".
    """

    def __init__(self) -> None:
        self._requests: List[Recorded] = []
        self._scripts: Dict[str, Script] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                receiver._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path_and_query: str) -> str:
        return self.base_url + path_and_query

    def script(self, pathname: str, behaviour: Script) -> None:
        with self._lock:
            self._scripts[pathname] = behaviour

    def requests(self, pathname: str) -> List[Recorded]:
        with self._lock:
            return [r for r in self._requests if r.pathname == pathname]

    def wait_for(self, pathname: str, count: int = 1, *, timeout: float = 10.0) -> List[Recorded]:
        """Waits until at least `count` requests reached `pathname`; returns the first `count`."""
        wait_until(
            lambda: len(self.requests(pathname)) >= count,
            timeout=timeout,
            what=f"{count} request(s) to {pathname} (got {len(self.requests(pathname))})",
        )
        return self.requests(pathname)[:count]

    def expect_no_more(self, pathname: str, count: int, *, quiet: float = 0.6) -> None:
        """Polls for `quiet` seconds and fails as soon as `pathname` got more than `count` requests."""
        deadline = time.monotonic() + quiet
        while True:
            got = len(self.requests(pathname))
            assert got <= count, f"expected at most {count} request(s) to {pathname}, got {got}"
            if time.monotonic() >= deadline:
                return
            time.sleep(0.025)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        parsed = urlsplit(handler.path)
        record = Recorded(
            method=handler.command,
            path=handler.path,
            pathname=parsed.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            raw_headers=list(handler.headers.items()),
            body=body,
        )
        with self._lock:
            index = sum(1 for r in self._requests if r.pathname == record.pathname)
            self._requests.append(record)
            script = self._scripts.get(record.pathname)
        behaviour = _pick_behaviour(script, record, index)
        if behaviour.get("delay"):
            time.sleep(behaviour["delay"])
        payload = behaviour.get("body", "ok")
        payload = payload.encode("utf-8") if isinstance(payload, str) else payload
        handler.send_response(behaviour.get("status", 200))
        headers = behaviour.get("headers", {"Content-Type": "text/plain"})
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _pick_behaviour(script: Optional[Script], record: Recorded, index: int) -> Behaviour:
    if script is None:
        return {}
    if callable(script):
        return script(record, index) or {}
    if isinstance(script, list):
        return script[min(index, len(script) - 1)] if script else {}
    return script


# Headers a publisher sends to qpost that must never reach a destination.
NEVER_FORWARDED = {
    "authorization",
    "upstash-method",
    "upstash-delay",
    "upstash-not-before",
    "upstash-retries",
    "upstash-retry-delay",
    "upstash-callback",
    "upstash-failure-callback",
    "upstash-deduplication-id",
    "upstash-content-based-deduplication",
    "upstash-timeout",
}


def assert_signed_delivery(
    record: Recorded,
    *,
    verifier: Receiver,
    url: str,
    message_id: Optional[str] = None,
    retried: int = 0,
) -> None:
    """Checks one delivered request the way a QStash destination would: the signature verifies
    with the SDK's own Receiver over the exact raw body and URL, and the standard headers are set."""
    signature = record.headers.get("upstash-signature")
    assert signature, f"no Upstash-Signature header on {record.method} {record.path}"
    verifier.verify(signature=signature, body=record.body.decode("utf-8"), url=url)
    assert record.headers.get("user-agent") == "Upstash-QStash"
    if message_id is not None:
        assert record.headers.get("upstash-message-id") == message_id
    else:
        assert record.headers.get("upstash-message-id"), "Upstash-Message-Id missing"
    assert record.headers.get("upstash-retried") == str(retried)
    for name in record.headers:
        assert name not in NEVER_FORWARDED, f"header {name} leaked to the destination"
        assert not name.startswith("upstash-forward-"), f"prefixed header {name} reached the destination"
        assert not name.startswith("upstash-callback-"), f"callback config header {name} reached the destination"


def from_base64(value: str) -> bytes:
    """Decodes a standard-base64 field of a callback body."""
    return base64.b64decode(value)
