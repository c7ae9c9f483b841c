//! Schedule use cases (`/v2/schedules`, `qstash-api.md` §8): create or replace, read, delete,
//! pause and resume, and [`fire`], the one firing step every backend runs when a cron minute
//! comes (the local ticker, or the AWS function EventBridge Scheduler triggers).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::Services;
use crate::cron::CronExpr;
use crate::error::{Error, Result};
use crate::events::EventState;
use crate::filter::{EventFilter, MessageFilter};
use crate::flow::is_valid_name;
use crate::ids::{MessageId, random_token};
use crate::ports::{ScheduleRegistry, ScheduleStore};
use crate::publish::{self, ConfigSource, Draft, PublishOptions, PublishRequest, Target};
use crate::schedule::{Schedule, ScheduleState, ScheduleView};

/// Serialises the read-modify-writes of schedules in this process (create, pause, resume,
/// delete, and a firing's bookkeeping), so a pause landing while a schedule fires is never
/// overwritten by the firing's write. Across processes (AWS mode: the schedules and
/// deliver functions) the window stays: the store has no compare-and-swap for schedules.
static EDITS: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

/// What a create request led to: the id, and whether an equal creation within the
/// deduplication window made this one a no-op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub schedule_id: String,
    pub deduplicated: bool,
}

/// The value of config `name` from the headers, else from an `upstash-*` query parameter.
fn config<'a>(
    headers: &'a HeaderMap,
    query: &'a [(String, String)],
    name: &str,
) -> Option<&'a str> {
    match headers.get(name) {
        Some(v) => v.to_str().ok(),
        None => query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str()),
    }
    .map(str::trim)
}

fn parse_id(value: Option<&str>) -> Result<String> {
    match value {
        None | Some("") => Ok(format!("scd_{}", random_token(28))),
        Some(id) if is_valid_name(id) => Ok(id.to_string()),
        Some(id) => Err(Error::bad_request(format!(
            "invalid Upstash-Schedule-Id {id:?}: use only alphanumerics, '-', '_' and '.'"
        ))),
    }
}

fn parse_queue(value: Option<&str>) -> Result<Option<String>> {
    let Some(name) = value.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    crate::queues::check_name(name)?;
    Ok(Some(name.to_string()))
}

/// `POST /v2/schedules/{destination}`: validates everything, deduplicates the creation,
/// then [`replace`]s: the registry checks it can arm the schedule (a cron its scheduler
/// cannot express is refused), then it is stored, replacing one of the same id entirely,
/// and armed. A refusal changes nothing.
pub async fn create(services: &Services, req: PublishRequest) -> Result<Created> {
    let now = services.clock.now_ms();
    let schedule = parse(services, req, now).await?;
    if let Some(existing) = duplicate_of(services, schedule.dedup_key.as_deref(), now).await? {
        return Ok(Created {
            schedule_id: existing,
            deduplicated: true,
        });
    }
    replace(&*services.schedules, &*services.registry, &schedule).await?;
    Ok(Created {
        schedule_id: schedule.id,
        deduplicated: false,
    })
}

/// Stores `schedule` (replacing one of the same id) and arms it, once the registry has
/// checked it can: a schedule it refuses is answered with the reason and changes nothing,
/// so a replacement refused keeps the schedule it would have replaced. Should arming fail
/// anyway (the scheduler unavailable), what was stored is undone before the error is
/// answered, so no schedule is listed that would never fire.
async fn replace(
    store: &dyn ScheduleStore,
    registry: &dyn ScheduleRegistry,
    schedule: &Schedule,
) -> Result<()> {
    registry.check(schedule)?;
    let _edit = EDITS.lock().await;
    let previous = store.get_schedule(&schedule.id).await?;
    store.put_schedule(schedule).await?;
    if let Err(e) = registry.arm(schedule).await {
        if let Err(undo) = restore(store, registry, &schedule.id, previous).await {
            tracing::error!(schedule = schedule.id, error = %undo, "a schedule that could not be armed was not undone");
        }
        return Err(e);
    }
    Ok(())
}

/// Puts back what a failed [`replace`] changed: the `previous` schedule, armed again, or
/// no schedule at all.
async fn restore(
    store: &dyn ScheduleStore,
    registry: &dyn ScheduleRegistry,
    id: &str,
    previous: Option<Schedule>,
) -> Result<()> {
    match previous {
        Some(old) => {
            store.put_schedule(&old).await?;
            registry.arm(&old).await
        }
        None => {
            registry.disarm(id).await?;
            store.delete_schedule(id).await.map(drop)
        }
    }
}

