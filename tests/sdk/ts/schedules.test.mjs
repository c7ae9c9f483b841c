// Schedules through the official TypeScript SDK: client.schedules.create/get/list/delete/
// pause/resume, checking that every answer has the shape the SDK's Schedule type declares.
// The server runs on the real clock, so these tests create and inspect schedules without
// waiting for a cron minute (firing is covered by the Rust e2e tests and the Python suite).

import assert from "node:assert/strict";
import { test } from "node:test";

import { assertRejectsWithStatus, useQpost } from "./harness.mjs";

let qpost, receiver, client;
useQpost((started) => ({ qpost, receiver, client } = started));

/** The fields every Schedule carries, with the types the SDK declares. */
function assertScheduleShape(schedule) {
  assert.equal(typeof schedule.scheduleId, "string");
  assert.equal(typeof schedule.cron, "string");
  assert.equal(typeof schedule.createdAt, "number");
  assert.equal(typeof schedule.destination, "string");
  assert.equal(typeof schedule.method, "string");
  assert.equal(typeof schedule.retries, "number");
  assert.equal(typeof schedule.isPaused, "boolean");
  assert.equal(typeof schedule.nextScheduleTime, "number");
  assert.ok(schedule.nextScheduleTime > Date.now() - 1_000, "the next time is ahead");
  assert.equal(schedule.nextScheduleTime % 60_000, 0, "schedules fire on whole minutes");
}

test("schedules.create answers a scheduleId and get shows the settings", async () => {
  const destination = receiver.url("/ts/schedule");
  const { scheduleId } = await client.schedules.create({
    destination,
    cron: "*/10 * * * *",
    body: JSON.stringify({ hello: "world" }),
    headers: { "X-Custom": "custom" },
    method: "PUT",
    retries: 2,
    delay: 25,
    timeout: "30s",
    callback: receiver.url("/ts/callback"),
    flowControl: { key: "ts-schedule-fc", rate: 10, period: "1m" },
    label: "ts-label",
  });
  assert.match(scheduleId, /^scd_\w+$/);

  const schedule = await client.schedules.get(scheduleId);
  assertScheduleShape(schedule);
  assert.equal(schedule.scheduleId, scheduleId);
  assert.equal(schedule.cron, "*/10 * * * *");
  assert.equal(schedule.destination, destination);
  assert.equal(schedule.method, "PUT");
  assert.equal(schedule.body, '{"hello":"world"}');
  assert.deepEqual(schedule.header, { "Content-Type": ["application/json"], "X-Custom": ["custom"] });
  assert.equal(schedule.retries, 2);
  assert.equal(schedule.delay, 25);
  assert.equal(schedule.callback, receiver.url("/ts/callback"));
  assert.equal(schedule.flowControlKey, "ts-schedule-fc");
  assert.equal(schedule.rate, 10);
  assert.equal(schedule.ratePerSecond, 10, "the SDK copies rate to ratePerSecond");
  assert.equal(schedule.period, 60);
  assert.equal(schedule.label, "ts-label");
  assert.deepEqual(schedule.labels, ["ts-label"]);
  assert.equal(schedule.callerIP, "127.0.0.1");
  assert.equal(schedule.callerIp, "127.0.0.1");
  assert.equal(schedule.isPaused, false);
  await client.schedules.delete(scheduleId);
});

test("schedules.create with a scheduleId replaces that schedule and list shows it once", async () => {
  const scheduleId = "ts-upsert";
  await client.schedules.create({
    destination: receiver.url("/ts/first"),
    cron: "0 * * * *",
    scheduleId,
    body: "first",
  });
  const second = await client.schedules.create({
    destination: receiver.url("/ts/second"),
    cron: "CRON_TZ=America/New_York 0 4 * * *",
    scheduleId,
  });
  assert.equal(second.scheduleId, scheduleId);

  const schedule = await client.schedules.get(scheduleId);
  assert.equal(schedule.cron, "CRON_TZ=America/New_York 0 4 * * *");
  assert.equal(schedule.destination, receiver.url("/ts/second"));
  assert.equal(schedule.body, undefined, "the old body is cleared");

  const all = await client.schedules.list();
  assert.ok(Array.isArray(all));
  const mine = all.filter((s) => s.scheduleId === scheduleId);
  assert.equal(mine.length, 1);
  all.forEach(assertScheduleShape);
  await client.schedules.delete(scheduleId);
});

test("schedules.pause and resume toggle isPaused, and delete removes the schedule", async () => {
  const { scheduleId } = await client.schedules.create({
    destination: receiver.url("/ts/paused"),
    cron: "@hourly",
  });
  await client.schedules.pause({ schedule: scheduleId });
  assert.equal((await client.schedules.get(scheduleId)).isPaused, true);
  await client.schedules.pause({ schedule: scheduleId });
  assert.equal((await client.schedules.get(scheduleId)).isPaused, true, "pausing is idempotent");
  await client.schedules.resume({ schedule: scheduleId });
  assert.equal((await client.schedules.get(scheduleId)).isPaused, false);

  await client.schedules.delete(scheduleId);
  await assertRejectsWithStatus(() => client.schedules.get(scheduleId), 404);
  const all = await client.schedules.list();
  assert.ok(!all.some((s) => s.scheduleId === scheduleId));
});

test("schedules.create refuses an invalid cron, time zone or id with 400", async () => {
  const destination = receiver.url("/ts/invalid");
  await assertRejectsWithStatus(() => client.schedules.create({ destination, cron: "* * *" }), 400);
  await assertRejectsWithStatus(
    () => client.schedules.create({ destination, cron: "CRON_TZ=Mars/Base * * * * *" }),
    400,
  );
  await assertRejectsWithStatus(
    () => client.schedules.create({ destination, cron: "* * * * *", scheduleId: "not valid!" }),
    400,
  );
  const all = await client.schedules.list();
  assert.ok(!all.some((s) => s.destination === destination), "nothing was created");
});
