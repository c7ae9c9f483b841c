//! Unit tests of the schedule use cases: id and deduplication parsing, and the order of
//! check, store and arm against an in-memory store and a registry that refuses some crons.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;

#[test]
fn custom_ids_use_only_the_name_alphabet_and_missing_ones_are_generated() {
    assert_eq!(parse_id(Some("my-job_1.v2")).unwrap(), "my-job_1.v2");
    let generated = parse_id(None).unwrap();
    assert!(
        generated.starts_with("scd_") && generated.len() > 20,
        "{generated}"
    );
    assert_ne!(generated, parse_id(Some("")).unwrap());
    for bad in ["a b", "a/b", "ü", "x?y"] {
        let err = parse_id(Some(bad)).unwrap_err().to_string();
        assert!(err.contains("Upstash-Schedule-Id"), "{bad}: {err}");
    }
}

#[test]
fn deduplication_moves_from_the_produced_messages_to_the_creation() {
    let mut o = PublishOptions {
        dedup_id: Some("d1".into()),
        ..Default::default()
    };
    assert_eq!(
        take_dedup_key(&mut o, "https://x", b"b").as_deref(),
        Some("id:d1")
    );
    assert_eq!(o.dedup_id, None);

    let mut a = PublishOptions {
        content_dedup: true,
        ..Default::default()
    };
    let mut b = a.clone();
    let mut c = a.clone();
    let ka = take_dedup_key(&mut a, "https://x", b"body");
    assert!(!a.content_dedup);
    assert_eq!(ka, take_dedup_key(&mut b, "https://x", b"body"));
    assert_ne!(ka, take_dedup_key(&mut c, "https://x", b"other"));
    assert_eq!(take_dedup_key(&mut a, "https://x", b"body"), None);
}

/// Schedules by id.
#[derive(Default)]
struct Stored(Mutex<HashMap<String, Schedule>>);

impl Stored {
    fn cron_of(&self, id: &str) -> Option<String> {
        let all = self.0.lock().unwrap();
        all.get(id).map(|s| s.cron.clone())
    }
}

#[async_trait]
impl ScheduleStore for Stored {
    async fn put_schedule(&self, schedule: &Schedule) -> Result<()> {
        let mut all = self.0.lock().unwrap();
        all.insert(schedule.id.clone(), schedule.clone());
        Ok(())
    }
    async fn get_schedule(&self, id: &str) -> Result<Option<Schedule>> {
        Ok(self.0.lock().unwrap().get(id).cloned())
    }
    async fn list_schedules(&self) -> Result<Vec<Schedule>> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        Ok(self.0.lock().unwrap().remove(id).is_some())
    }
}

/// A registry whose scheduler cannot express crons with `+` (as EventBridge Scheduler):
/// it refuses them when checking and when arming, and records what it armed.
#[derive(Default)]
struct NoBothDays(Mutex<Vec<(String, String)>>);

impl NoBothDays {
    fn refuse(schedule: &Schedule) -> Result<()> {
        match schedule.cron.contains('+') {
            true => Err(Error::bad_request("both day fields: cannot express")),
            false => Ok(()),
        }
    }

    fn armed(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl ScheduleRegistry for NoBothDays {
    fn check(&self, schedule: &Schedule) -> Result<()> {
        Self::refuse(schedule)
    }
    async fn arm(&self, schedule: &Schedule) -> Result<()> {
        Self::refuse(schedule)?;
        let mut armed = self.0.lock().unwrap();
        armed.push((schedule.id.clone(), schedule.cron.clone()));
        Ok(())
    }
    async fn disarm(&self, _id: &str) -> Result<()> {
        Ok(())
    }
}

fn schedule(id: &str, cron: &str) -> Schedule {
    Schedule {
        id: id.into(),
        cron: cron.into(),
        destination: "https://example.com/cron".into(),
        body: b"tick".to_vec(),
        options: PublishOptions::default(),
        queue_name: None,
        caller_ip: None,
        created_at: 1_700_000_000_000,
        paused: false,
        last_schedule_time: None,
        next_schedule_time: None,
        last_message_ids: Vec::new(),
        last_error: None,
        last_slot: None,
        dedup_key: None,
    }
}

#[tokio::test]
async fn a_schedule_the_registry_refuses_is_answered_400_and_never_stored() {
    let (store, registry) = (Stored::default(), NoBothDays::default());

    let refused = replace(&store, &registry, &schedule("x", "0 0 13 * +5")).await;

    assert!(matches!(refused, Err(Error::BadRequest(_))), "{refused:?}");
    assert_eq!(store.cron_of("x"), None, "nothing stored");
    assert!(registry.armed().is_empty(), "nothing armed");
}

#[tokio::test]
async fn a_replacement_the_registry_refuses_keeps_the_schedule_it_would_replace() {
    let (store, registry) = (Stored::default(), NoBothDays::default());
    replace(&store, &registry, &schedule("x", "@hourly"))
        .await
        .expect("an armable schedule is stored and armed");

    let refused = replace(&store, &registry, &schedule("x", "0 0 13 * +5")).await;

    assert!(matches!(refused, Err(Error::BadRequest(_))), "{refused:?}");
    assert_eq!(store.cron_of("x").as_deref(), Some("@hourly"));
    assert_eq!(registry.armed(), [("x".to_string(), "@hourly".to_string())]);
}

/// A registry whose scheduler is unavailable for crons naming minute 13 (as EventBridge
/// throttling or an outage would be for any): checks pass, arming fails.
#[derive(Default)]
struct Flaky(NoBothDays);

#[async_trait]
impl ScheduleRegistry for Flaky {
    async fn arm(&self, schedule: &Schedule) -> Result<()> {
        if schedule.cron.starts_with("13 ") {
            return Err(Error::internal("the scheduler is unavailable"));
        }
        self.0.arm(schedule).await
    }
    async fn disarm(&self, id: &str) -> Result<()> {
        self.0.disarm(id).await
    }
}

#[tokio::test]
async fn a_schedule_that_cannot_be_armed_is_not_left_stored() {
    let (store, registry) = (Stored::default(), Flaky::default());

    let failed = replace(&store, &registry, &schedule("new", "13 * * * *")).await;

    assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
    assert_eq!(
        store.cron_of("new"),
        None,
        "not listed, since it would never fire"
    );
}

#[tokio::test]
async fn a_replacement_that_cannot_be_armed_puts_the_previous_schedule_back_armed() {
    let (store, registry) = (Stored::default(), Flaky::default());
    replace(&store, &registry, &schedule("x", "@hourly"))
        .await
        .expect("stored and armed");

    let failed = replace(&store, &registry, &schedule("x", "13 * * * *")).await;

    assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
    assert_eq!(store.cron_of("x").as_deref(), Some("@hourly"));
    let armed = registry.0.armed();
    assert_eq!(
        armed.last(),
        Some(&("x".to_string(), "@hourly".to_string()))
    );
}
