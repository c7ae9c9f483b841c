//! How long a record waits, and how that wait is carried: the limits SQS puts on
//! visibility changes and retention, the backoffs of paused queues and of qpost's own
//! errors, the attempt cap of an invocation, and the cron minute of a firing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::SqsMessage;

use crate::lambda::record;

/// The longest visibility SQS sets: 12 hours from the receive.
pub const MAX_VISIBILITY_SECS: i64 = 12 * 3600;
/// The longest one visibility change of an ordered record waits: a longer wait is taken in
/// steps (the record comes back not due and waits again), as the visibility limit allows.
pub(super) const VISIBILITY_STEP_MS: i64 = (MAX_VISIBILITY_SECS - RECEIVE_MARGIN_SECS) * 1000;
/// Time the invocation may have spent since the receive before it sets a visibility (the
/// longest attempt plus margin), kept off [`MAX_VISIBILITY_SECS`] so the change is never
/// refused.
const RECEIVE_MARGIN_SECS: i64 = 15 * 60 + 60;
/// How long a queue message may live: SQS drops messages after their retention period
/// (14 days in the stack), counted from the first send, however often they were received.
/// Waits ending later get a fresh queue message.
pub const RETENTION_BUDGET_MS: i64 = 13 * 24 * 3600 * 1000;
/// Time kept free before the invocation's deadline when capping attempt timeouts.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
pub(super) const MINUTE_MS: i64 = 60_000;
/// Receives after which a waiting delivery-queue record is replaced by a fresh wake-up:
/// below the stack's `maxReceiveCount` (100), which is kept for records that never get an
/// answer (poison).
pub const RESEND_AFTER_RECEIVES: u32 = 90;
/// The longest wait between two looks at a paused queue.
const MAX_PAUSE_WAIT_MS: i64 = 5 * MINUTE_MS;

/// How long a message of a paused queue waits before its record looks again, after the
/// record's `receives`: 1 s, doubling, at most 5 minutes. A resume is noticed within that.
pub fn pause_wait_ms(receives: u32) -> i64 {
    let doublings = receives.saturating_sub(1).min(20);
    (1000_i64 << doublings).min(MAX_PAUSE_WAIT_MS)
}

/// How long a record waits after qpost's own error (the store unreachable, throttled)
/// before it is tried again, after its `receives`: 1 s, doubling, at most 15 minutes.
pub fn error_wait_secs(receives: u32) -> i32 {
    let doublings = receives.saturating_sub(1).min(20);
    (1_i64 << doublings).min(15 * 60) as i32
}

/// The visibility (seconds, rounded up) that brings a record back at `at`, when one can:
/// at most [`MAX_VISIBILITY_SECS`] less the time the invocation may have taken, and not
/// past the queue message's retention (counted from `sent`).
pub fn visibility_for(at: i64, now: i64, sent: Option<i64>) -> Option<i32> {
    let wait_ms = at.saturating_sub(now).max(0) as u64;
    let seconds = wait_ms.div_ceil(1000).min(i32::MAX as u64) as i64;
    let fits = seconds <= MAX_VISIBILITY_SECS - RECEIVE_MARGIN_SECS;
    let retained = sent.is_none_or(|sent| at.saturating_sub(sent) <= RETENTION_BUDGET_MS);
    (fits && retained).then_some(seconds as i32)
}

/// The cron minute a firing is for: the minute the scheduler sent it in (falling back to
/// now), so a record redelivered later still names the same minute.
pub(super) fn slot(record: &SqsMessage, now: i64) -> i64 {
    record::sent_at(record).unwrap_or(now).div_euclid(MINUTE_MS) * MINUTE_MS
}

/// The attempt timeout cap for an invocation ending at `deadline_ms` (0: unknown): the
/// configured cap, lowered so an attempt ends before the function is stopped.
pub fn attempt_cap(configured: Duration, deadline_ms: u64, now: SystemTime) -> Duration {
    if deadline_ms == 0 {
        return configured;
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline
        .duration_since(now)
        .unwrap_or_default()
        .saturating_sub(DEADLINE_MARGIN);
    configured.min(left.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn waits_up_to_the_visibility_limit_are_visibility_changes() {
        assert_eq!(visibility_for(NOW - 5, NOW, None), Some(0), "overdue: now");
        assert_eq!(visibility_for(NOW + 1, NOW, None), Some(1), "never early");
        assert_eq!(visibility_for(NOW + 90_000, NOW, Some(NOW)), Some(90));
        let eleven_hours = NOW + 11 * 3600 * 1000;
        assert_eq!(visibility_for(eleven_hours, NOW, None), Some(11 * 3600));
        assert_eq!(visibility_for(NOW + 12 * 3600 * 1000, NOW, None), None);
    }

    #[test]
    fn a_wait_past_the_retention_of_the_queue_message_needs_a_new_one() {
        let sent = NOW - 13 * 24 * 3600 * 1000 + 60_000;
        assert_eq!(visibility_for(NOW + 30_000, NOW, Some(sent)), Some(30));
        assert_eq!(visibility_for(NOW + 120_000, NOW, Some(sent)), None);
    }

    #[test]
    fn a_paused_queue_is_looked_at_again_after_a_doubling_wait_of_at_most_five_minutes() {
        let waits: Vec<i64> = (1..=6).map(pause_wait_ms).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16_000, 32_000]);
        assert_eq!(pause_wait_ms(0), 1000);
        assert_eq!(pause_wait_ms(12), MAX_PAUSE_WAIT_MS);
        assert_eq!(pause_wait_ms(u32::MAX), MAX_PAUSE_WAIT_MS);
    }

    #[test]
    fn after_its_own_error_a_record_comes_back_in_seconds_not_the_visibility_timeout() {
        assert_eq!(error_wait_secs(1), 1);
        assert_eq!(error_wait_secs(2), 2);
        assert_eq!(error_wait_secs(10), 512);
        assert_eq!(error_wait_secs(11), 900);
        assert_eq!(error_wait_secs(u32::MAX), 900);
    }

    #[test]
    fn a_firing_is_for_the_minute_it_was_sent_in() {
        let mut r = SqsMessage::default();
        r.attributes
            .insert("SentTimestamp".into(), (NOW + 59_999).to_string());
        let minute = (NOW + 59_999) / MINUTE_MS * MINUTE_MS;
        assert_eq!(slot(&r, 0), minute);
        assert_eq!(
            slot(&SqsMessage::default(), NOW + 1),
            NOW / MINUTE_MS * MINUTE_MS
        );
    }

    #[test]
    fn attempts_end_before_the_invocation_deadline() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let cap = Duration::from_secs(900);
        assert_eq!(attempt_cap(cap, 0, now), cap, "no deadline known");
        let in_a_minute = 1_060_000;
        assert_eq!(attempt_cap(cap, in_a_minute, now), Duration::from_secs(50));
        assert_eq!(attempt_cap(cap, 1_000_000, now), Duration::from_secs(1));
        assert_eq!(attempt_cap(cap, 10_000_000, now), cap);
    }
}
