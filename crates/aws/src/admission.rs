//! The admission port in AWS mode: flow-control keys, kept in one DynamoDB item per key
//! (`store::flow`) that the deliver function's leases (`leases`: acquire before an
//! attempt, release after) and the management API read and write alike. Queue order,
//! parallelism and pauses are not applied here (see the README).
//!
//! A flow-control key is known while a stored message uses it, or once an attempt or a
//! command wrote its item. Its limits are those the latest attempted message asked for
//! (the newest stored message's while none was attempted yet), unless pinned; its
//! in-flight count is its unexpired leases; its wait list is its stored messages that
//! hold no lease.

mod leases;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::flow::{FlowCommand, FlowControl, FlowControlInfo, GlobalParallelism};
use qpost_core::ids::MessageId;
use qpost_core::ports::{Admission, MessageStore};
use qpost_core::queue::Queue;

pub use leases::{FULL_BACKOFF_MS, FULL_JITTER_MS, Grant, PAUSE_RECHECK_MS};

use crate::error::AwsError;
use crate::store::DynamoStore;
use crate::store::flow::FlowItem;

/// Reads and conditional writes a command tries before giving up on a contended key.
const MAX_COMMAND_RACES: u32 = 10;

/// What the stored messages say about one key.
#[derive(Default)]
struct Waiting {
    ids: Vec<MessageId>,
    /// The limits of the newest message using the key.
    asked: Option<FlowControl>,
}

/// Flow-control keys on DynamoDB: the management port, and the leases the deliver
/// function takes ([`DynamoAdmission::acquire`], [`DynamoAdmission::release`]).
pub struct DynamoAdmission {
    store: Arc<DynamoStore>,
    global_parallelism: u32,
    clock: Arc<dyn Clock>,
}

impl DynamoAdmission {
    /// `global_parallelism` is the configured maximum of attempts at once; the
    /// management API reads time from the system clock.
    pub fn new(store: Arc<DynamoStore>, global_parallelism: u32) -> Self {
        Self {
            store,
            global_parallelism,
            clock: Arc::new(SystemClock),
        }
    }

    /// The management API reads time (lease expiry, rate windows) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Stored messages by flow-control key (`only`: that key alone); one index scan.
    async fn waiting(&self, only: Option<&str>) -> qpost_core::Result<BTreeMap<String, Waiting>> {
        let mut waiting: BTreeMap<String, Waiting> = BTreeMap::new();
        // Oldest first, so the last message seen under a key is the newest.
        for wakeup in self.store.wakeups().await? {
            let Some(fc) = wakeup.flow_control else {
                continue;
            };
            if only.is_some_and(|k| k != fc.key) {
                continue;
            }
            let entry = waiting.entry(fc.key.clone()).or_default();
            entry.ids.push(wakeup.id);
            entry.asked = Some(fc);
        }
        Ok(waiting)
    }

    /// Every key with its item and stored messages, by name.
    async fn known(&self) -> qpost_core::Result<BTreeMap<String, FlowControlInfo>> {
        let now = self.clock.now_ms();
        let waiting = self.waiting(None).await?;
        let items: BTreeMap<String, FlowItem> = self
            .store
            .list_flows()
            .await?
            .into_iter()
            .map(|i| (i.key.clone(), i))
            .collect();
        let keys: BTreeSet<&String> = waiting.keys().chain(items.keys()).collect();
        Ok(keys
            .into_iter()
            .map(|key| {
                let info = info(key, waiting.get(key), items.get(key), now);
                (key.clone(), info)
            })
            .collect())
    }

    /// The item of `key`, or a fresh one seeded from its stored messages; `None` when
    /// the key is unknown.
    async fn item_or_seed(&self, key: &str) -> qpost_core::Result<Option<FlowItem>> {
        if let Some(item) = self.store.get_flow(key).await? {
            return Ok(Some(item));
        }
        let waiting = self.waiting(Some(key)).await?;
        Ok(waiting.get(key).map(|w| seeded(key, Some(w))))
    }
}

/// A key without an item: the newest stored message's limits, nothing counted.
fn seeded(key: &str, waiting: Option<&Waiting>) -> FlowItem {
    let mut item = FlowItem::new(key);
    if let Some(fc) = waiting.and_then(|w| w.asked.as_ref()) {
        item.limits.ask(fc);
    }
    item
}

/// The management view of a key at `now`.
fn info(
    key: &str,
    waiting: Option<&Waiting>,
    item: Option<&FlowItem>,
    now: i64,
) -> FlowControlInfo {
    let seed;
    let item = match item {
        Some(item) => item,
        None => {
            seed = seeded(key, waiting);
            &seed
        }
    };
    let holders: HashSet<&str> = item.live_leases(now).map(|(h, _)| h.as_str()).collect();
    let waiting = waiting.map_or(0, |w| {
        w.ids
            .iter()
            .filter(|id| !holders.contains(id.as_str()))
            .count()
    });
    let in_flight = u32::try_from(holders.len()).unwrap_or(u32::MAX);
    item.limits.info(key, now, in_flight, waiting as u64)
}

