//! Flow-control leases on DynamoDB: acquire and release as the deliver function uses them
//! (parallelism under many concurrent acquirers, rate windows, pause, pins, expired
//! leases, idempotent release) and the management view reading the same item.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use qpost_aws::{Backend, DynamoAdmission, Grant};
use qpost_core::clock::{Clock, ManualClock};
use qpost_core::config::Limits;
use qpost_core::flow::{FlowCommand, FlowControl, FlowControlInfo};
use qpost_core::ids::MessageId;
use qpost_core::message::Message;
use qpost_core::ports::{Admission, MessageStore, NewMessage};

use crate::e2e::serial::dynamodb_one_at_a_time;
use crate::support;

const T0: i64 = 1_700_000_000_000;
/// Long enough that no lease expires unless a test moves the clock past it.
const HOLD: i64 = 60_000;

fn fc(key: &str, parallelism: Option<u32>, rate: Option<u32>, period: Option<u64>) -> FlowControl {
    FlowControl {
        key: key.into(),
        parallelism,
        rate,
        period_secs: period,
    }
}

/// The admission port of a fresh stack, on a clock at `T0` the test moves.
async fn admission() -> (Arc<DynamoAdmission>, Arc<ManualClock>, Backend) {
    let clock = Arc::new(ManualClock::new(T0));
    let backend = support::backend_with_clock(clock.clone()).await;
    (Arc::clone(&backend.admission), clock, backend)
}

async fn view(admission: &DynamoAdmission, key: &str) -> FlowControlInfo {
    admission
        .flow_key(key)
        .await
        .unwrap()
        .expect("the key is known")
}

