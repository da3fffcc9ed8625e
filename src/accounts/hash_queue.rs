//! The queue of password checks waiting for a hashing thread, shared fairly between client
//! networks: each network has its own line of at most a few checks, and the threads serve the
//! lines in turn. A flood from some networks then fills their own lines, and a check from any
//! other network waits for at most one check of each busy network; even a full queue admits
//! the first check of a network with none waiting, up to a hard ceiling.
//!
//! The client network of a check is the one of the request it serves, set for the request's
//! task by [`with_client_network`] (the HTTP layer does this for every request); checks made
//! outside a request (the command line) share one line.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::{Arc, Condvar, Mutex, PoisonError},
};

tokio::task_local! {
    /// The network (as rate limits key it) of the client whose request this task serves.
    static CLIENT_NETWORK: Arc<str>;
}

/// Runs `request` as the work of a client from `network`: the password checks it makes wait
/// in that network's line.
pub async fn with_client_network<F: Future>(network: Arc<str>, request: F) -> F::Output {
    CLIENT_NETWORK.scope(network, request).await
}

/// How many times the queue's size a network's first waiting check may still be admitted.
const FIRST_CHECK_HEADROOM: usize = 4;

/// The line of checks made outside any request.
const NO_CLIENT: &str = "-";

/// Why a check was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The whole queue is full.
    Full,
    /// The client network's own line is full (that network is the busy one).
    LineFull,
    /// The hashing threads have stopped.
    Closed,
}

/// A queue of jobs of type `J`, served round-robin across client networks.
pub struct FairQueue<J> {
    state: Mutex<Lines<J>>,
    ready: Condvar,
    per_network: usize,
    total: usize,
}

struct Lines<J> {
    waiting: HashMap<Arc<str>, VecDeque<J>>,
    turns: VecDeque<Arc<str>>,
    queued: usize,
    closed: bool,
}

impl<J> FairQueue<J> {
    /// A queue holding at most `per_network` waiting jobs per client network and `total` in
    /// all.
    pub fn new(per_network: usize, total: usize) -> Self {
        Self {
            state: Mutex::new(Lines {
                waiting: HashMap::new(),
                turns: VecDeque::new(),
                queued: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            per_network: per_network.max(1),
            total: total.max(1),
        }
    }

    /// Queues `job` in the line of the current request's client network; a refused job is
    /// handed back.
    pub fn push(&self, job: J) -> Result<(), (Refused, J)> {
        let network = CLIENT_NETWORK
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::from(NO_CLIENT));
        let mut lines = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.closed {
            return Err((Refused::Closed, job));
        }
        // A full queue still admits the first check of a network with none waiting (up to a
        // hard ceiling), so that many busy networks can't shut every other one out.
        let has_line = lines.waiting.contains_key(&network);
        let ceiling = if has_line {
            self.total
        } else {
            self.total.saturating_mul(FIRST_CHECK_HEADROOM)
        };
        if lines.queued >= ceiling {
            return Err((Refused::Full, job));
        }
        let line = lines.waiting.entry(network.clone()).or_default();
        if line.len() >= self.per_network {
            return Err((Refused::LineFull, job));
        }
        let first = line.is_empty();
        line.push_back(job);
        if first {
            lines.turns.push_back(network);
        }
        lines.queued += 1;
        drop(lines);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, taking the lines in turn; waits while there is none. `None` once the
    /// queue is closed.
    pub fn pop(&self) -> Option<J> {
        let mut lines = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if lines.closed {
                return None;
            }
            if let Some(network) = lines.turns.pop_front() {
                let Some(line) = lines.waiting.get_mut(&network) else {
                    continue;
                };
                let job = line.pop_front();
                if line.is_empty() {
                    lines.waiting.remove(&network);
                } else {
                    lines.turns.push_back(network);
                }
                lines.queued -= 1;
                return job;
            }
            lines = self
                .ready
                .wait(lines)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops the queue: waiting threads return, new jobs are refused.
    pub fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn push_from(queue: &FairQueue<u32>, network: &str, job: u32) -> Result<(), Refused> {
        with_client_network(Arc::from(network), async { queue.push(job) })
            .await
            .map_err(|(refused, _)| refused)
    }

    #[tokio::test]
    async fn networks_are_served_in_turn_and_each_line_is_bounded() {
        let queue = FairQueue::new(2, 100);
        push_from(&queue, "flood", 1).await.unwrap();
        push_from(&queue, "flood", 2).await.unwrap();
        assert_eq!(push_from(&queue, "flood", 3).await, Err(Refused::LineFull));
        push_from(&queue, "owner", 10).await.unwrap();
        // The owner's check comes right after the flood's first, not after all of them.
        assert_eq!(
            [queue.pop(), queue.pop(), queue.pop()],
            [Some(1), Some(10), Some(2)]
        );
    }

    #[tokio::test]
    async fn a_full_queue_still_admits_a_new_network_up_to_a_ceiling() {
        let queue = FairQueue::new(5, 2);
        push_from(&queue, "a", 1).await.unwrap();
        push_from(&queue, "a", 2).await.unwrap();
        // Full for the busy network, not for one with nothing waiting.
        assert_eq!(push_from(&queue, "a", 3).await, Err(Refused::Full));
        for (index, network) in ["b", "c", "d", "e", "f", "g"].into_iter().enumerate() {
            push_from(&queue, network, 10 + index as u32).await.unwrap();
        }
        // The hard ceiling: four times the queue's size.
        assert_eq!(push_from(&queue, "h", 99).await, Err(Refused::Full));
        queue.close();
        assert_eq!(queue.push(4), Err((Refused::Closed, 4)));
        assert_eq!(queue.pop(), None);
    }
}
