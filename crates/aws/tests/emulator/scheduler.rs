//! EventBridge Scheduler in the emulator (which records schedules but never fires them):
//! the schedule use cases create, update, disable and delete the translated schedules in
//! the stack's two groups, refuse what EventBridge cannot express before storing anything,
//! and never touch another schedule's or a wake-up's EventBridge schedule; the dispatcher
//! turns waits over 15 minutes into one-time `at()` schedules.

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

async fn try_create(services: &Services, id: &str, cron: &str) -> qpost_core::Result<()> {
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
    schedules::create(services, request).await.map(|_| ())
}

async fn create(services: &Services, id: &str, cron: &str) {
    try_create(services, id, cron).await.unwrap();
}

/// The stack's schedule groups: qpost schedules by id, and the rest by kind.
#[derive(Clone, Copy, Debug)]
enum Group {
    Primary,
    Secondary,
}

/// The EventBridge schedule `name` of one of the stack's groups, if it exists.
async fn get_in(backend: &Backend, group: Group, name: &str) -> Option<GetScheduleOutput> {
    let group_name = match group {
        Group::Primary => &backend.config.schedule_group,
        Group::Secondary => &backend.config.secondary_schedule_group,
    };
    let found = scheduler_client(backend)
        .await
        .get_schedule()
        .group_name(group_name)
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
        Err(e) => panic!("GetSchedule {group:?} {name}: {e:?}"),
    }
}

/// The EventBridge schedule of a qpost schedule (named by its id), if it exists.
async fn get(backend: &Backend, name: &str) -> Option<GetScheduleOutput> {
    get_in(backend, Group::Primary, name).await
}

/// The weekday half of qpost schedule `id`, if it has one.
async fn weekday_half(backend: &Backend, id: &str) -> Option<GetScheduleOutput> {
    let name = qpost_aws::scheduler::weekday_name(id);
    get_in(backend, Group::Secondary, &name).await
}

fn summary(s: &GetScheduleOutput) -> (&str, &str, Option<&ScheduleState>) {
    (
        s.schedule_expression().unwrap_or_default(),
        s.schedule_expression_timezone().unwrap_or_default(),
        s.state(),
    )
}

