// Batch publishing through the official TypeScript SDK: client.batch and client.batchJSON with
// URL, URL-group and queue entries, answered with an array aligned with the request.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, assertSignedDelivery, useQpost } from "./harness.mjs";

let qpost, receiver, client, verifier;
useQpost((started) => ({ qpost, receiver, client, verifier } = started));

test("batch publishes to a URL, a urlGroup and a queue, answering in request order", async () => {
  const groupUrls = [receiver.url("/batch/g1"), receiver.url("/batch/g2")];
  await client.urlGroups.addEndpoints({ name: "ts-batch-group", endpoints: groupUrls.map((url) => ({ url })) });
  const single = receiver.url("/batch/single?x=1");
  const queued = receiver.url("/batch/queued");

  const responses = await client.batch([
    { url: single, body: "first", method: "PUT", headers: { "X-Custom": "c" } },
    { urlGroup: "ts-batch-group", body: "for the group" },
    { url: queued, body: "through the queue", queueName: "ts-batch-queue" },
  ]);
  assert.equal(responses.length, 3, JSON.stringify(responses));
  assert.match(responses[0].messageId, /\S/);
  assert.ok(Array.isArray(responses[1]), `the group entry answers an array: ${JSON.stringify(responses[1])}`);
  assert.deepEqual(responses[1].map((r) => r.url).sort(), [...groupUrls].sort());
  assert.match(responses[2].messageId, /\S/);

  const [delivery] = await receiver.waitFor("/batch/single");
  assert.equal(delivery.method, "PUT");
  assert.equal(delivery.path, "/batch/single?x=1");
  assert.equal(delivery.body.toString("utf8"), "first");
  assert.equal(delivery.headers["x-custom"], "c");
  await assertSignedDelivery(delivery, { verifier, url: single, messageId: responses[0].messageId });

  for (const url of groupUrls) {
    const [got] = await receiver.waitFor(new URL(url).pathname);
    assert.equal(got.body.toString("utf8"), "for the group");
    assert.equal(got.headers["upstash-topic-name"], "ts-batch-group");
  }
  const [viaQueue] = await receiver.waitFor("/batch/queued");
  assert.equal(viaQueue.body.toString("utf8"), "through the queue");
  await assertSignedDelivery(viaQueue, { verifier, url: queued, messageId: responses[2].messageId });
});

test("batchJSON serialises each body and sends it as application/json", async () => {
  const payloads = [{ n: 1 }, { n: 2, list: ["a"] }];
  const urls = [receiver.url("/batch/json1"), receiver.url("/batch/json2")];
  const responses = await client.batchJSON(payloads.map((body, i) => ({ url: urls[i], body, retries: 1 })));
  assert.equal(responses.length, 2);

  for (const [i, url] of urls.entries()) {
    const [got] = await receiver.waitFor(new URL(url).pathname);
    assert.equal(got.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(got.body.toString("utf8")), payloads[i]);
    await assertSignedDelivery(got, { verifier, url, messageId: responses[i].messageId });
  }
});

test("a bad entry gets an error element while the other entries are created", async () => {
  const good = receiver.url("/batch/good");
  const responses = await client.batch([
    { url: "ftp://not-http.example.com", body: "bad" },
    { url: good, body: "good" },
  ]);
  assert.equal(responses.length, 2);
  assert.match(responses[0].error, /\S/, JSON.stringify(responses[0]));
  assert.match(responses[1].messageId, /\S/);
  await receiver.waitFor("/batch/good");
});

test("a batch to an unknown urlGroup answers an error element, not a failed request", async () => {
  const responses = await client.batch([{ urlGroup: "ts-batch-no-such-group", body: "x" }]);
  assert.equal(responses.length, 1);
  assert.match(responses[0].error, /not found/);
  await assertRejectsWithStatus(client.publish({ urlGroup: "ts-batch-no-such-group", body: "x" }), 404);
});
