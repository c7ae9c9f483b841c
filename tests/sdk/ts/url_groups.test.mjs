// URL groups through the official TypeScript SDK: urlGroups.addEndpoints / removeEndpoints /
// get / list / delete, and publish / publishJSON to a `urlGroup` fanning out per endpoint.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, assertSignedDelivery, useQpost, waitUntil } from "./harness.mjs";

let qpost, receiver, client, verifier;
useQpost((started) => ({ qpost, receiver, client, verifier } = started));

const sortedUrls = (group) => group.endpoints.map((e) => e.url).sort();

test("urlGroups add, get, list, remove endpoints and delete a group", async () => {
  const before = Date.now();
  await client.urlGroups.addEndpoints({
    name: "ts-lifecycle",
    endpoints: [{ url: "https://a.example.com/hook", name: "a" }, { url: "https://b.example.com/hook" }],
  });

  const group = await client.urlGroups.get("ts-lifecycle");
  assert.equal(group.name, "ts-lifecycle");
  assert.equal(typeof group.createdAt, "number");
  assert.ok(group.createdAt >= before, `createdAt ${group.createdAt} before ${before}`);
  assert.equal(typeof group.updatedAt, "number");
  assert.deepEqual(sortedUrls(group), ["https://a.example.com/hook", "https://b.example.com/hook"]);
  assert.equal(group.endpoints.find((e) => e.url === "https://a.example.com/hook").name, "a");

  const listed = await client.urlGroups.list();
  assert.ok(Array.isArray(listed));
  assert.ok(listed.some((g) => g.name === "ts-lifecycle"), JSON.stringify(listed));

  await client.urlGroups.removeEndpoints({ name: "ts-lifecycle", endpoints: [{ name: "a" }] });
  assert.deepEqual(sortedUrls(await client.urlGroups.get("ts-lifecycle")), ["https://b.example.com/hook"]);

  await client.urlGroups.delete("ts-lifecycle");
  await assertRejectsWithStatus(client.urlGroups.get("ts-lifecycle"), 404);
  assert.ok(!(await client.urlGroups.list()).some((g) => g.name === "ts-lifecycle"));
});

test("removing the last endpoint deletes the group; bad input is refused", async () => {
  await client.urlGroups.addEndpoints({ name: "ts-last", endpoints: [{ url: "https://only.example.com" }] });
  await client.urlGroups.removeEndpoints({ name: "ts-last", endpoints: [{ url: "https://only.example.com" }] });
  await assertRejectsWithStatus(client.urlGroups.get("ts-last"), 404);

  await assertRejectsWithStatus(
    client.urlGroups.addEndpoints({ name: "ts-bad", endpoints: [{ url: "not-a-url" }] }),
    400,
  );
  await assertRejectsWithStatus(
    client.urlGroups.addEndpoints({ name: "bad name", endpoints: [{ url: "https://x.example.com" }] }),
    400,
  );
  await assertRejectsWithStatus(
    client.urlGroups.removeEndpoints({ name: "ts-missing", endpoints: [{ url: "https://x.example.com" }] }),
    404,
  );
  await assertRejectsWithStatus(client.urlGroups.get("ts-bad"), 404);
});

test("publish to a urlGroup answers an array and delivers a signed message to every endpoint", async () => {
  const urls = [receiver.url("/ug/one"), receiver.url("/ug/two")];
  await client.urlGroups.addEndpoints({
    name: "ts-fanout",
    endpoints: [{ url: urls[0], name: "one" }, { url: urls[1] }],
  });

  const published = await client.publish({ urlGroup: "ts-fanout", body: "to everyone", headers: { "X-Tag": "t" } });
  assert.ok(Array.isArray(published), `a group publish answers an array: ${JSON.stringify(published)}`);
  assert.deepEqual(published.map((p) => p.url).sort(), [...urls].sort());
  assert.equal(new Set(published.map((p) => p.messageId)).size, 2, "one message per endpoint");

  for (const url of urls) {
    const pathname = new URL(url).pathname;
    const [delivery] = await receiver.waitFor(pathname);
    assert.equal(delivery.body.toString("utf8"), "to everyone");
    assert.equal(delivery.headers["upstash-topic-name"], "ts-fanout");
    assert.equal(delivery.headers["x-tag"], "t");
    const messageId = published.find((p) => p.url === url).messageId;
    await assertSignedDelivery(delivery, { verifier, url, messageId });
  }
});

test("one failing endpoint dead-letters alone with its urlGroup while the others are delivered", async () => {
  receiver.script("/ug/broken", { status: 500, body: "down" });
  const [ok, broken] = [receiver.url("/ug/fine"), receiver.url("/ug/broken")];
  await client.urlGroups.addEndpoints({
    name: "ts-partial",
    endpoints: [{ url: ok }, { url: broken, name: "broken" }],
  });

  const published = await client.publishJSON({ urlGroup: "ts-partial", body: { n: 1 }, retries: 0 });
  const brokenId = published.find((p) => p.url === broken).messageId;
  await receiver.waitFor("/ug/fine");

  let messages = [];
  await waitUntil(
    async () => {
      ({ messages } = await client.dlq.listMessages({ filter: { urlGroup: "ts-partial" } }));
      return messages.length === 1;
    },
    { what: "the DLQ entry of the failing endpoint" },
  );
  const [entry] = messages;
  assert.equal(entry.messageId, brokenId);
  assert.equal(entry.url, broken);
  assert.equal(entry.urlGroup, "ts-partial");
  assert.equal(entry.endpointName, "broken");
  assert.equal(entry.responseStatus, 500);
  await receiver.expectNoMore("/ug/fine", 1);
  await receiver.expectNoMore("/ug/broken", 1, { quietMs: 0 });
});
