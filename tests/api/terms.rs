//! The `m.login.terms` registration stage.

use reqwest::StatusCode;
use serde_json::json;
use vestibule::config::{TermsPolicy, TermsTranslation};

use crate::support::TestServer;

const REGISTER: &str = "/_matrix/client/v3/register";

#[tokio::test]
async fn registration_shows_the_policies_and_records_the_accepted_versions() {
    let server = TestServer::with(|config| {
        config.registration.flows = vec![vec!["m.login.terms".into()]];
        let translation = |name: &str, url: &str| TermsTranslation {
            name: name.into(),
            url: url.into(),
        };
        config.registration.terms.insert(
            "terms_of_service".into(),
            TermsPolicy {
                version: "1.2".into(),
                translations: [
                    (
                        "en".to_owned(),
                        translation("Terms of Service", "https://example.org/tos-1.2-en.html"),
                    ),
                    (
                        "fr".to_owned(),
                        translation(
                            "Conditions d'utilisation",
                            "https://example.org/tos-1.2-fr.html",
                        ),
                    ),
                ]
                .into(),
            },
        );
    })
    .await;
    let body = json!({"username": "cheeky_monkey", "password": "ilovebananas"});
    let (status, challenge) = server.post(REGISTER, None, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    assert_eq!(challenge["flows"], json!([{"stages": ["m.login.terms"]}]));
    assert_eq!(
        challenge["params"]["m.login.terms"],
        json!({"policies": {"terms_of_service": {
            "version": "1.2",
            "en": {"name": "Terms of Service", "url": "https://example.org/tos-1.2-en.html"},
            "fr": {"name": "Conditions d'utilisation", "url": "https://example.org/tos-1.2-fr.html"},
        }}})
    );
    let mut accepted = body.clone();
    accepted["auth"] = json!({"type": "m.login.terms", "session": challenge["session"]});
    let (status, registered) = server.post(REGISTER, None, &accepted).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@cheeky_monkey:localhost");
    // The versions shown are recorded with the account (no API reads them back).
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(server.database_url())
        .await
        .expect("open the test database");
    let accepted: Vec<(String, String)> =
        sqlx::query_as("SELECT policy, version FROM accepted_terms WHERE user_id = $1")
            .bind("@cheeky_monkey:localhost")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(
        accepted,
        vec![("terms_of_service".to_owned(), "1.2".to_owned())]
    );

    // Skipping the stage is not possible: a fresh session without it stays at 401.
    let mut skipped = json!({"username": "skipper", "password": "ilovebananas"});
    let (_, challenge) = server.post(REGISTER, None, &skipped).await;
    skipped["auth"] = json!({"type": "m.login.dummy", "session": challenge["session"]});
    let (status, body) = server.post(REGISTER, None, &skipped).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errcode"], "M_UNRECOGNIZED");
}

#[test]
fn a_terms_flow_without_policies_is_a_config_error() {
    let mut config = vestibule::config::Config::default();
    config.registration.flows = vec![vec!["m.login.terms".into()]];
    let error = config.validate().expect_err("invalid");
    assert!(error.to_string().contains("registration.terms"), "{error}");
}
