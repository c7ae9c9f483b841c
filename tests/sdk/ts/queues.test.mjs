// Queues (qstash-api.md §10) through the official TypeScript SDK: client.queue({queueName})
// upsert / get / list / delete / pause / resume / enqueue / enqueueJSON.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, assertSignedDelivery, useQpost, waitUntil } from "./harness.mjs";

let qpost, receiver, client, verifier;
useQpost((started) => ({ qpost, receiver, client, verifier } = started));

/** The most requests answered at once, each taking `delayMs` from its arrival. */
function maxConcurrency(records, delayMs) {
  return Math.max(
    0,
    ...records.map((r) => records.filter((o) => o.receivedAt <= r.receivedAt && r.receivedAt < o.receivedAt + delayMs).length),
  );
}

const bodies = (records) => records.map((r) => r.body.toString("utf8"));

test("upsert, get, list, pause, resume and delete a queue", async () => {
  const queue = client.queue({ queueName: "sdk-ts-orders" });
  await queue.upsert({ parallelism: 2 });
  const created = await queue.get();
  assert.equal(created.name, "sdk-ts-orders");
  assert.equal(created.parallelism, 2);
  assert.equal(created.paused, false);
  assert.equal(created.lag, 0);
  assert.equal(typeof created.createdAt, "number");
  assert.ok(created.updatedAt >= created.createdAt);

  await queue.pause();
  assert.equal((await queue.get()).paused, true);
  await queue.resume();
  assert.equal((await queue.get()).paused, false);
  await queue.upsert({ parallelism: 4, paused: true });
  const updated = await queue.get();
  assert.equal(updated.parallelism, 4);
  assert.equal(updated.paused, true);
  assert.equal(updated.createdAt, created.createdAt);

  const listed = await client.queue().list();
  assert.ok(listed.some((q) => q.name === "sdk-ts-orders" && q.parallelism === 4));

  await queue.delete();
  await queue.delete();
  await assertRejectsWithStatus(queue.get(), 404);
});

test("enqueue creates the queue and delivers a signed message in order", async () => {
  receiver.script("/q/ts/fifo", { delayMs: 100 });
  const destination = receiver.url("/q/ts/fifo");
  const queue = client.queue({ queueName: "sdk-ts-fifo" });
  const ids = [];
  for (const n of ["0", "1", "2"]) {
    const { messageId } = await queue.enqueue({ url: destination, body: n });
    ids.push(messageId);
  }
  assert.equal((await queue.get()).parallelism, 1, "auto-created with parallelism 1");

  const delivered = await receiver.waitFor("/q/ts/fifo", 3);
  assert.deepEqual(bodies(delivered), ["0", "1", "2"]);
  assert.equal(maxConcurrency(delivered, 100), 1);
  await assertSignedDelivery(delivered[0], { verifier, url: destination, messageId: ids[0] });
});

test("enqueueJSON delivers JSON and a paused queue holds it until resumed", async () => {
  const queue = client.queue({ queueName: "sdk-ts-held" });
  await queue.upsert({ paused: true });
  await queue.enqueueJSON({ url: receiver.url("/q/ts/held"), body: { n: 1 } });
  await queue.enqueueJSON({ url: receiver.url("/q/ts/held"), body: { n: 2 } });
  await receiver.expectNoMore("/q/ts/held", 0, { quietMs: 500 });
  assert.equal((await queue.get()).lag, 2);

  await queue.resume();
  const delivered = await receiver.waitFor("/q/ts/held", 2);
  assert.deepEqual(delivered.map((r) => JSON.parse(r.body.toString("utf8"))), [{ n: 1 }, { n: 2 }]);
  assert.equal(delivered[0].headers["content-type"], "application/json");
  await waitUntil(async () => (await queue.get()).lag === 0, { what: "lag to drop to 0" });
});

test("a queue with parallelism 3 has at most 3 deliveries in flight", async () => {
  receiver.script("/q/ts/wide", { delayMs: 600 });
  const queue = client.queue({ queueName: "sdk-ts-wide" });
  await queue.upsert({ parallelism: 3 });
  for (let n = 0; n < 9; n++) {
    await queue.enqueue({ url: receiver.url("/q/ts/wide"), body: String(n) });
  }
  const delivered = await receiver.waitFor("/q/ts/wide", 9);
  assert.equal(maxConcurrency(delivered, 600), 3);
});

test("bad queue settings are refused", async () => {
  await assertRejectsWithStatus(client.queue({ queueName: "sdk-ts-too-wide" }).upsert({ parallelism: 1000 }), 412);
  await assertRejectsWithStatus(client.queue({ queueName: "bad name" }).upsert({ parallelism: 1 }), 400);
});
