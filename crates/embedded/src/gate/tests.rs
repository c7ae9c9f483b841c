//! The gate's rules with time moved by hand: queue order and parallelism, pauses,
//! callbacks holding a queue slot, flow-control parallelism, rate periods, pins.

use std::sync::Arc;

use qpost_core::delivery::{Outcome, Step};
use qpost_core::flow::{FlowCommand, FlowControl};
use qpost_core::ids::MessageId;
use qpost_core::ports::Wakeup;

use super::state::State;
use super::{Admit, Gate};
use crate::timer::Timer;

const T0: i64 = 1_000_000;

fn wakeup(queue: Option<&str>, fc: Option<FlowControl>) -> Wakeup {
    Wakeup {
        id: MessageId::generate(),
        due_ms: T0,
        queue_name: queue.map(String::from),
        flow_control: fc,
    }
}

fn queued(q: &str) -> Wakeup {
    wakeup(Some(q), None)
}

fn keyed(key: &str, parallelism: Option<u32>, rate: Option<u32>) -> Wakeup {
    wakeup(
        None,
        Some(FlowControl {
            key: key.into(),
            parallelism,
            rate,
            period_secs: None,
        }),
    )
}

/// The ids of `ws`, as the harness reports releases.
fn ids(ws: &[&Wakeup]) -> Vec<MessageId> {
    ws.iter().map(|w| w.id.clone()).collect()
}

fn step(outcome: Outcome) -> Step {
    outcome.into()
}

fn delivered() -> Step {
    step(Outcome::Delivered)
}

/// The state plus the wake-ups it released, as the worker and timer would see them.
#[derive(Default)]
struct Harness {
    state: State,
    released: Vec<Wakeup>,
}

impl Harness {
    fn admit(&mut self, w: &Wakeup, now: i64) -> Admit {
        self.state.admit(w, now, &mut self.released)
    }

    fn finish(&mut self, w: &Wakeup, step: &Step, now: i64) -> Vec<MessageId> {
        self.state.finished(w, step, now, &mut self.released);
        self.take()
    }

    fn take(&mut self) -> Vec<MessageId> {
        self.released.drain(..).map(|w| w.id).collect()
    }

    fn command(&mut self, key: &str, command: FlowCommand, now: i64) -> Vec<MessageId> {
        assert!(self.state.command(key, command, now, &mut self.released));
        self.take()
    }

    fn queue(&mut self, q: &str, parallelism: u32, paused: bool) -> Vec<MessageId> {
        self.state
            .queue_changed(q, parallelism, paused, T0, &mut self.released);
        self.take()
    }
}

#[test]
fn a_queue_with_parallelism_one_lets_messages_through_one_at_a_time_in_arrival_order() {
    let mut h = Harness::default();
    h.queue("q", 1, false);
    let (a, b, c) = (queued("q"), queued("q"), queued("q"));
    assert_eq!(h.admit(&a, T0), Admit::Go);
    assert_eq!(h.admit(&b, T0), Admit::Parked);
    assert_eq!(h.admit(&c, T0), Admit::Parked);

    assert_eq!(h.finish(&a, &delivered(), T0), ids(&[&b]));
    let d = queued("q");
    assert_eq!(h.admit(&d, T0), Admit::Parked, "a newcomer waits behind c");
    assert_eq!(h.admit(&b, T0), Admit::Go, "the released message goes");
    assert_eq!(h.finish(&b, &delivered(), T0), ids(&[&c]));
    assert_eq!(h.admit(&c, T0), Admit::Go);
    assert_eq!(h.finish(&c, &step(Outcome::Cancelled), T0), ids(&[&d]));
}

#[test]
fn a_retrying_message_keeps_its_queue_slot_until_it_is_delivered_or_failed() {
    let mut h = Harness::default();
    let (a, b) = (queued("q"), queued("q"));
    assert_eq!(
        h.admit(&a, T0),
        Admit::Go,
        "an unknown queue gets parallelism 1"
    );
    assert_eq!(h.admit(&b, T0), Admit::Parked);
    assert!(
        h.finish(&a, &step(Outcome::RetryAt(T0 + 100)), T0)
            .is_empty()
    );
    assert_eq!(h.admit(&a, T0 + 100), Admit::Go, "the retry goes first");
    let failed = step(Outcome::Failed {
        dlq_id: "1-0".into(),
    });
    assert_eq!(h.finish(&a, &failed, T0 + 100), ids(&[&b]));
}

