//! Protocol v1 (hubert-compatible): exact statuses and bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::*;
use deaddrop::ARID;
use deaddrop::codec::{arid_to_ur, envelope_to_ur, parse_envelope};

#[tokio::test]
async fn v1_put_then_get_returns_the_envelope_text() {
    let server = start_default().await;
    let base = server.url();
    let client = http();
    let arid = ARID::new();
    let env = envelope("hello over v1");

    assert_eq!(
        v1_put(&client, &base, &arid, &env, None).await,
        (200, "OK".to_owned())
    );
    let (status, body) = v1_get(&client, &base, &arid).await;
    assert_eq!(status, 200);
    assert_eq!(body, envelope_to_ur(&env));
    assert_eq!(parse_envelope(&body).unwrap(), env);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v1_second_put_is_409_and_keeps_the_first_value() {
    let server = start_default().await;
    let base = server.url();
    let client = http();
    let arid = ARID::new();
    let first = envelope("first");
    assert_eq!(v1_put(&client, &base, &arid, &first, Some(60)).await.0, 200);
    let (status, body) = v1_put(&client, &base, &arid, &envelope("second"), None).await;
    assert_eq!((status, body.as_str()), (409, "ARID already exists"));
    assert_eq!(
        v1_get(&client, &base, &arid).await.1,
        envelope_to_ur(&first)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v1_get_of_unknown_arid_is_404_not_found() {
    let server = start_default().await;
    let (status, body) = v1_get(&http(), &server.url(), &ARID::new()).await;
    assert_eq!((status, body.as_str()), (404, "Not found"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn v1_accepts_hubert_line_forms() {
    // hubert's client sends no trailing newline; curl users often do, and CRLF happens.
    let server = start_default().await;
    let base = server.url();
    let client = http();
    let arid = ARID::new();
    let env = envelope("crlf");
    let body = format!(
        "{}\r\n{}\r\n120\r\n",
        arid_to_ur(&arid),
        envelope_to_ur(&env)
    );
    let r = client
        .post(format!("{base}/put"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client
        .post(format!("{base}/get"))
        .body(format!("  {}\n", arid_to_ur(&arid)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.unwrap(), envelope_to_ur(&env));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_is_json_in_the_form_hubert_checks() {
    let server = start_default().await;
    let r = http()
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["server"], "hubert", "hubert's `check` requires this");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["implementation"], "deaddrop");
    assert!(json["version"].is_string());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_without_keys() {
    let server = start_default().await;
    let base = server.url();
    let client = http();
    let arid = ARID::new();
    v2_put(&client, &base, &arid, &envelope("m"), None).await;
    v1_get(&client, &base, &arid).await;
    let text = metrics(&client, &base).await;
    assert!(text.contains("deaddrop_server_requests_total"), "{text}");
    assert!(text.contains(r#"route="/v2/drops/{key}""#), "{text}");
    assert!(text.contains(r#"route="/get""#), "{text}");
    assert!(text.contains("deaddrop_server_request_duration_seconds_bucket"));
    assert!(text.contains("deaddrop_server_stored_values 1"), "{text}");
    assert!(text.contains("deaddrop_server_waiting_requests"));
    assert!(!text.contains(&v2_key(&arid)), "metrics never name a key");
    server.shutdown().await.unwrap();
}
