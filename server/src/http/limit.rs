//! Requests per key per minute, in memory: one process's view, which is
//! what protects this process.

use std::collections::HashMap;
use std::hash::Hash;
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
