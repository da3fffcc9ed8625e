//! When and from where each device was last seen, kept in memory and written to the store in
//! batches, so an authenticated request costs no database write.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::store::{DeviceRecord, LastSeen, Store, StoreError};

/// Pending last-seen updates, keyed by (user ID, device ID).
#[derive(Clone, Default)]
pub struct LastSeenRecorder {
    pending: Arc<Mutex<HashMap<(String, String), LastSeen>>>,
}

impl LastSeenRecorder {
    /// Notes that a device made a request at `now_ms` from `ip`.
    pub fn record(&self, user_id: &str, device_id: &str, now_ms: i64, ip: Option<String>) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = pending
            .entry((user_id.to_owned(), device_id.to_owned()))
            .or_insert_with(|| LastSeen {
                user_id: user_id.to_owned(),
                device_id: device_id.to_owned(),
                ts: now_ms,
                ip: None,
            });
        entry.ts = entry.ts.max(now_ms);
        if ip.is_some() {
            entry.ip = ip;
        }
    }

    /// Applies not-yet-written updates to devices read from the store, so readers see the
    /// latest activity.
    pub fn overlay(&self, devices: &mut [DeviceRecord]) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for device in devices {
            if let Some(seen) = pending.get(&(device.user_id.clone(), device.device_id.clone())) {
                device.last_seen_ts =
                    Some(device.last_seen_ts.map_or(seen.ts, |ts| ts.max(seen.ts)));
                if seen.ip.is_some() {
                    device.last_seen_ip.clone_from(&seen.ip);
                }
            }
        }
    }

    /// Writes every pending update in one store call; on failure they are kept for the next
    /// flush.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let batch: Vec<LastSeen> = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.drain().map(|(_, seen)| seen).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match store.update_last_seen(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(err) => {
                for seen in batch {
                    self.record(&seen.user_id, &seen.device_id, seen.ts, seen.ip);
                }
                Err(err)
            }
        }
    }
}
