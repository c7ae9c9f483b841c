//! EventBridge Scheduler: what fires qpost schedules and the wake-ups of messages due
//! more than 15 minutes from now (SQS's longest delay) in AWS mode.
//!
//! Every schedule targets the delivery queue. A qpost schedule becomes one EventBridge
//! schedule in the stack's schedule group, named after its id, sending
//! `{"schedule": "<id>"}` on every minute it matches. When its cron needs two expressions
//! (see [`expression`]) the weekday half lives in the secondary group as
//! `weekday.<id>`; a long wait is a one-time `at()` schedule there too, `wake.<message
//! id>.<due ms>`, sending the message's wake-up body, deleted by EventBridge after it ran.
//! Names are injective: the primary group holds only ids, the secondary group's names
//! start with their kind, and a name shortened to fit is never a name kept whole. Both
//! groups route undeliverable sends to the dead-letter queue.

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
use expression::{Expression, Part, translate};

/// EventBridge's longest schedule name.
const MAX_NAME: usize = 64;
/// Hex digits of the hash ending a shortened name: 96 bits.
const HASH_HEX: usize = 24;
/// Prefix of one-time wake-up schedules (secondary group).
const WAKE_PREFIX: &str = "wake.";
/// Prefix of the weekday half of a qpost schedule's pair (secondary group).
const WEEKDAY_PREFIX: &str = "weekday.";

/// Where one EventBridge schedule lives.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    group: String,
    name: String,
}

/// What one schedule says, for create and update alike.
struct Spec {
    place: Place,
    expression: String,
    timezone: String,
    enabled: bool,
    input: String,
    one_time: bool,
}

/// The stack's schedule groups, and where their schedules send.
#[derive(Clone, Debug)]
pub struct EventBridgeScheduler {
    client: Client,
    group: String,
    secondary_group: String,
    role_arn: String,
    queue_arn: String,
    dead_letter_arn: String,
}

