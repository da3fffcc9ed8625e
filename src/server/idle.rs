//! When a connection has gone idle: no request in flight for too long.

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, time::Instant};

/// The requests in flight on one connection; cheap to clone.
#[derive(Clone)]
pub struct Activity(Arc<watch::Sender<State>>);

/// Marks one request in flight until dropped.
pub struct InFlight(Activity);

/// How a connection went idle.
#[derive(Debug, PartialEq, Eq)]
pub enum Idle {
    /// No request arrived: there is nothing to finish.
    Unused,
    /// Its last request ended long enough ago.
    AfterRequests,
}

#[derive(Clone, Copy)]
struct State {
    in_flight: usize,
    had_request: bool,
    idle_since: Instant,
}

impl Activity {
    /// A connection just accepted: no request yet, idle from now.
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(State {
            in_flight: 0,
            had_request: false,
            idle_since: Instant::now(),
        })))
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.0.send_modify(|state| {
            state.in_flight += 1;
            state.had_request = true;
        });
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `first` since the connection was
    /// accepted, or for `between` since a request ended.
    pub async fn idle_for(&self, first: Duration, between: Duration) -> Idle {
        let mut changes = self.0.subscribe();
        loop {
            let state = *changes.borrow_and_update();
            if state.in_flight == 0 {
                let (limit, idle) = if state.had_request {
                    (between, Idle::AfterRequests)
                } else {
                    (first, Idle::Unused)
                };
                tokio::select! {
                    () = tokio::time::sleep_until(state.idle_since + limit) => return idle,
                    _ = changes.changed() => {}
                }
            } else {
                // The sender lives in `self`, so this only returns on a change.
                let _ = changes.changed().await;
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.send_modify(|state| {
            state.in_flight -= 1;
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(10);
    const BETWEEN: Duration = Duration::from_secs(60);

    async fn idle_after(activity: &Activity, wait: Duration) -> Option<Idle> {
        tokio::time::timeout(wait, activity.idle_for(FIRST, BETWEEN))
            .await
            .ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_is_idle_after_the_first_limit() {
        let activity = Activity::new();
        assert_eq!(
            idle_after(&activity, FIRST - Duration::from_millis(1)).await,
            None
        );
        assert_eq!(
            idle_after(&activity, Duration::from_millis(2)).await,
            Some(Idle::Unused)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_idle_and_its_end_restarts_the_clock() {
        let activity = Activity::new();
        let request = activity.begin();
        assert_eq!(idle_after(&activity, BETWEEN * 3).await, None);
        drop(request);
        let almost = BETWEEN - Duration::from_millis(1);
        assert_eq!(idle_after(&activity, almost).await, None);
        // A request that starts and ends unseen by the watcher still restarts the clock.
        drop(activity.begin());
        assert_eq!(idle_after(&activity, almost).await, None);
        assert_eq!(
            idle_after(&activity, Duration::from_millis(2)).await,
            Some(Idle::AfterRequests)
        );
    }
}
