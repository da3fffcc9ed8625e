//! A real Matrix client library (`matrix-sdk`) registers, logs in, asks whoami and logs out,
//! changes its password, edits its profile and signs a second device in with a login token.

use matrix_sdk::{
    Client,
    ruma::api::client::{
        account::register::v3::Request as RegistrationRequest,
        uiaa::{AuthData, Dummy, MatrixUserIdentifier, Password, UserIdentifier},
    },
};

use crate::support::TestServer;

async fn client(server: &TestServer) -> Client {
    Client::builder()
        .homeserver_url(&server.base)
        .build()
        .await
        .expect("client builds")
}

#[tokio::test]
async fn matrix_sdk_client_walks_the_account_lifecycle() {
    let server = TestServer::spawn().await;

    let registering = client(&server).await;
    let mut request = RegistrationRequest::new();
    request.username = Some("sdkuser".to_owned());
    request.password = Some("sdk-password".to_owned());
    let challenge = registering
        .matrix_auth()
        .register(request.clone())
        .await
        .expect_err("UIA challenge first");
    let info = challenge.as_uiaa_response().expect("a UIA response");
    let mut dummy = Dummy::new();
    dummy.session = info.session.clone();
    request.auth = Some(AuthData::Dummy(dummy));
    let registered = registering
        .matrix_auth()
        .register(request)
        .await
        .expect("registration completes");
    assert_eq!(registered.user_id.as_str(), "@sdkuser:localhost");

    let client = client(&server).await;
    let login = client
        .matrix_auth()
        .login_username("sdkuser", "sdk-password")
        .initial_device_display_name("sdk test")
        .send()
        .await
        .expect("login succeeds");
    assert_eq!(login.user_id.as_str(), "@sdkuser:localhost");

    let whoami = client.whoami().await.expect("whoami succeeds");
    assert_eq!(whoami.user_id, login.user_id);
    assert_eq!(whoami.device_id.as_ref(), Some(&login.device_id));

    client
        .matrix_auth()
        .logout()
        .await
        .expect("logout succeeds");
    let (status, _) = server
        .get(
            "/_matrix/client/v3/account/whoami",
            Some(&login.access_token),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn matrix_sdk_client_changes_its_password_and_logs_out_its_other_session() {
    let server = TestServer::spawn().await;
    server.register("sdkpass", "first-password").await;
    let laptop = client(&server).await;
    laptop
        .matrix_auth()
        .login_username("sdkpass", "first-password")
        .send()
        .await
        .expect("laptop login");
    let phone = client(&server).await;
    phone
        .matrix_auth()
        .login_username("sdkpass", "first-password")
        .send()
        .await
        .expect("phone login");

    let challenge = laptop
        .account()
        .change_password("second-password", None)
        .await
        .expect_err("UIA first");
    let info = challenge.as_uiaa_response().expect("a UIA response");
    let identifier = UserIdentifier::Matrix(MatrixUserIdentifier::new("sdkpass".to_owned()));
    let mut password = Password::new(identifier, "first-password".to_owned());
    password.session = info.session.clone();
    laptop
        .account()
        .change_password("second-password", Some(AuthData::Password(password)))
        .await
        .expect("password changed");

    laptop
        .whoami()
        .await
        .expect("the changing session stays logged in");
    phone
        .whoami()
        .await
        .expect_err("the other session is logged out");
    server.login("sdkpass", "second-password").await;
}

#[tokio::test]
async fn matrix_sdk_client_edits_its_profile_and_signs_in_with_a_login_token() {
    let server = TestServer::spawn().await;
    server.register("sdkprof", "sdk-password").await;
    let laptop = client(&server).await;
    let session = laptop
        .matrix_auth()
        .login_username("sdkprof", "sdk-password")
        .send()
        .await
        .expect("laptop login");

    let account = laptop.account();
    assert_eq!(
        account.get_display_name().await.expect("display name"),
        Some("sdkprof".to_owned()),
        "a new account is named after its localpart"
    );
    account
        .set_display_name(Some("Profile Person"))
        .await
        .expect("display name set");
    assert_eq!(
        account.get_display_name().await.expect("display name"),
        Some("Profile Person".to_owned())
    );
    let avatar = matrix_sdk::ruma::OwnedMxcUri::from("mxc://localhost/avatar123");
    account
        .set_avatar_url(Some(&avatar))
        .await
        .expect("avatar set");
    assert_eq!(
        account.get_avatar_url().await.expect("avatar"),
        Some(avatar)
    );

    // The laptop makes a login token (password UIA), the phone signs in with it once.
    let get_token = "/_matrix/client/v1/login/get_token";
    let token = Some(session.access_token.as_str());
    let (_, challenge) = server.post(get_token, token, &serde_json::json!({})).await;
    let body = serde_json::json!({"auth": {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "sdkprof"},
        "password": "sdk-password",
        "session": challenge["session"],
    }});
    let (_, issued) = server.post(get_token, token, &body).await;
    let login_token = issued["login_token"].as_str().expect("login token");
    let phone = client(&server).await;
    let phone_session = phone
        .matrix_auth()
        .login_token(login_token)
        .send()
        .await
        .expect("token login");
    assert_eq!(phone_session.user_id, session.user_id);
    assert_ne!(phone_session.device_id, session.device_id);
    client(&server)
        .await
        .matrix_auth()
        .login_token(login_token)
        .send()
        .await
        .expect_err("a login token works once");
}
