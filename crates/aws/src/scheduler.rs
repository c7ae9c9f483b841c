//! EventBridge Scheduler: what fires qpost schedules and the wake-ups of messages due
//! more than 15 minutes from now (SQS's longest delay) in AWS mode.
//!
//! Every schedule lives in the stack's schedule group and targets the delivery queue:
//! a qpost schedule becomes one EventBridge schedule named after its id (two, `<id>-a`
//! and `<id>-b`, when its cron needs two expressions; see [`expression`]) sending
//! `{"schedule": "<id>"}` on every minute it matches; a long wait becomes a one-time
//! `at()` schedule sending the message's wake-up body, deleted by EventBridge after it
//! ran. Both route undeliverable sends to the dead-letter queue.

pub mod expression;

use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    ScheduleState, Target,
};
use qpost_core::ids::MessageId;
use qpost_core::ports::ScheduleRegistry;
use qpost_core::schedule::Schedule;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::dispatch::{ScheduleBody, WakeupBody};
use crate::error::AwsError;
use expression::{Expression, translate};

/// EventBridge's longest schedule name.
const MAX_NAME: usize = 64;
/// Prefix of one-time wake-up schedules.
const WAKE_PREFIX: &str = "wake.";

/// What one schedule says, for create and update alike.
struct Spec {
    name: String,
    expression: String,
    timezone: String,
    enabled: bool,
    input: String,
    one_time: bool,
}

/// The stack's schedule group, and where its schedules send.
#[derive(Clone, Debug)]
pub struct EventBridgeScheduler {
    client: Client,
    group: String,
    role_arn: String,
    queue_arn: String,
    dead_letter_arn: String,
}

impl EventBridgeScheduler {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            group: config.schedule_group.clone(),
            role_arn: config.scheduler_role_arn.clone(),
            queue_arn: config.delivery_queue_arn.clone(),
            dead_letter_arn: config.dead_letter_queue_arn.clone(),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Sends the wake-up of message `id` to the delivery queue at `due_ms` (rounded up to
    /// the second), once. Repeating it for the same time is a no-op.
    pub async fn wake_at(&self, id: &MessageId, due_ms: i64) -> Result<(), AwsError> {
        let spec = Spec {
            name: wake_name(id, due_ms),
            expression: at(due_ms),
            timezone: "UTC".into(),
            enabled: true,
            input: WakeupBody { id: id.clone() }.to_json(),
            one_time: true,
        };
        match self.create(&spec).await {
            Err(Conflict::Exists) => Ok(()),
            Err(Conflict::Failed(e)) => Err(e),
            Ok(()) => Ok(()),
        }
    }

    /// Creates or replaces the EventBridge schedules of `schedule`, and deletes the ones a
    /// previous expression needed and this one does not.
    async fn put(&self, schedule: &Schedule) -> Result<(), qpost_core::Error> {
        let expressions = translate(&schedule.cron)?;
        let wanted: Vec<String> = expressions
            .iter()
            .map(|e| schedule_name(&schedule.id, e.part))
            .collect();
        for (expression, name) in expressions.iter().zip(&wanted) {
            self.upsert(&self.spec(schedule, expression, name)).await?;
        }
        for stale in all_names(&schedule.id)
            .into_iter()
            .filter(|n| !wanted.contains(n))
        {
            self.delete_owned(&stale, &schedule.id).await?;
        }
        Ok(())
    }

    fn spec(&self, schedule: &Schedule, e: &Expression, name: &str) -> Spec {
        Spec {
            name: name.to_string(),
            expression: e.expression.clone(),
            timezone: e.timezone.clone(),
            enabled: !schedule.paused,
            input: ScheduleBody {
                schedule: schedule.id.clone(),
            }
            .to_json(),
            one_time: false,
        }
    }

    fn target(&self, input: &str) -> Result<Target, AwsError> {
        Target::builder()
            .arn(&self.queue_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .dead_letter_config(
                DeadLetterConfig::builder()
                    .arn(&self.dead_letter_arn)
                    .build(),
            )
            .build()
            .map_err(|e| AwsError::Build("Target", e))
    }

    async fn upsert(&self, spec: &Spec) -> Result<(), AwsError> {
        match self.create(spec).await {
            Ok(()) => Ok(()),
            Err(Conflict::Exists) => self.update(spec).await,
            Err(Conflict::Failed(e)) => Err(e),
        }
    }

    async fn create(&self, spec: &Spec) -> Result<(), Conflict> {
        let mut request = self
            .client
            .create_schedule()
            .group_name(&self.group)
            .name(&spec.name)
            .schedule_expression(&spec.expression)
            .schedule_expression_timezone(&spec.timezone)
            .flexible_time_window(off()?)
            .target(self.target(&spec.input)?)
            .state(state(spec.enabled));
        if spec.one_time {
            request = request.action_after_completion(ActionAfterCompletion::Delete);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conflict_exception()) =>
            {
                Err(Conflict::Exists)
            }
            Err(e) => Err(AwsError::sdk("CreateSchedule", e).into()),
        }
    }

    async fn update(&self, spec: &Spec) -> Result<(), AwsError> {
        self.client
            .update_schedule()
            .group_name(&self.group)
            .name(&spec.name)
            .schedule_expression(&spec.expression)
            .schedule_expression_timezone(&spec.timezone)
            .flexible_time_window(off()?)
            .target(self.target(&spec.input)?)
            .state(state(spec.enabled))
            .send()
            .await
            .map_err(|e| AwsError::sdk("UpdateSchedule", e))?;
        Ok(())
    }

    /// Deletes schedule `name` if it exists and fires schedule `id` (a name derived from
    /// another id may coincide, e.g. `job-a` of `job` and the schedule `job-a`).
    async fn delete_owned(&self, name: &str, id: &str) -> Result<(), AwsError> {
        let found = self
            .client
            .get_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await;
        let schedule = match found {
            Ok(s) => s,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(AwsError::sdk("GetSchedule", e)),
        };
        let input = schedule.target().and_then(|t| t.input());
        let owner = input.and_then(|i| serde_json::from_str::<ScheduleBody>(i).ok());
        if owner.is_none_or(|o| o.schedule != id) {
            return Ok(());
        }
        let deleted = self
            .client
            .delete_schedule()
            .group_name(&self.group)
            .name(name)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(AwsError::sdk("DeleteSchedule", e)),
        }
    }
}

