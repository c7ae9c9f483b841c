//! The whole admission state behind the gate's one lock: queue lanes, flow-control keys,
//! and what links them to attempts (grants, the rate sentinels, callbacks of queued
//! messages). Every method is synchronous and takes `now`, so limits are decided
//! atomically and tests drive time by hand.

use std::collections::{HashMap, HashSet};

use qpost_core::delivery::{Outcome, Step};
use qpost_core::flow::limits::KeyLimits;
use qpost_core::flow::{FlowCommand, FlowControlInfo};
use qpost_core::ids::MessageId;
use qpost_core::ports::Wakeup;

use super::Admit;
use super::key::{Block, Key};
use super::lane::Lane;

/// How long an early-finished callback is remembered for an owner that has not reported yet.
const ORPHAN_TTL_MS: i64 = 60_000;
/// Orphans are pruned by age only past this many, to keep the common path cheap.
const ORPHAN_PRUNE_AT: usize = 1024;

/// Where a message stands with its flow-control key.
enum Stage {
    Go,
    Wait,
    At(i64),
}

#[derive(Default)]
pub(super) struct State {
    lanes: HashMap<String, Lane>,
    keys: HashMap<String, Key>,
    /// Released messages whose queue slot and key counts are already taken: their next
    /// admission goes at once, so nothing can overtake them between release and attempt.
    granted: HashSet<MessageId>,
    /// Messages out in the timer as their key's rate sentinel, by key.
    sentinels: HashMap<MessageId, String>,
    /// Timer copies of recalled sentinels (id, due), dropped when they come due.
    stale: HashMap<(MessageId, i64), u32>,
    /// Callback of a queued message → (queue, owner): the owner's slot waits for it.
    callbacks: HashMap<MessageId, (String, MessageId)>,
    /// Callbacks that finished before their owner's attempt reported (spawned messages
    /// are armed before the attempt returns), with when they finished.
    orphans: HashMap<MessageId, i64>,
    /// Attempts running.
    pub in_flight: u32,
    /// Attempts of queued messages running (only then can an orphan appear).
    queued_in_flight: u32,
    /// Releases made before the gate had a timer to arm them on.
    pub unsent: Vec<Wakeup>,
}

fn is_final(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Delivered | Outcome::Failed { .. } | Outcome::Cancelled
    )
}

impl State {
    /// Decides about a due message; wake-ups it releases meanwhile go to `out`.
    pub fn admit(&mut self, w: &Wakeup, now: i64, out: &mut Vec<Wakeup>) -> Admit {
        if self.take_stale(w) {
            return Admit::Parked;
        }
        if self.granted.remove(&w.id) {
            self.start(w);
            return Admit::Go;
        }
        let sentinel_of = self.sentinels.remove(&w.id);
        if let Some(key) = sentinel_of.as_ref().and_then(|k| self.keys.get_mut(k)) {
            key.rate_sentinel = None;
        }
        let admit = self.admit_fresh(w, now, sentinel_of.is_some());
        if let Some(key) = sentinel_of {
            // The period it waited for has begun: the others waiting may go too.
            self.release_key(&key, now, out);
        }
        admit
    }

    fn admit_fresh(&mut self, w: &Wakeup, now: i64, sentinel: bool) -> Admit {
        if let (false, Some(fc)) = (sentinel, &w.flow_control) {
            self.keys
                .entry(fc.key.clone())
                .or_insert_with(Key::new)
                .ask(fc);
        }
        if let Some(q) = &w.queue_name
            && !self.lanes.entry(q.clone()).or_default().enter(w)
        {
            return Admit::Parked;
        }
        match self.key_stage(w, now, sentinel) {
            Stage::Go => {
                self.start(w);
                Admit::Go
            }
            Stage::Wait => Admit::Parked,
            Stage::At(t) => Admit::At(t),
        }
    }

    fn start(&mut self, w: &Wakeup) {
        self.in_flight += 1;
        if w.queue_name.is_some() {
            self.queued_in_flight += 1;
        }
    }