#[async_trait]
impl Admission for DynamoAdmission {
    async fn flow_keys(&self, search: Option<&str>) -> qpost_core::Result<Vec<FlowControlInfo>> {
        let search = search.map(str::to_lowercase);
        Ok(self
            .known()
            .await?
            .into_values()
            .filter(|i| {
                search
                    .as_deref()
                    .is_none_or(|s| i.flow_control_key.to_lowercase().contains(s))
            })
            .collect())
    }

    async fn flow_key(&self, key: &str) -> qpost_core::Result<Option<FlowControlInfo>> {
        let now = self.clock.now_ms();
        let item = self.store.get_flow(key).await?;
        let waiting = self.waiting(Some(key)).await?;
        if item.is_none() && waiting.is_empty() {
            return Ok(None);
        }
        Ok(Some(info(key, waiting.get(key), item.as_ref(), now)))
    }

    /// Applies `command` to the key's item with a write conditional on the version read
    /// (read again after a lost race); false when the key is unknown.
    async fn flow_command(&self, key: &str, command: FlowCommand) -> qpost_core::Result<bool> {
        for attempt in 1..=MAX_COMMAND_RACES {
            let Some(mut item) = self.item_or_seed(key).await? else {
                return Ok(false);
            };
            item.limits.command(command.clone(), self.clock.now_ms());
            if self.store.put_flow(&item).await? {
                return Ok(true);
            }
            tokio::time::sleep(leases::race_pause(attempt)).await;
        }
        Err(AwsError::Conflict(MAX_COMMAND_RACES).into())
    }

    /// The configured maximum, and the leases live across all flow-control keys: the
    /// attempts in flight under a key. Attempts of messages without a key hold no lease
    /// and are not counted.
    async fn global_parallelism(&self) -> qpost_core::Result<GlobalParallelism> {
        let now = self.clock.now_ms();
        let leases: usize = self
            .store
            .list_flows()
            .await?
            .iter()
            .map(|i| i.live_leases(now).count())
            .sum();
        Ok(GlobalParallelism {
            parallelism_max: self.global_parallelism,
            parallelism_count: u32::try_from(leases).unwrap_or(u32::MAX),
        })
    }

    /// Queues are stored by the queue store; nothing here applies their settings.
    async fn queue_changed(&self, _queue: &Queue) -> qpost_core::Result<()> {
        Ok(())
    }

    async fn queue_deleted(&self, _name: &str) -> qpost_core::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn asked(ids: &[&MessageId], parallelism: Option<u32>, rate: Option<u32>) -> Waiting {
        Waiting {
            ids: ids.iter().map(|id| (*id).clone()).collect(),
            asked: Some(FlowControl {
                key: "k".into(),
                parallelism,
                rate,
                period_secs: Some(60),
            }),
        }
    }

    #[test]
    fn a_key_without_an_item_shows_the_newest_stored_limits_and_counts_nothing() {
        let (a, b) = (MessageId::generate(), MessageId::generate());
        let i = info("k", Some(&asked(&[&a, &b], Some(3), Some(10))), None, T0);
        assert_eq!(
            (
                i.wait_list_size,
                i.parallelism_max,
                i.rate_max,
                i.rate_period
            ),
            (2, 3, 10, 60)
        );
        assert_eq!(
            (i.parallelism_count, i.rate_count, i.rate_period_start),
            (0, 0, 0)
        );
    }

    #[test]
    fn live_leases_count_in_flight_and_leave_the_wait_list() {
        let (a, b) = (MessageId::generate(), MessageId::generate());
        let waiting = asked(&[&a, &b], Some(3), None);
        let mut item = seeded("k", Some(&waiting));
        assert_eq!(item.limits.try_start(T0, 0), Ok(()));
        item.leases.insert(a.to_string(), T0 + 1_000);
        item.leases.insert("gone".into(), T0 - 1);
        let i = info("k", Some(&waiting), Some(&item), T0);
        assert_eq!((i.parallelism_count, i.wait_list_size), (1, 1));
        assert_eq!((i.rate_count, i.rate_period_start), (1, T0 / 1000));
        let later = info("k", Some(&waiting), Some(&item), T0 + 1_000);
        assert_eq!((later.parallelism_count, later.wait_list_size), (0, 2));
    }

    #[test]
    fn the_items_limits_and_commands_win_over_the_stored_messages() {
        let a = MessageId::generate();
        let mut item = FlowItem::new("k");
        item.limits.ask(&FlowControl {
            key: "k".into(),
            parallelism: Some(1),
            rate: None,
            period_secs: None,
        });
        item.limits.command(FlowCommand::Pause, T0);
        let i = info("k", Some(&asked(&[&a], Some(5), Some(9))), Some(&item), T0);
        assert_eq!((i.parallelism_max, i.rate_max, i.is_paused), (1, 0, true));
    }
}