#[test]
fn a_queue_with_parallelism_n_has_at_most_n_messages_in_flight() {
    let mut h = Harness::default();
    h.queue("q", 3, false);
    let ws: Vec<Wakeup> = (0..5).map(|_| queued("q")).collect();
    let admits: Vec<Admit> = ws.iter().map(|w| h.admit(w, T0)).collect();
    assert_eq!(admits[..3], [Admit::Go, Admit::Go, Admit::Go]);
    assert_eq!(admits[3..], [Admit::Parked, Admit::Parked]);
    assert_eq!(h.finish(&ws[1], &delivered(), T0), ids(&[&ws[3]]));
    assert_eq!(h.state.lane_counts("q"), (3, 1));
    assert_eq!(
        h.queue("q", 5, false),
        ids(&[&ws[4]]),
        "raising it releases"
    );
}

#[test]
fn a_paused_queue_accepts_but_admits_nothing_until_resumed() {
    let mut h = Harness::default();
    h.queue("q", 2, true);
    let (a, b) = (queued("q"), queued("q"));
    assert_eq!(h.admit(&a, T0), Admit::Parked);
    assert_eq!(h.admit(&b, T0), Admit::Parked);
    assert_eq!(h.queue("q", 2, false), ids(&[&a, &b]));
    assert_eq!(h.admit(&a, T0), Admit::Go);

    h.queue("q", 2, true);
    h.finish(&a, &step(Outcome::RetryAt(T0 + 50)), T0);
    assert_eq!(h.admit(&a, T0 + 50), Admit::Parked, "no retry while paused");
    assert_eq!(h.queue("q", 2, false), ids(&[&a]));
}

#[test]
fn callbacks_of_a_queued_message_hold_its_slot_until_they_finish() {
    let mut h = Harness::default();
    let (a, b) = (queued("q"), queued("q"));
    let (cb, fcb) = (wakeup(None, None), wakeup(None, None));
    h.admit(&a, T0);
    h.admit(&b, T0);
    let with_callbacks = Step {
        outcome: Outcome::Delivered,
        spawned: ids(&[&cb, &fcb]),
    };
    assert!(h.finish(&a, &with_callbacks, T0).is_empty());
    assert_eq!(h.admit(&cb, T0), Admit::Go, "callbacks are not gated");
    assert!(
        h.finish(&cb, &step(Outcome::RetryAt(T0 + 10)), T0)
            .is_empty()
    );
    assert!(h.finish(&cb, &delivered(), T0 + 10).is_empty());
    assert_eq!(h.finish(&fcb, &delivered(), T0 + 10), ids(&[&b]));
}

#[test]
fn a_callback_finishing_before_its_owner_reports_does_not_hold_the_slot() {
    let mut h = Harness::default();
    let (a, b, cb) = (queued("q"), queued("q"), wakeup(None, None));
    h.admit(&a, T0);
    h.admit(&b, T0);
    h.admit(&cb, T0);
    h.finish(&cb, &delivered(), T0);
    let with_callback = Step {
        outcome: Outcome::Delivered,
        spawned: ids(&[&cb]),
    };
    assert_eq!(h.finish(&a, &with_callback, T0), ids(&[&b]));
}

#[test]
fn flow_control_parallelism_limits_attempts_in_flight_under_a_key() {
    let mut h = Harness::default();
    let ws: Vec<Wakeup> = (0..3).map(|_| keyed("k", Some(2), None)).collect();
    assert_eq!(h.admit(&ws[0], T0), Admit::Go);
    assert_eq!(h.admit(&ws[1], T0), Admit::Go);
    assert_eq!(h.admit(&ws[2], T0), Admit::Parked);
    assert_eq!(h.state.flow_key("k", T0).unwrap().wait_list_size, 1);
    let released = h.finish(&ws[0], &step(Outcome::RetryAt(T0 + 5)), T0);
    assert_eq!(released, ids(&[&ws[2]]), "a retry frees the slot");
    assert_eq!(h.admit(&ws[2], T0), Admit::Go);
    assert_eq!(
        h.admit(&ws[0], T0 + 5),
        Admit::Parked,
        "the retry waits its turn"
    );
    let info = h.state.flow_key("k", T0).unwrap();
    assert_eq!((info.parallelism_max, info.parallelism_count), (2, 2));
}

