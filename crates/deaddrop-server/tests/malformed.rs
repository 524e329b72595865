//! Malformed requests and limits: every one gets its own 4xx/5xx status, never a 500.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use deaddrop::ARID;
use deaddrop::codec::{arid_to_ur, envelope_to_ur};
use deaddrop_server::{RateLimit, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Case {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    body: Vec<u8>,
    status: u16,
    body_starts: &'static str,
}

fn case(
    name: &'static str,
    method: reqwest::Method,
    path: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    body_starts: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        body: body.into(),
        status,
        body_starts,
    }
}

#[tokio::test]
async fn malformed_requests_get_clear_4xx_answers() {
    use reqwest::Method as M;
    let config = ServerConfig {
        max_body: 4096,
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    let client = http();
    let arid = arid_to_ur(&ARID::new());
    let env = envelope_to_ur(&envelope("x"));
    let key = v2_key(&ARID::new());
    let drop = |q: &str| format!("/v2/drops/{key}{q}");
    let cases = vec![
        case(
            "v1 put non-UTF-8",
            M::POST,
            "/put",
            vec![0xff, 0xfe, b'\n', 0x80],
            400,
            "Invalid UTF-8",
        ),
        case(
            "v1 put empty body",
            M::POST,
            "/put",
            "",
            400,
            "Expected at least 2 lines",
        ),
        case(
            "v1 put ARID line only",
            M::POST,
            "/put",
            arid.clone(),
            400,
            "Expected at least 2 lines",
        ),
        case(
            "v1 put bad ARID UR",
            M::POST,
            "/put",
            format!("ur:arid/zzzz\n{env}"),
            400,
            "Invalid ur:arid",
        ),
        case(
            "v1 put envelope where the ARID belongs",
            M::POST,
            "/put",
            format!("{env}\n{arid}"),
            400,
            "Invalid ur:arid: expected a ur:arid/",
        ),
        case(
            "v1 put not a UR at all",
            M::POST,
            "/put",
            format!("hello\n{env}"),
            400,
            "Invalid ur:arid",
        ),
        case(
            "v1 put bad envelope",
            M::POST,
            "/put",
            format!("{arid}\nur:envelope/zzzz"),
            400,
            "Invalid ur:envelope",
        ),
        case(
            "v1 put ARID where the envelope belongs",
            M::POST,
            "/put",
            format!("{arid}\n{arid}"),
            400,
            "Invalid ur:envelope",
        ),
        case(
            "v1 put TTL not a number",
            M::POST,
            "/put",
            format!("{arid}\n{env}\nsoon"),
            400,
            "Invalid TTL",
        ),
        case(
            "v1 put negative TTL",
            M::POST,
            "/put",
            format!("{arid}\n{env}\n-5"),
            400,
            "Invalid TTL",
        ),
        case(
            "v1 put zero TTL",
            M::POST,
            "/put",
            format!("{arid}\n{env}\n0"),
            400,
            "Invalid TTL",
        ),
        case(
            "v1 put four lines",
            M::POST,
            "/put",
            format!("{arid}\n{env}\n60\nextra"),
            400,
            "Expected at most 3 lines",
        ),
        case(
            "v1 put oversized body",
            M::POST,
            "/put",
            format!("{arid}\n{}", "a".repeat(10_000)),
            413,
            "Request body too large",
        ),
        case(
            "v1 get empty body",
            M::POST,
            "/get",
            "",
            400,
            "Expected ur:arid",
        ),
        case(
            "v1 get non-UTF-8",
            M::POST,
            "/get",
            vec![0xc3, 0x28],
            400,
            "Invalid UTF-8",
        ),
        case(
            "v1 get envelope instead of ARID",
            M::POST,
            "/get",
            env.clone(),
            400,
            "Invalid ur:arid",
        ),
        case("v1 get with GET method", M::GET, "/get", "", 405, ""),
        case("v1 put with PUT method", M::PUT, "/put", "", 405, ""),
        case(
            "unknown path",
            M::GET,
            "/nothing/here",
            "",
            404,
            "Unknown path",
        ),
        case("v2 wrong method", M::DELETE, drop(""), "", 405, ""),
        case(
            "v2 key not hex",
            M::PUT,
            "/v2/drops/not-a-key",
            "abc",
            400,
            "{\"error\":\"bad_key\"",
        ),
        case(
            "v2 key too short",
            M::GET,
            "/v2/drops/abcd",
            "",
            400,
            "{\"error\":\"bad_key\"",
        ),
        case(
            "v2 put empty body",
            M::PUT,
            drop(""),
            "",
            400,
            "{\"error\":\"empty_body\"",
        ),
        case(
            "v2 put ttl not a number",
            M::PUT,
            drop("?ttl=forever"),
            "abc",
            400,
            "{\"error\":\"bad_ttl\"",
        ),
        case(
            "v2 put zero ttl",
            M::PUT,
            drop("?ttl=0"),
            "abc",
            400,
            "{\"error\":\"bad_ttl\"",
        ),
        case(
            "v2 get negative wait",
            M::GET,
            drop("?wait=-1"),
            "",
            400,
            "{\"error\":\"bad_wait\"",
        ),
        case(
            "v2 put oversized body",
            M::PUT,
            drop(""),
            vec![7u8; 5000],
            413,
            "{\"error\":\"too_large\"",
        ),
        case(
            "v2 missing key",
            M::GET,
            "/v2/drops/",
            "",
            404,
            "Unknown path",
        ),
    ];
    assert!(cases.len() >= 15);
    for c in &cases {
        let r = client
            .request(c.method.clone(), format!("{base}{}", c.path))
            .body(c.body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, c.status, "{}: {text}", c.name);
        assert!(text.starts_with(c.body_starts), "{}: {text:?}", c.name);
    }
    // The server is still fine afterwards, and has not stored anything.
    let m = metrics(&client, &base).await;
    assert!(m.contains("deaddrop_server_stored_values 0"), "{m}");
    assert!(!m.contains("status=\"500\""), "{m}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_on_the_socket_gets_400_not_a_crash() {
    let server = start_default().await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream.write_all(b"THIS IS NOT HTTP\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    // Still serving.
    assert_eq!(v1_get(&http(), &server.url(), &ARID::new()).await.0, 404);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let config = ServerConfig {
        // One token a second: the 12 quick requests below cannot earn a new one meanwhile.
        rate_limit: Some(RateLimit {
            per_second: 1.0,
            burst: 5,
        }),
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    let client = http();
    let arid = ARID::new();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..12 {
        let r = client
            .get(format!("{base}/v2/drops/{}", v2_key(&arid)))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 && limited.is_none() {
            let retry = r.headers()["retry-after"].to_str().unwrap().to_owned();
            limited = Some((retry, r.text().await.unwrap()));
        }
    }
    assert_eq!(&statuses[..5], &[404; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let (retry, body) = limited.unwrap();
    assert!(retry.parse::<u64>().unwrap() >= 1);
    assert!(body.contains("rate limit exceeded"), "{body}");
    // v1 gets a text answer; /health is never limited.
    let r = client
        .post(format!("{base}/get"))
        .body(arid_to_ur(&arid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.text().await.unwrap().starts_with("rate limit exceeded"));
    let r = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Tokens come back at the configured rate.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(v2_get(&client, &base, &arid, 0).await.0, 404);
    let m = metrics(&client, &base).await;
    assert!(m.contains("deaddrop_server_rate_limited_total"), "{m}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn too_many_waiters_get_503() {
    let config = ServerConfig {
        max_waiters: 2,
        ..ServerConfig::ephemeral()
    };
    let server = start(config).await;
    let base = server.url();
    let client = http();
    let mut waiters = Vec::new();
    for _ in 0..2 {
        let (client, base) = (client.clone(), base.clone());
        waiters.push(tokio::spawn(async move {
            v2_get(&client, &base, &ARID::new(), 2_500).await.0
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = client
        .get(format!(
            "{base}/v2/drops/{}?wait=1000",
            v2_key(&ARID::new())
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["error"], "too_many_waiters");
    // Asking without waiting still works.
    assert_eq!(v2_get(&client, &base, &ARID::new(), 0).await.0, 404);
    let m = metrics(&client, &base).await;
    assert!(m.contains("deaddrop_server_waiting_requests 2"), "{m}");
    for w in waiters {
        assert_eq!(w.await.unwrap(), 404);
    }
    // Places are free again.
    assert_eq!(v2_get(&client, &base, &ARID::new(), 50).await.0, 404);
    server.shutdown().await.unwrap();
}
