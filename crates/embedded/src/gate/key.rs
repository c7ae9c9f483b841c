//! One flow-control key: its limits (asked by the latest message, or pinned), the
//! attempts in flight under it, the attempts started in the current rate period, and
//! the messages waiting for it (`qstash-api.md` §12).

use std::collections::VecDeque;

use qpost_core::flow::{DEFAULT_PERIOD_SECS, FlowCommand, FlowControl, FlowControlInfo};
use qpost_core::ports::Wakeup;

/// Why an attempt may not start under a key now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Block {
    /// Paused, all parallel slots taken, or others waiting first: wait to be released.
    Wait,
    /// The rate is used up: the period ends at this time (Unix ms).
    Until(i64),
}

/// A rate limit: at most `rate` starts (unlimited when `None`) per `period_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rate {
    rate: Option<u32>,
    period_secs: u64,
}

pub(super) struct Key {
    asked_parallelism: Option<u32>,
    asked_rate: Rate,
    pinned_parallelism: Option<u32>,
    pinned_rate: Option<Rate>,
    pub paused: bool,
    /// Attempts in flight (or granted and about to start).
    pub in_flight: u32,
    rate_count: u32,
    period_start: Option<i64>,
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
            asked_parallelism: None,
            asked_rate: Rate {
                rate: None,
                period_secs: DEFAULT_PERIOD_SECS,
            },
            pinned_parallelism: None,
            pinned_rate: None,
            paused: false,
            in_flight: 0,
            rate_count: 0,
            period_start: None,
            waiting: VecDeque::new(),
            rate_sentinel: None,
        }
    }

    /// The limits a message asks for replace the previous ones (latest wins); pinned
    /// limits stay in force over them.
    pub fn ask(&mut self, fc: &FlowControl) {
        self.asked_parallelism = fc.parallelism;
        self.asked_rate = Rate {
            rate: fc.rate,
            period_secs: fc.period(),
        };
    }

    fn parallelism(&self) -> Option<u32> {
        self.pinned_parallelism.or(self.asked_parallelism)
    }

    fn rate(&self) -> Rate {
        self.pinned_rate.unwrap_or(self.asked_rate)
    }

    fn period_end(&self, start: i64) -> i64 {
        start.saturating_add(self.rate().period_secs.saturating_mul(1000) as i64)
    }

    /// Starts a new period at `now` when the current one has ended.
    fn roll(&mut self, now: i64) {
        if self.period_start.is_none_or(|s| now >= self.period_end(s)) {
            self.period_start = Some(now);
            self.rate_count = 0;
        }
    }

    /// Counts an attempt starting now, or says why it may not. `first_in_line` skips the
    /// check that nobody waits ahead (for the head of the line and the rate sentinel).
    pub fn try_start(&mut self, now: i64, first_in_line: bool) -> Result<(), Block> {
        if self.paused || (!first_in_line && !self.waiting.is_empty()) {
            return Err(Block::Wait);
        }
        if self.parallelism().is_some_and(|p| self.in_flight >= p) {
            return Err(Block::Wait);
        }
        self.roll(now);
        if let (Some(rate), Some(start)) = (self.rate().rate, self.period_start)
            && self.rate_count >= rate
        {
            return Err(Block::Until(self.period_end(start)));
        }
        self.in_flight += 1;
        self.rate_count += 1;
        Ok(())
    }

    /// Applies a management command; releasing waiting messages is the caller's part.
    pub fn command(&mut self, command: FlowCommand, now: i64) {
        match command {
            FlowCommand::Pause => self.paused = true,
            FlowCommand::Resume => self.paused = false,
            FlowCommand::Pin {
                parallelism,
                rate,
                period_secs,
            } => self.pin(parallelism, rate, period_secs),
            FlowCommand::Unpin { parallelism, rate } => {
                if parallelism {
                    self.pinned_parallelism = None;
                }
                if rate {
                    self.pinned_rate = None;
                }
            }
            FlowCommand::ResetRate => self.reset_rate(Some(now)),
            // The parallelism count is the attempts really in flight: zeroing it would
            // only let the limit be exceeded, so a reset clears the rate state alone.
            FlowCommand::Reset => self.reset_rate(None),
        }
    }

    fn pin(&mut self, parallelism: Option<u32>, rate: Option<u32>, period_secs: Option<u64>) {
        if parallelism.is_some() {
            self.pinned_parallelism = parallelism;
        }
        if rate.is_some() || period_secs.is_some() {
            let current = self.rate();
            self.pinned_rate = Some(Rate {
                rate: rate.or(current.rate),
                period_secs: period_secs.unwrap_or(current.period_secs),
            });
        }
        self.reset_rate(None);
    }

    fn reset_rate(&mut self, period_start: Option<i64>) {
        self.rate_count = 0;
        self.period_start = period_start;
    }

    /// Messages waiting for this key, the rate sentinel included.
    pub fn wait_list_size(&self) -> u64 {
        self.waiting.len() as u64 + u64::from(self.rate_sentinel.is_some())
    }

    /// The state as `GET /v2/flowControl/{key}` shows it at `now`.
    pub fn info(&self, name: &str, now: i64) -> FlowControlInfo {
        let rate = self.rate();
        let current = self.period_start.filter(|s| now < self.period_end(*s));
        FlowControlInfo {
            flow_control_key: name.to_string(),
            wait_list_size: self.wait_list_size(),
            parallelism_max: self.parallelism().unwrap_or(0),
            parallelism_count: self.in_flight,
            rate_max: rate.rate.unwrap_or(0),
            rate_count: current.map_or(0, |_| self.rate_count),
            rate_period: rate.period_secs,
            rate_period_start: current.map_or(0, |s| s / 1000),
            is_paused: self.paused,
            is_pinned_parallelism: self.pinned_parallelism.is_some(),
            is_pinned_rate: self.pinned_rate.is_some(),
        }
    }
}
