//! Flow-control limits enforced across Lambda invocations: before an attempt of a message
//! under a flow-control key, the deliver function acquires a lease on one of the key's
//! parallel slots (and counts the start in the key's rate window); after the attempt it
//! releases it. The decision is the shared model's (`KeyLimits::try_start`), made on a
//! strongly consistent read of the key's item and committed with a write conditional on
//! the version read; a lost race reads again. A lease expires after the time the
//! acquirer asked to hold it, so a crashed invocation's slot is reclaimed by the next
//! acquirer.

use std::time::Duration;

use qpost_core::flow::FlowControl;
use qpost_core::flow::limits::Refusal;

use super::DynamoAdmission;
use crate::error::AwsError;
use crate::store::flow::FlowItem;

/// Base wait when every parallel slot is taken (SQS visibility counts whole seconds).
pub const FULL_BACKOFF_MS: i64 = 1_000;
/// Up to this much is added at random to [`FULL_BACKOFF_MS`], so the records that wait
/// for a key do not all come back in the same second.
pub const FULL_JITTER_MS: i64 = 1_000;
/// How long a record of a paused key should stay away before asking again.
pub const PAUSE_RECHECK_MS: i64 = 2_000;
/// Reads and conditional writes tried before a contended acquire gives up (as a wait).
const MAX_RACES: u32 = 10;

/// What [`DynamoAdmission::acquire`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A slot is leased to the holder until `now_ms + hold_ms` and the start is counted:
    /// attempt now, then [`DynamoAdmission::release`].
    Granted,
    /// Not now; nothing is held. Ask again at `until_ms` (Unix ms): the end of the rate
    /// window when the rate is used up, a short backoff when every parallel slot is taken
    /// (or the holder already holds a lease: a duplicate record; then its expiry).
    Wait { until_ms: i64 },
    /// The key is paused; nothing is held. Ask again later ([`Grant::retry_at`]).
    Paused,
}

impl Grant {
    /// When a refused record should be handed back: `None` when granted.
    pub fn retry_at(&self, now_ms: i64) -> Option<i64> {
        match self {
            Self::Granted => None,
            Self::Wait { until_ms } => Some(*until_ms),
            Self::Paused => Some(now_ms.saturating_add(PAUSE_RECHECK_MS)),
        }
    }
}

/// One acquire request.
pub(super) struct Ask<'a> {
    pub fc: &'a FlowControl,
    pub holder: &'a str,
    pub now: i64,
    pub hold_ms: i64,
    /// The wait to answer when every slot is taken.
    pub full_backoff_ms: i64,
}

/// The decision on one read of the key's item, applied to `item`: the message's limits
/// become the asked ones, expired leases are dropped, and a granted start adds the
/// holder's lease and counts in the rate window. The bool says whether `item` must be
/// written (a grant, or asked limits that changed); a refusal that changes nothing
/// else writes nothing.
pub(super) fn decide(item: &mut FlowItem, ask: &Ask) -> (Grant, bool) {
    let before = item.limits.clone();
    item.limits.ask(ask.fc);
    item.leases.retain(|_, expiry| *expiry > ask.now);
    let changed = item.limits != before;
    if let Some(expiry) = item.leases.get(ask.holder) {
        return (Grant::Wait { until_ms: *expiry }, changed);
    }
    let in_flight = u32::try_from(item.leases.len()).unwrap_or(u32::MAX);
    let grant = match item.limits.try_start(ask.now, in_flight) {
        Ok(()) => {
            let expiry = ask.now.saturating_add(ask.hold_ms.max(0));
            item.leases.insert(ask.holder.to_string(), expiry);
            Grant::Granted
        }
        Err(Refusal::Paused) => Grant::Paused,
        Err(Refusal::Full) => Grant::Wait {
            until_ms: ask.now.saturating_add(ask.full_backoff_ms),
        },
        Err(Refusal::RateUntil(end)) => Grant::Wait { until_ms: end },
    };
    let write = grant == Grant::Granted || item.limits != before;
    (grant, write)
}

/// The jittered wait for a key whose slots are all taken.
fn full_backoff() -> i64 {
    FULL_BACKOFF_MS + rand::random_range(0..=FULL_JITTER_MS)
}

/// A randomised pause before reading again after a lost race; doubles per attempt.
pub(super) fn race_pause(attempt: u32) -> Duration {
    let ceiling = 10u64 << attempt.min(5);
    Duration::from_millis(ceiling / 2 + rand::random_range(0..=ceiling / 2))
}

impl DynamoAdmission {
    /// Asks for a slot under `fc.key` for `holder` (the message id) at `now_ms`, to be
    /// held at most `hold_ms` (the attempt's longest duration plus a margin: a lease that
    /// expires while its attempt still runs lets another start beside it). The message's
    /// limits become the key's asked limits (the latest wins; pinned ones override).
    /// Requests: one consistent `GetItem`, plus one conditional `UpdateItem` when
    /// granted (or when the asked limits changed); a lost race repeats both.
    pub async fn acquire(
        &self,
        fc: &FlowControl,
        holder: &str,
        now_ms: i64,
        hold_ms: i64,
    ) -> Result<Grant, AwsError> {
        let mut written: Option<i64> = None;
        for attempt in 1..=MAX_RACES {
            let stored = self.store.get_flow(&fc.key).await?;
            let mut item = stored.unwrap_or_else(|| FlowItem::new(&fc.key));
            // A write that landed although its answer was lost reads back as our lease.
            if written.is_some_and(|e| item.leases.get(holder) == Some(&e)) {
                return Ok(Grant::Granted);
            }
            let ask = Ask {
                fc,
                holder,
                now: now_ms,
                hold_ms,
                full_backoff_ms: full_backoff(),
            };
            let (grant, write) = decide(&mut item, &ask);
            if !write {
                return Ok(grant);
            }
            written = (grant == Grant::Granted)
                .then(|| item.leases.get(holder).copied())
                .flatten();
            if self.store.put_flow(&item).await? {
                return Ok(grant);
            }
            tokio::time::sleep(race_pause(attempt)).await;
        }
        // Contended that long: the key is busy, come back shortly.
        Ok(Grant::Wait {
            until_ms: now_ms.saturating_add(full_backoff()),
        })
    }