/// A create refused because the name exists, or any other failure.
enum Conflict {
    Exists,
    Failed(AwsError),
}

impl From<AwsError> for Conflict {
    fn from(e: AwsError) -> Self {
        Self::Failed(e)
    }
}

#[async_trait]
impl ScheduleRegistry for EventBridgeScheduler {
    /// Creates, replaces, pauses (state `DISABLED`) or resumes (`ENABLED`) the schedule.
    async fn arm(&self, schedule: &Schedule) -> qpost_core::Result<()> {
        self.put(schedule).await
    }

    async fn disarm(&self, id: &str) -> qpost_core::Result<()> {
        for name in all_names(id) {
            self.delete_owned(&name, id).await?;
        }
        Ok(())
    }
}

fn off() -> Result<FlexibleTimeWindow, AwsError> {
    FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|e| AwsError::Build("FlexibleTimeWindow", e))
}

fn state(enabled: bool) -> ScheduleState {
    if enabled {
        ScheduleState::Enabled
    } else {
        ScheduleState::Disabled
    }
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC for `due_ms`, rounded up so it never fires early by
/// rounding.
pub fn at(due_ms: i64) -> String {
    let secs = due_ms.div_euclid(1000) + i64::from(due_ms.rem_euclid(1000) > 0);
    let time = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    format!("at({})", time.format("%Y-%m-%dT%H:%M:%S"))
}

/// The EventBridge name for `text`: itself when it fits in `room` characters, else a
/// prefix and a hash of the whole (names allow the same characters as qpost ids).
fn fit(text: &str, room: usize) -> String {
    if text.len() <= room {
        return text.to_string();
    }
    let hash: String = Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = text.floor_char_boundary(room - hash.len() - 1);
    format!("{}-{hash}", &text[..keep])
}

/// The name of schedule `id`'s EventBridge schedule, or of part `a`/`b` of a pair.
pub fn schedule_name(id: &str, part: Option<char>) -> String {
    let base = fit(id, MAX_NAME - 2);
    match part {
        None => base,
        Some(p) => format!("{base}-{p}"),
    }
}

/// Every name schedule `id` may use.
fn all_names(id: &str) -> [String; 3] {
    [None, Some('a'), Some('b')].map(|p| schedule_name(id, p))
}

/// The name of the one-time wake-up of message `id` at `due_ms`.
pub fn wake_name(id: &MessageId, due_ms: i64) -> String {
    fit(&format!("{WAKE_PREFIX}{id}.{due_ms}"), MAX_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_are_utc_seconds_rounded_up() {
        assert_eq!(at(1_700_000_000_000), "at(2023-11-14T22:13:20)");
        assert_eq!(at(1_700_000_000_001), "at(2023-11-14T22:13:21)");
    }

    #[test]
    fn names_are_the_id_when_it_fits_and_a_hashed_prefix_otherwise() {
        assert_eq!(schedule_name("scd_1", None), "scd_1");
        assert_eq!(schedule_name("scd_1", Some('b')), "scd_1-b");
        let long = "x".repeat(200);
        let name = schedule_name(&long, Some('a'));
        assert_eq!(name.len(), MAX_NAME);
        assert_ne!(name, schedule_name(&"x".repeat(201), Some('a')));
        let id = MessageId::generate();
        let wake = wake_name(&id, 1_700_000_000_000);
        assert!(wake.len() <= MAX_NAME, "{wake}");
        assert!(wake.starts_with(WAKE_PREFIX));
        assert_ne!(wake, wake_name(&id, 1_700_000_000_001));
    }
}
