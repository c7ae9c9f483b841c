// Flow control (qstash-api.md §12) through the official TypeScript SDK: publish with
// `flowControl`, and client.flowControl get / pause / resume / pin / unpin / resetRate /
// getGlobalParallelism.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, useQpost, waitUntil } from "./harness.mjs";

let qpost, receiver, client;
useQpost((started) => ({ qpost, receiver, client } = started));

/** The most requests answered at once, each taking `delayMs` from its arrival. */
function maxConcurrency(records, delayMs) {
  return Math.max(
    0,
    ...records.map((r) => records.filter((o) => o.receivedAt <= r.receivedAt && r.receivedAt < o.receivedAt + delayMs).length),
  );
}

test("publish with flowControl stores the key's limits and keeps to its parallelism", async () => {
  receiver.script("/fc/ts/par", { delayMs: 600 });
  const flowControl = { key: "sdk-ts-par", parallelism: 2, rate: 20, period: "1m" };
  for (let n = 0; n < 6; n++) {
    await client.publish({ url: receiver.url("/fc/ts/par"), body: String(n), flowControl });
  }
  const delivered = await receiver.waitFor("/fc/ts/par", 6);
  assert.equal(maxConcurrency(delivered, 600), 2);

  const info = await waitUntil(async () => {
    const i = await client.flowControl.get("sdk-ts-par");
    return i.parallelismCount === 0 && i;
  }, { what: "no attempt in flight" });
  assert.equal(info.flowControlKey, "sdk-ts-par");
  assert.equal(info.parallelismMax, 2);
  assert.equal(info.rateMax, 20);
  assert.equal(info.ratePeriod, 60);
  assert.equal(info.rateCount, 6);
  assert.equal(info.waitListSize, 0);
  assert.equal(info.isPaused, false);
});

test("pause holds a key's messages and resume releases them", async () => {
  const flowControl = { key: "sdk-ts-pause", parallelism: 1 };
  await client.publish({ url: receiver.url("/fc/ts/pause"), body: "0", flowControl });
  await receiver.waitFor("/fc/ts/pause", 1);
  await client.flowControl.pause("sdk-ts-pause");
  assert.equal((await client.flowControl.get("sdk-ts-pause")).isPaused, true);
  await client.publish({ url: receiver.url("/fc/ts/pause"), body: "1", flowControl });
  await receiver.expectNoMore("/fc/ts/pause", 1, { quietMs: 500 });
  assert.equal((await client.flowControl.get("sdk-ts-pause")).waitListSize, 1);

  await client.flowControl.resume("sdk-ts-pause");
  await receiver.waitFor("/fc/ts/pause", 2);
});

test("pin overrides the messages' limits, unpin and resetRate are accepted", async () => {
  receiver.script("/fc/ts/pin", { delayMs: 600 });
  const flowControl = { key: "sdk-ts-pin", parallelism: 1 };
  await client.publish({ url: receiver.url("/fc/ts/pin"), body: "first", flowControl });
  await receiver.waitFor("/fc/ts/pin", 1);

  await client.flowControl.pin("sdk-ts-pin", { parallelism: 3, rate: 100, period: 60 });
  const pinned = await client.flowControl.get("sdk-ts-pin");
  assert.equal(pinned.isPinnedParallelism, true);
  assert.equal(pinned.isPinnedRate, true);
  assert.equal(pinned.parallelismMax, 3);
  assert.equal(pinned.rateMax, 100);
  assert.equal(pinned.ratePeriod, 60);
  for (let n = 0; n < 6; n++) {
    await client.publish({ url: receiver.url("/fc/ts/pin"), body: String(n), flowControl });
  }
  const delivered = await receiver.waitFor("/fc/ts/pin", 7);
  assert.equal(maxConcurrency(delivered.slice(1), 600), 3);

  await client.flowControl.unpin("sdk-ts-pin", { parallelism: true, rate: true });
  await client.flowControl.resetRate("sdk-ts-pin");
  const unpinned = await client.flowControl.get("sdk-ts-pin");
  assert.equal(unpinned.isPinnedParallelism, false);
  assert.equal(unpinned.isPinnedRate, false);
  assert.equal(unpinned.parallelismMax, 1);
  assert.equal(unpinned.rateCount, 0);
});

test("an unknown key is a 404 and global parallelism reports the worker's", async () => {
  await assertRejectsWithStatus(client.flowControl.get("sdk-ts-never-used"), 404);
  await assertRejectsWithStatus(client.flowControl.pause("sdk-ts-never-used"), 404);
  const global = await client.flowControl.getGlobalParallelism();
  assert.equal(global.parallelismMax, 256);
  assert.equal(typeof global.parallelismCount, "number");
});
