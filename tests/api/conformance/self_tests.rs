//! Tests of the harness itself, on hand-written bodies (no server). Those about the spec's own
//! schemas return early, after the one-line notice, when the spec is not there.

use serde_json::{Value, json};

use super::{
    CATALOG,
    catalog::{Documented, Lookup},
    check, spec_missing,
};

/// The failure message of `check`, which must fail.
#[track_caller]
fn failure(method: &str, path: &str, status: u16, body: &Value) -> String {
    check(method, path, status, body).expect_err("the body must not conform")
}

#[test]
fn a_wrong_field_type_names_the_request_and_the_pointer() {
    if spec_missing() {
        return;
    }
    let body = json!({"user_id": 5, "access_token": "vat_x", "device_id": "D"});
    let message = failure("POST", "/_matrix/client/v3/login", 200, &body);
    for part in [
        "POST",
        "/_matrix/client/v3/login",
        "200",
        "\"/user_id\"",
        "string",
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
}

#[test]
fn a_nested_field_is_named_by_its_full_pointer() {
    if spec_missing() {
        return;
    }
    let body = json!({"flows": [{"stages": ["m.login.dummy", 7]}], "session": "s"});
    let message = failure("POST", "/_matrix/client/v3/register", 401, &body);
    assert!(message.contains("\"/flows/0/stages/1\""), "{message}");
}

#[test]
fn conforming_bodies_pass_on_v3_and_r0() {
    if spec_missing() {
        return;
    }
    let registered = json!({"user_id": "@a:localhost", "access_token": "vat_x", "device_id": "D"});
    for prefix in ["v3", "r0"] {
        let path = format!("/_matrix/client/{prefix}/register?kind=user");
        assert_eq!(check("POST", &path, 200, &registered), Ok(()));
    }
    let versions = json!({"versions": ["r0.6.1", "v1.1"], "unstable_features": {}});
    assert_eq!(
        check("GET", "/_matrix/client/versions", 200, &versions),
        Ok(())
    );
    let well_known = json!({"m.homeserver": {"base_url": "http://127.0.0.1:8008/"}});
    assert_eq!(
        check("GET", "/.well-known/matrix/client", 200, &well_known),
        Ok(())
    );
}

#[test]
fn missing_required_fields_fail() {
    if spec_missing() {
        return;
    }
    let message = failure("GET", "/_matrix/client/versions", 200, &json!({}));
    assert!(message.contains("versions"), "{message}");
    let message = failure("GET", "/_matrix/client/r0/account/whoami", 200, &json!({}));
    assert!(message.contains("user_id"), "{message}");
}

#[test]
fn the_uia_401_needs_flows_but_token_errors_do_not() {
    if spec_missing() {
        return;
    }
    let plain = json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown token"});
    let message = failure("POST", "/_matrix/client/v3/register", 401, &plain);
    assert!(message.contains("flows"), "{message}");
    assert_eq!(
        check("POST", "/_matrix/client/v3/account/password", 401, &plain),
        Ok(())
    );
    assert_eq!(
        check("POST", "/_matrix/client/v3/logout", 401, &plain),
        Ok(())
    );
}

#[test]
fn an_undocumented_status_fails_and_says_so() {
    if spec_missing() {
        return;
    }
    let error = json!({"errcode": "M_UNKNOWN", "error": "teapot"});
    let message = failure("GET", "/_matrix/client/v3/account/whoami", 418, &error);
    assert!(message.contains("status 418 is undocumented"), "{message}");
    let message = failure("PUT", "/_matrix/client/v3/login", 200, &json!({}));
    assert!(message.contains("documents no PUT"), "{message}");
}

#[test]
fn errors_any_endpoint_may_answer_need_the_standard_shape() {
    if spec_missing() {
        return;
    }
    let unrecognized = json!({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"});
    assert_eq!(
        check("DELETE", "/_matrix/client/v3/login", 405, &unrecognized),
        Ok(())
    );
    assert_eq!(
        check("GET", "/_matrix/client/v3/nope", 404, &unrecognized),
        Ok(())
    );
    let too_large = json!({"errcode": "M_TOO_LARGE", "error": "Too large"});
    assert_eq!(
        check("POST", "/_matrix/client/v3/login", 413, &too_large),
        Ok(())
    );
    let limited = json!({"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": "soon"});
    let message = failure("GET", "/_matrix/client/v3/account/whoami", 429, &limited);
    assert!(message.contains("\"/retry_after_ms\""), "{message}");
    let message = failure("GET", "/", 404, &json!({"error": "no errcode"}));
    assert!(message.contains("errcode"), "{message}");
    assert_eq!(check("GET", "/metrics", 200, &json!([1, 2])), Ok(()));
}

#[test]
fn legacy_prefixes_use_the_legacy_schemas() {
    let message = failure(
        "POST",
        "/_matrix/client/api/v1/login",
        200,
        &json!({"user_id": "@a:localhost", "access_token": 1}),
    );
    assert!(message.contains("\"/access_token\""), "{message}");
    assert!(message.contains("legacy"), "{message}");
    let challenge = json!({"flows": [{"stages": ["m.login.dummy"]}], "session": "abc"});
    assert_eq!(
        check("POST", "/_matrix/client/v2_alpha/register", 401, &challenge),
        Ok(())
    );
    let message = failure(
        "GET",
        "/_matrix/client/v2_alpha/account/3pid",
        200,
        &json!({}),
    );
    assert!(message.contains("threepids"), "{message}");
    let message = failure(
        "GET",
        "/_matrix/client/v2_alpha/account/password",
        200,
        &json!({}),
    );
    assert!(message.contains("documents no GET"), "{message}");
}

#[test]
fn the_schemas_of_the_served_endpoints_all_build() {
    if spec_missing() {
        return;
    }
    let served = [
        ("GET", "/_matrix/client/versions"),
        ("GET", "/.well-known/matrix/client"),
        ("GET", "/_matrix/client/v3/capabilities"),
        ("POST", "/_matrix/client/v3/register"),
        ("GET", "/_matrix/client/v3/register/available"),
        ("GET", "/_matrix/client/v3/login"),
        ("POST", "/_matrix/client/v3/login"),
        ("POST", "/_matrix/client/v3/logout"),
        ("POST", "/_matrix/client/v3/logout/all"),
        ("GET", "/_matrix/client/v3/account/whoami"),
    ];
    for (method, path) in served {
        let Lookup::Operation(endpoint) = CATALOG.lookup(method, path) else {
            panic!("{method} {path} is not in the spec");
        };
        assert!(endpoint.responses.contains_key(&200), "{method} {path}");
        for (status, documented) in &endpoint.responses {
            if let Documented::Unavailable(reason) = documented {
                panic!("{method} {path} {status}: {reason}");
            }
        }
    }
}