async fn command(admission: &DynamoAdmission, key: &str, command: FlowCommand) {
    assert!(
        admission.flow_command(key, command).await.unwrap(),
        "{key} is known"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn twenty_concurrent_acquirers_never_hold_more_than_the_parallelism() {
    let clock = Arc::new(ManualClock::new(T0));
    let config = support::fresh_stack().await;
    let sdk = dynamodb_one_at_a_time(&support::sdk_config(&config.region).await);
    let backend = Backend::new(config, &sdk, clock.clone(), Limits::default());
    let admission = Arc::clone(&backend.admission);
    let limits = fc("par", Some(3), None, None);
    let (held, most) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (admission, limits) = (Arc::clone(&admission), limits.clone());
            let (held, most, clock) = (held.clone(), most.clone(), clock.clone());
            tokio::spawn(async move {
                let holder = format!("msg_{n}");
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let grant = admission.acquire(&limits, &holder, clock.now_ms(), HOLD);
                    match grant.await.unwrap() {
                        Grant::Granted => break,
                        Grant::Wait { .. } => {
                            assert!(Instant::now() < deadline, "{holder} starved")
                        }
                        Grant::Paused => panic!("nothing paused the key"),
                    }
                    // A record coming back later, shortened: this is not a backoff wait.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // The attempt: long beside the serialised requests of the others, so the
                // holders overlap even on a loaded machine.
                tokio::time::sleep(Duration::from_millis(300)).await;
                held.fetch_sub(1, Ordering::SeqCst);
                admission.release("par", &holder).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 3, "at most 3 held at once, saw {most}");
    assert!(most >= 2, "the acquirers really overlapped, saw {most}");
    let info = view(&admission, "par").await;
    assert_eq!((info.parallelism_max, info.parallelism_count), (3, 0));
    assert_eq!(info.rate_count, 20, "every start is counted in the window");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_counts_starts_per_window_and_the_rest_wait_for_its_end() {
    let (admission, clock, _backend) = admission().await;
    let limits = fc("rate", None, Some(2), Some(10));
    for holder in ["a", "b"] {
        assert_eq!(
            admission.acquire(&limits, holder, T0, HOLD).await.unwrap(),
            Grant::Granted
        );
        admission.release("rate", holder).await.unwrap();
    }
    let refused = admission
        .acquire(&limits, "c", T0 + 4_000, HOLD)
        .await
        .unwrap();
    assert_eq!(
        refused,
        Grant::Wait {
            until_ms: T0 + 10_000
        }
    );
    clock.set_ms(T0 + 4_000);
    let info = view(&admission, "rate").await;
    assert_eq!(
        (
            info.rate_max,
            info.rate_count,
            info.rate_period,
            info.rate_period_start
        ),
        (2, 2, 10, T0 / 1000)
    );
    let granted = admission
        .acquire(&limits, "c", T0 + 10_000, HOLD)
        .await
        .unwrap();
    assert_eq!(granted, Grant::Granted);
    clock.set_ms(T0 + 10_000);
    let info = view(&admission, "rate").await;
    assert_eq!(
        (info.rate_count, info.rate_period_start),
        (1, T0 / 1000 + 10)
    );

    command(&admission, "rate", FlowCommand::ResetRate).await;
    let info = view(&admission, "rate").await;
    assert_eq!(
        (info.rate_count, info.rate_period_start),
        (0, T0 / 1000 + 10)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_key_grants_nothing_until_resumed() {
    let (admission, _clock, _backend) = admission().await;
    let limits = fc("pause", Some(1), None, None);
    assert_eq!(
        admission.acquire(&limits, "a", T0, HOLD).await.unwrap(),
        Grant::Granted
    );
    admission.release("pause", "a").await.unwrap();

    command(&admission, "pause", FlowCommand::Pause).await;
    assert_eq!(
        admission.acquire(&limits, "b", T0, HOLD).await.unwrap(),
        Grant::Paused
    );
    let info = view(&admission, "pause").await;
    assert!(info.is_paused);
    assert_eq!((info.parallelism_count, info.rate_count), (0, 1));

    command(&admission, "pause", FlowCommand::Resume).await;
    assert_eq!(
        admission.acquire(&limits, "b", T0, HOLD).await.unwrap(),
        Grant::Granted
    );
    assert!(!view(&admission, "pause").await.is_paused);
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_limits_override_what_messages_ask_until_unpinned() {
    let (admission, _clock, _backend) = admission().await;
    let limits = fc("pin", Some(1), None, None);
    assert_eq!(
        admission.acquire(&limits, "a", T0, HOLD).await.unwrap(),
        Grant::Granted
    );
    assert!(matches!(
        admission.acquire(&limits, "b", T0, HOLD).await.unwrap(),
        Grant::Wait { .. }
    ));

    let pin = FlowCommand::Pin {
        parallelism: Some(2),
        rate: Some(100),
        period_secs: Some(60),
    };
    command(&admission, "pin", pin).await;
    assert_eq!(
        admission.acquire(&limits, "b", T0, HOLD).await.unwrap(),
        Grant::Granted
    );
    assert!(matches!(
        admission.acquire(&limits, "c", T0, HOLD).await.unwrap(),
        Grant::Wait { .. }
    ));
    let info = view(&admission, "pin").await;
    assert!(info.is_pinned_parallelism && info.is_pinned_rate);
    assert_eq!(
        (
            info.parallelism_max,
            info.parallelism_count,
            info.rate_max,
            info.rate_period
        ),
        (2, 2, 100, 60)
    );
    assert_eq!(info.rate_count, 1, "a pin resets the rate state");

    let unpin = FlowCommand::Unpin {
        parallelism: true,
        rate: true,
    };
    command(&admission, "pin", unpin).await;
    let info = view(&admission, "pin").await;
    assert!(!info.is_pinned_parallelism && !info.is_pinned_rate);
    assert_eq!(
        (info.parallelism_max, info.rate_max),
        (1, 0),
        "the asked limits again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_reclaimed_and_releasing_it_later_changes_nothing() {
    let (admission, clock, _backend) = admission().await;
    let limits = fc("expiry", Some(1), None, None);
    assert_eq!(
        admission
            .acquire(&limits, "crashed", T0, 1_000)
            .await
            .unwrap(),
        Grant::Granted
    );
    let refused = admission
        .acquire(&limits, "b", T0 + 500, HOLD)
        .await
        .unwrap();
    assert!(matches!(refused, Grant::Wait { .. }));
    clock.set_ms(T0 + 1_000);
    assert_eq!(
        view(&admission, "expiry").await.parallelism_count,
        0,
        "expired"
    );

    let granted = admission
        .acquire(&limits, "b", T0 + 1_000, HOLD)
        .await
        .unwrap();
    assert_eq!(granted, Grant::Granted);
    admission.release("expiry", "crashed").await.unwrap();
    assert_eq!(
        view(&admission, "expiry").await.parallelism_count,
        1,
        "b still holds"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn release_is_idempotent_and_a_duplicate_holder_waits_for_its_lease() {
    let (admission, _clock, _backend) = admission().await;
    let limits = fc("dup", Some(2), None, None);
    assert_eq!(
        admission.acquire(&limits, "a", T0, HOLD).await.unwrap(),
        Grant::Granted
    );
    let duplicate = admission
        .acquire(&limits, "a", T0 + 10, HOLD)
        .await
        .unwrap();
    assert_eq!(
        duplicate,
        Grant::Wait {
            until_ms: T0 + HOLD
        },
        "no second slot"
    );
    assert_eq!(view(&admission, "dup").await.parallelism_count, 1);

    for _ in 0..2 {
        admission.release("dup", "a").await.unwrap();
    }
    admission.release("never-used", "a").await.unwrap();
    assert_eq!(view(&admission, "dup").await.parallelism_count, 0);
    assert_eq!(admission.flow_key("never-used").await.unwrap(), None);
}

fn stored(key: &str, parallelism: u32) -> Message {
    let mut m = Message::new("https://example.com/hook".into(), b"{}".to_vec(), 3, T0);
    m.flow_control = Some(fc(key, Some(parallelism), Some(50), Some(60)));
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn the_management_view_counts_stored_messages_leases_and_the_global_total() {
    let (admission, _clock, backend) = admission().await;
    let (a, mut b) = (stored("view", 4), stored("view", 2));
    b.created_at += 1; // the newest
    let batch = [&a, &b].map(|m| NewMessage {
        message: m.clone(),
        dedup: None,
        from_dlq: None,
        events: vec![],
    });
    backend.store.insert(batch.to_vec()).await.unwrap();

    let info = view(&admission, "view").await;
    assert_eq!(
        (
            info.wait_list_size,
            info.parallelism_max,
            info.rate_max,
            info.rate_period
        ),
        (2, 2, 50, 60),
        "before any attempt: the newest stored message's limits"
    );
    assert_eq!((info.parallelism_count, info.rate_count), (0, 0));

    let limits = a.flow_control.clone().unwrap();
    let granted = admission
        .acquire(&limits, a.id.as_str(), T0, HOLD)
        .await
        .unwrap();
    assert_eq!(granted, Grant::Granted);
    let other = fc("other", Some(5), None, None);
    for holder in ["x", "y"] {
        admission.acquire(&other, holder, T0, HOLD).await.unwrap();
    }
    let info = view(&admission, "view").await;
    assert_eq!(
        (
            info.wait_list_size,
            info.parallelism_count,
            info.parallelism_max,
            info.rate_count
        ),
        (1, 1, 4, 1),
        "the attempted message's limits; in flight, not waiting"
    );
    let listed = admission.flow_keys(None).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|i| i.flow_control_key.as_str()).collect();
    assert_eq!(names, ["other", "view"]);
    assert_eq!(admission.flow_keys(Some("oth")).await.unwrap().len(), 1);
    let global = admission.global_parallelism().await.unwrap();
    assert_eq!(global.parallelism_count, 3, "the live leases of every key");

    let unknown = MessageId::generate().to_string();
    assert!(
        !admission
            .flow_command(&unknown, FlowCommand::Pause)
            .await
            .unwrap()
    );
    assert_eq!(admission.flow_key(&unknown).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_on_a_key_only_stored_messages_name_creates_its_item() {
    let (admission, _clock, backend) = admission().await;
    let m = stored("seeded", 3);
    let new = NewMessage {
        message: m.clone(),
        dedup: None,
        from_dlq: None,
        events: vec![],
    };
    backend.store.insert(vec![new]).await.unwrap();
    command(&admission, "seeded", FlowCommand::Pause).await;
    let item = backend
        .store
        .get_flow("seeded")
        .await
        .unwrap()
        .expect("stored");
    assert!(item.limits.is_paused());
    assert_eq!(
        item.limits.parallelism(),
        Some(3),
        "seeded from the stored message"
    );
    let limits = m.flow_control.unwrap();
    let grant = admission
        .acquire(&limits, m.id.as_str(), T0, HOLD)
        .await
        .unwrap();
    assert_eq!(grant, Grant::Paused);
}