impl EventBridgeScheduler {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            group: config.schedule_group.clone(),
            secondary_group: config.secondary_schedule_group.clone(),
            role_arn: config.scheduler_role_arn.clone(),
            queue_arn: config.delivery_queue_arn.clone(),
            dead_letter_arn: config.dead_letter_queue_arn.clone(),
        }
    }

    /// The group of qpost schedules (named by id).
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The group of wake-ups and weekday halves (named by kind, then key).
    pub fn secondary_group(&self) -> &str {
        &self.secondary_group
    }

    /// Sends the wake-up of message `id` to the delivery queue at `due_ms` (rounded up to
    /// the second), once. Repeating it for the same time is a no-op.
    pub async fn wake_at(&self, id: &MessageId, due_ms: i64) -> Result<(), AwsError> {
        let spec = Spec {
            place: Place {
                group: self.secondary_group.clone(),
                name: wake_name(id, due_ms),
            },
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

    /// Where the EventBridge schedule of `part` of schedule `id` lives.
    fn place(&self, id: &str, part: Part) -> Place {
        match part {
            Part::Whole | Part::DaysOfMonth => Place {
                group: self.group.clone(),
                name: schedule_name(id),
            },
            Part::Weekdays => Place {
                group: self.secondary_group.clone(),
                name: weekday_name(id),
            },
        }
    }

    /// Creates or replaces the EventBridge schedules of `schedule`, and deletes the weekday
    /// half a previous expression needed and this one does not.
    async fn put(&self, schedule: &Schedule) -> Result<(), qpost_core::Error> {
        let expressions = translate(&schedule.cron)?;
        for e in &expressions {
            self.upsert(&self.spec(schedule, e)).await?;
        }
        if expressions.iter().all(|e| e.part != Part::Weekdays) {
            self.delete(&self.place(&schedule.id, Part::Weekdays))
                .await?;
        }
        Ok(())
    }

    fn spec(&self, schedule: &Schedule, e: &Expression) -> Spec {
        Spec {
            place: self.place(&schedule.id, e.part),
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
            .group_name(&spec.place.group)
            .name(&spec.place.name)
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
            .group_name(&spec.place.group)
            .name(&spec.place.name)
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

    /// Deletes the schedule at `place`; one that does not exist is already deleted. The
    /// names are injective, so a place derived from an id never holds another's schedule.
    async fn delete(&self, place: &Place) -> Result<(), AwsError> {
        let deleted = self
            .client
            .delete_schedule()
            .group_name(&place.group)
            .name(&place.name)
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
    /// Refuses, with the reason, a cron EventBridge Scheduler cannot express.
    fn check(&self, schedule: &Schedule) -> qpost_core::Result<()> {
        translate(&schedule.cron)?;
        Ok(())
    }

    /// Creates, replaces, pauses (state `DISABLED`) or resumes (`ENABLED`) the schedule.
    async fn arm(&self, schedule: &Schedule) -> qpost_core::Result<()> {
        self.put(schedule).await
    }

    async fn disarm(&self, id: &str) -> qpost_core::Result<()> {
        for part in [Part::Whole, Part::Weekdays] {
            self.delete(&self.place(id, part)).await?;
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

/// The EventBridge name for `text` (names allow the same characters as qpost ids): itself
/// when shorter than the longest name, else exactly that long, a prefix of it, `-` and a
/// hash of the whole. Only shortened names have the longest length, so two texts share a
/// name only when their hashes do.
fn fit(text: &str) -> String {
    if text.len() < MAX_NAME {
        return text.to_string();
    }
    let hash: String = Sha256::digest(text.as_bytes())[..HASH_HEX / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = text.floor_char_boundary(MAX_NAME - HASH_HEX - 1);
    format!("{}-{hash}", &text[..keep])
}

/// The name of schedule `id`'s EventBridge schedule (its day-of-month half when it has
/// two) in the primary group.
pub fn schedule_name(id: &str) -> String {
    fit(id)
}

/// The name of the weekday half of schedule `id` in the secondary group.
pub fn weekday_name(id: &str) -> String {
    fit(&format!("{WEEKDAY_PREFIX}{id}"))
}

/// The name of the one-time wake-up of message `id` at `due_ms` in the secondary group.
pub fn wake_name(id: &MessageId, due_ms: i64) -> String {
    fit(&format!("{WAKE_PREFIX}{id}.{due_ms}"))
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
        assert_eq!(schedule_name("scd_1"), "scd_1");
        assert_eq!(weekday_name("scd_1"), "weekday.scd_1");
        let fits = "x".repeat(MAX_NAME - 1);
        assert_eq!(schedule_name(&fits), fits);
        let long = "x".repeat(200);
        let name = schedule_name(&long);
        assert_eq!(name.len(), MAX_NAME);
        assert_ne!(name, schedule_name(&"x".repeat(201)));
        assert_eq!(weekday_name(&long).len(), MAX_NAME);
        assert!(weekday_name(&long).starts_with(WEEKDAY_PREFIX));
        let id = MessageId::generate();
        let wake = wake_name(&id, 1_700_000_000_000);
        assert!(wake.len() <= MAX_NAME, "{wake}");
        assert!(wake.starts_with(WAKE_PREFIX));
        assert_ne!(wake, wake_name(&id, 1_700_000_000_001));
    }

    #[test]
    fn no_two_ids_share_a_name_and_no_id_takes_a_shortened_name() {
        // What a one-group, suffixed naming confused: `job`'s halves and `job-a`, `job-b`.
        let ids = ["job", "job-a", "job-b", "weekday.job", "wake.job"];
        let mut primary: Vec<String> = ids.iter().map(|id| schedule_name(id)).collect();
        primary.sort();
        primary.dedup();
        assert_eq!(primary.len(), ids.len());
        // The secondary group: weekday halves and wake-ups never share a name either.
        let message = MessageId::from_string("msg_1".into());
        let mut secondary: Vec<String> = ids.iter().map(|id| weekday_name(id)).collect();
        secondary.push(wake_name(&message, 1_700_000_000_000));
        secondary.sort();
        secondary.dedup();
        assert_eq!(secondary.len(), ids.len() + 1);
        // An id chosen equal to the shortened name of a long one keeps a name of its own.
        let shortened = schedule_name(&"y".repeat(100));
        assert_eq!(shortened.len(), MAX_NAME);
        assert_ne!(schedule_name(&shortened), shortened);
        let fits = "y".repeat(MAX_NAME - 1);
        assert_ne!(schedule_name(&format!("{fits}y")), fits);
    }
}