#[test]
fn a_rate_allows_that_many_starts_per_period_and_the_rest_wait_for_the_next() {
    let mut h = Harness::default();
    let ws: Vec<Wakeup> = (0..5).map(|_| keyed("k", None, Some(2))).collect();
    assert_eq!(h.admit(&ws[0], T0), Admit::Go);
    assert_eq!(h.admit(&ws[1], T0 + 10), Admit::Go);
    assert_eq!(
        h.admit(&ws[2], T0 + 20),
        Admit::At(T0 + 1000),
        "the sentinel"
    );
    assert_eq!(h.admit(&ws[3], T0 + 30), Admit::Parked);
    assert_eq!(h.admit(&ws[4], T0 + 40), Admit::Parked);
    let info = h.state.flow_key("k", T0 + 40).unwrap();
    assert_eq!(
        (info.rate_max, info.rate_count, info.wait_list_size),
        (2, 2, 3)
    );
    assert_eq!(info.rate_period_start, T0 / 1000);

    assert_eq!(h.admit(&ws[2], T0 + 1000), Admit::Go);
    let released: Vec<(MessageId, i64)> = h.released.drain(..).map(|w| (w.id, w.due_ms)).collect();
    assert_eq!(
        released,
        [(ws[3].id.clone(), T0), (ws[4].id.clone(), T0 + 2000)],
        "the sentinel brings one along and the next one waits for the next period"
    );
    assert_eq!(h.admit(&ws[3], T0 + 1001), Admit::Go, "already counted");
    assert!(h.released.is_empty());
    let info = h.state.flow_key("k", T0 + 1001).unwrap();
    assert_eq!((info.rate_count, info.wait_list_size), (2, 1));
}

#[test]
fn the_next_sentinel_is_armed_for_the_end_of_the_new_period() {
    let mut h = Harness::default();
    let ws: Vec<Wakeup> = (0..4).map(|_| keyed("k", None, Some(1))).collect();
    assert_eq!(h.admit(&ws[0], T0), Admit::Go);
    assert_eq!(h.admit(&ws[1], T0), Admit::At(T0 + 1000));
    assert_eq!(h.admit(&ws[2], T0), Admit::Parked);
    assert_eq!(h.admit(&ws[3], T0), Admit::Parked);
    assert_eq!(h.admit(&ws[1], T0 + 1003), Admit::Go);
    let next: Vec<Wakeup> = std::mem::take(&mut h.released);
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].id.clone(), next[0].due_ms),
        (ws[2].id.clone(), T0 + 2003)
    );
}

#[test]
fn pausing_a_key_holds_new_and_waiting_messages_and_resuming_releases_them() {
    let mut h = Harness::default();
    let a = keyed("k", Some(5), None);
    h.admit(&a, T0);
    assert!(h.command("k", FlowCommand::Pause, T0).is_empty());
    let b = keyed("k", Some(5), None);
    assert_eq!(h.admit(&b, T0), Admit::Parked);
    assert!(h.state.flow_key("k", T0).unwrap().is_paused);
    assert_eq!(h.command("k", FlowCommand::Resume, T0), ids(&[&b]));
}

#[test]
fn pinned_limits_override_what_messages_ask_until_unpinned() {
    let mut h = Harness::default();
    let a = keyed("k", Some(1), None);
    h.admit(&a, T0);
    let pin = FlowCommand::Pin {
        parallelism: Some(3),
        rate: None,
        period_secs: None,
    };
    h.command("k", pin, T0);
    let (b, c) = (keyed("k", Some(1), None), keyed("k", Some(1), None));
    assert_eq!(
        h.admit(&b, T0),
        Admit::Go,
        "the pin allows 3 though b asks 1"
    );
    assert_eq!(h.admit(&c, T0), Admit::Go);
    let info = h.state.flow_key("k", T0).unwrap();
    assert!(info.is_pinned_parallelism && !info.is_pinned_rate);
    assert_eq!(info.parallelism_max, 3);
    let unpin = FlowCommand::Unpin {
        parallelism: true,
        rate: false,
    };
    h.command("k", unpin, T0);
    assert_eq!(h.admit(&keyed("k", Some(1), None), T0), Admit::Parked);
    assert_eq!(h.state.flow_key("k", T0).unwrap().parallelism_max, 1);
}

