//! EventBridge Scheduler, emulated: moto records schedules but never fires them, so this
//! reads each schedule back from the emulator (expression, time zone, state, target,
//! input) and, when its time comes, does what EventBridge does: sends the target input to
//! the target queue, and deletes a one-time schedule created with
//! `ActionAfterCompletion: DELETE`. Times are evaluated here, independently of the
//! translation in `qpost_aws::scheduler` that produced them: `at(...)`, `cron(...)`
//! (`eventbridge_cron`) and `rate(...)` (counted from the schedule's creation, as
//! EventBridge does). A stack has two schedule groups; the emulation runs both.
//!
//! Shared by the emulator tests (`tests/emulator/e2e`) and the `qpost-aws-local` example,
//! which includes this file (and so `eventbridge_cron.rs`) by path.

#[path = "eventbridge_cron.rs"]
mod eventbridge_cron;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::types::{ActionAfterCompletion, ScheduleState};
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use lambda_runtime::Error;
use qpost_core::clock::Clock;

const MINUTE_MS: i64 = 60_000;

/// One schedule as EventBridge holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    pub group: String,
    pub name: String,
    pub expression: String,
    pub timezone: String,
    pub enabled: bool,
    pub target_arn: String,
    pub input: String,
    /// `ActionAfterCompletion: DELETE`: a one-time schedule removes itself after firing.
    pub delete_after: bool,
    pub created_ms: i64,
}

impl Scheduled {
    fn from_output(group: &str, out: GetScheduleOutput) -> Self {
        let target = out.target();
        Self {
            group: group.to_string(),
            name: out.name().unwrap_or_default().to_string(),
            expression: out.schedule_expression().unwrap_or_default().to_string(),
            timezone: out
                .schedule_expression_timezone()
                .unwrap_or("UTC")
                .to_string(),
            enabled: out.state() != Some(&ScheduleState::Disabled),
            target_arn: target.map(|t| t.arn().to_string()).unwrap_or_default(),
            input: target
                .and_then(|t| t.input())
                .unwrap_or_default()
                .to_string(),
            delete_after: out.action_after_completion() == Some(&ActionAfterCompletion::Delete),
            created_ms: out
                .creation_date()
                .and_then(|d| d.to_millis().ok())
                .unwrap_or(0),
        }
    }

    /// When a one-time `at(yyyy-mm-ddThh:mm:ss)` schedule fires, Unix ms.
    pub fn at_ms(&self) -> Option<i64> {
        let text = self.expression.strip_prefix("at(")?.strip_suffix(')')?;
        let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok()?;
        let zone: Tz = self.timezone.parse().ok()?;
        let at = zone.from_local_datetime(&local).earliest()?;
        Some(at.timestamp_millis())
    }

    /// Whether a recurring schedule fires on the minute starting at `minute_ms`.
    pub fn fires_on(&self, minute_ms: i64) -> bool {
        if let Some(fields) = inner(&self.expression, "cron(") {
            return eventbridge_cron::fires_on(fields, &self.timezone, minute_ms);
        }
        match inner(&self.expression, "rate(").and_then(rate_minutes) {
            Some(period) => {
                let created = self.created_ms.div_euclid(MINUTE_MS);
                let minute = minute_ms.div_euclid(MINUTE_MS);
                minute > created && (minute - created) % period == 0
            }
            None => false,
        }
    }
}

/// The text inside `prefix...)`.
fn inner<'a>(expression: &'a str, prefix: &str) -> Option<&'a str> {
    expression.strip_prefix(prefix)?.strip_suffix(')')
}

/// `rate(<n> minute[s]|hour[s]|day[s])` in minutes.
fn rate_minutes(text: &str) -> Option<i64> {
    let (n, unit) = text.trim().split_once(' ')?;
    let n: i64 = n.parse().ok()?;
    let per = match unit.trim_end_matches('s') {
        "minute" => 1,
        "hour" => 60,
        "day" => 24 * 60,
        _ => return None,
    };
    (n > 0).then_some(n * per)
}

/// The schedule groups of one stack, as EventBridge Scheduler would run them.
pub struct Scheduler {
    client: aws_sdk_scheduler::Client,
    sqs: aws_sdk_sqs::Client,
    /// The group of qpost schedules first, then the others.
    groups: Vec<String>,
    /// Queue URLs by ARN, looked up once.
    urls: Mutex<HashMap<String, String>>,
    /// One-time schedules that fired but were not deleted (no `ActionAfterCompletion`).
    spent: Mutex<HashSet<String>>,
}

impl Scheduler {
    pub fn new(client: aws_sdk_scheduler::Client, sqs: aws_sdk_sqs::Client, group: &str) -> Self {
        Self {
            client,
            sqs,
            groups: vec![group.to_string()],
            urls: Mutex::default(),
            spent: Mutex::default(),
        }
    }

    /// Runs `group` too (the stack's secondary group: wake-ups, weekday halves).
    pub fn with_group(mut self, group: &str) -> Self {
        self.groups.push(group.to_string());
        self
    }

    /// Every schedule of every group, read in full.
    pub async fn list(&self) -> Result<Vec<Scheduled>, Error> {
        let mut all = Vec::new();
        for group in &self.groups {
            all.extend(self.list_group(group).await?);
        }
        Ok(all)
    }

