//! The limits of one flow-control key and the decision whether an attempt may start under
//! it now (`qstash-api.md` §12): the limits the latest message asked for, the pinned ones
//! that override them, the pause, and the current rate window. The local gate and the AWS
//! leases both decide with this one model; who counts the attempts in flight (the gate in
//! memory, DynamoDB leases) is theirs, and is passed in.
//!
//! A rate window starts at the first start after the previous window ended (not on a fixed
//! grid), and counts the starts in it.

use serde::{Deserialize, Serialize};

use super::{DEFAULT_PERIOD_SECS, FlowCommand, FlowControl, FlowControlInfo};

/// A rate limit: at most `rate` starts (unlimited when `None`) per `period_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    #[serde(default)]
    pub rate: Option<u32>,
    pub period_secs: u64,
}

impl Default for Rate {
    /// No limit, over the default period.
    fn default() -> Self {
        Self {
            rate: None,
            period_secs: DEFAULT_PERIOD_SECS,
        }
    }
}

/// Why an attempt may not start under a key now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The key is paused.
    Paused,
    /// Every parallel slot is taken.
    Full,
    /// The rate is used up: the window ends at this time (Unix ms).
    RateUntil(i64),
}

/// One key's limits, pause and rate window; see the module docs. Serialized as the AWS
/// flow-control item's state (camelCase JSON), so field names are a stored format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyLimits {
    asked_parallelism: Option<u32>,
    asked_rate: Rate,
    pinned_parallelism: Option<u32>,
    pinned_rate: Option<Rate>,
    paused: bool,
    /// Starts counted in the window that began at `period_start`.
    rate_count: u32,
    /// Unix ms; `None` until the first start (or after a pin or reset).
    period_start: Option<i64>,
}

impl KeyLimits {
    /// The limits a message asks for replace the previous ones (latest wins); pinned
    /// limits stay in force over them.
    pub fn ask(&mut self, fc: &FlowControl) {
        self.asked_parallelism = fc.parallelism;
        self.asked_rate = Rate {
            rate: fc.rate,
            period_secs: fc.period(),
        };
    }

    /// The parallelism in force: pinned, else asked; `None` is unlimited.
    pub fn parallelism(&self) -> Option<u32> {
        self.pinned_parallelism.or(self.asked_parallelism)
    }