/// The expression and the schedule id the firing names.
fn fires(s: &GetScheduleOutput) -> (&str, &str) {
    (
        s.schedule_expression().unwrap_or_default(),
        s.target().and_then(|t| t.input()).unwrap_or_default(),
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
    assert!(weekday_half(&backend, "nightly").await.is_none());

    schedules::pause(&services, "nightly").await.unwrap();
    let paused = get(&backend, "nightly").await.unwrap();
    assert_eq!(paused.state(), Some(&ScheduleState::Disabled));
    schedules::resume(&services, "nightly").await.unwrap();
    let resumed = get(&backend, "nightly").await.unwrap();
    assert_eq!(resumed.state(), Some(&ScheduleState::Enabled));

    // Replaced by a cron restricting both day fields: the day-of-month half keeps the
    // id's name, the weekday half is in the secondary group.
    create(&services, "nightly", "CRON_TZ=Europe/Berlin 0 9 1 * MON").await;
    let a = get(&backend, "nightly").await.expect("day-of-month half");
    let b = weekday_half(&backend, "nightly")
        .await
        .expect("weekday half");
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
    assert_eq!(
        b.target().unwrap().input(),
        Some(r#"{"schedule":"nightly"}"#)
    );
    schedules::pause(&services, "nightly").await.unwrap();
    let paused = weekday_half(&backend, "nightly").await.unwrap();
    assert_eq!(
        paused.state(),
        Some(&ScheduleState::Disabled),
        "both halves pause"
    );

    // Back to one expression: the weekday half goes.
    create(&services, "nightly", "@daily").await;
    assert_eq!(
        summary(&get(&backend, "nightly").await.unwrap()).0,
        "cron(0 0 * * ? *)"
    );
    assert!(weekday_half(&backend, "nightly").await.is_none());

    create(&services, "nightly", "0 9 1 * MON").await;
    schedules::delete(&services, "nightly").await.unwrap();
    assert!(get(&backend, "nightly").await.is_none(), "deleted");
    assert!(
        weekday_half(&backend, "nightly").await.is_none(),
        "deleted too"
    );
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
async fn no_schedule_id_can_take_the_eventbridge_schedule_of_another_or_of_a_wakeup() {
    let now = SystemClock.now_ms();
    let backend = crate::support::backend_with_clock(Arc::new(ManualClock::new(now))).await;
    let services = backend.services();
    create(&services, "x", "0 9 1 * MON").await;
    let message = MessageId::generate();
    let due = now + 2 * 3600 * 1000;
    let wakeup = Wakeup {
        id: message.clone(),
        due_ms: due,
        queue_name: None,
        flow_control: None,
    };
    backend.dispatcher.dispatch(wakeup).await.unwrap();
    let wake = qpost_aws::scheduler::wake_name(&message, due);

    // Ids spelling the names a single group with suffixes (or prefixes) would give the
    // halves of `x` and the wake-up.
    for id in ["x-a", "x-b", "weekday.x", wake.as_str()] {
        create(&services, id, "@weekly").await;
    }

    let x = r#"{"schedule":"x"}"#;
    let a = get(&backend, "x").await.expect("x's day-of-month half");
    assert_eq!(fires(&a), ("cron(0 9 1 * ? *)", x));
    let b = weekday_half(&backend, "x").await.expect("x's weekday half");
    assert_eq!(fires(&b), ("cron(0 9 ? * 2 *)", x));
    let w = get_in(&backend, Group::Secondary, &wake)
        .await
        .expect("the wake-up");
    let woken = format!(r#"{{"id":"{message}"}}"#);
    assert_eq!(
        fires(&w),
        (qpost_aws::scheduler::at(due).as_str(), woken.as_str())
    );
    for id in ["x-a", "x-b", "weekday.x", wake.as_str()] {
        let own = get(&backend, id).await.expect("a schedule of its own");
        let input = format!(r#"{{"schedule":"{id}"}}"#);
        assert_eq!(fires(&own), ("cron(0 0 ? * 1 *)", input.as_str()), "{id}");
    }

    schedules::delete(&services, "x").await.unwrap();
    assert!(get(&backend, "x").await.is_none());
    assert!(weekday_half(&backend, "x").await.is_none());
    for id in ["x-a", "x-b", "weekday.x"] {
        assert!(get(&backend, id).await.is_some(), "{id} stays");
    }
    assert!(get_in(&backend, Group::Secondary, &wake).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_eventbridge_cannot_express_is_refused_before_anything_is_stored() {
    let backend = crate::lambda_support::backend().await;
    let services = backend.services();
    create(&services, "keep", "@hourly").await;

    for (id, cron, reason) in [
        (
            "keep",
            "0 0 13 * +5",
            "both the day of month and the weekday",
        ),
        ("fresh", "0 0 1,L * *", "only alone"),
        ("fresh", "0 0 * * 1#1,3#3", "only alone"),
    ] {
        let refused = try_create(&services, id, cron).await;
        match refused {
            Err(qpost_core::Error::BadRequest(why)) => {
                assert!(why.contains(reason), "{cron}: {why}")
            }
            other => panic!("{cron}: {other:?}"),
        }
    }

    let kept = services.schedules.get_schedule("keep").await.unwrap();
    assert_eq!(kept.expect("still stored").cron, "@hourly");
    let armed = get(&backend, "keep").await.expect("still armed");
    assert_eq!(armed.schedule_expression(), Some("cron(0 * * * ? *)"));
    assert!(
        services
            .schedules
            .get_schedule("fresh")
            .await
            .unwrap()
            .is_none()
    );
    assert!(get(&backend, "fresh").await.is_none());
    assert!(weekday_half(&backend, "fresh").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn l_w_and_hash_become_eventbridge_expressions() {
    let backend = crate::lambda_support::backend().await;
    let services = backend.services();

    create(&services, "month-end", "0 18 LW * *").await;
    create(&services, "meetup", "CRON_TZ=Europe/Paris 0 19 L * 4#2").await;

    let end = get(&backend, "month-end").await.expect("created");
    assert_eq!(summary(&end).0, "cron(0 18 LW * ? *)");
    let a = get(&backend, "meetup").await.expect("day-of-month half");
    let b = weekday_half(&backend, "meetup")
        .await
        .expect("weekday half");
    assert_eq!(summary(&a).0, "cron(0 19 L * ? *)");
    assert_eq!(
        (summary(&b).0, summary(&b).1),
        ("cron(0 19 ? * 5#2 *)", "Europe/Paris")
    );
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
    let s = get_in(&backend, Group::Secondary, &name)
        .await
        .expect("a one-time schedule in the secondary group");
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
