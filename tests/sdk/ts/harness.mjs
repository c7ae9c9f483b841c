// Test harness for the TypeScript SDK conformance tests: starts a real qpost server on a free
// port with a throw-away data directory, and a recording receiver that plays the destination
// (and callback) side. Tests talk to qpost only through the official `@upstash/qstash` SDK.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

import { Client, Receiver } from "@upstash/qstash";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const QPOST_BIN = process.env.QPOST_BIN || path.join(REPO_ROOT, "target", "debug", "qpost");

/**
 * `QPOST_MODE=aws` runs every suite against AWS mode instead of local mode: each server is
 * `qpost-aws-local` (crates/aws/examples, the AWS backend on an emulator reached through
 * `AWS_ENDPOINT_URL`, with the deliver and failure-callback functions fed by emulated SQS
 * event sources) on a fresh table and queues made by `infra/local/bootstrap.py`.
 */
export const AWS_MODE = process.env.QPOST_MODE === "aws";
export const QPOST_AWS_BIN =
  process.env.QPOST_AWS_BIN || path.join(REPO_ROOT, "target", "debug", "examples", "qpost-aws-local");
const PYTHON = process.env.QPOST_PYTHON || path.join(REPO_ROOT, ".venv", "bin", "python");

/** Creates a fresh AWS-mode stack in the emulator; returns the variables qpost-aws reads. */
async function bootstrapAwsStack() {
  if (!process.env.AWS_ENDPOINT_URL) {
    throw new Error("QPOST_MODE=aws needs AWS_ENDPOINT_URL (an emulator such as moto_server); scripts/test sets it");
  }
  const prefix = `qpost-sdk-ts-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const script = path.join(REPO_ROOT, "infra", "local", "bootstrap.py");
  const stdout = await new Promise((resolve, reject) => {
    execFile(PYTHON, [script, "--prefix", prefix], (error, out, err) =>
      error ? reject(new Error(`infra/local/bootstrap.py failed: ${error.message}\n${err}`)) : resolve(out),
    );
  });
  return Object.fromEntries(
    stdout
      .split(/\r?\n/)
      .map((line) => line.split(/=(.*)/s, 2))
      .filter(([key, value]) => key && value !== undefined),
  );
}

/** The command, arguments and extra environment of one server in the current mode. */
async function serverCommand(args, dataDir) {
  if (AWS_MODE) {
    const stack = await bootstrapAwsStack();
    // The maximum GET /v2/globalParallelism reports: the local worker's default, so the
    // suites expect one figure in both modes (on AWS the stack sets it from its concurrency).
    const env = { ...stack, QPOST_GLOBAL_PARALLELISM: "256" };
    return { bin: QPOST_AWS_BIN, argv: ["--bind", "127.0.0.1", "--port", "0", ...args], env };
  }
  return { bin: QPOST_BIN, argv: ["--bind", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...args], env: {} };
}

/** The public QStash dev-server credentials (user 1), qpost's defaults (qstash-api.md §13). */
export const DEV_CREDENTIALS = Object.freeze({
  token: "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
  currentSigningKey: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
  nextSigningKey: "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
});

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const REQUIRED_VARS = [
  "QSTASH_URL",
  "QSTASH_TOKEN",
  "QSTASH_CURRENT_SIGNING_KEY",
  "QSTASH_NEXT_SIGNING_KEY",
];

/** Polls `probe` until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitUntil(probe, { timeoutMs = 10_000, intervalMs = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError ? `; last error: ${lastError.message ?? lastError}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Starts `qpost --bind 127.0.0.1 --port 0 --data-dir <tmp>` (in AWS mode `qpost-aws-local`
 * on a fresh stack, see `AWS_MODE`) and waits for the printed `QSTASH_*` block. The returned
 * handle has `url`, `token`, `currentSigningKey`, `nextSigningKey`, `client()`, `receiver()`
 * (signature verifier) and `stop()`.
 */
export async function startQpost({ args = [], env = {} } = {}) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "qpost-sdk-ts-"));
  const command = await serverCommand(args, dataDir).catch(async (error) => {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  const child = spawn(command.bin, command.argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...serverEnvironment(), ...command.env, ...env },
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  let log = "";
  const appendLog = (chunk) => {
    log = (log + chunk.toString("utf8")).slice(-20_000);
  };
  child.stderr.on("data", appendLog);

  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const vars = await readPrintedBlock(child, appendLog, exited, () => log).catch(async (error) => {
    child.kill("SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });

  const server = {
    url: vars.QSTASH_URL,
    token: vars.QSTASH_TOKEN,
    currentSigningKey: vars.QSTASH_CURRENT_SIGNING_KEY,
    nextSigningKey: vars.QSTASH_NEXT_SIGNING_KEY,
    dataDir,
    log: () => log,
    client: () => new Client({ baseUrl: server.url, token: server.token, devMode: false }),
    receiver: (keys = server) =>
      new Receiver({
        currentSigningKey: keys.currentSigningKey,
        nextSigningKey: keys.nextSigningKey,
        devMode: false,
      }),
    /** SIGTERM, wait for a graceful exit (SIGKILL after a deadline), remove the data dir. */
    async stop() {
      process.removeListener("exit", killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      const result = await exited;
      clearTimeout(timer);
      await rm(dataDir, { recursive: true, force: true });
      return result;
    },
  };
  return server;
}

/** The environment without QPOST_* settings, so every test server starts from the defaults. */
function serverEnvironment() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("QPOST_")));
}

function readPrintedBlock(child, appendLog, exited, getLog) {
  return new Promise((resolve, reject) => {
    const vars = {};
    let pending = "";
    const timer = setTimeout(
      () => reject(new Error(`qpost did not print its QSTASH_* block within ${STARTUP_TIMEOUT_MS} ms:\n${getLog()}`)),
      STARTUP_TIMEOUT_MS,
    );
    child.once("error", (error) => {
      clearTimeout(timer);
      const hint = AWS_MODE
        ? `cannot start ${QPOST_AWS_BIN}: ${error.message} (build it with cargo build -p qpost-aws --example qpost-aws-local or set QPOST_AWS_BIN)`
        : `cannot start ${QPOST_BIN}: ${error.message} (build it with cargo build -p qpost or set QPOST_BIN)`;
      reject(new Error(hint));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`qpost exited early (code ${code}, signal ${signal}):\n${getLog()}`));
    });
    child.stdout.on("data", (chunk) => {
      appendLog(chunk);
      pending += chunk.toString("utf8");
      const lines = pending.split(/\r?\n/);
      pending = lines.pop();
      for (const line of lines) {
        const match = /^\s*(?:export\s+)?(QSTASH_[A-Z_]+)=["']?([^"'\s]*)["']?\s*$/.exec(line);
        if (match) vars[match[1]] = match[2];
      }
      if (REQUIRED_VARS.every((name) => vars[name])) {
        clearTimeout(timer);
        resolve(vars);
      }
    });
  });
}