/// The schedule a create request describes, created at `now`; every header is checked.
async fn parse(services: &Services, req: PublishRequest, now: i64) -> Result<Schedule> {
    let (dest_query, query) = publish::split_query(req.raw_query.as_deref());
    let cron_text = config(&req.headers, &query, "upstash-cron")
        .ok_or_else(|| Error::bad_request("the Upstash-Cron header is required"))?;
    let cron = CronExpr::parse(cron_text)?;
    let id = parse_id(config(&req.headers, &query, "upstash-schedule-id"))?;
    let queue_name = parse_queue(config(&req.headers, &query, "upstash-queue-name"))?;
    let target = publish::parse_target(&req.destination, dest_query)?;
    if req.body.len() > services.limits.max_body_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "message body exceeds the limit of {} bytes",
            services.limits.max_body_bytes
        )));
    }
    let (destination, headers) = resolve(services, &target, &req.headers).await?;
    let source = ConfigSource {
        headers: &headers,
        query: &query,
    };
    let mut options = PublishOptions::parse(&source, &services.limits)?;
    if let Target::Url(url) = &target {
        publish::check_egress(services, std::iter::once(url.as_str()), &options)?;
    }
    let dedup_key = take_dedup_key(&mut options, &destination, &req.body);
    // An absolute not-before would pin every produced message to one time: not for schedules.
    options.not_before_secs = None;
    Ok(Schedule {
        id,
        cron: cron.as_str().to_string(),
        destination,
        body: req.body.to_vec(),
        options,
        queue_name,
        caller_ip: req.caller_ip,
        created_at: now,
        paused: false,
        last_schedule_time: None,
        next_schedule_time: cron.next_after(now),
        last_message_ids: Vec::new(),
        last_error: None,
        last_slot: None,
        dedup_key,
    })
}

/// The destination as stored, and the request headers with a URL group's default headers
/// added (as a publish to the group would have them); 404 for an unknown group.
async fn resolve(
    services: &Services,
    target: &Target,
    headers: &HeaderMap,
) -> Result<(String, HeaderMap)> {
    match target {
        Target::Url(url) => Ok((url.clone(), headers.clone())),
        Target::Topic(name) => {
            let defaults = crate::topics::default_headers(services, name).await?;
            Ok((name.clone(), publish::with_defaults(headers, &defaults)))
        }
    }
}

/// Moves the deduplication request out of `options`: it applies to the creation ("the
/// deduplication happens before the schedule is created"), never to produced messages,
/// which would otherwise all be duplicates of the first.
fn take_dedup_key(options: &mut PublishOptions, destination: &str, body: &[u8]) -> Option<String> {
    let id = options.dedup_id.take();
    let content = std::mem::take(&mut options.content_dedup);
    match (id, content) {
        (Some(id), _) => Some(format!("id:{id}")),
        (None, true) => {
            let mut h = Sha256::new();
            h.update(destination.as_bytes());
            h.update([0]);
            h.update(body);
            for (name, value) in options.forward.pairs() {
                h.update([0]);
                h.update(name.as_bytes());
                h.update(b":");
                h.update(value.as_bytes());
            }
            let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            Some(format!("content:{hex}"))
        }
        (None, false) => None,
    }
}

/// The id of a schedule created with `key` within the deduplication window before `now`.
async fn duplicate_of(services: &Services, key: Option<&str>, now: i64) -> Result<Option<String>> {
    let Some(key) = key else {
        return Ok(None);
    };
    let window = services.limits.dedup_window.as_millis() as i64;
    let existing = services.schedules.list_schedules().await?;
    Ok(existing
        .into_iter()
        .find(|s| s.dedup_key.as_deref() == Some(key) && s.created_at + window > now)
        .map(|s| s.id))
}

/// The schedule `id`, or 404.
pub async fn get(services: &Services, id: &str) -> Result<Schedule> {
    services
        .schedules
        .get_schedule(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("schedule {id:?} not found")))
}

/// `GET /v2/schedules/{id}` as the SDKs read it, with the states of the last firing.
pub async fn view(services: &Services, id: &str) -> Result<ScheduleView> {
    let schedule = get(services, id).await?;
    let mut views = views(services, std::slice::from_ref(&schedule)).await?;
    Ok(views.remove(0))
}

/// `GET /v2/schedules`: every schedule, oldest first.
pub async fn list(services: &Services) -> Result<Vec<ScheduleView>> {
    let mut all = services.schedules.list_schedules().await?;
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    views(services, &all).await
}

async fn views(services: &Services, schedules: &[Schedule]) -> Result<Vec<ScheduleView>> {
    let ids: Vec<&MessageId> = schedules.iter().flat_map(|s| &s.last_message_ids).collect();
    let states = message_states(services, &ids).await?;
    Ok(schedules
        .iter()
        .map(|s| {
            let mine = s
                .last_message_ids
                .iter()
                .map(|id| {
                    let state = states.get(id).copied().unwrap_or(ScheduleState::InProgress);
                    (id.to_string(), state)
                })
                .collect::<BTreeMap<_, _>>();
            ScheduleView::new(s, services.limits.default_retries, mine)
        })
        .collect())
}

