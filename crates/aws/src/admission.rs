//! The admission port in AWS mode, for the management API only: it reports what the
//! store knows and keeps the commands, but enforces nothing. Queue order and parallelism
//! and flow-control limits are not applied to deliveries in AWS mode yet (the README says
//! what would apply them); this port never pretends otherwise: in-flight and rate counts
//! are always 0.
//!
//! A flow-control key is known while a stored message uses it, or once a command was
//! given for it; its limits are those the newest such message asks for, unless pinned.
//! Commands are persisted as one document per key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use qpost_core::flow::{
    DEFAULT_PERIOD_SECS, FlowCommand, FlowControl, FlowControlInfo, GlobalParallelism,
};
use qpost_core::ports::{Admission, MessageStore};
use qpost_core::queue::Queue;
use serde::{Deserialize, Serialize};

use crate::store::DynamoStore;

/// Document kind of flow-control keys in the table.
const FLOW: &str = "flow";

/// The commands given for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowDoc {
    key: String,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    pinned_parallelism: Option<u32>,
    #[serde(default)]
    pinned_rate: Option<u32>,
    #[serde(default)]
    pinned_period_secs: Option<u64>,
}

impl FlowDoc {
    /// Applies `command`. The rate and parallelism counters it may reset are not kept.
    fn apply(&mut self, command: FlowCommand) {
        match command {
            FlowCommand::Pause => self.paused = true,
            FlowCommand::Resume => self.paused = false,
            FlowCommand::Pin {
                parallelism,
                rate,
                period_secs,
            } => {
                self.pinned_parallelism = parallelism.or(self.pinned_parallelism);
                self.pinned_rate = rate.or(self.pinned_rate);
                self.pinned_period_secs = period_secs.or(self.pinned_period_secs);
            }
            FlowCommand::Unpin { parallelism, rate } => {
                if parallelism {
                    self.pinned_parallelism = None;
                }
                if rate {
                    self.pinned_rate = None;
                    self.pinned_period_secs = None;
                }
            }
            FlowCommand::ResetRate | FlowCommand::Reset => {}
        }
    }
}

/// What the stored messages say about one key.
#[derive(Default)]
struct Waiting {
    count: u64,
    /// The limits of the newest message using the key.
    asked: Option<FlowControl>,
}

/// Reports flow-control keys from the store and persists commands; see the module docs.
pub struct DynamoAdmission {
    store: Arc<DynamoStore>,
    global_parallelism: u32,
}

impl DynamoAdmission {
    /// `global_parallelism` is the configured maximum of attempts at once.
    pub fn new(store: Arc<DynamoStore>, global_parallelism: u32) -> Self {
        Self {
            store,
            global_parallelism,
        }
    }

    /// Every key with its waiting messages and commands, by name.
    async fn known(&self) -> qpost_core::Result<BTreeMap<String, FlowControlInfo>> {
        let mut waiting: BTreeMap<String, Waiting> = BTreeMap::new();
        // Oldest first, so the last message seen under a key is the newest.
        for wakeup in self.store.wakeups().await? {
            if let Some(fc) = wakeup.flow_control {
                let entry = waiting.entry(fc.key.clone()).or_default();
                entry.count += 1;
                entry.asked = Some(fc);
            }
        }
        let docs: Vec<FlowDoc> = self.store.list_docs(FLOW).await?;
        let mut docs: BTreeMap<String, FlowDoc> =
            docs.into_iter().map(|d| (d.key.clone(), d)).collect();
        let keys: BTreeSet<String> = waiting.keys().chain(docs.keys()).cloned().collect();
        Ok(keys
            .into_iter()
            .map(|key| {
                let doc = docs.remove(&key);
                let info = info(&key, waiting.get(&key), doc.as_ref());
                (key, info)
            })
            .collect())
    }
}

