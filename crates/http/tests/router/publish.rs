//! `POST /v2/publish/{destination}`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;

use crate::support::*;

#[tokio::test]
async fn publishing_to_a_url_answers_200_with_the_message_id_and_url() {
    let app = app();
    let request =
        authed("POST", "/v2/publish/https://example.com/hook").header("Upstash-Delay", "10s");
    let (status, body) = app.call(request.body(Body::from("hello")).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["messageId"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["url"], "https://example.com/hook");
    assert!(body.get("deduplicated").is_none());
    let stored = app.memory.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.as_str(), body["messageId"]);
    assert_eq!(stored[0].body, b"hello");
    assert_eq!(stored[0].not_before, NOW + 10_000);
    assert_eq!(app.memory.dispatched.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_destination_query_is_reattached_without_token_and_config_params() {
    let app = app();
    let uri =
        "/v2/publish/https://example.com/123/?asdasd=ooo&upstash-retries=1&qstash_token=x&b=%20c";
    let (status, body) = app.call(empty(authed("POST", uri))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["url"], "https://example.com/123/?asdasd=ooo&b=%20c");
    let stored = app.memory.stored();
    assert_eq!(stored[0].url, "https://example.com/123/?asdasd=ooo&b=%20c");
    assert_eq!(stored[0].max_retries, 1);
}

#[tokio::test]
async fn a_duplicate_deduplication_id_answers_202_with_the_original_message_id() {
    let app = app();
    let publish = || {
        authed("POST", "/v2/publish/https://example.com/hook")
            .header("Upstash-Deduplication-Id", "d1")
    };
    let (_, first) = app.call(empty(publish())).await;
    let (status, second) = app.call(empty(publish())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(second["messageId"], first["messageId"]);
    assert_eq!(second["deduplicated"], true);
    assert_eq!(app.memory.stored().len(), 1);
}

#[tokio::test]
async fn bad_destinations_durations_retries_and_retry_delays_answer_400_and_store_nothing() {
    let app = app();
    let cases = [
        ("/v2/publish/ftp://example.com", None),
        ("/v2/publish/example.com/hook", None),
        ("/v2/publish/", None),
        (
            "/v2/publish/https://example.com",
            Some(("Upstash-Delay", "soon")),
        ),
        (
            "/v2/publish/https://example.com",
            Some(("Upstash-Retries", "many")),
        ),
        (
            "/v2/publish/https://example.com",
            Some(("Upstash-Retries", "-1")),
        ),
        (
            "/v2/publish/https://example.com",
            Some(("Upstash-Retry-Delay", "1000 *")),
        ),
        ("/v2/publish/https://example.com?upstash-delay=10x", None),
    ];
    for (uri, header) in cases {
        let mut request = authed("POST", uri);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let (status, body) = app.call(empty(request)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {header:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert!(app.memory.stored().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_and_stores_nothing() {
    let app = app();
    let request = authed("POST", "/v2/publish/https://example.com/hook");
    let (status, body) = app
        .call(request.body(Body::from(vec![b'x'; MAX_BODY + 1])).unwrap())
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].is_string());
    assert!(app.memory.stored().is_empty());
    assert!(app.memory.dispatched.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_accepted() {
    let app = app();
    let request = authed("POST", "/v2/publish/https://example.com/hook");
    let (status, _) = app
        .call(request.body(Body::from(vec![b'x'; MAX_BODY])).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_caller_ip_is_the_first_forwarded_for_entry_else_the_peer_address() {
    let app = app();
    let uri = "/v2/publish/https://example.com/hook";
    let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    let forwarded = authed("POST", uri).header("X-Forwarded-For", "203.0.113.7, 10.0.0.1");
    app.call(empty(forwarded.extension(ConnectInfo(peer))))
        .await;
    app.call(empty(authed("POST", uri).extension(ConnectInfo(peer))))
        .await;
    app.call(empty(authed("POST", uri))).await;
    let ips: Vec<Option<String>> = app
        .memory
        .stored()
        .into_iter()
        .map(|m| m.caller_ip)
        .collect();
    assert_eq!(
        ips,
        [Some("203.0.113.7".into()), Some("192.0.2.1".into()), None]
    );
}

#[tokio::test]
async fn over_a_real_socket_the_destination_keeps_its_slashes_and_the_peer_ip_is_recorded() {
    let app = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });
    let response = qpost_core::services::delivery_client(false)
        .post(format!(
            "http://{addr}/v2/publish/https://example.com//a%2Fb?x=1"
        ))
        .bearer_auth(TOKEN)
        .body("hi")
        .send()
        .await
        .unwrap();
    server.abort();
    assert_eq!(response.status(), StatusCode::OK);
    let stored = app.memory.stored();
    assert_eq!(stored[0].url, "https://example.com//a%2Fb?x=1");
    assert_eq!(stored[0].caller_ip.as_deref(), Some("127.0.0.1"));
}
