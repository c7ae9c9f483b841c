//! Admission of due messages to an attempt: queue order, queue parallelism and pause,
//! and flow-control limits. The worker asks before every attempt and reports after it.
//!
//! All state sits behind one mutex and no decision awaits while holding it, so the
//! limits hold exactly however many attempts run at once. Messages held back are kept
//! here and handed back (to the worker from [`Gate::finished`], or armed on the timer
//! directly after an API command) already counted, so nothing overtakes them.

mod key;
mod lane;
#[cfg(test)]
mod simulation;
mod state;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use async_trait::async_trait;
use qpost_core::clock::{Clock, SystemClock};
use qpost_core::delivery::Step;
use qpost_core::flow::{FlowCommand, FlowControlInfo, GlobalParallelism};
use qpost_core::ports::{Admission, Wakeup};
use qpost_core::queue::Queue;

use crate::store::{SqliteStore, StoreError};
use crate::timer::Timer;
use state::State;

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
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    /// Where releases not caused by an attempt are armed; set once by the worker.
    sink: OnceLock<Arc<Timer>>,
    /// Where flow-control keys' pauses and pins are kept across restarts; set once at
    /// start-up ([`Gate::persist_flows`]).
    flows: OnceLock<Arc<SqliteStore>>,
    /// Serialises flow-control commands with their writes, so the last command's state is
    /// the one kept.
    flow_edits: tokio::sync::Mutex<()>,
}

impl Gate {
    /// A gate for a worker running at most `max` attempts at once, on the system clock.
    pub fn new(max: u32) -> Self {
        Self::with_clock(max, Arc::new(SystemClock))
    }

    /// A gate whose API commands and reports read time from `clock`.
    pub fn with_clock(max: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            max,
            state: Mutex::new(State::default()),
            clock,
            sink: OnceLock::new(),
            flows: OnceLock::new(),
            flow_edits: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms releases made by API commands on `timer` from now on, and those made before.
    pub fn attach(&self, timer: Arc<Timer>) {
        let unsent = {
            let mut state = self.lock();
            let _ = self.sink.set(timer);
            std::mem::take(&mut state.unsent)
        };
        self.send(unsent);
    }

    /// Arms released wake-ups; without a timer yet they wait for [`Gate::attach`]. The
    /// sink is read under the state lock, so `attach` cannot miss any.
    fn send(&self, wakeups: Vec<Wakeup>) {
        if wakeups.is_empty() {
            return;
        }
        let timer = {
            let mut state = self.lock();
            match self.sink.get() {
                Some(timer) => Arc::clone(timer),
                None => {
                    state.unsent.extend(wakeups);
                    return;
                }
            }
        };
        for wakeup in wakeups {
            timer.push(wakeup);
        }
    }

    /// Keeps every flow-control command's result (pause, pins, limits) in `store` from now
    /// on, for [`Gate::restore_flows`] after a restart.
    pub fn persist_flows(&self, store: Arc<SqliteStore>) {
        let _ = self.flows.set(store);
    }

    /// Makes the keys that were given commands known again, paused and pinned as they
    /// were; their rate windows start afresh. Returns how many. Called at start-up,
    /// before any message reaches the gate.
    pub async fn restore_flows(&self) -> Result<usize, StoreError> {
        let Some(store) = self.flows.get() else {
            return Ok(0);
        };
        let kept = store.list_flow_limits().await?;
        let now = self.clock.now_ms();
        let mut state = self.lock();
        for (key, mut limits) in kept.iter().cloned() {
            limits.command(FlowCommand::Reset, now);
            state.restore_key(&key, limits);
        }
        Ok(kept.len())
    }

    /// Writes the state of `key` after a command, when flow-control state is persisted.
    async fn keep_flow(&self, key: &str) -> qpost_core::Result<()> {
        let Some(store) = self.flows.get() else {
            return Ok(());
        };
        let Some(limits) = self.lock().limits_of(key) else {
            return Ok(());
        };
        Ok(store.put_flow_limits(key, &limits).await?)
    }

    /// Decides whether the due message `wakeup` is attempted now.
    pub fn admit(&self, wakeup: &Wakeup, now_ms: i64) -> Admit {
        let mut released = Vec::new();
        let admit = self.lock().admit(wakeup, now_ms, &mut released);
        self.send(released);
        admit
    }

    /// Reports the end of an attempt; returns held-back wake-ups that may go now.
    pub fn finished(&self, wakeup: &Wakeup, step: &Step, now_ms: i64) -> Vec<Wakeup> {
        let mut released = Vec::new();
        self.lock().finished(wakeup, step, now_ms, &mut released);
        released
    }
}

#[async_trait]
impl Admission for Gate {
    async fn flow_keys(&self, search: Option<&str>) -> qpost_core::Result<Vec<FlowControlInfo>> {
        Ok(self.lock().flow_keys(search, self.clock.now_ms()))
    }

    async fn flow_key(&self, key: &str) -> qpost_core::Result<Option<FlowControlInfo>> {
        Ok(self.lock().flow_key(key, self.clock.now_ms()))
    }

    async fn flow_command(&self, key: &str, command: FlowCommand) -> qpost_core::Result<bool> {
        let _edit = self.flow_edits.lock().await;
        let mut released = Vec::new();
        let known = self
            .lock()
            .command(key, command, self.clock.now_ms(), &mut released);
        self.send(released);
        if known {
            self.keep_flow(key).await?;
        }
        Ok(known)
    }

    async fn global_parallelism(&self) -> qpost_core::Result<GlobalParallelism> {
        Ok(GlobalParallelism {
            parallelism_max: self.max,
            parallelism_count: self.lock().in_flight,
        })
    }

    async fn queue_changed(&self, queue: &Queue) -> qpost_core::Result<()> {
        let mut released = Vec::new();
        self.lock().queue_changed(
            &queue.name,
            queue.parallelism,
            queue.paused,
            self.clock.now_ms(),
            &mut released,
        );
        self.send(released);
        Ok(())
    }

    async fn queue_deleted(&self, name: &str) -> qpost_core::Result<()> {
        let mut released = Vec::new();
        self.lock().queue_deleted(name, &mut released);
        self.send(released);
        Ok(())
    }
}