    /// Counts `w` against its key, or makes it wait: in the key's line, or in the timer
    /// as the key's one rate sentinel.
    fn key_stage(&mut self, w: &Wakeup, now: i64, first_in_line: bool) -> Stage {
        let Some(fc) = &w.flow_control else {
            return Stage::Go;
        };
        let key = self.keys.entry(fc.key.clone()).or_insert_with(Key::new);
        match key.try_start(now, first_in_line) {
            Ok(()) => Stage::Go,
            Err(Block::Until(t)) if key.rate_sentinel.is_none() => {
                key.rate_sentinel = Some(Wakeup {
                    due_ms: t,
                    ..w.clone()
                });
                self.sentinels.insert(w.id.clone(), fc.key.clone());
                Stage::At(t)
            }
            Err(_) if first_in_line => {
                key.waiting.push_front(w.clone());
                Stage::Wait
            }
            Err(_) => {
                key.waiting.push_back(w.clone());
                Stage::Wait
            }
        }
    }

    /// Reports the end of an attempt; wake-ups it releases go to `out`.
    pub fn finished(&mut self, w: &Wakeup, step: &Step, now: i64, out: &mut Vec<Wakeup>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if w.queue_name.is_some() {
            self.queued_in_flight = self.queued_in_flight.saturating_sub(1);
        }
        if let Some(fc) = &w.flow_control {
            if let Some(key) = self.keys.get_mut(&fc.key) {
                key.in_flight = key.in_flight.saturating_sub(1);
            }
            self.release_key(&fc.key, now, out);
        }
        if is_final(&step.outcome) {
            if let Some(q) = &w.queue_name {
                self.finish_holder(q, &w.id, &step.spawned, now, out);
            }
            self.callback_finished(w, now, out);
        }
        if self.queued_in_flight == 0 {
            self.orphans.clear();
        }
    }

    /// A queued message is done; its slot waits for the callbacks it spawned.
    fn finish_holder(
        &mut self,
        q: &str,
        id: &MessageId,
        spawned: &[MessageId],
        now: i64,
        out: &mut Vec<Wakeup>,
    ) {
        if !self.lanes.get(q).is_some_and(|l| l.holds(id)) {
            return;
        }
        let pending: HashSet<MessageId> = spawned
            .iter()
            .filter(|cb| self.orphans.remove(*cb).is_none())
            .cloned()
            .collect();
        for cb in &pending {
            self.callbacks
                .insert(cb.clone(), (q.to_string(), id.clone()));
        }
        if self.lanes.get_mut(q).is_some_and(|l| l.finish(id, pending)) {
            self.release_lane(q, now, out);
        }
    }

    /// If `w` is a callback a queued message waits for, frees that message's slot.
    fn callback_finished(&mut self, w: &Wakeup, now: i64, out: &mut Vec<Wakeup>) {
        if let Some((q, owner)) = self.callbacks.remove(&w.id) {
            if self
                .lanes
                .get_mut(&q)
                .is_some_and(|l| l.callback_done(&owner, &w.id))
            {
                self.release_lane(&q, now, out);
            }
        } else if w.queue_name.is_none() && w.flow_control.is_none() && self.queued_in_flight > 0 {
            self.orphans.insert(w.id.clone(), now);
            if self.orphans.len() > ORPHAN_PRUNE_AT {
                self.orphans.retain(|_, at| now - *at < ORPHAN_TTL_MS);
            }
        }
    }

    /// Lets waiting messages of queue `q` through while it has free slots.
    fn release_lane(&mut self, q: &str, now: i64, out: &mut Vec<Wakeup>) {
        while let Some(w) = self.lanes.get_mut(q).and_then(Lane::next_ready) {
            match self.key_stage(&w, now, false) {
                Stage::Go => {
                    self.granted.insert(w.id.clone());
                    out.push(w);
                }
                Stage::Wait => {}
                Stage::At(t) => out.push(Wakeup { due_ms: t, ..w }),
            }
        }
    }

    /// Lets messages waiting for key `name` through, in order, while its limits allow;
    /// when the rate is what stops them, the head goes to the timer as the sentinel.
    fn release_key(&mut self, name: &str, now: i64, out: &mut Vec<Wakeup>) {
        let Some(key) = self.keys.get_mut(name) else {
            return;
        };
        while let Some(w) = key.waiting.pop_front() {
            match key.try_start(now, true) {
                Ok(()) => {
                    self.granted.insert(w.id.clone());
                    out.push(w);
                }
                Err(Block::Until(t)) if key.rate_sentinel.is_none() => {
                    let sentinel = Wakeup { due_ms: t, ..w };
                    key.rate_sentinel = Some(sentinel.clone());
                    self.sentinels.insert(sentinel.id.clone(), name.to_string());
                    out.push(sentinel);
                    return;
                }
                Err(_) => {
                    key.waiting.push_front(w);
                    return;
                }
            }
        }
    }

