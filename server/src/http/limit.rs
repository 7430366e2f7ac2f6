//! Requests per key per minute, and the addresses users logged in from,
//! in memory: one process's view, which is what protects this process.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;

/// A fixed one-minute window per key.
#[derive(Debug)]
pub struct RateLimiter<K = i64> {
    per_minute: u32,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Allows `per_minute` events per key per minute.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key`; 429 when over the limit.
    pub fn check(&self, key: K) -> Result<(), ApiError> {
        self.count(key, true)
    }

    /// Whether `key` is already over the limit, without counting.
    pub fn exceeded(&self, key: K) -> Result<(), ApiError> {
        self.count(key, false)
    }

    /// Whether `key` has any event in its current window.
    pub fn seen(&self, key: &K) -> bool {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .get(key)
            .is_some_and(|(start, n)| *n > 0 && start.elapsed() < Duration::from_secs(60))
    }

    /// Takes back one event of `key` (counted before the outcome was
    /// known, and it turned out not to be one: a right password).
    pub fn refund(&self, key: &K) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, n)) = windows.get_mut(key) {
            *n = n.saturating_sub(1);
        }
    }

    fn count(&self, key: K, add: bool) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let window = windows.entry(key).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(60) {
            *window = (now, 0);
        }
        if window.1 >= self.per_minute {
            let wait = 60u64.saturating_sub(now.duration_since(window.0).as_secs()).max(1);
            return Err(ApiError::too_many(
                format!("more than {} requests in a minute; wait {wait} s", self.per_minute),
                wait,
            ));
        }
        if add {
            window.1 += 1;
        }
        Ok(())
    }
}

/// The addresses each user name last logged in from (at most `per_user`,
/// each for `keep`), in memory: the dashboard's per-user failure bound is
/// not applied to them, so attackers who fill that bound from elsewhere
/// do not lock out the user at her usual address after one typo.
///
/// Behind a reverse proxy every client has the proxy's address, so once
/// anyone has logged in through it the per-user bound stops nobody coming
/// through it and only the per-address bounds (shared by all its clients)
/// remain; honouring `X-Forwarded-For` would need a trusted-proxy setting,
/// which the server does not have.
#[derive(Debug)]
pub struct KnownAddresses {
    per_user: usize,
    keep: Duration,
    users: Mutex<HashMap<String, VecDeque<(IpAddr, Instant)>>>,
}

impl KnownAddresses {
    /// Remembers `per_user` addresses per user name, each for `keep`.
    pub fn new(per_user: usize, keep: Duration) -> Self {
        KnownAddresses {
            per_user,
            keep,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `user` logged in from `ip` within the last `keep`.
    pub fn known(&self, user: &str, ip: IpAddr) -> bool {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .get(user)
            .is_some_and(|seen| seen.iter().any(|(a, at)| *a == ip && at.elapsed() < self.keep))
    }

    /// Notes a successful login of `user` from `ip`, forgetting that
    /// user's oldest address beyond `per_user`.
    pub fn remember(&self, user: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.len() > 100_000 {
            users.retain(|_, seen| seen.iter().any(|(_, at)| now.duration_since(*at) < self.keep));
        }
        let seen = users.entry(user.to_owned()).or_default();
        seen.retain(|(a, at)| *a != ip && now.duration_since(*at) < self.keep);
        seen.push_back((ip, now));
        while seen.len() > self.per_user.max(1) {
            seen.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_addresses_are_the_last_few_and_expire() {
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let known = KnownAddresses::new(2, Duration::from_secs(3600));
        known.remember("amina", ip(1));
        known.remember("amina", ip(2));
        known.remember("amina", ip(1));
        known.remember("amina", ip(3));
        assert!(known.known("amina", ip(1)) && known.known("amina", ip(3)));
        assert!(!known.known("amina", ip(2)), "the oldest beyond two is forgotten");
        assert!(!known.known("baraka", ip(1)));
        let brief = KnownAddresses::new(16, Duration::from_millis(20));
        brief.remember("amina", ip(1));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!brief.known("amina", ip(1)), "forgotten after `keep`");
    }
}