    /// The rate in force: pinned, else asked.
    pub fn rate(&self) -> Rate {
        self.pinned_rate.unwrap_or(self.asked_rate)
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn period_end(&self, start: i64) -> i64 {
        let period_ms = i64::try_from(self.rate().period_secs.saturating_mul(1000));
        start.saturating_add(period_ms.unwrap_or(i64::MAX))
    }

    /// Starts a new window at `now` when the current one has ended.
    fn roll(&mut self, now: i64) {
        if self.period_start.is_none_or(|s| now >= self.period_end(s)) {
            self.period_start = Some(now);
            self.rate_count = 0;
        }
    }

    /// Counts an attempt starting at `now` in the rate window, or says why it may not
    /// start, given the attempts already `in_flight` under the key. The caller counts the
    /// started attempt as in flight.
    pub fn try_start(&mut self, now: i64, in_flight: u32) -> Result<(), Refusal> {
        if self.paused {
            return Err(Refusal::Paused);
        }
        if self.parallelism().is_some_and(|p| in_flight >= p) {
            return Err(Refusal::Full);
        }
        self.roll(now);
        if let (Some(rate), Some(start)) = (self.rate().rate, self.period_start)
            && self.rate_count >= rate
        {
            return Err(Refusal::RateUntil(self.period_end(start)));
        }
        self.rate_count += 1;
        Ok(())
    }

    /// Applies a management command at `now`.
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

    /// Pins the given limits (a rate or period pins both, the other from what is in
    /// force) and resets the rate state.
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

    /// The state as `GET /v2/flowControl/{key}` shows it at `now`, with the attempts in
    /// flight and the messages waiting as the caller counts them.
    pub fn info(&self, name: &str, now: i64, in_flight: u32, waiting: u64) -> FlowControlInfo {
        let rate = self.rate();
        let current = self.period_start.filter(|s| now < self.period_end(*s));
        FlowControlInfo {
            flow_control_key: name.to_string(),
            wait_list_size: waiting,
            parallelism_max: self.parallelism().unwrap_or(0),
            parallelism_count: in_flight,
            rate_max: rate.rate.unwrap_or(0),
            rate_count: current.map_or(0, |_| self.rate_count),
            rate_period: rate.period_secs,
            rate_period_start: current.map_or(0, |s| s.div_euclid(1000)),
            is_paused: self.paused,
            is_pinned_parallelism: self.pinned_parallelism.is_some(),
            is_pinned_rate: self.pinned_rate.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_000_000;

    fn asking(parallelism: Option<u32>, rate: Option<u32>, period_secs: Option<u64>) -> KeyLimits {
        let mut limits = KeyLimits::default();
        limits.ask(&FlowControl {
            key: "k".into(),
            parallelism,
            rate,
            period_secs,
        });
        limits
    }

    #[test]
    fn parallelism_refuses_a_start_once_that_many_are_in_flight() {
        let mut l = asking(Some(2), None, None);
        assert_eq!(l.try_start(T0, 0), Ok(()));
        assert_eq!(l.try_start(T0, 1), Ok(()));
        assert_eq!(l.try_start(T0, 2), Err(Refusal::Full));
    }

    #[test]
    fn a_rate_window_starts_at_the_first_start_after_the_previous_one_ended() {
        let mut l = asking(None, Some(2), Some(10));
        assert_eq!(l.try_start(T0, 0), Ok(()));
        assert_eq!(l.try_start(T0 + 5, 0), Ok(()));
        assert_eq!(
            l.try_start(T0 + 9_999, 0),
            Err(Refusal::RateUntil(T0 + 10_000))
        );
        // Nothing starts for a while: the next window begins with the next start.
        assert_eq!(l.try_start(T0 + 25_000, 0), Ok(()));
        let info = l.info("k", T0 + 26_000, 0, 0);
        assert_eq!(
            (info.rate_count, info.rate_period_start),
            (1, (T0 + 25_000) / 1000)
        );
        assert_eq!(
            l.info("k", T0 + 35_000, 0, 0).rate_count,
            0,
            "the window ended"
        );
    }

    #[test]
    fn a_paused_key_refuses_and_counts_nothing_until_resumed() {
        let mut l = asking(None, Some(1), None);
        l.command(FlowCommand::Pause, T0);
        assert_eq!(l.try_start(T0, 0), Err(Refusal::Paused));
        assert_eq!(l.info("k", T0, 0, 3).rate_count, 0);
        l.command(FlowCommand::Resume, T0);
        assert_eq!(l.try_start(T0, 0), Ok(()));
    }

    #[test]
    fn pins_override_what_messages_ask_until_unpinned() {
        let mut l = asking(Some(1), Some(5), Some(60));
        l.command(
            FlowCommand::Pin {
                parallelism: Some(3),
                rate: Some(100),
                period_secs: None,
            },
            T0,
        );
        l.ask(&FlowControl {
            key: "k".into(),
            parallelism: Some(1),
            rate: Some(2),
            period_secs: Some(1),
        });
        assert_eq!(l.parallelism(), Some(3));
        assert_eq!(
            l.rate(),
            Rate {
                rate: Some(100),
                period_secs: 60
            },
            "a pinned rate keeps the period in force when pinned"
        );
        l.command(
            FlowCommand::Unpin {
                parallelism: true,
                rate: true,
            },
            T0,
        );
        assert_eq!(
            (l.parallelism(), l.rate().rate, l.rate().period_secs),
            (Some(1), Some(2), 1)
        );
    }

    #[test]
    fn reset_rate_starts_a_new_window_now_and_reset_at_the_next_start() {
        let mut l = asking(None, Some(1), Some(10));
        assert_eq!(l.try_start(T0, 0), Ok(()));
        l.command(FlowCommand::ResetRate, T0 + 3_000);
        let info = l.info("k", T0 + 3_000, 0, 0);
        assert_eq!(
            (info.rate_count, info.rate_period_start),
            (0, T0 / 1000 + 3)
        );
        assert_eq!(l.try_start(T0 + 4_000, 0), Ok(()));
        assert_eq!(
            l.try_start(T0 + 4_000, 0),
            Err(Refusal::RateUntil(T0 + 13_000))
        );
        l.command(FlowCommand::Reset, T0 + 5_000);
        assert_eq!(l.info("k", T0 + 5_000, 0, 0).rate_period_start, 0);
        assert_eq!(l.try_start(T0 + 5_000, 0), Ok(()));
    }

    #[test]
    fn the_state_survives_its_stored_json() {
        let mut l = asking(Some(2), Some(3), Some(60));
        l.command(FlowCommand::Pause, T0);
        l.paused = false;
        assert_eq!(l.try_start(T0, 0), Ok(()));
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<KeyLimits>(&json).unwrap(), l);
        assert_eq!(
            serde_json::from_str::<KeyLimits>("{}").unwrap(),
            KeyLimits::default()
        );
    }
}
