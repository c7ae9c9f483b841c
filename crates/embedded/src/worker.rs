//! The delivery worker: pops due wake-ups from the timer, asks the gate, and runs the
//! core delivery step on each admitted message with bounded concurrency. It only carries
//! outcomes out: a retry or an early wake-up re-arms the timer, and whatever the gate
//! releases after an attempt is armed at once. The gate hears of an attempt's end before
//! its retry is armed, so the retry is admitted against up-to-date counts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qpost_core::Services;
use qpost_core::delivery::{Outcome, Step, deliver};
use qpost_core::ids::MessageId;
use qpost_core::ports::Wakeup;
use tokio::sync::{Semaphore, watch};

use crate::gate::{Admit, Gate};
use crate::timer::Timer;

/// How long to wait before trying again after qpost's own failure (store, I/O).
const INTERNAL_RETRY_MS: i64 = 1_000;
/// Longest sleep without a wake-up, a guard against missed notifications.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub struct Worker {
    services: Arc<Services>,
    timer: Arc<Timer>,
    gate: Arc<Gate>,
    concurrency: usize,
    in_flight: Arc<Mutex<HashSet<MessageId>>>,
}

impl Worker {
    /// A worker running at most `concurrency` attempts at once.
    pub fn new(
        services: Arc<Services>,
        timer: Arc<Timer>,
        gate: Arc<Gate>,
        concurrency: usize,
    ) -> Self {
        gate.attach(Arc::clone(&timer));
        Self {
            services,
            timer,
            gate,
            concurrency: concurrency.max(1),
            in_flight: Default::default(),
        }
    }

    /// Delivers until `shutdown` turns true, then waits for attempts in flight.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        while !*shutdown.borrow() {
            self.start_due(&slots).await;
            let now = self.services.clock.now_ms();
            let wait = self.timer.next_due().map_or(MAX_IDLE, |t| {
                Duration::from_millis((t - now).max(0) as u64).min(MAX_IDLE)
            });
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.timer.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let _ = slots.acquire_many(self.concurrency as u32).await;
    }

    /// Starts an attempt for every due, admitted message while slots are free.
    async fn start_due(&self, slots: &Arc<Semaphore>) {
        loop {
            let Ok(permit) = Arc::clone(slots).acquire_owned().await else {
                return;
            };
            let now = self.services.clock.now_ms();
            let Some(wakeup) = self.timer.pop_due(now) else {
                return;
            };
            if !self
                .in_flight
                .lock()
                .is_ok_and(|mut s| s.insert(wakeup.id.clone()))
            {
                continue;
            }
            match self.gate.admit(&wakeup, now) {
                Admit::Go => {}
                Admit::Parked => {
                    self.done(&wakeup.id);
                    continue;
                }
                Admit::At(due) => {
                    self.done(&wakeup.id);
                    self.timer.push(Wakeup {
                        due_ms: due,
                        ..wakeup
                    });
                    continue;
                }
            }
            let (services, timer, gate, in_flight) = (
                Arc::clone(&self.services),
                Arc::clone(&self.timer),
                Arc::clone(&self.gate),
                Arc::clone(&self.in_flight),
            );
            tokio::spawn(async move {
                let (step, again) = step(&services, &wakeup).await;
                for released in gate.finished(&wakeup, &step, services.clock.now_ms()) {
                    timer.push(released);
                }
                if let Ok(mut s) = in_flight.lock() {
                    s.remove(&wakeup.id);
                }
                if let Some(again) = again {
                    timer.push(again);
                }
                drop(permit);
            });
        }
    }

    fn done(&self, id: &MessageId) {
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(id);
        }
    }
}

/// One delivery step, and the wake-up to arm once the attempt is reported (a retry or
/// an early wake-up). Armed later, not here: until the attempt is reported the message
/// still counts as in flight, and a wake-up popped meanwhile would be dropped.
async fn step(services: &Services, wakeup: &Wakeup) -> (Step, Option<Wakeup>) {
    let step = match deliver(services, &wakeup.id).await {
        Ok(step) => step,
        Err(e) => {
            tracing::error!(message_id = %wakeup.id, error = %e, "delivery step failed; trying again");
            Outcome::RetryAt(services.clock.now_ms() + INTERNAL_RETRY_MS).into()
        }
    };
    let again = match step.outcome {
        Outcome::RetryAt(due) | Outcome::NotDue(due) => Some(Wakeup {
            due_ms: due,
            ..wakeup.clone()
        }),
        _ => None,
    };
    (step, again)
}
