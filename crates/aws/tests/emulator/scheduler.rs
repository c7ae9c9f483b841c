//! EventBridge Scheduler in the emulator (which records schedules but never fires them):
//! the schedule use cases create, update, disable and delete the translated schedules,
//! and the dispatcher turns waits over 15 minutes into one-time `at()` schedules.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::types::{ActionAfterCompletion, ScheduleState};
use axum::body::Bytes;
use qpost_aws::Backend;
use qpost_core::Services;
use qpost_core::clock::{Clock, ManualClock, SystemClock};
use qpost_core::ids::MessageId;
use qpost_core::ports::{Dispatcher, Wakeup};
use qpost_core::publish::PublishRequest;
use qpost_core::schedules;

use crate::deliver::scheduler_client;
use crate::lambda_support::receive;

async fn create(services: &Services, id: &str, cron: &str) {
    let mut headers = http::HeaderMap::new();
    headers.insert("upstash-cron", cron.parse().unwrap());
    headers.insert("upstash-schedule-id", id.parse().unwrap());
    let request = PublishRequest {
        destination: "https://example.com/cron".into(),
        raw_query: None,
        headers,
        body: Bytes::from_static(b"tick"),
        caller_ip: None,
    };
    schedules::create(services, request).await.unwrap();
}

/// The EventBridge schedule `name` of the stack's group, if it exists.
async fn get(backend: &Backend, name: &str) -> Option<GetScheduleOutput> {
    let found = scheduler_client(backend)
        .await
        .get_schedule()
        .group_name(&backend.config.schedule_group)
        .name(name)
        .send()
        .await;
    match found {
        Ok(s) => Some(s),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetSchedule {name}: {e:?}"),
    }
}

fn summary(s: &GetScheduleOutput) -> (&str, &str, Option<&ScheduleState>) {
    (
        s.schedule_expression().unwrap_or_default(),
        s.schedule_expression_timezone().unwrap_or_default(),
        s.state(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_created_updated_disabled_and_deleted_in_eventbridge() {
    let backend = crate::lambda_support::backend().await;
    let services = backend.services();

    create(&services, "nightly", "*/5 * * * *").await;
    let s = get(&backend, "nightly").await.expect("created");
    assert_eq!(
        summary(&s),
        ("cron(0/5 * * * ? *)", "UTC", Some(&ScheduleState::Enabled))
    );
    let target = s.target().unwrap();
    assert_eq!(target.arn(), backend.config.delivery_queue_arn);
    assert_eq!(target.role_arn(), backend.config.scheduler_role_arn);
    assert_eq!(target.input(), Some(r#"{"schedule":"nightly"}"#));
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        Some(backend.config.dead_letter_queue_arn.as_str())
    );

    schedules::pause(&services, "nightly").await.unwrap();
    let paused = get(&backend, "nightly").await.unwrap();
    assert_eq!(paused.state(), Some(&ScheduleState::Disabled));
    schedules::resume(&services, "nightly").await.unwrap();
    let resumed = get(&backend, "nightly").await.unwrap();
    assert_eq!(resumed.state(), Some(&ScheduleState::Enabled));

    // Replaced by a cron restricting both day fields: two schedules, the old one gone.
    create(&services, "nightly", "CRON_TZ=Europe/Berlin 0 9 1 * MON").await;
    assert!(get(&backend, "nightly").await.is_none());
    let a = get(&backend, "nightly-a").await.expect("day-of-month part");
    let b = get(&backend, "nightly-b").await.expect("weekday part");
    assert_eq!(
        summary(&a),
        (
            "cron(0 9 1 * ? *)",
            "Europe/Berlin",
            Some(&ScheduleState::Enabled)
        )
    );
    assert_eq!(
        summary(&b),
        (
            "cron(0 9 ? * 2 *)",
            "Europe/Berlin",
            Some(&ScheduleState::Enabled)
        )
    );

    schedules::delete(&services, "nightly").await.unwrap();
    for name in ["nightly", "nightly-a", "nightly-b"] {
        assert!(get(&backend, name).await.is_none(), "{name} deleted");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_schedule_never_deletes_another_schedules_eventbridge_schedule() {
    let backend = crate::lambda_support::backend().await;
    let services = backend.services();
    create(&services, "job", "@hourly").await;
    create(&services, "job-a", "@daily").await;

    schedules::delete(&services, "job").await.unwrap();

    assert!(get(&backend, "job").await.is_none());
    let other = get(&backend, "job-a")
        .await
        .expect("job-a keeps its schedule");
    assert_eq!(other.schedule_expression(), Some("cron(0 0 * * ? *)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wakeup_two_hours_away_is_a_one_time_schedule_not_a_queue_message() {
    let now = SystemClock.now_ms();
    let backend = crate::support::backend_with_clock(Arc::new(ManualClock::new(now))).await;
    let id = MessageId::generate();
    let due = now + 2 * 3600 * 1000;
    let wakeup = Wakeup {
        id: id.clone(),
        due_ms: due,
        queue_name: None,
        flow_control: None,
    };

    backend.dispatcher.dispatch(wakeup.clone()).await.unwrap();
    backend.dispatcher.dispatch(wakeup).await.unwrap();

    let name = qpost_aws::scheduler::wake_name(&id, due);
    let s = get(&backend, &name).await.expect("a one-time schedule");
    assert_eq!(
        summary(&s),
        (
            qpost_aws::scheduler::at(due).as_str(),
            "UTC",
            Some(&ScheduleState::Enabled)
        )
    );
    assert_eq!(
        s.action_after_completion(),
        Some(&ActionAfterCompletion::Delete)
    );
    assert_eq!(
        s.target().and_then(|t| t.input()),
        Some(format!(r#"{{"id":"{id}"}}"#).as_str())
    );
    let queued = receive(
        &backend,
        &backend.config.delivery_queue_url,
        1,
        Duration::from_secs(2),
    )
    .await;
    assert!(queued.is_empty(), "nothing went to the queue: {queued:?}");
}
