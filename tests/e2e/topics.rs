//! URL groups (§9): the `/v2/topics` routes, and a publish to a group fanning out to one
//! independent message per endpoint (§2.1 array response, §3.1 `Upstash-Topic-Name`,
//! §5 `topicName`/`endpointName`), with the group's default headers applied.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::jwt::assert_signed;
use crate::support::{Receiver, Reply, SOON, TestApp, assert_error, now_ms, spawn_app};

fn patch(app: &TestApp, path: &str) -> RequestBuilder {
    app.client.patch(app.url(path)).bearer_auth(&app.token)
}

async fn add_endpoints(app: &TestApp, group: &str, endpoints: Value) -> reqwest::Response {
    app.post(&format!("/v2/topics/{group}/endpoints"))
        .json(&json!({ "endpoints": endpoints }))
        .send()
        .await
        .expect("add endpoints")
}

async fn add_ok(app: &TestApp, group: &str, endpoints: Value) {
    let response = add_endpoints(app, group, endpoints).await;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "add endpoints to {group}: {text}");
}

async fn remove_endpoints(app: &TestApp, group: &str, endpoints: Value) -> reqwest::Response {
    app.delete(&format!("/v2/topics/{group}/endpoints"))
        .json(&json!({ "endpoints": endpoints }))
        .send()
        .await
        .expect("remove endpoints")
}

