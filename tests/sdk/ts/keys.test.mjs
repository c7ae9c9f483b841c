// Signing keys. This SDK version has no keys API on Client, so GET /v2/keys and
// POST /v2/keys/rotate go through the SDK's own requester (client.http.request).
// Rotation changes the server's keys, so it runs on a server of its own.

import assert from "node:assert/strict";
import { test } from "node:test";

import { DEV_CREDENTIALS, assertSignedDelivery, startQpost, useQpost } from "./harness.mjs";

let qpost, receiver, client;
useQpost((started) => ({ qpost, receiver, client } = started));

const getKeys = () => client.http.request({ method: "GET", path: ["v2", "keys"] });
const rotateKeys = () => client.http.request({ method: "POST", path: ["v2", "keys", "rotate"] });

test("the printed credentials default to the public dev-server ones", () => {
  assert.equal(qpost.token, DEV_CREDENTIALS.token);
  assert.equal(qpost.currentSigningKey, DEV_CREDENTIALS.currentSigningKey);
  assert.equal(qpost.nextSigningKey, DEV_CREDENTIALS.nextSigningKey);
  assert.match(qpost.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test("keys.get answers the printed signing keys", async () => {
  const keys = await getKeys();
  assert.equal(keys.current, qpost.currentSigningKey);
  assert.equal(keys.next, qpost.nextSigningKey);
});

test("keys.rotate promotes next to current and signs with the new current key", async () => {
  const old = await getKeys();
  const rotated = await rotateKeys();
  assert.equal(rotated.current, old.next);
  assert.match(rotated.next, /^sig_\w+$/);
  // PyJWT (the Python Receiver) warns about HMAC keys shorter than 32 bytes.
  assert.ok(rotated.next.length >= 32, `new key ${rotated.next} is shorter than 32 bytes`);
  assert.notEqual(rotated.next, old.current);
  assert.notEqual(rotated.next, old.next);
  const again = await getKeys();
  assert.deepEqual([again.current, again.next], [rotated.current, rotated.next]);

  const destination = receiver.url("/keys/after-rotate");
  const published = await client.publish({ url: destination, body: "signed with the new key" });
  const [delivery] = await receiver.waitFor("/keys/after-rotate");
  const newKeys = { currentSigningKey: rotated.current, nextSigningKey: rotated.next };
  await assertSignedDelivery(delivery, { verifier: qpost.receiver(newKeys), url: destination, messageId: published.messageId });

  const oldOnly = qpost.receiver({ currentSigningKey: old.current, nextSigningKey: old.current });
  await assert.rejects(
    oldOnly.verify({ signature: delivery.headers["upstash-signature"], body: delivery.body.toString("utf8"), url: destination }),
  );
});

test("the server stops gracefully on SIGTERM", async () => {
  const server = qpost;
  qpost = undefined;
  const { code, signal } = await server.stop();
  assert.equal(signal, null, `killed by ${signal}:\n${server.log()}`);
  assert.equal(code, 0);
});

test("a server stops gracefully on SIGTERM right after printing its block", async () => {
  const fresh = await startQpost();
  const { code, signal } = await fresh.stop();
  assert.equal(signal, null, `killed by ${signal}:\n${fresh.log()}`);
  assert.equal(code, 0);
});
