// Logs through the official TypeScript SDK: client.logs (filters, messageIds, cursor paging)
// and its deprecated alias client.events, parsing entries of every state including CANCELED.

import assert from "node:assert/strict";
import { test } from "node:test";

import { useQpost, waitUntil } from "./harness.mjs";

let qpost, receiver, client;
useQpost((started) => ({ qpost, receiver, client } = started));

/** The states logged for `messageId`, oldest first. */
async function statesOf(messageId) {
  const { logs } = await client.logs({ filter: { messageId } });
  return logs.map((log) => log.state).reverse();
}

/** Waits until the states of `messageId` are exactly `expected` (oldest first). */
async function waitForStates(messageId, expected) {
  let seen = [];
  await waitUntil(
    async () => {
      seen = await statesOf(messageId);
      return seen.join() === expected.join();
    },
    { what: `states ${expected.join()} of ${messageId} (last saw ${seen.join()})` },
  );
}

test("a message failing once then delivered logs every transition, newest first", async () => {
  const pathname = "/logs/flaky";
  receiver.script(pathname, [{ status: 500, body: "not yet" }, { status: 200 }]);
  const destination = receiver.url(pathname);
  const { messageId } = await client.publish({ url: destination, body: "x", retries: 2, retryDelay: "100", label: "flaky" });

  const expected = ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "DELIVERED"];
  await waitForStates(messageId, expected);
  const response = await client.logs({ filter: { messageId } });
  assert.deepEqual(response.events, response.logs);
  assert.equal(response.cursor, undefined, "no cursor on the only page");
  const [delivered, , retry, error] = response.logs;
  assert.equal(delivered.state, "DELIVERED");
  assert.equal(delivered.messageId, messageId);
  assert.equal(delivered.url, destination);
  assert.equal(typeof delivered.time, "number");
  assert.equal(delivered.label, "flaky");
  assert.deepEqual(delivered.labels, ["flaky"]);
  assert.equal(typeof retry.nextDeliveryTime, "number");
  assert.equal(error.responseStatus, 500);
  assert.equal(Buffer.from(error.responseBody, "base64").toString(), "not yet");
  const created = response.logs.at(-1);
  assert.equal(Buffer.from(created.body, "base64").toString(), "x");
  const times = response.logs.map((log) => log.time);
  assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");
});

test("a message without retries left is logged FAILED after its ERROR", async () => {
  const pathname = "/logs/down";
  receiver.script(pathname, { status: 500 });
  const { messageId } = await client.publish({ url: receiver.url(pathname), body: "x", retries: 0 });
  await waitForStates(messageId, ["CREATED", "ACTIVE", "ERROR", "FAILED"]);
  const { logs } = await client.logs({ filter: { messageId, state: "FAILED" } });
  assert.deepEqual(logs.map((log) => log.state), ["FAILED"]);
});

test("a cancelled delayed message is logged CANCEL_REQUESTED then CANCELED", async () => {
  const { messageId } = await client.publish({ url: receiver.url("/logs/later"), body: "x", delay: 3600 });
  await client.messages.delete(messageId);
  await waitForStates(messageId, ["CREATED", "CANCEL_REQUESTED", "CANCELED"]);
  const { logs } = await client.logs({ filter: { messageId, state: "CANCELED" } });
  assert.equal(logs.length, 1);
  assert.equal(logs[0].state, "CANCELED");
  assert.equal(logs[0].messageId, messageId);
});

test("messageIds, label, url, urlGroup and date filters narrow the logs", async () => {
  const label = "ts-filters";
  const first = await client.publish({ url: receiver.url("/logs/f1"), body: "1", delay: 3600, label });
  const second = await client.publish({ url: receiver.url("/logs/f2"), body: "2", delay: 3600, label });
  await client.urlGroups.addEndpoints({ name: "ts-logs-group", endpoints: [{ url: receiver.url("/logs/group"), name: "ep" }] });
  const [grouped] = await client.publish({ urlGroup: "ts-logs-group", body: "g", delay: 3600 });

  const byIds = await client.logs({ messageIds: [first.messageId, second.messageId] });
  assert.deepEqual(new Set(byIds.logs.map((log) => log.messageId)), new Set([first.messageId, second.messageId]));
  const byLabel = await client.logs({ filter: { label } });
  assert.equal(byLabel.logs.length, 2);
  const byUrl = await client.logs({ filter: { url: receiver.url("/logs/f2") } });
  assert.deepEqual(byUrl.logs.map((log) => log.messageId), [second.messageId]);
  const byGroup = await client.logs({ filter: { urlGroup: "ts-logs-group" } });
  assert.deepEqual(byGroup.logs.map((log) => log.messageId), [grouped.messageId]);
  assert.equal(byGroup.logs[0].urlGroup, "ts-logs-group");
  assert.equal(byGroup.logs[0].endpointName, "ep");

  const time = byUrl.logs[0].time;
  const fromTime = await client.logs({ filter: { label, fromDate: time } });
  assert.ok(fromTime.logs.every((log) => log.time >= time));
  assert.ok(fromTime.logs.some((log) => log.messageId === second.messageId));
  const untilBefore = await client.logs({ filter: { label, toDate: new Date(time - 1) } });
  assert.ok(untilBefore.logs.every((log) => log.messageId !== second.messageId));
});

test("paging with a small count and the returned cursor visits each entry once", async () => {
  const label = "ts-paging";
  for (let i = 0; i < 5; i++) {
    await client.publish({ url: receiver.url("/logs/page"), body: `${i}`, delay: 3600, label });
  }
  const whole = await client.logs({ filter: { label } });
  assert.equal(whole.logs.length, 5);

  const seen = [];
  let cursor;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10, "paging does not end");
    const page = await client.logs({ count: 2, cursor, filter: { label } });
    assert.ok(page.logs.length <= 2);
    seen.push(...page.logs.map((log) => log.messageId));
    if (!page.cursor) break;
    assert.equal(typeof page.cursor, "string");
    cursor = page.cursor;
  }
  assert.deepEqual(seen, whole.logs.map((log) => log.messageId));
});

test("the deprecated client.events answers like client.logs", async () => {
  const { messageId } = await client.publish({ url: receiver.url("/logs/alias"), body: "x", delay: 3600 });
  await waitForStates(messageId, ["CREATED"]);
  const events = await client.events({ filter: { messageId } });
  const logs = await client.logs({ filter: { messageId } });
  assert.deepEqual(events, logs);
  assert.equal(events.events[0].state, "CREATED");
});
