// Retries and the dead-letter queue through the official TypeScript SDK:
// dlq.listMessages (filter, dlqIds, cursor paging), dlq.delete, dlq.deleteMany, dlq.retry.
// This SDK version has no dlq.get.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, assertSignedDelivery, useQpost, waitUntil } from "./harness.mjs";

let qpost, receiver, client, verifier;
useQpost((started) => ({ qpost, receiver, client, verifier } = started));

/** Waits until the DLQ holds exactly `count` entries for `destination`; returns them. */
async function dlqEntriesFor(destination, count) {
  let messages = [];
  await waitUntil(
    async () => {
      ({ messages } = await client.dlq.listMessages({ filter: { url: destination } }));
      return messages.length === count;
    },
    { what: `${count} DLQ entr(ies) for ${destination} (last saw ${messages.length})` },
  );
  return messages;
}

/** Publishes `count` messages with no retries to a path answering 500 and waits for their DLQ entries. */
async function failIntoDlq(pathname, count = 1) {
  receiver.script(pathname, { status: 500, body: "boom" });
  const destination = receiver.url(pathname);
  const published = [];
  for (let i = 0; i < count; i++) {
    published.push(await client.publish({ url: destination, body: `body ${i}`, retries: 0 }));
  }
  const entries = await dlqEntriesFor(destination, count);
  return { destination, published, entries };
}

test("a message failing with retries 0 lands in the DLQ with the last response", async () => {
  const pathname = "/dlq/fail";
  receiver.script(pathname, { status: 500, headers: { "X-Reply": "r1" }, body: "boom" });
  const destination = receiver.url(pathname);
  const published = await client.publish({
    url: destination,
    body: "failing body",
    retries: 0,
    headers: { "Content-Type": "text/plain", "X-Custom": "c1" },
  });

  const [delivery] = await receiver.waitFor(pathname);
  await assertSignedDelivery(delivery, { verifier, url: destination, messageId: published.messageId });

  const [entry] = await dlqEntriesFor(destination, 1);
  assert.match(entry.dlqId, /\S/);
  assert.equal(entry.messageId, published.messageId);
  assert.equal(entry.url, destination);
  assert.equal(entry.method, "POST");
  assert.equal(entry.body, "failing body");
  assert.deepEqual(entry.header?.["X-Custom"], ["c1"]);
  assert.equal(entry.maxRetries, 0);
  assert.equal(typeof entry.createdAt, "number");
  assert.equal(entry.responseStatus, 500);
  assert.equal(entry.responseBody, "boom");
  assert.deepEqual(entry.responseHeader?.["X-Reply"], ["r1"]);
});

test("retries follow Upstash-Retry-Delay with Upstash-Retried counting up, then the DLQ", async () => {
  const pathname = "/dlq/retried";
  receiver.script(pathname, { status: 500, body: "still failing" });
  const destination = receiver.url(pathname);
  const published = await client.publish({ url: destination, body: "retry me", retries: 1, retryDelay: "100" });

  const [first, second] = await receiver.waitFor(pathname, 2);
  await assertSignedDelivery(first, { verifier, url: destination, messageId: published.messageId, retried: 0 });
  await assertSignedDelivery(second, { verifier, url: destination, messageId: published.messageId, retried: 1 });
  assert.ok(second.receivedAt - first.receivedAt >= 80, `retry came after ${second.receivedAt - first.receivedAt} ms`);

  const [entry] = await dlqEntriesFor(destination, 1);
  assert.equal(entry.messageId, published.messageId);
  assert.equal(entry.maxRetries, 1);
  assert.equal(entry.responseStatus, 500);
  await receiver.expectNoMore(pathname, 2);
});

test("489 with Upstash-NonRetryable-Error fails at once despite retries left", async () => {
  const pathname = "/dlq/non-retryable";
  receiver.script(pathname, { status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: "no" });
  const destination = receiver.url(pathname);
  const published = await client.publish({ url: destination, body: "x", retries: 3, retryDelay: "100" });

  const [entry] = await dlqEntriesFor(destination, 1);
  assert.equal(entry.messageId, published.messageId);
  assert.equal(entry.responseStatus, 489);
  await receiver.expectNoMore(pathname, 1);
});

test("dlq.listMessages pages with count 1 and a cursor", async () => {
  const { destination, published } = await failIntoDlq("/dlq/paged", 3);

  const seen = [];
  let cursor;
  let pages = 0;
  do {
    const page = await client.dlq.listMessages({ filter: { url: destination }, count: 1, cursor });
    assert.ok(page.messages.length <= 1, `page of ${page.messages.length} with count 1`);
    if (pages < 3) assert.equal(page.messages.length, 1, `page ${pages} is empty`);
    if (pages < 2) assert.ok(page.cursor, `page ${pages} has no cursor`);
    seen.push(...page.messages.map((m) => m.messageId));
    cursor = page.cursor || undefined;
    pages += 1;
  } while (cursor && pages < 10);

  assert.equal(cursor, undefined, "paging did not end");
  assert.deepEqual([...seen].sort(), published.map((p) => p.messageId).sort());
});

test("dlq.listMessages selects entries by dlqIds", async () => {
  const { entries } = await failIntoDlq("/dlq/by-id", 2);

  const { messages } = await client.dlq.listMessages({ dlqIds: [entries[0].dlqId] });
  assert.deepEqual(messages.map((m) => m.dlqId), [entries[0].dlqId]);
});

test("dlq.delete removes one entry and a second delete rejects", async () => {
  const { destination, entries } = await failIntoDlq("/dlq/delete", 1);

  const result = await client.dlq.delete(entries[0].dlqId);
  assert.equal(result.deleted, 1);
  await assertRejectsWithStatus(() => client.dlq.delete(entries[0].dlqId), 404);
  assert.equal((await client.dlq.listMessages({ filter: { url: destination } })).messages.length, 0);
});

test("dlq.deleteMany removes the given entries", async () => {
  const { destination, entries } = await failIntoDlq("/dlq/delete-many", 3);

  const result = await client.dlq.deleteMany({ dlqIds: [entries[0].dlqId, entries[1].dlqId] });
  assert.equal(result.deleted, 2);
  const { messages } = await client.dlq.listMessages({ filter: { url: destination } });
  assert.deepEqual(messages.map((m) => m.dlqId), [entries[2].dlqId]);
});

test("dlq.retry republishes the entry as a new message and removes it from the DLQ", async () => {
  const pathname = "/dlq/retry";
  receiver.script(pathname, [{ status: 500 }, { status: 200 }]);
  const destination = receiver.url(pathname);
  const published = await client.publish({ url: destination, body: "second chance", retries: 0 });
  const [entry] = await dlqEntriesFor(destination, 1);

  const result = await client.dlq.retry(entry.dlqId);
  assert.equal(result.responses.length, 1);
  const retriedId = result.responses[0].messageId;
  assert.match(retriedId, /\S/);
  assert.notEqual(retriedId, published.messageId);

  const [, redelivery] = await receiver.waitFor(pathname, 2);
  assert.equal(redelivery.body.toString("utf8"), "second chance");
  await assertSignedDelivery(redelivery, { verifier, url: destination, messageId: retriedId });
  await dlqEntriesFor(destination, 0);
});
