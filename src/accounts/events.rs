//! The one outlet for account changes. Every change another system may need to know about (a
//! homeserver that mirrors accounts and devices, an audit log) is reported here, by the domain
//! services only and once each change is made, whichever API, prefix or command made it.

use async_trait::async_trait;
use ruma::{OwnedDeviceId, OwnedUserId};

/// A change to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// An account was created (by registration, a guest registration or the operator).
    Created {
        /// The new account.
        user_id: OwnedUserId,
        /// Its display name.
        displayname: Option<String>,
        /// Email addresses proven during registration and attached to it.
        emails: Vec<String>,
        /// Whether it is a guest account.
        is_guest: bool,
    },
    /// A guest account became a full account.
    GuestUpgraded {
        /// The account.
        user_id: OwnedUserId,
    },
    /// A device session was opened: a new device, or a device signed in again under its ID
    /// (for a listener, an upsert).
    DeviceCreated {
        /// Owner of the device.
        user_id: OwnedUserId,
        /// The device.
        device_id: OwnedDeviceId,
        /// The name the device was given, if any (a reused device keeps its old name).
        display_name: Option<String>,
    },
    /// A device was renamed (`None`: its name was cleared).
    DeviceRenamed {
        /// Owner of the device.
        user_id: OwnedUserId,
        /// The device.
        device_id: OwnedDeviceId,
        /// The new name.
        display_name: Option<String>,
    },
    /// A device and every token issued to it were deleted (logout, device deletion, password
    /// change with `logout_devices`, operator reset).
    DeviceDeleted {
        /// Owner of the device.
        user_id: OwnedUserId,
        /// The device.
        device_id: OwnedDeviceId,
    },
    /// The password was changed or reset.
    PasswordChanged {
        /// The account.
        user_id: OwnedUserId,
    },
    /// The display name was set or (with `None`) removed.
    DisplayNameChanged {
        /// The account.
        user_id: OwnedUserId,
        /// The new display name.
        displayname: Option<String>,
    },
    /// The avatar was set or (with `None`) removed.
    AvatarChanged {
        /// The account.
        user_id: OwnedUserId,
        /// The new avatar's MXC URI.
        avatar_url: Option<String>,
    },
    /// An email address was attached to the account.
    EmailAdded {
        /// The account.
        user_id: OwnedUserId,
        /// The canonical address.
        address: String,
    },
    /// An email address was removed from the account.
    EmailRemoved {
        /// The account.
        user_id: OwnedUserId,
        /// The canonical address.
        address: String,
    },
    /// The operator locked (or unlocked) the account.
    Locked {
        /// The account.
        user_id: OwnedUserId,
        /// Whether it is locked now.
        locked: bool,
    },
    /// The operator suspended (or unsuspended) the account.
    Suspended {
        /// The account.
        user_id: OwnedUserId,
        /// Whether it is suspended now.
        suspended: bool,
    },
    /// The account was deactivated for good; every session ended with it.
    Deactivated {
        /// The account.
        user_id: OwnedUserId,
        /// Whether its profile was erased too.
        erased: bool,
    },
}

impl AccountEvent {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::GuestUpgraded { .. } => "guest_upgraded",
            Self::DeviceCreated { .. } => "device_created",
            Self::DeviceRenamed { .. } => "device_renamed",
            Self::DeviceDeleted { .. } => "device_deleted",
            Self::PasswordChanged { .. } => "password_changed",
            Self::DisplayNameChanged { .. } => "displayname_changed",
            Self::AvatarChanged { .. } => "avatar_changed",
            Self::EmailAdded { .. } => "email_added",
            Self::EmailRemoved { .. } => "email_removed",
            Self::Locked { .. } => "locked",
            Self::Suspended { .. } => "suspended",
            Self::Deactivated { .. } => "deactivated",
        }
    }

    /// The account the event is about.
    pub fn user_id(&self) -> &OwnedUserId {
        match self {
            Self::Created { user_id, .. }
            | Self::GuestUpgraded { user_id }
            | Self::DeviceCreated { user_id, .. }
            | Self::DeviceRenamed { user_id, .. }
            | Self::DeviceDeleted { user_id, .. }
            | Self::PasswordChanged { user_id }
            | Self::DisplayNameChanged { user_id, .. }
            | Self::AvatarChanged { user_id, .. }
            | Self::EmailAdded { user_id, .. }
            | Self::EmailRemoved { user_id, .. }
            | Self::Locked { user_id, .. }
            | Self::Suspended { user_id, .. }
            | Self::Deactivated { user_id, .. } => user_id,
        }
    }
}

/// Where account changes are reported. Called by the domain services only, after the change is
/// committed, exactly once per change.
#[async_trait]
pub trait AccountEvents: Send + Sync {
    /// Takes note of a change. The default does nothing.
    async fn report(&self, event: AccountEvent) {
        let _ = event;
    }
}

/// The standalone outlet: each change is one structured log line (target
/// `vestibule::account_events`, no secrets) and one count in
/// `vestibule_account_events_total{kind}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggedEvents;

#[async_trait]
impl AccountEvents for LoggedEvents {
    async fn report(&self, event: AccountEvent) {
        let kind = event.kind();
        tracing::info!(
            target: "vestibule::account_events",
            kind,
            user_id = %event.user_id(),
            details = ?event,
            "account event"
        );
        metrics::counter!("vestibule_account_events_total", "kind" => kind).increment(1);
    }
}
