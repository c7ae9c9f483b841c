// Publishing and message management through the official TypeScript SDK:
// Client.publish, Client.publishJSON, messages.get / cancel / delete / deleteMany / deleteAll.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, assertSignedDelivery, useQpost } from "./harness.mjs";

let qpost, receiver, client, verifier;
useQpost((started) => ({ qpost, receiver, client, verifier } = started));

test("publish delivers the raw body, method, forwarded headers and destination query", async () => {
  const destination = receiver.url("/publish/raw?source=sdk&n=1");
  const body = "raw body: héllo ✓ \u0000 end";
  const published = await client.publish({
    url: destination,
    body,
    method: "PUT",
    headers: { "Content-Type": "text/plain; charset=utf-8", "X-Custom-Header": "custom value" },
  });
  assert.match(published.messageId, /\S/);
  assert.equal(published.url, destination);
  assert.notEqual(published.deduplicated, true);

  const [delivery] = await receiver.waitFor("/publish/raw");
  assert.equal(delivery.method, "PUT");
  assert.equal(delivery.path, "/publish/raw?source=sdk&n=1");
  assert.deepEqual(delivery.body, Buffer.from(body, "utf8"));
  assert.equal(delivery.headers["content-type"], "text/plain; charset=utf-8");
  assert.equal(delivery.headers["x-custom-header"], "custom value");
  await assertSignedDelivery(delivery, { verifier, url: destination, messageId: published.messageId });
});

test("publishJSON delivers the serialised body as application/json", async () => {
  const destination = receiver.url("/publish/json");
  const payload = { hello: "world", n: 42, nested: { list: [1, 2, 3] } };
  const published = await client.publishJSON({ url: destination, body: payload, headers: { "X-Trace": "t-1" } });

  const [delivery] = await receiver.waitFor("/publish/json");
  assert.equal(delivery.method, "POST");
  assert.equal(delivery.headers["content-type"], "application/json");
  assert.equal(delivery.headers["x-trace"], "t-1");
  assert.deepEqual(JSON.parse(delivery.body.toString("utf8")), payload);
  await assertSignedDelivery(delivery, { verifier, url: destination, messageId: published.messageId });
});

test("publish with a delay delivers only after the delay", async () => {
  const destination = receiver.url("/publish/delayed");
  const publishedAt = Date.now();
  const published = await client.publish({ url: destination, body: "later", delay: 2 });

  const [delivery] = await receiver.waitFor("/publish/delayed", 1, { timeoutMs: 15_000 });
  assert.ok(
    delivery.receivedAt - publishedAt >= 1_900,
    `delivered ${delivery.receivedAt - publishedAt} ms after publish, expected >= 2 s`,
  );
  await assertSignedDelivery(delivery, { verifier, url: destination, messageId: published.messageId });
});

test("messages.get returns a delayed message with its stored fields", async () => {
  const destination = receiver.url("/messages/get");
  const before = Date.now();
  const published = await client.publish({
    url: destination,
    body: "pending body",
    method: "PATCH",
    delay: "1h",
    retries: 2,
    retryDelay: "1000 * (1 + retried)",
    headers: { "Content-Type": "text/plain", "test-header": "test-value" },
  });
  const afterPublish = Date.now();

  const message = await client.messages.get(published.messageId);
  assert.equal(message.messageId, published.messageId);
  assert.equal(message.url, destination);
  assert.equal(message.method, "PATCH");
  assert.equal(message.body, "pending body");
  assert.deepEqual(message.header?.["Test-Header"], ["test-value"]);
  assert.deepEqual(message.header?.["Content-Type"], ["text/plain"]);
  assert.equal(message.maxRetries, 2);
  assert.equal(message.retryDelayExpression, "1000 * (1 + retried)");
  assert.equal(typeof message.createdAt, "number");
  assert.ok(message.createdAt >= before - 1_000 && message.createdAt <= afterPublish + 1_000, `createdAt ${message.createdAt}`);
  assert.equal(typeof message.notBefore, "number");
  const delayMs = message.notBefore - message.createdAt;
  assert.ok(Math.abs(delayMs - 3_600_000) <= 2_000, `notBefore - createdAt = ${delayMs} ms, expected 1h`);

  await client.messages.delete(published.messageId);
});

test("messages.get reports notBefore in ms for a publish with notBefore in seconds", async () => {
  const notBefore = Math.floor(Date.now() / 1000) + 7_200;
  const published = await client.publish({ url: receiver.url("/messages/not-before"), body: "x", notBefore });

  const message = await client.messages.get(published.messageId);
  assert.equal(message.notBefore, notBefore * 1000);

  await client.messages.delete(published.messageId);
});

test("messages.delete cancels a pending message, then messages.get rejects", async () => {
  const published = await client.publish({ url: receiver.url("/messages/delete"), body: "never", delay: "1h" });
  await client.messages.get(published.messageId);

  await client.messages.delete(published.messageId);
  await assertRejectsWithStatus(() => client.messages.get(published.messageId), 404);
});

test("messages.cancel answers {cancelled: 1} and the message is gone", async () => {
  const published = await client.publish({ url: receiver.url("/messages/cancel"), body: "never", delay: "1h" });

  const result = await client.messages.cancel(published.messageId);
  assert.equal(result.cancelled, 1);
  await assertRejectsWithStatus(() => client.messages.get(published.messageId), 404);
});

test("messages.deleteMany cancels the given messages and counts them", async () => {
  const destination = receiver.url("/messages/delete-many");
  const first = await client.publish({ url: destination, body: "a", delay: "1h" });
  const second = await client.publish({ url: destination, body: "b", delay: "1h" });
  const kept = await client.publish({ url: destination, body: "c", delay: "1h" });

  const cancelled = await client.messages.deleteMany([first.messageId, second.messageId]);
  assert.equal(cancelled, 2);
  await assertRejectsWithStatus(() => client.messages.get(first.messageId), 404);
  await assertRejectsWithStatus(() => client.messages.get(second.messageId), 404);
  assert.equal((await client.messages.get(kept.messageId)).messageId, kept.messageId);

  await client.messages.delete(kept.messageId);
});

test("messages.deleteAll cancels every pending message", async () => {
  const destination = receiver.url("/messages/delete-all");
  const first = await client.publish({ url: destination, body: "a", delay: "1h" });
  const second = await client.publish({ url: destination, body: "b", delay: "1h" });

  const cancelled = await client.messages.deleteAll();
  assert.ok(cancelled >= 2, `deleteAll cancelled ${cancelled}, expected >= 2`);
  await assertRejectsWithStatus(() => client.messages.get(first.messageId), 404);
  await assertRejectsWithStatus(() => client.messages.get(second.messageId), 404);
});

test("deduplicationId: the second publish returns the first messageId and nothing is sent twice", async () => {
  const destination = receiver.url("/dedup/id");
  const deduplicationId = `dedup-${Date.now()}`;
  const first = await client.publish({ url: destination, body: "once", deduplicationId });
  const second = await client.publish({ url: destination, body: "once", deduplicationId });
  assert.equal(second.messageId, first.messageId);
  assert.equal(second.deduplicated, true);
  assert.notEqual(first.deduplicated, true);

  const [delivery] = await receiver.waitFor("/dedup/id");
  await assertSignedDelivery(delivery, { verifier, url: destination, messageId: first.messageId });
  // A later message to another path has been delivered, so a duplicate would have been too.
  await client.publish({ url: receiver.url("/dedup/marker"), body: "marker" });
  await receiver.waitFor("/dedup/marker");
  await receiver.expectNoMore("/dedup/id", 1);
});
