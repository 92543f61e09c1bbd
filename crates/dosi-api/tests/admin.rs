//! The platform API for dead letters (`/api/v1/notifications/dead-letters`)
//! and its OpenAPI document. Delivery itself (how notifications become dead
//! letters and are retried) is tested in `dosi-notify/tests/delivery.rs`.

mod common;

const DL: &str = "/api/v1/notifications/dead-letters";

#[tokio::test]
async fn dead_letter_api_answers_and_rejects_precisely() {
    let app = common::app().await;
    let r = app.call("GET", DL, &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, serde_json::json!([]));
    assert_eq!(r.headers["x-total-count"], "0");

    for (method, uri, status) in [
        ("GET", format!("{DL}/7"), 404),
        ("DELETE", format!("{DL}/7"), 404),
        ("POST", format!("{DL}/7/retry"), 404),
        ("GET", format!("{DL}/seven"), 400),
        ("GET", format!("{DL}?limit=-1"), 400),
        ("GET", format!("{DL}?colour=red"), 400),
    ] {
        let r = app.call(method, &uri, &[], None).await;
        assert_eq!(r.status, status, "{method} {uri}: {}", r.text);
        assert!(
            r.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{method} {uri}: a problem details body, got {}",
            r.text
        );
    }
    let r = app.call("POST", &format!("{DL}/retry"), &[], None).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body["retried"], 0);
}

#[tokio::test]
async fn openapi_document_describes_the_platform_api() {
    let app = common::app().await;
    let r = app.call("GET", "/api/v1/openapi.json", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    for path in [
        "/notifications/dead-letters",
        "/notifications/dead-letters/{id}",
        "/notifications/dead-letters/{id}/retry",
        "/notifications/dead-letters/retry",
        "/devices",
        "/devices/{id}",
        "/devices/{id}/credentials",
        "/devices/{id}/measures",
    ] {
        assert!(r.body["paths"][path].is_object(), "{path} documented");
    }
}