/**
 * A destination and callback server on 127.0.0.1:0 that records every request (method,
 * path with query, headers, raw body bytes) and answers as scripted per path.
 *
 * A script is a behaviour `{status, headers, body, delayMs}`, an array of behaviours (one per
 * call to that path, the last one repeating), or a function `(request, index) => behaviour`.
 * Unscripted paths answer 200 "ok".
 */
export async function startReceiver() {
  const requests = [];
  const scripts = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
      const parsed = new URL(req.url, "http://receiver.invalid");
      const record = {
        method: req.method,
        path: req.url,
        pathname: parsed.pathname,
        search: parsed.search,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
        receivedAt: Date.now(),
      };
      const index = requests.filter((r) => r.pathname === record.pathname).length;
      requests.push(record);
      const behaviour = pickBehaviour(scripts.get(record.pathname), record, index);
      if (behaviour.delayMs) await sleep(behaviour.delayMs);
      res.writeHead(behaviour.status ?? 200, behaviour.headers ?? { "Content-Type": "text/plain" });
      res.end(behaviour.body ?? "ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${server.address().port}`;

  const forPath = (pathname) => requests.filter((r) => r.pathname === pathname);
  return {
    baseUrl,
    url: (pathAndQuery) => baseUrl + pathAndQuery,
    script(pathname, behaviour) {
      scripts.set(pathname, behaviour);
    },
    requests: forPath,
    all: () => [...requests],
    /** Waits until at least `count` requests reached `pathname`; returns the first `count`. */
    async waitFor(pathname, count = 1, { timeoutMs = 10_000 } = {}) {
      await waitUntil(() => forPath(pathname).length >= count, {
        timeoutMs,
        what: `${count} request(s) to ${pathname} (got ${forPath(pathname).length})`,
      });
      return forPath(pathname).slice(0, count);
    },
    /** Polls for `quietMs` and fails as soon as `pathname` got more than `count` requests. */
    async expectNoMore(pathname, count, { quietMs = 600 } = {}) {
      const deadline = Date.now() + quietMs;
      while (Date.now() < deadline) {
        assert.ok(forPath(pathname).length <= count, `expected at most ${count} request(s) to ${pathname}, got ${forPath(pathname).length}`);
        await sleep(25);
      }
      assert.ok(forPath(pathname).length <= count, `expected at most ${count} request(s) to ${pathname}, got ${forPath(pathname).length}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function pickBehaviour(script, record, index) {
  if (script === undefined) return {};
  if (typeof script === "function") return script(record, index) ?? {};
  if (Array.isArray(script)) return script[Math.min(index, script.length - 1)] ?? {};
  return script;
}

/** Headers a publisher sends to qpost that must never reach a destination. */
const NEVER_FORWARDED = [
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
];

/**
 * Checks one delivered request the way a QStash destination would: the signature verifies with
 * the SDK's own Receiver over the exact raw body and URL, and the standard headers are present.
 */
export async function assertSignedDelivery(record, { verifier, url, messageId, retried = 0 }) {
  const signature = record.headers["upstash-signature"];
  assert.ok(signature, `no Upstash-Signature header on ${record.method} ${record.path}`);
  assert.equal(await verifier.verify({ signature, body: record.body.toString("utf8"), url }), true);
  assert.equal(record.headers["user-agent"], "Upstash-QStash");
  if (messageId !== undefined) assert.equal(record.headers["upstash-message-id"], messageId);
  else assert.match(record.headers["upstash-message-id"] ?? "", /\S/, "Upstash-Message-Id missing");
  assert.equal(record.headers["upstash-retried"], String(retried));
  for (const name of Object.keys(record.headers)) {
    assert.ok(!NEVER_FORWARDED.includes(name), `header ${name} leaked to the destination`);
    assert.ok(!name.startsWith("upstash-forward-"), `prefixed header ${name} reached the destination`);
    assert.ok(!name.startsWith("upstash-telemetry-"), `SDK telemetry header ${name} reached the destination`);
  }
}

/** Decodes a standard-base64 field of a callback body. */
export function fromBase64(value) {
  return Buffer.from(value, "base64");
}

/**
 * Asserts that an SDK call rejects with a QstashError of the given HTTP status. The SDK logs
 * every failed request to console.error; that expected line is kept out of the test output.
 */
export async function assertRejectsWithStatus(call, status) {
  const original = console.error;
  console.error = (...args) => {
    if (!String(args[0]).startsWith("[Upstash QStash]")) original(...args);
  };
  try {
    await assert.rejects(call, (error) => {
      assert.equal(error.status, status, `expected status ${status}, got ${error.status}: ${error.message}`);
      return true;
    });
  } finally {
    console.error = original;
  }
}

/**
 * Starts a qpost server and a recording receiver before a test file's tests and stops
 * both after them; `assign` receives `{ qpost, receiver, client, verifier }`.
 */
export function useQpost(assign) {
  let started;
  before(async () => {
    const receiver = await startReceiver();
    const qpost = await startQpost();
    started = { qpost, receiver, client: qpost.client(), verifier: qpost.receiver() };
    assign(started);
  });
  after(async () => {
    await started?.qpost.stop();
    await started?.receiver.close();
  });
}
