//! The delivery worker: pops due messages from the timer and runs the core delivery
//! step on each, with bounded concurrency. It only carries outcomes out: a retry or an
//! early wake-up re-arms the timer; everything else is already recorded by the step.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qpost_core::Services;
use qpost_core::delivery::{Outcome, deliver};
use qpost_core::ids::MessageId;
use tokio::sync::{Semaphore, watch};

use crate::timer::Timer;

/// How long to wait before trying again after qpost's own failure (store, I/O).
const INTERNAL_RETRY_MS: i64 = 1_000;
/// Longest sleep without a wake-up, a guard against missed notifications.
const MAX_IDLE: Duration = Duration::from_secs(1);

pub struct Worker {
    services: Arc<Services>,
    timer: Arc<Timer>,
    concurrency: usize,
    in_flight: Arc<Mutex<HashSet<MessageId>>>,
}

impl Worker {
    /// A worker running at most `concurrency` attempts at once.
    pub fn new(services: Arc<Services>, timer: Arc<Timer>, concurrency: usize) -> Self {
        Self {
            services,
            timer,
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

    /// Starts an attempt for every due message while slots are free.
    async fn start_due(&self, slots: &Arc<Semaphore>) {
        loop {
            let Ok(permit) = Arc::clone(slots).acquire_owned().await else {
                return;
            };
            let Some(id) = self.timer.pop_due(self.services.clock.now_ms()) else {
                return;
            };
            if !self
                .in_flight
                .lock()
                .is_ok_and(|mut s| s.insert(id.clone()))
            {
                continue;
            }
            let (services, timer, in_flight) = (
                Arc::clone(&self.services),
                Arc::clone(&self.timer),
                Arc::clone(&self.in_flight),
            );
            tokio::spawn(async move {
                step(&services, &timer, &id).await;
                if let Ok(mut s) = in_flight.lock() {
                    s.remove(&id);
                }
                drop(permit);
            });
        }
    }
}

/// One delivery step and what the timer must do about it.
async fn step(services: &Services, timer: &Timer, id: &MessageId) {
    match deliver(services, id).await {
        Ok(Outcome::RetryAt(due) | Outcome::NotDue(due)) => timer.push(id.clone(), due),
        Ok(Outcome::Delivered | Outcome::Failed { .. } | Outcome::Cancelled) => {}
        Err(e) => {
            tracing::error!(message_id = %id, error = %e, "delivery step failed; trying again");
            timer.push(id.clone(), services.clock.now_ms() + INTERNAL_RETRY_MS);
        }
    }
}