    /// A queue was created, resized, paused or resumed.
    pub fn queue_changed(
        &mut self,
        name: &str,
        parallelism: u32,
        paused: bool,
        now: i64,
        out: &mut Vec<Wakeup>,
    ) {
        let lane = self.lanes.entry(name.to_string()).or_default();
        lane.parallelism = parallelism.max(1);
        lane.paused = paused;
        self.release_lane(name, now, out);
    }

    /// A queue was deleted: what waited in it is handed back to be admitted afresh.
    pub fn queue_deleted(&mut self, name: &str, out: &mut Vec<Wakeup>) {
        if let Some(mut lane) = self.lanes.remove(name) {
            out.extend(lane.drain_waiting());
        }
        self.callbacks.retain(|_, (q, _)| q != name);
    }

    /// Applies a command to key `name`; false when no message ever used the key.
    /// The persisted state of key `name`, if known.
    pub fn limits_of(&self, name: &str) -> Option<KeyLimits> {
        self.keys.get(name).map(|k| k.limits().clone())
    }

    /// Makes key `name` known with `limits` (at start-up, before any message asks).
    pub fn restore_key(&mut self, name: &str, limits: KeyLimits) {
        self.keys
            .entry(name.to_string())
            .or_insert_with(|| Key::with_limits(limits));
    }

    pub fn command(
        &mut self,
        name: &str,
        command: FlowCommand,
        now: i64,
        out: &mut Vec<Wakeup>,
    ) -> bool {
        let Some(key) = self.keys.get_mut(name) else {
            return false;
        };
        let recall = !matches!(command, FlowCommand::Pause | FlowCommand::Resume);
        key.command(command, now);
        if recall {
            self.recall_sentinel(name, now);
        }
        self.release_key(name, now, out);
        true
    }

    /// The limits changed, so the rate sentinel may not need to wait for its period's
    /// end: it rejoins the head of the line now, and its copy in the timer is dropped
    /// when it comes due.
    fn recall_sentinel(&mut self, name: &str, now: i64) {
        let Some(key) = self.keys.get_mut(name) else {
            return;
        };
        let Some(sentinel) = key.rate_sentinel.take() else {
            return;
        };
        self.sentinels.remove(&sentinel.id);
        *self
            .stale
            .entry((sentinel.id.clone(), sentinel.due_ms))
            .or_default() += 1;
        key.waiting.push_front(Wakeup {
            due_ms: now,
            ..sentinel
        });
    }

    /// Whether `w` is the timer copy of a recalled sentinel (then it is forgotten).
    fn take_stale(&mut self, w: &Wakeup) -> bool {
        let slot = (w.id.clone(), w.due_ms);
        let Some(n) = self.stale.get_mut(&slot) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.stale.remove(&slot);
        }
        true
    }

    pub fn flow_key(&self, name: &str, now: i64) -> Option<FlowControlInfo> {
        self.keys.get(name).map(|k| k.info(name, now))
    }

    /// Keys whose name contains `search` (ignoring case), by name.
    pub fn flow_keys(&self, search: Option<&str>, now: i64) -> Vec<FlowControlInfo> {
        let search = search.map(str::to_lowercase);
        let mut infos: Vec<FlowControlInfo> = self
            .keys
            .iter()
            .filter(|(name, _)| {
                search
                    .as_deref()
                    .is_none_or(|s| name.to_lowercase().contains(s))
            })
            .map(|(name, k)| k.info(name, now))
            .collect();
        infos.sort_by(|a, b| a.flow_control_key.cmp(&b.flow_control_key));
        infos
    }

    #[cfg(test)]
    pub fn lane_counts(&self, q: &str) -> (usize, usize) {
        self.lanes.get(q).map_or((0, 0), Lane::counts)
    }
}