    /// Gives back `holder`'s slot under `key`. Idempotent: releasing a lease that is gone
    /// (released before, or expired and reclaimed) does nothing. One conditional
    /// `UpdateItem`.
    pub async fn release(&self, key: &str, holder: &str) -> Result<(), AwsError> {
        self.store.release_lease(key, holder).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use qpost_core::flow::FlowCommand;

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn fc(parallelism: Option<u32>, rate: Option<u32>, period_secs: Option<u64>) -> FlowControl {
        FlowControl {
            key: "k".into(),
            parallelism,
            rate,
            period_secs,
        }
    }

    fn ask<'a>(fc: &'a FlowControl, holder: &'a str, now: i64) -> Ask<'a> {
        Ask {
            fc,
            holder,
            now,
            hold_ms: 60_000,
            full_backoff_ms: 1_500,
        }
    }

    #[test]
    fn parallelism_n_grants_n_leases_then_asks_to_wait_a_short_while() {
        let (mut item, limits) = (FlowItem::new("k"), fc(Some(2), None, None));
        assert_eq!(
            decide(&mut item, &ask(&limits, "a", T0)),
            (Grant::Granted, true)
        );
        assert_eq!(
            decide(&mut item, &ask(&limits, "b", T0)),
            (Grant::Granted, true)
        );
        let (grant, write) = decide(&mut item, &ask(&limits, "c", T0));
        assert_eq!(
            grant,
            Grant::Wait {
                until_ms: T0 + 1_500
            }
        );
        assert!(!write, "a refusal that changes nothing writes nothing");
        assert_eq!(item.leases.get("a"), Some(&(T0 + 60_000)));
    }

    #[test]
    fn an_expired_lease_is_reclaimed_by_the_next_acquirer() {
        let (mut item, limits) = (FlowItem::new("k"), fc(Some(1), None, None));
        decide(&mut item, &ask(&limits, "crashed", T0));
        let later = T0 + 60_000;
        assert_eq!(
            decide(&mut item, &ask(&limits, "b", later)).0,
            Grant::Granted
        );
        assert!(!item.leases.contains_key("crashed"));
    }

    #[test]
    fn a_holder_with_a_live_lease_waits_for_it_instead_of_taking_a_second_slot() {
        let (mut item, limits) = (FlowItem::new("k"), fc(Some(5), None, None));
        decide(&mut item, &ask(&limits, "a", T0));
        let (grant, write) = decide(&mut item, &ask(&limits, "a", T0 + 10));
        assert_eq!(
            grant,
            Grant::Wait {
                until_ms: T0 + 60_000
            }
        );
        assert!(!write);
        assert_eq!(item.leases.len(), 1);
    }

    #[test]
    fn a_used_up_rate_waits_for_the_end_of_the_window() {
        let (mut item, limits) = (FlowItem::new("k"), fc(None, Some(2), Some(10)));
        for holder in ["a", "b"] {
            assert_eq!(
                decide(&mut item, &ask(&limits, holder, T0)).0,
                Grant::Granted
            );
        }
        let grant = decide(&mut item, &ask(&limits, "c", T0 + 4_000)).0;
        assert_eq!(
            grant,
            Grant::Wait {
                until_ms: T0 + 10_000
            }
        );
        assert_eq!(
            decide(&mut item, &ask(&limits, "c", T0 + 10_000)).0,
            Grant::Granted
        );
    }

    #[test]
    fn a_paused_key_grants_nothing_and_its_records_come_back_later() {
        let (mut item, limits) = (FlowItem::new("k"), fc(Some(1), None, None));
        item.limits.ask(&limits);
        item.limits.command(FlowCommand::Pause, T0);
        assert_eq!(
            decide(&mut item, &ask(&limits, "a", T0)),
            (Grant::Paused, false)
        );
        assert_eq!(Grant::Paused.retry_at(T0), Some(T0 + PAUSE_RECHECK_MS));
        assert_eq!(Grant::Granted.retry_at(T0), None);
    }

    #[test]
    fn the_newest_limits_are_asked_and_stored_even_when_refused_but_pins_win() {
        let mut item = FlowItem::new("k");
        decide(&mut item, &ask(&fc(Some(1), None, None), "a", T0));
        let (grant, write) = decide(&mut item, &ask(&fc(Some(2), None, None), "b", T0));
        assert_eq!(
            (grant, write),
            (Grant::Granted, true),
            "the new parallelism applies"
        );
        let (grant, write) = decide(&mut item, &ask(&fc(Some(1), None, None), "c", T0));
        assert!(
            matches!(grant, Grant::Wait { .. }) && write,
            "changed limits are stored"
        );
        item.limits.command(
            FlowCommand::Pin {
                parallelism: Some(3),
                rate: None,
                period_secs: None,
            },
            T0,
        );
        assert_eq!(
            decide(&mut item, &ask(&fc(Some(1), None, None), "c", T0)).0,
            Grant::Granted
        );
    }

    #[test]
    fn race_pauses_grow_and_stay_short() {
        assert!(race_pause(1) <= Duration::from_millis(20));
        assert!(race_pause(50) <= Duration::from_millis(320));
        assert!((FULL_BACKOFF_MS..=FULL_BACKOFF_MS + FULL_JITTER_MS).contains(&full_backoff()));
    }
}
