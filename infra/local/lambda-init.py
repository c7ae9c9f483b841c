#!/usr/bin/env python3
"""Measures each Lambda binary's init time: from process start until it asks the Lambda
runtime API for its first event. Runs the functions' release binaries (x86_64, built with
`cargo build --release -p qpost-fn-<name>`) against the moto emulator, with a minimal
runtime API on 127.0.0.1 standing in for the Lambda service. Prints one line per function:
binary size, and the median and maximum init time over several cold starts.
"""

import argparse
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

FUNCTIONS = ["publish", "schedules", "dlq", "deliver", "failure-callback"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Answers nothing: it only records when the function first asks for an event."""

    first_next = None

    def do_GET(self):
        if "/runtime/invocation/next" in self.path and RuntimeApi.first_next is None:
            RuntimeApi.first_next = time.monotonic()
        # Hold the request like Lambda does while no event is queued.
        time.sleep(5)

    def do_POST(self):
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_for_emulator(url, deadline):
    import urllib.request

    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("moto_server did not start")


def cold_start(binary, env):
    RuntimeApi.first_next = None
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}")
    started = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + 30
    while RuntimeApi.first_next is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.001)
    ready = RuntimeApi.first_next
    proc.kill()
    _, err = proc.communicate()
    server.shutdown()
    if ready is None:
        sys.exit(f"{binary} never asked for an event:\n{err.decode(errors='replace')}")
    return (ready - started) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    args = parser.parse_args()
    venv_bin = os.path.join(ROOT, ".venv", "bin")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(
        [os.path.join(venv_bin, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_emulator(endpoint, time.monotonic() + 30)
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_DEFAULT_REGION="us-east-1", AWS_LAMBDA_FUNCTION_NAME="qpost-init",
                   AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256")
        prefix = "init" + uuid.uuid4().hex[:8]
        out = subprocess.run(
            [os.path.join(venv_bin, "python"), os.path.join(ROOT, "infra", "local", "bootstrap.py"),
             "--prefix", prefix], env=env, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                env[key] = value
        print(f"{'function':<18} {'size':>9} {'init median':>12} {'init max':>9}")
        for name in FUNCTIONS:
            binary = os.path.join(args.bin_dir, f"qpost-{name}")
            times = [cold_start(binary, env) for _ in range(args.runs)]
            size = os.path.getsize(binary) / 1e6
            print(f"{name:<18} {size:>7.1f} MB {statistics.median(times):>9.1f} ms {max(times):>6.1f} ms")
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
