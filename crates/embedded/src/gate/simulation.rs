//! A randomized simulation of the worker driving the gate: messages in queues and
//! under flow-control keys, attempts of random length that succeed, retry or spawn
//! callbacks (some finishing before their owner reports), pauses and resumes. After
//! every event the limits must hold; at the end every message must have finished.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use qpost_core::delivery::{Outcome, Step};
use qpost_core::flow::{FlowCommand, FlowControl};
use qpost_core::ids::MessageId;
use qpost_core::ports::Wakeup;

use super::Admit;
use super::state::State;

/// xorshift64*: deterministic, so a failure replays with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Event {
    Due(Wakeup),
    Finish(Wakeup, Step),
    Queue(&'static str, u32, bool),
    Key(&'static str, FlowCommand),
}

/// Queues: name and parallelism.
const QUEUES: [(&str, u32); 2] = [("q1", 1), ("q3", 3)];
/// Keys: name, parallelism, rate (per 1 s).
const KEYS: [(&str, Option<u32>, Option<u32>); 3] = [
    ("p2", Some(2), None),
    ("r3", None, Some(3)),
    ("p2r5", Some(2), Some(5)),
];

#[derive(Default)]
struct World {
    state: State,
    events: BinaryHeap<Reverse<(i64, u64, usize)>>,
    slots: Vec<Option<Event>>,
    seq: u64,
    /// Per queue: messages holding a slot (first start until final and callbacks done).
    holding: HashMap<String, HashSet<MessageId>>,
    /// Callback → owner, for releasing `holding`.
    callback_of: HashMap<MessageId, (String, MessageId)>,
    pending_callbacks: HashMap<MessageId, usize>,
    in_flight_by_key: HashMap<String, u32>,
    /// Per key: starts, and the rate resets commands made, in time order.
    rate_log: HashMap<String, Vec<RateEvent>>,
    retries: HashMap<MessageId, u32>,
    /// Messages in an attempt now, and attempts made per message.
    attempting: HashSet<MessageId>,
    attempts: HashMap<MessageId, u32>,
    finished: HashSet<MessageId>,
    /// Queue messages in arrival order, and in first-start order.
    arrivals: HashMap<String, Vec<MessageId>>,
    first_starts: HashMap<String, Vec<MessageId>>,
}

impl World {
    fn at(&mut self, t: i64, event: Event) {
        self.seq += 1;
        self.slots.push(Some(event));
        self.events
            .push(Reverse((t, self.seq, self.slots.len() - 1)));
    }

    fn on_due(&mut self, w: Wakeup, now: i64, rng: &mut Rng) {
        let mut out = Vec::new();
        let admit = self.state.admit(&w, now, &mut out);
        for r in out {
            self.at(now.max(r.due_ms), Event::Due(r));
        }
        match admit {
            Admit::Go => self.start(w, now, rng),
            Admit::Parked => {}
            Admit::At(t) => {
                assert!(t > now, "a rate wait ends in the future");
                self.at(t, Event::Due(Wakeup { due_ms: t, ..w }));
            }
        }
    }

    fn start(&mut self, w: Wakeup, now: i64, rng: &mut Rng) {
        assert!(
            self.attempting.insert(w.id.clone()),
            "{} attempted twice at once",
            w.id
        );
        *self.attempts.entry(w.id.clone()).or_default() += 1;
        if let Some(q) = &w.queue_name {
            let holding = self.holding.entry(q.clone()).or_default();
            if holding.insert(w.id.clone()) {
                self.first_starts
                    .entry(q.clone())
                    .or_default()
                    .push(w.id.clone());
            }
            let limit = QUEUES.iter().find(|(n, _)| n == q).map_or(1, |(_, p)| *p);
            assert!(
                holding.len() <= limit as usize,
                "queue {q} over parallelism {limit}"
            );
        }
        if let Some(fc) = &w.flow_control {
            let n = self.in_flight_by_key.entry(fc.key.clone()).or_default();
            *n += 1;
            if let Some(p) = fc.parallelism {
                assert!(*n <= p, "key {} over parallelism {p}", fc.key);
            }
            self.rate_log
                .entry(fc.key.clone())
                .or_default()
                .push(RateEvent::Start(now));
        }
        let is_callback = self.callback_of.contains_key(&w.id);
        // A callback may finish at once: before the attempt that spawned it reports.
        let end = now + i64::from(!is_callback) + rng.below(200) as i64;
        let retried = self.retries.entry(w.id.clone()).or_default();
        let outcome = if *retried < 2 && rng.below(4) == 0 {
            *retried += 1;
            Outcome::RetryAt(end + rng.below(100) as i64)
        } else {
            Outcome::Delivered
        };
        let mut spawned = Vec::new();
        if !is_callback
            && w.queue_name.is_some()
            && outcome == Outcome::Delivered
            && rng.below(3) == 0
        {
            for _ in 0..=rng.below(2) {
                let cb = Wakeup {
                    id: MessageId::generate(),
                    due_ms: end - 1,
                    queue_name: None,
                    flow_control: None,
                };
                let q = w.queue_name.clone().unwrap_or_default();
                self.callback_of.insert(cb.id.clone(), (q, w.id.clone()));
                *self.pending_callbacks.entry(w.id.clone()).or_default() += 1;
                spawned.push(cb.id.clone());
                // Dispatched before the owner's attempt reports, so it may finish first.
                self.at(end - 1, Event::Due(cb));
            }
        }
        self.at(end, Event::Finish(w, Step { outcome, spawned }));
    }

    fn on_finish(&mut self, w: Wakeup, step: Step, now: i64) {
        self.attempting.remove(&w.id);
        if let Some(fc) = &w.flow_control
            && let Some(n) = self.in_flight_by_key.get_mut(&fc.key)
        {
            *n -= 1;
        }
        let mut out = Vec::new();
        self.state.finished(&w, &step, now, &mut out);
        if let Outcome::RetryAt(t) = step.outcome {
            self.at(
                t,
                Event::Due(Wakeup {
                    due_ms: t,
                    ..w.clone()
                }),
            );
        } else {
            self.finished.insert(w.id.clone());
            if self.pending_callbacks.get(&w.id).copied().unwrap_or(0) == 0 {
                self.release_holding(&w.id, w.queue_name.as_deref());
            }
            if let Some((q, owner)) = self.callback_of.get(&w.id).cloned() {
                let left = self.pending_callbacks.entry(owner.clone()).or_default();
                *left -= 1;
                if *left == 0 && self.finished.contains(&owner) {
                    self.release_holding(&owner, Some(&q));
                }
            }
        }
        // Releases are checked against the model only when they start.
        for r in out {
            self.at(now.max(r.due_ms), Event::Due(r));
        }
    }

    fn release_holding(&mut self, id: &MessageId, queue: Option<&str>) {
        if let Some(q) = queue {
            self.holding.entry(q.to_string()).or_default().remove(id);
        }
    }

    fn run(&mut self, rng: &mut Rng) {
        while let Some(Reverse((now, _, slot))) = self.events.pop() {
            match self.slots[slot].take() {
                Some(Event::Due(w)) => self.on_due(w, now, rng),
                Some(Event::Finish(w, step)) => self.on_finish(w, step, now),
                Some(Event::Queue(q, p, paused)) => {
                    let mut out = Vec::new();
                    self.state.queue_changed(q, p, paused, now, &mut out);
                    out.into_iter()
                        .for_each(|r| self.at(now.max(r.due_ms), Event::Due(r)));
                }
                Some(Event::Key(k, command)) => {
                    let reset = match command {
                        FlowCommand::ResetRate => Some(RateEvent::PeriodFrom(now)),
                        FlowCommand::Reset | FlowCommand::Pin { .. } => Some(RateEvent::NoPeriod),
                        _ => None,
                    };
                    self.rate_log
                        .entry(k.to_string())
                        .or_default()
                        .extend(reset);
                    let mut out = Vec::new();
                    self.state.command(k, command, now, &mut out);
                    out.into_iter()
                        .for_each(|r| self.at(now.max(r.due_ms), Event::Due(r)));
                }
                None => {}
            }
        }
    }
}

enum RateEvent {
    Start(i64),
    /// `resetRate`: a new period starts at this time.
    PeriodFrom(i64),
    /// `reset` or `pin`: the next start opens a new period.
    NoPeriod,
}

/// Fixed rate windows as §12 defines them: a period starts with the first start after
/// the previous one ended (or when reset); no period may hold more than `rate` starts.
fn assert_rate(key: &str, log: &[RateEvent], rate: u32, period_ms: i64) {
    let mut window_start = None;
    let mut count = 0;
    for event in log {
        let t = match *event {
            RateEvent::Start(t) => t,
            RateEvent::PeriodFrom(t) => {
                (window_start, count) = (Some(t), 0);
                continue;
            }
            RateEvent::NoPeriod => {
                (window_start, count) = (None, 0);
                continue;
            }
        };
        match window_start {
            Some(s) if t < s + period_ms => count += 1,
            _ => (window_start, count) = (Some(t), 1),
        }
        assert!(
            count <= rate,
            "key {key}: {count} starts in the period from {window_start:?}"
        );
    }
}

fn simulate(seed: u64) {
    let mut rng = Rng(seed);
    let mut world = World::default();
    for (q, p) in QUEUES {
        world.at(0, Event::Queue(q, p, false));
    }
    let mut messages = Vec::new();
    for _ in 0..300 {
        let queue = match rng.below(3) {
            0 => None,
            i => Some(QUEUES[i as usize - 1].0.to_string()),
        };
        let fc = match rng.below(4) {
            0 => None,
            i => {
                let (key, parallelism, rate) = KEYS[i as usize - 1];
                Some(FlowControl {
                    key: key.into(),
                    parallelism,
                    rate,
                    period_secs: None,
                })
            }
        };
        let due = rng.below(3000) as i64 + 1;
        messages.push(Wakeup {
            id: MessageId::generate(),
            due_ms: due,
            queue_name: queue,
            flow_control: fc,
        });
    }
    messages.sort_by_key(|w| w.due_ms);
    for w in messages.iter() {
        if let Some(q) = &w.queue_name {
            world
                .arrivals
                .entry(q.clone())
                .or_default()
                .push(w.id.clone());
        }
        world.at(w.due_ms, Event::Due(w.clone()));
    }
    world.at(500, Event::Queue("q1", 1, true));
    world.at(1500, Event::Queue("q1", 1, false));
    world.at(800, Event::Key("p2", FlowCommand::Pause));
    world.at(1200, Event::Key("r3", FlowCommand::ResetRate));
    world.at(
        1700,
        Event::Key(
            "p2r5",
            FlowCommand::Unpin {
                parallelism: true,
                rate: true,
            },
        ),
    );
    world.at(2500, Event::Key("r3", FlowCommand::Reset));
    world.at(2000, Event::Key("p2", FlowCommand::Resume));
    world.run(&mut rng);

    for w in &messages {
        assert!(
            world.finished.contains(&w.id),
            "seed {seed}: {} never finished",
            w.id
        );
        let (attempts, retries) = (world.attempts[&w.id], world.retries[&w.id]);
        assert_eq!(
            attempts,
            retries + 1,
            "seed {seed}: {} attempted once per try",
            w.id
        );
    }
    assert!(
        world.holding.values().all(HashSet::is_empty),
        "seed {seed}: slots leaked"
    );
    assert_eq!(world.state.in_flight, 0);
    assert_eq!(
        world.first_starts.get("q1"),
        world.arrivals.get("q1"),
        "seed {seed}: q1 (parallelism 1) starts in arrival order"
    );
    for (key, _, rate) in KEYS {
        if let (Some(rate), Some(log)) = (rate, world.rate_log.get(key)) {
            assert_rate(key, log, rate, 1000);
        }
        let info = world.state.flow_key(key, 1_000_000).unwrap();
        assert_eq!(
            (info.wait_list_size, info.parallelism_count),
            (0, 0),
            "seed {seed}: {key}"
        );
    }
}

#[test]
fn random_interleavings_never_exceed_a_limit_and_every_message_finishes() {
    for seed in 1..=100u64 {
        simulate(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
}