    async fn list_group(&self, group: &str) -> Result<Vec<Scheduled>, Error> {
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_schedules()
            .group_name(group)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            names.extend(
                page?
                    .schedules()
                    .iter()
                    .filter_map(|s| s.name().map(String::from)),
            );
        }
        let mut all = Vec::with_capacity(names.len());
        for name in names {
            all.extend(self.get_in(group, &name).await?);
        }
        Ok(all)
    }

    /// Schedule `name` of the group of qpost schedules (named by id), if it exists.
    #[cfg_attr(not(test), allow(dead_code))] // the example reads none by name
    pub async fn get(&self, name: &str) -> Result<Option<Scheduled>, Error> {
        self.get_in(&self.groups[0], name).await
    }

    /// Schedule `name` of `group`, if it exists.
    pub async fn get_in(&self, group: &str, name: &str) -> Result<Option<Scheduled>, Error> {
        let found = self
            .client
            .get_schedule()
            .group_name(group)
            .name(name)
            .send()
            .await;
        match found {
            Ok(out) => Ok(Some(Scheduled::from_output(group, out))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Fires `s` now: its input goes to its target queue; a one-time schedule is then
    /// deleted (`ActionAfterCompletion: DELETE`) or marked spent.
    pub async fn fire(&self, s: &Scheduled) -> Result<(), Error> {
        let url = self.queue_url(&s.target_arn).await?;
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(&s.input)
            .send()
            .await?;
        if s.at_ms().is_none() {
            return Ok(());
        }
        if s.delete_after {
            self.client
                .delete_schedule()
                .group_name(&s.group)
                .name(&s.name)
                .send()
                .await?;
        } else {
            self.lock_spent().insert(s.name.clone());
        }
        Ok(())
    }

    /// Fires every enabled one-time schedule due at `now_ms`; returns their names.
    pub async fn fire_due(&self, now_ms: i64) -> Result<Vec<String>, Error> {
        let mut fired = Vec::new();
        for s in self.list().await? {
            let due = s.at_ms().is_some_and(|at| at <= now_ms);
            if due && s.enabled && !self.lock_spent().contains(&s.name) {
                self.fire(&s).await?;
                fired.push(s.name);
            }
        }
        Ok(fired)
    }

    /// Fires every enabled recurring schedule matching the minute at `minute_ms`.
    pub async fn fire_minute(&self, minute_ms: i64) -> Result<Vec<String>, Error> {
        let mut fired = Vec::new();
        for s in self.list().await? {
            if s.enabled && s.at_ms().is_none() && s.fires_on(minute_ms) {
                self.fire(&s).await?;
                fired.push(s.name);
            }
        }
        Ok(fired)
    }

    /// Runs the group on `clock` until `stop` says so: one-time schedules when due,
    /// recurring ones at the start of each minute they match.
    #[cfg_attr(test, allow(dead_code))] // the tests fire by hand
    pub async fn run(self, clock: Arc<dyn Clock>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut minute = clock.now_ms().div_euclid(MINUTE_MS);
        while !*stop.borrow() {
            let now = clock.now_ms();
            if let Err(e) = self.tick(now, &mut minute).await {
                tracing::warn!(groups = ?self.groups, error = %e, "firing schedules failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => {}
            }
        }
    }

    #[cfg_attr(test, allow(dead_code))]
    async fn tick(&self, now: i64, minute: &mut i64) -> Result<(), Error> {
        self.fire_due(now).await?;
        let current = now.div_euclid(MINUTE_MS);
        while *minute < current {
            *minute += 1;
            self.fire_minute(*minute * MINUTE_MS).await?;
        }
        Ok(())
    }

    async fn queue_url(&self, arn: &str) -> Result<String, Error> {
        if let Some(url) = self.lock_urls().get(arn) {
            return Ok(url.clone());
        }
        let name = arn.rsplit(':').next().unwrap_or_default();
        let out = self.sqs.get_queue_url().queue_name(name).send().await?;
        let url = out.queue_url().unwrap_or_default().to_string();
        self.lock_urls().insert(arn.to_string(), url.clone());
        Ok(url)
    }

    fn lock_urls(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.urls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_spent(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(expression: &str, timezone: &str) -> Scheduled {
        Scheduled {
            group: "g".into(),
            name: "s".into(),
            expression: expression.into(),
            timezone: timezone.into(),
            enabled: true,
            target_arn: String::new(),
            input: String::new(),
            delete_after: false,
            created_ms: 0,
        }
    }

    /// 2024-01-01T09:00:00Z, a Monday.
    const MONDAY_9: i64 = 1_704_099_600_000;

    #[test]
    fn one_time_rate_and_cron_schedules_fire_on_their_times() {
        assert!(schedule("cron(0 10 ? * MON *)", "Europe/Berlin").fires_on(MONDAY_9));
        assert!(!schedule("cron(0 10 ? * MON *)", "UTC").fires_on(MONDAY_9));
        assert_eq!(
            schedule("at(2024-01-01T09:00:00)", "UTC").at_ms(),
            Some(MONDAY_9)
        );
        let mut rate = schedule("rate(90 minutes)", "UTC");
        rate.created_ms = MONDAY_9 + 5_000;
        assert!(!rate.fires_on(MONDAY_9));
        assert!(rate.fires_on(MONDAY_9 + 90 * MINUTE_MS));
        assert!(!rate.fires_on(MONDAY_9 + 60 * MINUTE_MS));
    }
}
