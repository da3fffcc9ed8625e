//! Seed 003, the v1 registration models (swagger 1.2): a multi-stage registration answers each
//! stage but the last with `session` and `next`, every later submission "MUST" carry that
//! `session`, and the last stage answers `user_id` and `access_token`. Sessions are stored, so
//! a registration resumes after a restart.

use reqwest::StatusCode;
use serde_json::json;

use super::{V1_REGISTER, WHOAMI, email_stage, use_captcha, use_mail};
use crate::{
    peers::{CaptchaVerifier, MailSink},
    support::{TestServer, assert_error},
};

/// Verifies `email` with this server's own verification (as a v3 client would) and returns
/// the session ID; the v1 stage accepts these sessions as `threepidCreds` too.
async fn verified_email(server: &TestServer, sink: &MailSink, email: &str, secret: &str) -> String {
    let body = json!({"client_secret": secret, "email": email, "send_attempt": 1});
    let before = sink.messages().len();
    let (status, started) = server
        .post(
            "/_matrix/client/v3/register/email/requestToken",
            None,
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mail = sink.wait_for(before + 1).await.pop().unwrap();
    let code = mail.word_after("code in your client:");
    let submit = json!({"sid": started["sid"], "client_secret": secret, "token": code});
    assert_eq!(
        server
            .post("/_vestibule/email/submit_token", None, &submit)
            .await
            .0,
        StatusCode::OK
    );
    started["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn captcha_then_email_then_password_resumes_after_a_restart() {
    let sink = MailSink::start();
    let verifier = CaptchaVerifier::start().await;
    let server = TestServer::with(|config| {
        use_mail(config, &sink);
        use_captcha(config, &verifier);
        config.registration.flows = vec![vec![
            "m.login.recaptcha".into(),
            "m.login.email.identity".into(),
        ]];
    })
    .await;
    let wrong = json!({"type": "m.login.recaptcha", "challenge": "c", "response": "bad"});
    assert_error(
        &server.post(V1_REGISTER, None, &wrong).await,
        StatusCode::UNAUTHORIZED,
        "M_CAPTCHA_INVALID",
    );

    let captcha = json!({"type": "m.login.recaptcha", "challenge": "c", "response": "good"});
    let (status, step) = server.post(V1_REGISTER, None, &captcha).await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert_eq!(step["next"], "m.login.email.identity");
    let session = step["session"].clone();

    let server = server.restart().await;
    let sid = verified_email(&server, &sink, "xavier@example.org", "x-secret").await;
    let (status, step) = server
        .post(
            V1_REGISTER,
            None,
            &email_stage(None, &sid, "x-secret", Some(&session)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert_eq!(
        (step["session"].clone(), step["next"].clone()),
        (session.clone(), json!("m.login.password"))
    );

    let server = server.restart().await;
    let password = json!({"type": "m.login.password", "user": "xavier", "password": "password123", "session": session});
    let (status, registered) = server.post(V1_REGISTER, None, &password).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert_eq!(registered["user_id"], "@xavier:localhost");
    assert_eq!(
        server
            .get(WHOAMI, registered["access_token"].as_str())
            .await
            .0,
        StatusCode::OK
    );
    // The session is spent.
    let again = json!({"type": "m.login.password", "user": "xavier2", "password": "password123", "session": session});
    assert_eq!(
        server.post(V1_REGISTER, None, &again).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn later_stages_need_the_session_and_keep_the_chosen_user() {
    let sink = MailSink::start();
    let verifier = CaptchaVerifier::start().await;
    let server = TestServer::with(|config| {
        use_mail(config, &sink);
        use_captcha(config, &verifier);
        config.registration.flows = vec![vec!["m.login.recaptcha".into()]];
    })
    .await;
    // Skipping the first stage: the password needs the session of the earlier stages.
    let skip = json!({"type": "m.login.password", "user": "yolanda", "password": "password123"});
    assert_error(
        &server.post(V1_REGISTER, None, &skip).await,
        StatusCode::BAD_REQUEST,
        "M_MISSING_PARAM",
    );

    let captcha = json!({"type": "m.login.recaptcha", "response": "good", "user": "yolanda"});
    let (_, step) = server.post(V1_REGISTER, None, &captcha).await;
    assert_eq!(step["next"], "m.login.password");
    let other = json!({"type": "m.login.password", "user": "mallory", "password": "password123", "session": step["session"]});
    assert_error(
        &server.post(V1_REGISTER, None, &other).await,
        StatusCode::FORBIDDEN,
        "M_FORBIDDEN",
    );
    // Without `user`, the one chosen earlier is used.
    let same =
        json!({"type": "m.login.password", "password": "password123", "session": step["session"]});
    let (status, registered) = server.post(V1_REGISTER, None, &same).await;
    assert_eq!(
        (status, registered["user_id"].clone()),
        (StatusCode::OK, json!("@yolanda:localhost"))
    );
    let unknown = json!({"type": "m.login.password", "password": "password123", "session": "no-such-session"});
    assert_error(
        &server.post(V1_REGISTER, None, &unknown).await,
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
    );
}
