//! The per-client cap on open connections.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex, PoisonError},
};

use ipnet::IpNet;

/// How many connections each client network holds open, and how many it may.
#[derive(Clone)]
pub struct ConnectionCap {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_network: usize,
    exempt: Arc<[IpNet]>,
}

/// One admitted connection; the count of its network drops when this is dropped.
pub struct Slot {
    cap: ConnectionCap,
    network: Option<IpAddr>,
}

impl ConnectionCap {
    /// A cap of `max_per_network` connections per client network; peers inside `exempt` (the
    /// trusted proxies, which carry many clients) are not counted.
    pub fn new(max_per_network: usize, exempt: &[IpNet]) -> Self {
        Self {
            open: Arc::default(),
            max_per_network,
            exempt: exempt.into(),
        }
    }

    /// Counts a new connection from `peer`, or `None` when its network is at the cap.
    pub fn admit(&self, peer: IpAddr) -> Option<Slot> {
        let peer = peer.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&peer)) {
            return Some(Slot {
                cap: self.clone(),
                network: None,
            });
        }
        let network = network_of(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(network).or_default();
        if *count >= self.max_per_network {
            return None;
        }
        *count += 1;
        Some(Slot {
            cap: self.clone(),
            network: Some(network),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(network) = self.network else {
            return;
        };
        let mut open = self.cap.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&network) {
            *count -= 1;
            if *count == 0 {
                open.remove(&network);
            }
        }
    }
}

/// The network a (canonical) peer address is counted under: an IPv4 address itself, an IPv6
/// address its /64, the smallest network a single subscriber is usually given.
fn network_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let cap = ConnectionCap::new(1, &[]);
        let _slot = cap.admit(ip("192.0.2.7")).expect("first");
        assert!(cap.admit(ip("::ffff:192.0.2.7")).is_none());
        assert!(cap.admit(ip("192.0.2.8")).is_some());
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let cap = ConnectionCap::new(2, &[]);
        let _first = cap.admit(ip("2001:db8:1:2::1")).expect("first");
        let _second = cap.admit(ip("2001:db8:1:2:ffff::9")).expect("second");
        assert!(cap.admit(ip("2001:db8:1:2:abcd::1")).is_none());
        assert!(cap.admit(ip("2001:db8:1:3::1")).is_some());
    }

    #[test]
    fn a_closed_connection_frees_its_slot() {
        let cap = ConnectionCap::new(1, &[]);
        let slot = cap.admit(ip("192.0.2.7")).expect("first");
        assert!(cap.admit(ip("192.0.2.7")).is_none());
        drop(slot);
        assert!(cap.admit(ip("192.0.2.7")).is_some());
        assert!(
            cap.open.lock().expect("lock").is_empty(),
            "no entry left behind"
        );
    }

    #[test]
    fn trusted_proxies_are_not_capped() {
        let cap = ConnectionCap::new(1, &["10.0.0.0/8".parse().expect("net")]);
        let _first = cap.admit(ip("10.1.2.3")).expect("first");
        assert!(cap.admit(ip("::ffff:10.1.2.3")).is_some());
    }
}
