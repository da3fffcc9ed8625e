//! Device management (spec "Device management"): `GET /devices`, `GET/PUT/DELETE
//! /devices/{deviceId}`, `POST /delete_devices`.

use axum::{Json, extract::State};
use ruma::api::client::device::{
    delete_device::v3 as delete_device, delete_devices::v3 as delete_devices,
    get_device::v3 as get_device, get_devices::v3 as get_devices,
    update_device::v3 as update_device,
};
use serde_json::{Value, json};

use super::{
    auth::{Authenticated, FullAccount},
    ruma::Ruma,
};
use crate::{accounts::Device, app::AppState, http::error::MatrixError};

/// A device as the spec shows it: absent fields are left out.
fn device_json(device: &Device) -> Value {
    let mut body = json!({ "device_id": device.device_id });
    if let Some(name) = &device.display_name {
        body["display_name"] = json!(name);
    }
    if let Some(ip) = &device.last_seen_ip {
        body["last_seen_ip"] = json!(ip);
    }
    if let Some(ts) = device.last_seen_ts {
        body["last_seen_ts"] = json!(ts);
    }
    body
}

/// `GET /devices`: every device of the caller.
pub async fn get_devices(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    _: Ruma<get_devices::Request>,
) -> Result<Json<Value>, MatrixError> {
    let devices = app.accounts.devices(&requester.user_id).await?;
    Ok(Json(
        json!({ "devices": devices.iter().map(device_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /devices/{deviceId}`: one device of the caller (404 `M_NOT_FOUND` otherwise).
pub async fn get_device(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    request: Ruma<get_device::Request>,
) -> Result<Json<Value>, MatrixError> {
    let device = app
        .accounts
        .device(&requester.user_id, &request.body.device_id)
        .await?;
    Ok(Json(device_json(&device)))
}

/// `PUT /devices/{deviceId}`: renames a device of the caller (404 `M_NOT_FOUND` otherwise).
pub async fn update_device(
    State(app): State<AppState>,
    Authenticated(requester): Authenticated,
    request: Ruma<update_device::Request>,
) -> Result<Json<Value>, MatrixError> {
    let body = request.body;
    app.accounts
        .rename_device(
            &requester.user_id,
            &body.device_id,
            body.display_name.as_deref(),
        )
        .await?;
    Ok(Json(json!({})))
}

/// `DELETE /devices/{deviceId}`: after UIA, deletes the device and revokes its tokens; a
/// device that is already gone is a success too, as the spec documents.
pub async fn delete_device(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<delete_device::Request>,
) -> Result<Json<Value>, MatrixError> {
    let Ruma { body, raw } = request;
    app.accounts
        .delete_devices(&requester, &[body.device_id], raw.bound())
        .await?;
    Ok(Json(json!({})))
}

/// `POST /delete_devices`: after UIA, deletes the listed devices of the caller (unknown ones
/// are skipped) and revokes their tokens.
pub async fn delete_devices(
    State(app): State<AppState>,
    FullAccount(requester): FullAccount,
    request: Ruma<delete_devices::Request>,
) -> Result<Json<Value>, MatrixError> {
    let Ruma { body, raw } = request;
    app.accounts
        .delete_devices(&requester, &body.devices, raw.bound())
        .await?;
    Ok(Json(json!({})))
}
