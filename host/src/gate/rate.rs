//! Token-bucket rate limits, one bucket per key (a caller, or a function).
//! A bucket holds up to `burst` calls and refills at `per_minute / 60` per
//! second. A refusal says how long until one call fits (`Retry-After`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One limit applied to many keys.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `burst` defaults to `per_minute` (at least 1).
    pub fn new(per_minute: u32, burst: Option<u32>) -> RateLimiter {
        let burst = burst.unwrap_or(per_minute).max(1);
        RateLimiter { per_second: f64::from(per_minute) / 60.0, burst: f64::from(burst), buckets: Mutex::default() }
    }

    /// Takes one call from `key`'s bucket, or says how long to wait.
    pub fn try_take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| refill(b.tokens, b.last, now, rate, burst) < burst);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket { tokens: self.burst, last: now });
        b.tokens = refill(b.tokens, b.last, now, self.per_second, self.burst);
        b.last = now.max(b.last);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - b.tokens;
            Err(Duration::from_secs_f64(missing / self.per_second))
        }
    }
}

fn refill(tokens: f64, last: Instant, now: Instant, per_second: f64, burst: f64) -> f64 {
    let dt = now.saturating_duration_since(last).as_secs_f64();
    (tokens + dt * per_second).min(burst)
}

/// Whole seconds for a `Retry-After` header, never 0.
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 60/min = 1/s, burst 3.
        let r = RateLimiter::new(60, Some(3));
        let steps: &[(u64, &str, bool)] = &[
            (0, "a", true),
            (0, "a", true),
            (0, "a", true),
            (0, "a", false),  // burst used up
            (0, "b", true),   // other keys have their own bucket
            (500, "a", false), // half a token back
            (1000, "a", true), // one token back
            (1000, "a", false),
            (10_000, "a", true), // refills to the burst, not beyond
            (10_000, "a", true),
            (10_000, "a", true),
            (10_000, "a", false),
        ];
        for (i, (ms, key, ok)) in steps.iter().enumerate() {
            assert_eq!(r.try_take(key, at(*ms)).is_ok(), *ok, "step {i}: {key} at {ms} ms");
        }
    }

    #[test]
    fn retry_after_says_when_a_call_fits() {
        let t0 = Instant::now();
        let r = RateLimiter::new(6, Some(1)); // one per 10 s
        assert!(r.try_take("k", t0).is_ok());
        let wait = r.try_take("k", t0 + Duration::from_secs(4)).unwrap_err();
        assert!((wait.as_secs_f64() - 6.0).abs() < 0.01, "{wait:?}");
        assert_eq!(retry_after_secs(wait), 6);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert!(r.try_take("k", t0 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn default_burst_is_the_rate_and_at_least_one() {
        let t0 = Instant::now();
        let r = RateLimiter::new(2, None);
        assert!(r.try_take("k", t0).is_ok());
        assert!(r.try_take("k", t0).is_ok());
        assert!(r.try_take("k", t0).is_err());
        let one = RateLimiter::new(1, Some(1));
        assert!(one.try_take("k", t0).is_ok());
        assert!(one.try_take("k", t0).is_err());
    }

    #[test]
    fn idle_buckets_are_dropped_when_the_map_is_full() {
        let t0 = Instant::now();
        let r = RateLimiter::new(60, Some(1));
        for i in 0..MAX_BUCKETS {
            r.try_take(&format!("k{i}"), t0).unwrap();
        }
        // Much later every bucket is full again, so all are dropped.
        r.try_take("new", t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(r.buckets.lock().unwrap().len(), 1);
    }
}