/// From the event log: `SUCCESS` for a delivered message, `FAIL` for a failed one; the
/// others (absent here) are still in progress.
async fn message_states(
    services: &Services,
    ids: &[&MessageId],
) -> Result<HashMap<MessageId, ScheduleState>> {
    let mut states = HashMap::new();
    if ids.is_empty() {
        return Ok(states);
    }
    let filter = EventFilter {
        message: MessageFilter {
            message_ids: ids.iter().map(|id| id.to_string()).collect(),
            ..Default::default()
        },
        states: vec![EventState::Delivered, EventState::Failed],
        in_progress: false,
    };
    let mut cursor = None;
    loop {
        let page = services
            .events
            .list_events(&filter, cursor.as_deref(), ids.len() * 2 + 1)
            .await?;
        for event in page.items {
            let state = match event.state {
                EventState::Delivered => ScheduleState::Success,
                _ => ScheduleState::Fail,
            };
            states.entry(event.message_id).or_insert(state);
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(states),
        }
    }
}

/// `DELETE /v2/schedules/{id}`; messages it already produced are still delivered.
pub async fn delete(services: &Services, id: &str) -> Result<()> {
    let _edit = EDITS.lock().await;
    if !services.schedules.delete_schedule(id).await? {
        return Err(Error::not_found(format!("schedule {id:?} not found")));
    }
    services.registry.disarm(id).await
}

/// Pauses (idempotent): firings are ignored until resumed; the next time stays as it was.
pub async fn pause(services: &Services, id: &str) -> Result<()> {
    let _edit = EDITS.lock().await;
    let mut schedule = get(services, id).await?;
    if !schedule.paused {
        schedule.paused = true;
        services.schedules.put_schedule(&schedule).await?;
    }
    services.registry.arm(&schedule).await
}

/// Resumes (idempotent): the next firing is the first cron minute after now, so minutes
/// passed while paused are not made up.
pub async fn resume(services: &Services, id: &str) -> Result<()> {
    let _edit = EDITS.lock().await;
    let mut schedule = get(services, id).await?;
    if schedule.paused {
        let cron = CronExpr::parse(&schedule.cron)?;
        schedule.paused = false;
        schedule.next_schedule_time = cron.next_after(services.clock.now_ms());
        services.schedules.put_schedule(&schedule).await?;
    }
    services.registry.arm(&schedule).await
}

/// Arms every stored schedule, after a start. A schedule whose next minute passed while
/// the process was down keeps it, so it fires once (never once per missed minute).
pub async fn arm_all(services: &Services) -> Result<usize> {
    let all = services.schedules.list_schedules().await?;
    for schedule in &all {
        services.registry.arm(schedule).await?;
    }
    Ok(all.iter().filter(|s| !s.paused).count())
}

/// Fires schedule `id` for the cron minute `slot_ms`: publishes its message (to a URL, a
/// URL group or through its queue) with `Upstash-Schedule-Id`, then records the firing and
/// the next minute, which is after both `slot_ms` and now, so a late firing never bursts.
///
/// Returns the schedule as stored afterwards, `None` when it no longer exists. A paused
/// schedule, or a minute already fired (triggers may repeat), publishes nothing. A publish
/// the client's settings make fail (a URL group deleted since) is recorded as the
/// schedule's `error`; qpost's own failures are returned, and the trigger may be repeated.
pub async fn fire(services: &Services, id: &str, slot_ms: i64) -> Result<Option<Schedule>> {
    let Some(schedule) = services.schedules.get_schedule(id).await? else {
        return Ok(None);
    };
    if schedule.paused || schedule.last_slot.is_some_and(|last| last >= slot_ms) {
        return Ok(Some(schedule));
    }
    // Checked before publishing: a schedule that cannot compute its next minute must not
    // publish on every trigger.
    let cron = CronExpr::parse(&schedule.cron)?;
    let (ids, error) = match publish_once(services, &schedule).await {
        Ok(ids) => (ids, None),
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    // Re-read: a pause or replacement may have landed while the messages were published.
    let _edit = EDITS.lock().await;
    let Some(mut fresh) = services.schedules.get_schedule(id).await? else {
        return Ok(None);
    };
    if fresh.created_at != schedule.created_at {
        return Ok(Some(fresh));
    }
    let now = services.clock.now_ms();
    fresh.last_schedule_time = Some(now);
    fresh.last_slot = Some(slot_ms);
    fresh.last_message_ids = ids;
    fresh.last_error = error;
    fresh.next_schedule_time = cron.next_after(slot_ms.max(now));
    services.schedules.put_schedule(&fresh).await?;
    Ok(Some(fresh))
}

async fn publish_once(services: &Services, s: &Schedule) -> Result<Vec<MessageId>> {
    let draft = Draft {
        target: publish::parse_target(&s.destination, None)?,
        options: s.options.clone(),
        body: s.body.clone(),
        caller_ip: s.caller_ip.clone(),
        queue_name: s.queue_name.clone(),
        schedule_id: Some(s.id.clone()),
    };
    let outcome = publish::publish_draft(services, &draft).await?;
    Ok(outcome.messages.into_iter().map(|m| m.message_id).collect())
}

#[cfg(test)]
mod tests;