/// The management view of a key: limits pinned or asked, no counts (none are kept).
fn info(key: &str, waiting: Option<&Waiting>, doc: Option<&FlowDoc>) -> FlowControlInfo {
    let asked = waiting.and_then(|w| w.asked.as_ref());
    let pinned = |f: fn(&FlowDoc) -> Option<u32>| doc.and_then(f);
    let parallelism = pinned(|d| d.pinned_parallelism).or(asked.and_then(|a| a.parallelism));
    let rate = pinned(|d| d.pinned_rate).or(asked.and_then(|a| a.rate));
    let period = doc
        .and_then(|d| d.pinned_period_secs)
        .or(asked.map(FlowControl::period))
        .unwrap_or(DEFAULT_PERIOD_SECS);
    FlowControlInfo {
        flow_control_key: key.to_string(),
        wait_list_size: waiting.map_or(0, |w| w.count),
        parallelism_max: parallelism.unwrap_or(0),
        parallelism_count: 0,
        rate_max: rate.unwrap_or(0),
        rate_count: 0,
        rate_period: period,
        rate_period_start: 0,
        is_paused: doc.is_some_and(|d| d.paused),
        is_pinned_parallelism: doc.is_some_and(|d| d.pinned_parallelism.is_some()),
        is_pinned_rate: doc.is_some_and(|d| d.pinned_rate.is_some()),
    }
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
        Ok(self.known().await?.remove(key))
    }

    async fn flow_command(&self, key: &str, command: FlowCommand) -> qpost_core::Result<bool> {
        let stored: Option<FlowDoc> = self.store.get_doc(FLOW, key).await?;
        let mut doc = match stored {
            Some(doc) => doc,
            None if self.flow_key(key).await?.is_some() => FlowDoc {
                key: key.to_string(),
                ..FlowDoc::default()
            },
            None => return Ok(false),
        };
        doc.apply(command);
        self.store.put_doc(FLOW, key, &doc).await?;
        Ok(true)
    }

    async fn global_parallelism(&self) -> qpost_core::Result<GlobalParallelism> {
        Ok(GlobalParallelism {
            parallelism_max: self.global_parallelism,
            parallelism_count: 0,
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

    fn asked(parallelism: Option<u32>, rate: Option<u32>) -> Waiting {
        Waiting {
            count: 2,
            asked: Some(FlowControl {
                key: "k".into(),
                parallelism,
                rate,
                period_secs: Some(60),
            }),
        }
    }

    #[test]
    fn a_key_shows_the_newest_limits_unless_pinned_and_never_counts() {
        let i = info("k", Some(&asked(Some(3), Some(10))), None);
        assert_eq!(
            (
                i.wait_list_size,
                i.parallelism_max,
                i.rate_max,
                i.rate_period
            ),
            (2, 3, 10, 60)
        );
        assert_eq!((i.parallelism_count, i.rate_count), (0, 0));
        let mut doc = FlowDoc {
            key: "k".into(),
            ..Default::default()
        };
        doc.apply(FlowCommand::Pin {
            parallelism: Some(1),
            rate: None,
            period_secs: None,
        });
        doc.apply(FlowCommand::Pause);
        let i = info("k", Some(&asked(Some(3), Some(10))), Some(&doc));
        assert_eq!((i.parallelism_max, i.rate_max), (1, 10));
        assert!(i.is_paused && i.is_pinned_parallelism && !i.is_pinned_rate);
    }

    #[test]
    fn unpin_and_resume_undo_their_commands() {
        let mut doc = FlowDoc::default();
        doc.apply(FlowCommand::Pin {
            parallelism: Some(2),
            rate: Some(5),
            period_secs: Some(10),
        });
        doc.apply(FlowCommand::Pause);
        doc.apply(FlowCommand::Unpin {
            parallelism: false,
            rate: true,
        });
        doc.apply(FlowCommand::Resume);
        doc.apply(FlowCommand::Reset);
        assert_eq!(doc.pinned_parallelism, Some(2));
        assert_eq!((doc.pinned_rate, doc.pinned_period_secs), (None, None));
        assert!(!doc.paused);
        let i = info("k", None, Some(&doc));
        assert_eq!((i.wait_list_size, i.rate_period), (0, DEFAULT_PERIOD_SECS));
    }
}