#[test]
fn reset_rate_starts_a_new_period_and_lets_waiting_messages_go() {
    let mut h = Harness::default();
    let ws: Vec<Wakeup> = (0..3).map(|_| keyed("k", None, Some(1))).collect();
    h.admit(&ws[0], T0);
    assert_eq!(h.admit(&ws[1], T0), Admit::At(T0 + 1000));
    assert_eq!(h.admit(&ws[2], T0), Admit::Parked);
    h.state
        .command("k", FlowCommand::ResetRate, T0 + 10, &mut h.released);
    let released: Vec<(MessageId, i64)> = h.released.drain(..).map(|w| (w.id, w.due_ms)).collect();
    assert_eq!(
        released,
        [(ws[1].id.clone(), T0 + 10), (ws[2].id.clone(), T0 + 1010)],
        "the oldest goes now, the next waits for the end of the new period"
    );
    let info = h.state.flow_key("k", T0 + 10).unwrap();
    assert_eq!(
        (info.rate_count, info.rate_period_start),
        (1, (T0 + 10) / 1000)
    );
    assert_eq!(h.admit(&ws[1], T0 + 10), Admit::Go);
    let stale = Wakeup {
        due_ms: T0 + 1000,
        ..ws[1].clone()
    };
    assert_eq!(
        h.admit(&stale, T0 + 1000),
        Admit::Parked,
        "its old timer copy is dropped"
    );
    assert_eq!(h.state.flow_key("k", T0 + 1000).unwrap().rate_count, 1);
}

#[test]
fn a_queued_message_under_a_key_keeps_its_queue_slot_while_the_key_holds_it() {
    let mut h = Harness::default();
    let fc = FlowControl {
        key: "k".into(),
        parallelism: Some(1),
        rate: None,
        period_secs: None,
    };
    let other = keyed("k", Some(1), None);
    let (a, b) = (
        wakeup(Some("q"), Some(fc.clone())),
        wakeup(Some("q"), Some(fc)),
    );
    assert_eq!(h.admit(&other, T0), Admit::Go);
    assert_eq!(h.admit(&a, T0), Admit::Parked, "held by the key");
    assert_eq!(h.admit(&b, T0), Admit::Parked, "held by the queue");
    assert_eq!(h.state.lane_counts("q"), (1, 1));
    assert_eq!(h.finish(&other, &delivered(), T0), ids(&[&a]));
    assert_eq!(h.admit(&a, T0), Admit::Go);
    assert_eq!(h.finish(&a, &delivered(), T0), ids(&[&b]));
}

#[test]
fn commands_on_unknown_keys_are_refused_and_listing_filters_by_name() {
    let mut h = Harness::default();
    let mut out = Vec::new();
    assert!(!h.state.command("nope", FlowCommand::Pause, T0, &mut out));
    h.admit(&keyed("Tenant-A", Some(1), None), T0);
    h.admit(&keyed("other", None, Some(3)), T0);
    let names = |infos: Vec<qpost_core::flow::FlowControlInfo>| -> Vec<String> {
        infos.into_iter().map(|i| i.flow_control_key).collect()
    };
    assert_eq!(names(h.state.flow_keys(None, T0)), ["Tenant-A", "other"]);
    assert_eq!(names(h.state.flow_keys(Some("tenant"), T0)), ["Tenant-A"]);
}

#[test]
fn deleting_a_queue_hands_back_what_waited_in_it() {
    let mut h = Harness::default();
    let (a, b) = (queued("q"), queued("q"));
    h.admit(&a, T0);
    h.admit(&b, T0);
    let mut out = Vec::new();
    h.state.queue_deleted("q", &mut out);
    assert_eq!(out, std::slice::from_ref(&b));
    assert_eq!(
        h.admit(&b, T0),
        Admit::Go,
        "admitted afresh into a new lane"
    );
}

#[test]
fn releases_by_commands_are_armed_on_the_timer_once_attached() {
    let gate = Gate::new(4);
    let a = keyed("k", Some(1), None);
    let b = keyed("k", Some(1), None);
    assert_eq!(gate.admit(&a, T0), Admit::Go);
    assert_eq!(gate.admit(&b, T0), Admit::Parked);
    let pin = FlowCommand::Pin {
        parallelism: Some(2),
        rate: None,
        period_secs: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    use qpost_core::ports::Admission;
    assert!(rt.block_on(gate.flow_command("k", pin)).unwrap());
    let timer = Arc::new(Timer::new());
    gate.attach(Arc::clone(&timer));
    assert_eq!(timer.pop_due(T0).map(|w| w.id), Some(b.id.clone()));
    assert_eq!(gate.admit(&b, T0), Admit::Go);
    let global = rt.block_on(gate.global_parallelism()).unwrap();
    assert_eq!((global.parallelism_max, global.parallelism_count), (4, 2));
}
