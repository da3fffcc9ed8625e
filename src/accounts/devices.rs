//! Devices (spec "Device management"): listing, renaming and deleting the caller's devices.

use ruma::{DeviceId, OwnedDeviceId, UserId};

use super::{AccountError, Accounts, Requester, events::AccountEvent};
use crate::{
    store::DeviceRecord,
    uia::{Action, BoundRequest},
};

/// A device of a user, with its latest activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The device ID.
    pub device_id: OwnedDeviceId,
    /// Its human-readable name, if set.
    pub display_name: Option<String>,
    /// When it was last seen, milliseconds since the epoch.
    pub last_seen_ts: Option<i64>,
    /// The IP address it was last seen from.
    pub last_seen_ip: Option<String>,
}

impl From<DeviceRecord> for Device {
    fn from(record: DeviceRecord) -> Self {
        Self {
            device_id: record.device_id.into(),
            display_name: record.display_name,
            last_seen_ts: record.last_seen_ts,
            last_seen_ip: record.last_seen_ip,
        }
    }
}

/// Longest device ID accepted, in bytes.
const MAX_DEVICE_ID_BYTES: usize = 255;

/// Checks a device ID a client asks to create (at login or registration): at most 255 bytes,
/// printable characters only. An ID that breaks this can't name an existing device either, so
/// lookups simply find nothing (404, as the spec documents for them).
pub(crate) fn check_device_id(device_id: &DeviceId) -> Result<(), AccountError> {
    let device_id = device_id.as_str();
    if device_id.len() > MAX_DEVICE_ID_BYTES {
        return Err(AccountError::InvalidParam(format!(
            "device IDs are at most {MAX_DEVICE_ID_BYTES} bytes"
        )));
    }
    if device_id.is_empty() || device_id.chars().any(char::is_control) {
        return Err(AccountError::InvalidParam(
            "device IDs are printable characters only".into(),
        ));
    }
    Ok(())
}

impl Accounts {
    /// The user's devices, ordered by device ID, with their latest activity.
    pub async fn devices(&self, user_id: &UserId) -> Result<Vec<Device>, AccountError> {
        let mut devices = self.store.list_devices(user_id.as_str()).await?;
        self.last_seen.overlay(&mut devices);
        Ok(devices.into_iter().map(Device::from).collect())
    }

    /// Writes the devices' recent activity to the store; run periodically and at shutdown.
    pub async fn flush_last_seen(&self) -> Result<usize, AccountError> {
        Ok(self.last_seen.flush(self.store.as_ref()).await?)
    }

    /// One of the user's devices.
    pub async fn device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<Device, AccountError> {
        self.devices(user_id)
            .await?
            .into_iter()
            .find(|device| device.device_id == device_id)
            .ok_or(AccountError::NoSuchDevice)
    }

    /// Renames one of the user's devices; without a new name, the device keeps its name (the
    /// spec's "if not given, the display name is unchanged").
    pub async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        display_name: Option<&str>,
    ) -> Result<(), AccountError> {
        let Some(display_name) = display_name else {
            return self.device(user_id, device_id).await.map(drop);
        };
        if !self
            .store
            .rename_device(user_id.as_str(), device_id.as_str(), Some(display_name))
            .await?
        {
            return Err(AccountError::NoSuchDevice);
        }
        self.report([AccountEvent::DeviceRenamed {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            display_name: Some(display_name.to_owned()),
        }])
        .await;
        Ok(())
    }

    /// After password UIA, deletes devices of the caller and every token issued to them, in one
    /// transaction; unknown IDs are skipped (a device that is already gone is a success, as the spec
    /// documents). Returns how many were deleted.
    pub async fn delete_devices(
        &self,
        requester: &Requester,
        device_ids: &[OwnedDeviceId],
        request: BoundRequest<'_>,
    ) -> Result<usize, AccountError> {
        self.confirm_password(requester, Action::DeleteDevices, request)
            .await?;
        let user_id = &requester.user_id;
        let mut deleted = Vec::new();
        let mut tx = self.store.begin().await?;
        for device_id in device_ids {
            if tx
                .delete_device(user_id.as_str(), device_id.as_str())
                .await?
            {
                deleted.push(AccountEvent::DeviceDeleted {
                    user_id: user_id.clone(),
                    device_id: device_id.clone(),
                });
            }
        }
        tx.commit().await?;
        let count = deleted.len();
        self.report(deleted).await;
        Ok(count)
    }
}
