//! The one retry policy: how long a failed piece of work waits before its next attempt, and
//! when it stops. A pure function of the attempt and the policy, used by
//! - timers whose rules failed with a transient error (`run_due_timers`): 30 s doubling, 5 attempts;
//! - outbox consumers (`nack_event`): the consumer's `backoff` schedule, else 1 s doubling to 1 h;
//! - webhooks (the worker): the webhook's `backoff` schedule, else 1 s doubling to 1 h, jittered
//!   into [75 %, 125 %] so that many failed deliveries do not come back at the same instant.
//!
//! SQL reaches it through the internal function `lowcode.retry_delay(policy, attempt,
//! schedule)`.

use std::time::Duration;

/// A retry policy: an explicit schedule (its last entry repeats) or a doubling delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The delay before the first retry when there is no schedule.
    pub first: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// Spread each delay over [75 %, 125 %] of itself.
    pub jitter: bool,
}

/// Timers whose rules failed with a transient error: 30 s, 1 min, 2 min, 4 min.
pub const TIMER: Policy = Policy {
    first: Duration::from_secs(30),
    cap: Duration::from_secs(3600),
    jitter: false,
};
/// The attempts a timer gets before it is marked failed.
pub const TIMER_ATTEMPTS: u32 = 5;

/// Outbox consumers without a backoff of their own: 1 s, 2 s, 4 s ... 1 h.
pub const CONSUMER: Policy = Policy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(3600),
    jitter: false,
};

/// Webhooks: as consumers, jittered.
pub const WEBHOOK: Policy = Policy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(3600),
    jitter: true,
};

/// A policy by its SQL name ("timer", "consumer", "webhook").
pub fn named(name: &str) -> Option<Policy> {
    match name {
        "timer" => Some(TIMER),
        "consumer" => Some(CONSUMER),
        "webhook" => Some(WEBHOOK),
        _ => None,
    }
}

/// The delay before retry number `attempt` (1 = the first retry): `schedule`'s entry when
/// there is one (its last entry repeats), else `first` doubling up to `cap`; jittered by
/// `seed` when the policy says so (the same seed gives the same delay).
pub fn delay(policy: &Policy, attempt: u32, schedule: &[Duration], seed: u64) -> Duration {
    let base = if schedule.is_empty() {
        let exp = attempt.saturating_sub(1).min(30);
        policy
            .first
            .checked_mul(1u32 << exp)
            .unwrap_or(policy.cap)
            .min(policy.cap)
    } else {
        schedule[(attempt.max(1) as usize - 1).min(schedule.len() - 1)]
    };
    if policy.jitter {
        let unit = (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        base.mul_f64(0.75 + 0.5 * unit)
    } else {
        base
    }
}

/// Whether work tried `tried` times out of `max_attempts` gets another attempt.
pub fn again(tried: u32, max_attempts: u32) -> bool {
    tried < max_attempts
}

/// What becomes of a timer whose rules failed with SQLSTATE `state`, tried `tried` times
/// before (`run_due_timers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerFailure {
    /// Lost a race with a concurrent change of its record (a deadlock, a serialization
    /// failure, a lock not available): pending again as it was, for the next run.
    PutBack,
    /// A transient error (class 08 connection, 53 resources, 58 system, or 57014 a cancelled
    /// statement): pending again after this wait (30 s, 1 min, 2 min, 4 min).
    RetryIn(Duration),
    /// Any other error, or the fifth failure: failed, with the error.
    Failed,
}

/// The decision for a timer's failure: see [`TimerFailure`].
pub fn timer_failure(state: &str, tried: u32) -> TimerFailure {
    if matches!(state, "40P01" | "40001" | "55P03") {
        return TimerFailure::PutBack;
    }
    let transient = ["08", "53", "58"]
        .iter()
        .any(|class| state.starts_with(class))
        || state == "57014";
    let attempt = tried.saturating_add(1);
    if transient && again(attempt, TIMER_ATTEMPTS) {
        TimerFailure::RetryIn(delay(&TIMER, attempt, &[], 0))
    } else {
        TimerFailure::Failed
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_failure_is_put_back_retried_or_failed() {
        assert_eq!(timer_failure("40P01", 0), TimerFailure::PutBack);
        assert_eq!(timer_failure("40001", 4), TimerFailure::PutBack);
        assert_eq!(timer_failure("55P03", 9), TimerFailure::PutBack);
        assert_eq!(
            timer_failure("08006", 0),
            TimerFailure::RetryIn(Duration::from_secs(30))
        );
        assert_eq!(
            timer_failure("53200", 1),
            TimerFailure::RetryIn(Duration::from_secs(60))
        );
        assert_eq!(
            timer_failure("57014", 3),
            TimerFailure::RetryIn(Duration::from_secs(240))
        );
        // The fifth failure, and any other error, fail it.
        assert_eq!(timer_failure("58030", 4), TimerFailure::Failed);
        assert_eq!(timer_failure("P0001", 0), TimerFailure::Failed);
        assert_eq!(timer_failure("57P01", 0), TimerFailure::Failed);
    }

    #[test]
    fn timers_wait_30_s_doubling() {
        let d: Vec<u64> = (1..=4)
            .map(|a| delay(&TIMER, a, &[], 0).as_secs())
            .collect();
        assert_eq!(d, [30, 60, 120, 240]);
        assert!(again(4, TIMER_ATTEMPTS));
        assert!(!again(5, TIMER_ATTEMPTS));
    }

    #[test]
    fn consumers_double_to_an_hour_or_follow_their_schedule() {
        assert_eq!(delay(&CONSUMER, 1, &[], 0), Duration::from_secs(1));
        assert_eq!(delay(&CONSUMER, 3, &[], 0), Duration::from_secs(4));
        assert_eq!(delay(&CONSUMER, 40, &[], 0), Duration::from_secs(3600));
        let schedule = [Duration::from_secs(10), Duration::from_secs(60)];
        assert_eq!(delay(&CONSUMER, 1, &schedule, 0), Duration::from_secs(10));
        assert_eq!(delay(&CONSUMER, 9, &schedule, 0), Duration::from_secs(60));
    }

    #[test]
    fn webhooks_are_jittered() {
        let d1 = delay(&WEBHOOK, 1, &[], 1);
        let d3 = delay(&WEBHOOK, 3, &[], 1);
        assert!(d1 >= Duration::from_millis(750) && d1 <= Duration::from_millis(1250));
        assert!(d3 >= Duration::from_secs(3) && d3 <= Duration::from_secs(5));
        assert!(delay(&WEBHOOK, 40, &[], 9) <= Duration::from_secs(4500));
        let delays: std::collections::BTreeSet<_> =
            (0..20).map(|s| delay(&WEBHOOK, 2, &[], s)).collect();
        assert!(delays.len() > 10);
        let schedule = [Duration::from_secs(10), Duration::from_secs(60)];
        let d = delay(&WEBHOOK, 5, &schedule, 3);
        assert!(d >= Duration::from_secs(45) && d <= Duration::from_secs(75));
    }

    #[test]
    fn named_policies() {
        assert_eq!(named("timer"), Some(TIMER));
        assert_eq!(named("consumer"), Some(CONSUMER));
        assert_eq!(named("webhook"), Some(WEBHOOK));
        assert_eq!(named("other"), None);
    }
}
