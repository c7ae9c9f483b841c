//! One flow-control key: its limits, pause and rate window (the shared model,
//! [`qpost_core::flow::limits::KeyLimits`]), the attempts in flight under it, and the
//! messages waiting for it (`qstash-api.md` §12).

use std::collections::VecDeque;

use qpost_core::flow::limits::{KeyLimits, Refusal};
use qpost_core::flow::{FlowCommand, FlowControl, FlowControlInfo};
use qpost_core::ports::Wakeup;

/// Why an attempt may not start under a key now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Block {
    /// Paused, all parallel slots taken, or others waiting first: wait to be released.
    Wait,
    /// The rate is used up: the period ends at this time (Unix ms).
    Until(i64),
}

pub(super) struct Key {
    limits: KeyLimits,
    /// Attempts in flight (or granted and about to start).
    pub in_flight: u32,
    /// Messages waiting for this key, in arrival order.
    pub waiting: VecDeque<Wakeup>,
    /// The message waiting for the end of the rate period in the timer (armed for that
    /// time) instead of in `waiting`; at most one does, and brings the others along
    /// when it comes back.
    pub rate_sentinel: Option<Wakeup>,
}

impl Key {
    pub fn new() -> Self {
        Self {
            limits: KeyLimits::default(),
            in_flight: 0,
            waiting: VecDeque::new(),
            rate_sentinel: None,
        }
    }

    /// A key restored at start-up with the limits, pins and pause it had.
    pub fn with_limits(limits: KeyLimits) -> Self {
        Self {
            limits,
            ..Self::new()
        }
    }

    /// The limits, pins, pause and rate window, as persisted.
    pub fn limits(&self) -> &KeyLimits {
        &self.limits
    }

    /// The limits a message asks for replace the previous ones (latest wins); pinned
    /// limits stay in force over them.
    pub fn ask(&mut self, fc: &FlowControl) {
        self.limits.ask(fc);
    }

    /// Counts an attempt starting now, or says why it may not. `first_in_line` skips the
    /// check that nobody waits ahead (for the head of the line and the rate sentinel).
    pub fn try_start(&mut self, now: i64, first_in_line: bool) -> Result<(), Block> {
        if !first_in_line && !self.waiting.is_empty() {
            return Err(Block::Wait);
        }
        match self.limits.try_start(now, self.in_flight) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(Refusal::Paused | Refusal::Full) => Err(Block::Wait),
            Err(Refusal::RateUntil(t)) => Err(Block::Until(t)),
        }
    }

    /// Applies a management command; releasing waiting messages is the caller's part.
    pub fn command(&mut self, command: FlowCommand, now: i64) {
        self.limits.command(command, now);
    }

    /// Messages waiting for this key, the rate sentinel included.
    pub fn wait_list_size(&self) -> u64 {
        self.waiting.len() as u64 + u64::from(self.rate_sentinel.is_some())
    }

    /// The state as `GET /v2/flowControl/{key}` shows it at `now`.
    pub fn info(&self, name: &str, now: i64) -> FlowControlInfo {
        self.limits
            .info(name, now, self.in_flight, self.wait_list_size())
    }
}