async fn group(app: &TestApp, name: &str) -> (StatusCode, Value) {
    let response = app
        .get(&format!("/v2/topics/{name}"))
        .send()
        .await
        .expect("get group");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn urls(group: &Value) -> Vec<String> {
    let mut urls: Vec<String> = group["endpoints"]
        .as_array()
        .expect("endpoints array")
        .iter()
        .map(|e| e["url"].as_str().expect("url").to_string())
        .collect();
    urls.sort();
    urls
}

/// Publishes to `group` and returns the response array, asserting 200.
async fn publish_to_group(app: &TestApp, group: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    let mut request = app.publish(group).body("fan-out body");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("publish to group");
    let status = response.status();
    let json: Value = response.json().await.expect("publish answers JSON");
    assert_eq!(status, StatusCode::OK, "publish to {group}: {json}");
    json.as_array()
        .unwrap_or_else(|| panic!("a group publish answers an array: {json}"))
        .clone()
}

/// The message id the publish response gives for `url`.
fn id_for(published: &[Value], url: &str) -> String {
    published
        .iter()
        .find(|p| p["url"] == url)
        .and_then(|p| p["messageId"].as_str())
        .unwrap_or_else(|| panic!("no message for {url} in {published:?}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_created_read_listed_upserted_and_deleted_through_the_topics_routes() {
    let app = spawn_app().await;
    let before = now_ms();
    add_ok(
        &app,
        "orders",
        json!([{"url": "https://a.example.com/x", "name": "a"}, {"url": "https://b.example.com/y"}]),
    )
    .await;

    let (status, g) = group(&app, "orders").await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["name"], "orders");
    assert!(g["createdAt"].as_i64().unwrap() >= before, "{g}");
    assert!(g["updatedAt"].is_i64(), "{g}");
    assert_eq!(
        urls(&g),
        ["https://a.example.com/x", "https://b.example.com/y"]
    );
    let named = g["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "https://a.example.com/x")
        .cloned()
        .unwrap();
    assert_eq!(named["name"], "a");

    add_ok(&app, "billing", json!([{"url": "https://c.example.com"}])).await;
    let list: Value = app
        .get("/v2/topics")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .expect("GET /v2/topics answers an array")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["billing", "orders"]);

    // Adding an endpoint URL again updates it rather than adding a second copy.
    add_ok(
        &app,
        "orders",
        json!([{"url": "https://b.example.com/y", "name": "b"}]),
    )
    .await;
    let (_, g) = group(&app, "orders").await;
    assert_eq!(g["endpoints"].as_array().unwrap().len(), 2, "{g}");
    assert!(g["updatedAt"].as_i64() >= g["createdAt"].as_i64());

    let removed = remove_endpoints(&app, "orders", json!([{"name": "a"}])).await;
    assert_eq!(removed.status(), StatusCode::OK);
    let (_, g) = group(&app, "orders").await;
    assert_eq!(urls(&g), ["https://b.example.com/y"]);

    // Removing the last endpoint removes the group.
    let removed =
        remove_endpoints(&app, "orders", json!([{"url": "https://b.example.com/y"}])).await;
    assert_eq!(removed.status(), StatusCode::OK);
    assert_eq!(group(&app, "orders").await.0, StatusCode::NOT_FOUND);

    let deleted = app.delete("/v2/topics/billing").send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let (status, _) = group(&app, "billing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let list: Value = app
        .get("/v2/topics")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    let again = app.delete("/v2/topics/billing").send().await.unwrap();
    assert_error(again, StatusCode::NOT_FOUND, "deleting an unknown group").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_endpoint_edits_are_refused_with_400_or_404_and_change_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            "bad name!",
            json!([{"url": "https://a.example.com"}]),
            "group name",
        ),
        ("g", json!([{"url": "a.example.com"}]), "url without scheme"),
        ("g", json!([{"url": "ftp://a.example.com"}]), "ftp url"),
        ("g", json!([{"name": "no-url"}]), "endpoint without url"),
        (
            "g",
            json!([{"url": "https://a.example.com", "name": "has space"}]),
            "endpoint name",
        ),
        ("g", json!([]), "no endpoints"),
        (
            "g",
            json!([{"url": "https://ok.example.com"}, {"url": "nope"}]),
            "one bad among good",
        ),
    ];
    for (name, endpoints, what) in cases {
        let response = add_endpoints(&app, name, endpoints).await;
        assert_error(response, StatusCode::BAD_REQUEST, what).await;
    }
    let no_body = app.post("/v2/topics/g/endpoints").send().await.unwrap();
    assert_error(no_body, StatusCode::BAD_REQUEST, "missing body").await;
    let list: Value = app
        .get("/v2/topics")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "no group was created by a refused request");

    add_ok(
        &app,
        "g",
        json!([{"url": "https://a.example.com", "name": "a"}]),
    )
    .await;
    let taken = add_endpoints(
        &app,
        "g",
        json!([{"url": "https://b.example.com", "name": "a"}]),
    )
    .await;
    assert_error(taken, StatusCode::BAD_REQUEST, "endpoint name taken").await;

    let unknown_group =
        remove_endpoints(&app, "nope", json!([{"url": "https://a.example.com"}])).await;
    assert_error(
        unknown_group,
        StatusCode::NOT_FOUND,
        "remove from unknown group",
    )
    .await;
    let unknown_endpoint = remove_endpoints(
        &app,
        "g",
        json!([{"name": "a"}, {"url": "https://missing.example.com"}]),
    )
    .await;
    assert_error(
        unknown_endpoint,
        StatusCode::NOT_FOUND,
        "remove unknown endpoint",
    )
    .await;
    let empty_selector = remove_endpoints(&app, "g", json!([{}])).await;
    assert_error(
        empty_selector,
        StatusCode::BAD_REQUEST,
        "selector without url or name",
    )
    .await;

    let (_, g) = group(&app, "g").await;
    assert_eq!(
        g["endpoints"],
        json!([{"url": "https://a.example.com", "name": "a"}]),
        "refused edits changed nothing"
    );
    let missing = app.get("/v2/topics/nope").send().await.unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "unknown group").await;
    let publish = app.publish("nope").body("x").send().await.unwrap();
    assert_error(publish, StatusCode::NOT_FOUND, "publish to unknown group").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_endpoint_additions_to_one_group_are_all_kept() {
    let app = spawn_app().await;
    let mut additions = tokio::task::JoinSet::new();
    for i in 0..24 {
        let request = app
            .post("/v2/topics/busy/endpoints")
            .json(&json!({"endpoints": [{"url": format!("https://e{i}.example.com")}]}));
        additions.spawn(async move { request.send().await.expect("add endpoint").status() });
    }
    while let Some(status) = additions.join_next().await {
        assert_eq!(status.expect("addition task"), StatusCode::OK);
    }
    let (_, g) = group(&app, "busy").await;
    assert_eq!(g["endpoints"].as_array().unwrap().len(), 24, "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_a_group_delivers_one_signed_message_per_endpoint_with_the_group_name() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (a, b, c) = (
        receiver.url("/a"),
        receiver.url("/b"),
        receiver.url("/c?q=1"),
    );
    add_ok(
        &app,
        "fan",
        json!([{"url": a, "name": "first"}, {"url": b}, {"url": c}]),
    )
    .await;

    let published = publish_to_group(&app, "fan", &[("Upstash-Forward-X-Trace", "t")]).await;
    assert_eq!(published.len(), 3, "{published:?}");
    let mut ids: Vec<String> = [&a, &b, &c].iter().map(|u| id_for(&published, u)).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        3,
        "each endpoint gets its own message: {published:?}"
    );

    for (path, url) in [("/a", &a), ("/b", &b), ("/c", &c)] {
        let got = receiver.wait_for(path, 1, SOON).await;
        let r = &got[0];
        assert_eq!(&r.body[..], b"fan-out body");
        assert_eq!(r.header("upstash-topic-name"), Some("fan"), "{path}");
        assert_eq!(r.header("x-trace"), Some("t"), "{path}");
        assert_eq!(
            r.header("upstash-message-id"),
            Some(id_for(&published, url).as_str())
        );
        assert_signed(
            r.header("upstash-signature"),
            app.keys.current.expose(),
            url,
            &r.body,
        );
    }
    for path in ["/a", "/b", "/c"] {
        receiver
            .assert_stays(path, 1, Duration::from_millis(300))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_group_messages_show_their_group_and_endpoint_names() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (named, plain) = (receiver.url("/named"), receiver.url("/plain"));
    add_ok(
        &app,
        "later",
        json!([{"url": named, "name": "ep-named"}, {"url": plain}]),
    )
    .await;
    let published = publish_to_group(&app, "later", &[("Upstash-Delay", "1h")]).await;

    let message: Value = app
        .get(&format!("/v2/messages/{}", id_for(&published, &named)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["topicName"], "later", "{message}");
    assert_eq!(message["endpointName"], "ep-named", "{message}");
    assert_eq!(message["url"], named);
    let message: Value = app
        .get(&format!("/v2/messages/{}", id_for(&published, &plain)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["topicName"], "later", "{message}");
    assert!(message.get("endpointName").is_none(), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_endpoint_retries_and_dead_letters_alone_while_the_others_are_delivered() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/broken", Reply::status(500).body("down"));
    let (ok1, ok2, broken) = (
        receiver.url("/ok1"),
        receiver.url("/ok2"),
        receiver.url("/broken"),
    );
    add_ok(
        &app,
        "mixed",
        json!([{"url": ok1}, {"url": ok2}, {"url": broken, "name": "the-broken-one"}]),
    )
    .await;
    let failure_callback = receiver.url("/failed");
    let published = publish_to_group(
        &app,
        "mixed",
        &[
            ("Upstash-Retries", "1"),
            ("Upstash-Retry-Delay", "50"),
            ("Upstash-Failure-Callback", &failure_callback),
        ],
    )
    .await;
    let broken_id = id_for(&published, &broken);

    let attempts = receiver.wait_for("/broken", 2, SOON).await;
    assert_eq!(attempts[0].header("upstash-retried"), Some("0"));
    assert_eq!(attempts[1].header("upstash-retried"), Some("1"));
    assert_eq!(attempts[1].header("upstash-topic-name"), Some("mixed"));
    for path in ["/ok1", "/ok2"] {
        receiver.wait_for(path, 1, SOON).await;
    }

    let entry = app.wait_for_dlq_entry(&broken_id).await;
    assert_eq!(entry["url"], broken);
    assert_eq!(entry["topicName"], "mixed", "{entry}");
    assert_eq!(entry["endpointName"], "the-broken-one", "{entry}");
    assert_eq!(entry["responseStatus"], 500);

    let callback = receiver.wait_for("/failed", 1, SOON).await;
    let body = callback[0].json();
    assert_eq!(body["sourceMessageId"], broken_id);
    assert_eq!(body["topicName"], "mixed", "{body}");
    assert_eq!(body["endpointName"], "the-broken-one", "{body}");
    assert!(body["dlqId"].is_string(), "{body}");

    for path in ["/ok1", "/ok2"] {
        receiver
            .assert_stays(path, 1, Duration::from_millis(300))
            .await;
    }
    receiver
        .assert_stays("/broken", 2, Duration::from_millis(300))
        .await;
    let dlq = app.dlq_entries().await;
    assert_eq!(
        dlq.len(),
        1,
        "only the failing endpoint dead-letters: {dlq:?}"
    );
    receiver.assert_stays("/failed", 1, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_headers_set_by_patch_apply_to_every_publish_and_request_headers_win() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    receiver.reply_always("/refuses", Reply::status(500));
    let (ok, refuses) = (receiver.url("/takes"), receiver.url("/refuses"));
    add_ok(&app, "defaults", json!([{"url": ok}, {"url": refuses}])).await;

    let response = patch(&app, "/v2/topics/defaults")
        .json(&json!({"headers": {
            "Upstash-Retries": "0",
            "Upstash-Forward-X-Default": ["from-group"],
            "Upstash-Forward-X-Both": "from-group",
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let published = publish_to_group(
        &app,
        "defaults",
        &[("Upstash-Forward-X-Both", "from-request")],
    )
    .await;
    let got = receiver.wait_for("/takes", 1, SOON).await;
    assert_eq!(got[0].header("x-default"), Some("from-group"));
    assert_eq!(got[0].header("x-both"), Some("from-request"));

    // With the group's `Upstash-Retries: 0`, the refused message dead-letters after one attempt.
    let entry = app.wait_for_dlq_entry(&id_for(&published, &refuses)).await;
    assert_eq!(entry["maxRetries"], 0, "{entry}");
    receiver
        .assert_stays("/refuses", 1, Duration::from_millis(300))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_default_headers_are_refused_and_the_old_ones_kept() {
    let app = spawn_app().await;
    add_ok(&app, "d", json!([{"url": "https://a.example.com"}])).await;
    let ok = patch(&app, "/v2/topics/d")
        .json(&json!({"headers": {"Upstash-Retries": "2"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    let cases = [
        (
            json!({"headers": {"Upstash-Retries": "many"}}),
            "bad retries",
        ),
        (json!({"headers": {"Upstash-Delay": "soon"}}), "bad delay"),
        (json!({"headers": {"bad name": "x"}}), "bad header name"),
        (json!({"headers": {"X-A": 3}}), "non-string value"),
        (json!({"nothing": {}}), "no headers key"),
    ];
    for (body, what) in cases {
        let response = patch(&app, "/v2/topics/d")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, what).await;
    }
    let unknown = patch(&app, "/v2/topics/unknown")
        .json(&json!({"headers": {}}))
        .send()
        .await
        .unwrap();
    assert_error(unknown, StatusCode::NOT_FOUND, "unknown group").await;

    let (_, g) = group(&app, "d").await;
    assert_eq!(g["headers"], json!({"Upstash-Retries": ["2"]}), "{g}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deduplication_id_on_a_group_publish_dedups_the_repeat_not_the_other_endpoints() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let (a, b) = (receiver.url("/dedup-a"), receiver.url("/dedup-b"));
    add_ok(&app, "dedup", json!([{"url": a}, {"url": b}])).await;
    let headers = [("Upstash-Deduplication-Id", "same-publish")];

    let first = publish_to_group(&app, "dedup", &headers).await;
    assert!(
        first
            .iter()
            .all(|m| m.get("deduplicated").is_none_or(|d| d == false)),
        "every endpoint gets a message of its own: {first:?}"
    );
    let repeat = app
        .publish("dedup")
        .header(headers[0].0, headers[0].1)
        .body("fan-out body")
        .send()
        .await
        .unwrap();
    assert_eq!(repeat.status(), StatusCode::ACCEPTED);
    let repeat: Value = repeat.json().await.unwrap();
    for url in [&a, &b] {
        let again = id_for(repeat.as_array().expect("array"), url);
        assert_eq!(again, id_for(&first, url), "the repeat names each original");
    }
    receiver.wait_for("/dedup-a", 1, SOON).await;
    receiver.wait_for("/dedup-b", 1, SOON).await;
}
