//! The cron ticker: fires schedules at their minutes in this process. It is the local
//! implementation of the schedule registry port: arming records a schedule's next minute,
//! [`Ticker::tick`] fires whatever is due through the core firing step
//! ([`qpost_core::schedules::fire`]), and [`Ticker::run`] sleeps on the injected clock
//! until the next minute comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use qpost_core::Services;
use qpost_core::ports::ScheduleRegistry;
use qpost_core::schedule::Schedule;
use qpost_core::schedules;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// Longest sleep between two looks at the clock, so a clock moved by hand (tests) or by
/// the system is noticed within it.
const MAX_IDLE: Duration = Duration::from_millis(500);

/// The next minute (Unix ms) of every armed schedule, by id. Paused and deleted
/// schedules are not armed.
#[derive(Default)]
pub struct Ticker {
    armed: Mutex<HashMap<String, i64>>,
    wake: Notify,
}

/// One firing's result, carried out of its task.
type Fired = (String, i64, qpost_core::Result<Option<Schedule>>);

impl Ticker {
    pub fn new() -> Self {
        Self::default()
    }

    fn armed(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        // The map stays consistent whatever panicked while holding it.
        self.armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The minute schedule `id` fires next, if it is armed.
    pub fn next_of(&self, id: &str) -> Option<i64> {
        self.armed().get(id).copied()
    }

    /// The earliest armed minute.
    pub fn next_due(&self) -> Option<i64> {
        self.armed().values().min().copied()
    }

    /// Fires every schedule due at `now` (each once, concurrently), re-arms each at the
    /// next minute its firing computed, and returns the earliest armed minute.
    pub async fn tick(&self, services: &Arc<Services>, now: i64) -> Option<i64> {
        let due: Vec<(String, i64)> = self
            .armed()
            .iter()
            .filter(|(_, slot)| **slot <= now)
            .map(|(id, slot)| (id.clone(), *slot))
            .collect();
        let mut firings: JoinSet<Fired> = JoinSet::new();
        for (id, slot) in due {
            let services = Arc::clone(services);
            firings.spawn(async move {
                let result = schedules::fire(&services, &id, slot).await;
                (id, slot, result)
            });
        }
        while let Some(joined) = firings.join_next().await {
            match joined {
                Ok(fired) => self.settle(fired),
                Err(e) => tracing::error!(error = %e, "a schedule firing panicked"),
            }
        }
        self.next_due()
    }

    /// Re-arms a fired schedule, unless it was re-armed (replaced, resumed) meanwhile.
    fn settle(&self, (id, slot, result): Fired) {
        let next = match result {
            Ok(Some(s)) if !s.paused => s.next_schedule_time,
            Ok(_) => None,
            // qpost's own failure: the same minute is tried again on the next tick.
            Err(e) if e.is_retryable() => {
                tracing::warn!(schedule_id = %id, error = %e, "firing a schedule failed; trying again");
                return;
            }
            Err(e) => {
                tracing::error!(schedule_id = %id, error = %e, "cannot fire schedule; disarmed");
                None
            }
        };
        let mut armed = self.armed();
        if armed.get(&id) != Some(&slot) {
            return;
        }
        match next {
            Some(next) => armed.insert(id, next),
            None => armed.remove(&id),
        };
    }

    /// Ticks until `shutdown` turns true, sleeping until the next armed minute on the
    /// services' clock, at most [`MAX_IDLE`] at a time, or until a schedule is armed.
    pub async fn run(
        self: Arc<Self>,
        services: Arc<Services>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            let next = self.tick(&services, services.clock.now_ms()).await;
            let now = services.clock.now_ms();
            let wait = next.map_or(MAX_IDLE, |t| {
                Duration::from_millis((t - now).max(0) as u64).min(MAX_IDLE)
            });
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[async_trait]
impl ScheduleRegistry for Ticker {
    async fn arm(&self, schedule: &Schedule) -> qpost_core::Result<()> {
        {
            let mut armed = self.armed();
            match (schedule.paused, schedule.next_schedule_time) {
                (false, Some(next)) => armed.insert(schedule.id.clone(), next),
                _ => armed.remove(&schedule.id),
            };
        }
        self.wake.notify_one();
        Ok(())
    }

    async fn disarm(&self, id: &str) -> qpost_core::Result<()> {
        self.armed().remove(id);
        self.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qpost_core::clock::ManualClock;
    use qpost_core::config::Limits;
    use qpost_core::filter::MessageFilter;
    use qpost_core::publish::PublishOptions;
    use qpost_core::services::delivery_client;

    use crate::{Gate, SqliteStore, Timer};

    /// 2025-01-01T10:00:00Z.
    const T0: i64 = 1_735_725_600_000;
    const MINUTE: i64 = 60_000;

    struct Fixture {
        services: Arc<Services>,
        ticker: Arc<Ticker>,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("q.db")).unwrap());
        let ticker = Arc::new(Ticker::new());
        let clock = Arc::new(ManualClock::new(T0 + 30_000));
        let services = Arc::new(Services {
            messages: store.clone(),
            dlq: store.clone(),
            keys: store.clone(),
            dispatcher: Arc::new(Timer::new()),
            schedules: store.clone(),
            registry: ticker.clone(),
            topics: store.clone(),
            queues: store.clone(),
            events: store.clone(),
            admission: Arc::new(Gate::new(8)),
            clock: clock.clone(),
            http: delivery_client(false),
            limits: Limits::default(),
        });
        Fixture {
            services,
            ticker,
            clock,
            _dir: dir,
        }
    }

    /// An every-minute schedule to a URL, next due at `next`, stored and armed.
    async fn every_minute(f: &Fixture, id: &str, next: i64) -> Schedule {
        let s = Schedule {
            id: id.into(),
            cron: "* * * * *".into(),
            destination: "http://127.0.0.1:9/hook".into(),
            body: b"tick".to_vec(),
            options: PublishOptions::default(),
            queue_name: None,
            caller_ip: None,
            created_at: T0,
            paused: false,
            last_schedule_time: None,
            next_schedule_time: Some(next),
            last_message_ids: Vec::new(),
            last_error: None,
            last_slot: None,
            dedup_key: None,
        };
        f.services.schedules.put_schedule(&s).await.unwrap();
        f.ticker.arm(&s).await.unwrap();
        s
    }

    async fn produced(f: &Fixture, id: &str) -> usize {
        let filter = MessageFilter {
            schedule_id: vec![id.into()],
            ..Default::default()
        };
        f.services.messages.find(&filter, 100).await.unwrap().len()
    }

    #[tokio::test]
    async fn a_tick_before_the_minute_fires_nothing_and_names_the_minute() {
        let f = fixture();
        every_minute(&f, "a", T0 + MINUTE).await;
        let next = f.ticker.tick(&f.services, T0 + MINUTE - 1).await;
        assert_eq!(next, Some(T0 + MINUTE));
        assert_eq!(produced(&f, "a").await, 0);
    }

    #[tokio::test]
    async fn a_due_schedule_fires_once_and_is_re_armed_at_its_next_minute() {
        let f = fixture();
        every_minute(&f, "a", T0 + MINUTE).await;
        f.clock.set_ms(T0 + MINUTE + 200);
        let next = f.ticker.tick(&f.services, T0 + MINUTE + 200).await;
        assert_eq!(next, Some(T0 + 2 * MINUTE));
        assert_eq!(produced(&f, "a").await, 1);
        f.ticker.tick(&f.services, T0 + MINUTE + 900).await;
        assert_eq!(produced(&f, "a").await, 1, "one firing per minute");

        let stored = f
            .services
            .schedules
            .get_schedule("a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.last_schedule_time, Some(T0 + MINUTE + 200));
        assert_eq!(stored.next_schedule_time, Some(T0 + 2 * MINUTE));
        assert_eq!(stored.last_message_ids.len(), 1);
    }

    #[tokio::test]
    async fn minutes_missed_while_down_fire_once_not_in_a_burst() {
        let f = fixture();
        every_minute(&f, "a", T0 + MINUTE).await;
        let late = T0 + 10 * MINUTE + 5_000;
        f.clock.set_ms(late);
        let next = f.ticker.tick(&f.services, late).await;
        assert_eq!(produced(&f, "a").await, 1);
        assert_eq!(next, Some(T0 + 11 * MINUTE), "the next minute after now");
        f.ticker.tick(&f.services, late + 1).await;
        assert_eq!(produced(&f, "a").await, 1);
    }

    #[tokio::test]
    async fn paused_and_deleted_schedules_are_not_fired() {
        let f = fixture();
        every_minute(&f, "paused", T0 + MINUTE).await;
        every_minute(&f, "deleted", T0 + MINUTE).await;
        schedules::pause(&f.services, "paused").await.unwrap();
        schedules::delete(&f.services, "deleted").await.unwrap();
        assert_eq!(f.ticker.next_due(), None);
        f.clock.set_ms(T0 + 2 * MINUTE);
        f.ticker.tick(&f.services, T0 + 2 * MINUTE).await;
        assert_eq!(produced(&f, "paused").await, 0);
        assert_eq!(produced(&f, "deleted").await, 0);

        schedules::resume(&f.services, "paused").await.unwrap();
        assert_eq!(f.ticker.next_of("paused"), Some(T0 + 3 * MINUTE));
    }

    #[tokio::test]
    async fn a_schedule_gone_behind_the_tickers_back_is_disarmed_when_due() {
        let f = fixture();
        every_minute(&f, "a", T0 + MINUTE).await;
        f.services.schedules.delete_schedule("a").await.unwrap();
        assert_eq!(f.ticker.tick(&f.services, T0 + MINUTE).await, None);
        assert_eq!(f.ticker.next_of("a"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_run_loop_notices_a_clock_moved_by_hand() {
        let f = fixture();
        every_minute(&f, "a", T0 + MINUTE).await;
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = tokio::spawn(f.ticker.clone().run(f.services.clone(), stop_rx));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(produced(&f, "a").await, 0);
        f.clock.set_ms(T0 + MINUTE);
        let deadline = tokio::time::Instant::now() + MAX_IDLE * 4;
        while produced(&f, "a").await == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        run.await.unwrap();
        assert_eq!(produced(&f, "a").await, 1);
    }
}
