// Callbacks and failure callbacks (qstash-api.md §5) published through the official TypeScript SDK.

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertSignedDelivery, fromBase64, useQpost } from "./harness.mjs";

let qpost, receiver, client, verifier;
useQpost((started) => ({ qpost, receiver, client, verifier } = started));

function callbackBody(record) {
  return JSON.parse(record.body.toString("utf8"));
}

test("a successful delivery calls the callback with the response and the source message", async () => {
  receiver.script("/cb/ok/destination", { status: 200, headers: { "X-Reply": "r1" }, body: "destination says hi" });
  const destination = receiver.url("/cb/ok/destination");
  const callback = receiver.url("/cb/ok/callback");
  const failureCallback = receiver.url("/cb/ok/failure");
  const sourceBody = "source body ✓";
  const published = await client.publish({
    url: destination,
    body: sourceBody,
    headers: { "X-Custom": "c1" },
    callback,
    failureCallback,
  });

  const [delivery] = await receiver.waitFor("/cb/ok/destination");
  await assertSignedDelivery(delivery, { verifier, url: destination, messageId: published.messageId });

  const [request] = await receiver.waitFor("/cb/ok/callback");
  assert.equal(request.method, "POST");
  await assertSignedDelivery(request, { verifier, url: callback });
  assert.notEqual(request.headers["upstash-message-id"], published.messageId);

  const body = callbackBody(request);
  assert.equal(body.status, 200);
  assert.equal(body.sourceMessageId, published.messageId);
  assert.equal(fromBase64(body.sourceBody).toString("utf8"), sourceBody);
  assert.equal(fromBase64(body.body).toString("utf8"), "destination says hi");
  assert.deepEqual(body.header?.["X-Reply"], ["r1"]);
  assert.deepEqual(body.sourceHeader?.["X-Custom"], ["c1"]);
  assert.equal(body.url, destination);
  assert.equal(body.method, "POST");
  assert.ok(!body.retried, `retried = ${body.retried} on the first attempt`);
  assert.equal(body.dlqId, undefined);
  assert.equal(typeof body.createdAt, "number");

  await receiver.expectNoMore("/cb/ok/failure", 0);
});

test("an exhausted message calls the failure callback with its dlqId", async () => {
  receiver.script("/cb/fail/destination", { status: 500, body: "server error" });
  const destination = receiver.url("/cb/fail/destination");
  const callback = receiver.url("/cb/fail/callback");
  const failureCallback = receiver.url("/cb/fail/failure");
  const published = await client.publish({
    url: destination,
    body: "doomed",
    retries: 0,
    callback,
    failureCallback,
  });

  const [request] = await receiver.waitFor("/cb/fail/failure");
  await assertSignedDelivery(request, { verifier, url: failureCallback });
  const body = callbackBody(request);
  assert.equal(body.status, 500);
  assert.equal(body.sourceMessageId, published.messageId);
  assert.equal(fromBase64(body.sourceBody).toString("utf8"), "doomed");
  assert.equal(fromBase64(body.body).toString("utf8"), "server error");
  assert.equal(body.url, destination);
  assert.match(body.dlqId ?? "", /\S/, "failure callback has no dlqId");

  const { messages } = await client.dlq.listMessages({ dlqIds: [body.dlqId] });
  assert.equal(messages.length, 1);
  assert.equal(messages[0].messageId, published.messageId);

  // The callback is called after every attempt, failed ones included.
  const [attempt] = await receiver.waitFor("/cb/fail/callback");
  await assertSignedDelivery(attempt, { verifier, url: callback });
  assert.equal(callbackBody(attempt).status, 500);
  assert.equal(callbackBody(attempt).sourceMessageId, published.messageId);
});
