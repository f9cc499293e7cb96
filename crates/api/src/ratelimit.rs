//! Failure throttling for the token endpoint: what stops a client from guessing secrets, and
//! what keeps that from locking the operator out.
//!
//! Only *failed* sign-ins are counted; a request is refused (429) *before* its secret is
//! checked when one of these budgets is spent:
//!
//! * **per source** ([`TokenLimits::per_source`]): failures from one source address, whatever
//!   client id they named. This is what stops a guesser rotating client ids.
//! * **per client and source** ([`TokenLimits::per_client_source`]): failures for one existing
//!   client from one source. A success from that source clears it (the operator who mistyped a
//!   secret is not held back once they get it right).
//! * **per client** ([`TokenLimits::per_client`]): failures for one existing client from
//!   everywhere, a looser budget against guessing from many addresses. When it is spent it
//!   refuses only sources that themselves failed within [`TokenLimits::recent`]: the operator
//!   signing in from an address that has not been failing still gets a token while an
//!   attacker elsewhere hammers the operator's client id.
//!
//! A *source* is the peer address of the TCP connection (never a header such as
//! `X-Forwarded-For`, which any client can write), widened where one party holds many
//! addresses: IPv6 by its /64 (one host's usual allocation), all of 127.0.0.0/8 as one source
//! (a local user can bind any of those 16 million addresses). Loopback is *not* exempt: on a
//! shared host loopback is exactly where other local users come from, and exempting it would
//! give them unlimited guesses. The consequence, accepted: an attacker on the operator's own
//! machine is the operator's source, so it can delay the operator's sign-ins from that machine
//! (never from another one) for as long as it keeps failing; each refusal says when to retry.
//!
//! Budgets are GCRA cells ("theoretical arrival time"): a budget of `burst` failures regains
//! one failure every `period`, so an idle key forgets everything after `burst × period`.
//!
//! Memory is bounded: each table holds at most [`TokenLimits::max_entries`] keys; a full table
//! first drops the keys that carry no debt any more, then the one with the least debt (an
//! attacker who rotates keys evicts the least throttled entries, never its own indebted ones
//! before them). Unknown client ids are never stored (they count against their source only),
//! so rotating bogus client ids grows nothing but one source entry.
//!
//! Why not the `governor` crate: it counts every request rather than failures, cannot ask
//! "would this key be allowed" without spending a cell, and its keyed store has no size cap.
//! What is needed here is three small maps and a comparison, tested below on a fake clock
//! (every method takes `now`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failure budget: `burst` failures at once, regaining one every `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub burst: u32,
    pub period: Duration,
}

impl Budget {
    /// How long after `now` a key whose cell is at `tat` may fail once more (zero: now).
    fn wait(&self, tat: Instant, now: Instant) -> Duration {
        let tolerance = self.period * self.burst.saturating_sub(1);
        tat.saturating_duration_since(now + tolerance)
    }
}

/// The token endpoint's budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLimits {
    pub per_source: Budget,
    pub per_client_source: Budget,
    pub per_client: Budget,
    /// How long a source counts as "failing" for the per-client budget.
    pub recent: Duration,
    /// Keys per table (sources, client-and-source pairs, clients).
    pub max_entries: usize,
}

impl Default for TokenLimits {
    /// 30 failures per source, then one per 2 s; 10 per client and source, then one per 6 s;
    /// 100 per client from all sources, then one per 600 ms; "recent" is 15 minutes; 16,384
    /// keys per table (a few MB at most). A human who mistypes a secret a few times is never
    /// throttled; a guesser gets at most a few thousand tries an hour against 256-bit secrets.
    fn default() -> Self {
        TokenLimits {
            per_source: Budget {
                burst: 30,
                period: Duration::from_secs(2),
            },
            per_client_source: Budget {
                burst: 10,
                period: Duration::from_secs(6),
            },
            per_client: Budget {
                burst: 100,
                period: Duration::from_millis(600),
            },
            recent: Duration::from_secs(15 * 60),
            max_entries: 16_384,
        }
    }
}

/// Where a request comes from, widened as described in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        Source(match ip {
            IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        })
    }
}

/// A client id as the directory looks it up (case-insensitively): one spelling, one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey(String);

impl ClientKey {
    /// Client ids longer than this are not real ones and are never stored.
    const MAX_LEN: usize = 128;

    fn of(client_id: &str) -> Option<ClientKey> {
        (client_id.len() <= Self::MAX_LEN).then(|| ClientKey(client_id.to_ascii_lowercase()))
    }
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    /// The theoretical arrival time: the key has no debt once `now >= tat`.
    tat: Instant,
    last_failure: Instant,
}

impl Cell {
    fn new(now: Instant) -> Cell {
        Cell {
            tat: now,
            last_failure: now,
        }
    }
    fn fail(&mut self, b: &Budget, now: Instant) {
        self.tat = self.tat.max(now) + b.period;
        self.last_failure = now;
    }
}

/// A map of cells with a size cap.
#[derive(Debug)]
struct Table<K> {
    cells: HashMap<K, Cell>,
    cap: usize,
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    fn new(cap: usize) -> Self {
        Table {
            cells: HashMap::new(),
            cap: cap.max(1),
        }
    }

    /// The cell of `k`, made if need be, evicting as the module documentation says.
    fn entry(&mut self, k: &K, now: Instant, keep: Duration) -> &mut Cell {
        if !self.cells.contains_key(k) && self.cells.len() >= self.cap {
            self.cells
                .retain(|_, c| c.tat > now || c.last_failure + keep > now);
            if self.cells.len() >= self.cap {
                if let Some(least) = self
                    .cells
                    .iter()
                    .min_by_key(|(_, c)| (c.tat, c.last_failure))
                    .map(|(k, _)| k.clone())
                {
                    self.cells.remove(&least);
                }
            }
        }
        self.cells
            .entry(k.clone())
            .or_insert_with(|| Cell::new(now))
    }

    fn wait(&self, k: &K, b: &Budget, now: Instant) -> Duration {
        self.cells
            .get(k)
            .map_or(Duration::ZERO, |c| b.wait(c.tat, now))
    }
}

struct Tables {
    sources: Table<Source>,
    pairs: Table<(ClientKey, Source)>,
    clients: Table<ClientKey>,
}

/// The token endpoint's failure throttle (one per server).
pub struct TokenLimiter {
    limits: TokenLimits,
    t: Mutex<Tables>,
}

/// How many keys each table holds (tests, diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub sources: usize,
    pub pairs: usize,
    pub clients: usize,
}

impl TokenLimiter {
    pub fn new(limits: TokenLimits) -> TokenLimiter {
        let cap = limits.max_entries;
        TokenLimiter {
            limits,
            t: Mutex::new(Tables {
                sources: Table::new(cap),
                pairs: Table::new(cap),
                clients: Table::new(cap),
            }),
        }
    }

    pub fn limits(&self) -> &TokenLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.t.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `client_id` may try a secret from `ip` now; `Err` carries how long to wait.
    /// Spends nothing: only [`TokenLimiter::failed`] does.
    pub fn check(&self, client_id: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let src = Source::of(ip);
        let l = &self.limits;
        let t = self.lock();
        let mut wait = t.sources.wait(&src, &l.per_source, now);
        if let Some(c) = ClientKey::of(client_id) {
            wait = wait.max(t.pairs.wait(&(c.clone(), src), &l.per_client_source, now));
            let source_failing = t
                .sources
                .cells
                .get(&src)
                .is_some_and(|s| s.last_failure + l.recent > now);
            if source_failing {
                wait = wait.max(t.clients.wait(&c, &l.per_client, now));
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait)
        }
    }

    /// Records a failed sign-in from `ip`. `client_id` is the client it named when that client
    /// exists (`None` for an unknown client id, which is charged to the source only).
    pub fn failed(&self, client_id: Option<&str>, ip: IpAddr, now: Instant) {
        let src = Source::of(ip);
        let l = &self.limits;
        let mut t = self.lock();
        t.sources
            .entry(&src, now, l.recent)
            .fail(&l.per_source, now);
        if let Some(c) = client_id.and_then(ClientKey::of) {
            t.pairs
                .entry(&(c.clone(), src), now, Duration::ZERO)
                .fail(&l.per_client_source, now);
            t.clients
                .entry(&c, now, Duration::ZERO)
                .fail(&l.per_client, now);
        }
    }

    /// Records a successful sign-in: that client's failures from that source are forgiven.
    pub fn succeeded(&self, client_id: &str, ip: IpAddr) {
        if let Some(c) = ClientKey::of(client_id) {
            self.lock().pairs.cells.remove(&(c, Source::of(ip)));
        }
    }

    pub fn sizes(&self) -> Sizes {
        let t = self.lock();
        Sizes {
            sources: t.sources.cells.len(),
            pairs: t.pairs.cells.len(),
            clients: t.clients.cells.len(),
        }
    }
}

/// Seconds for a `Retry-After` header: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn small() -> TokenLimits {
        TokenLimits {
            per_source: Budget {
                burst: 20,
                period: SEC,
            },
            per_client_source: Budget {
                burst: 3,
                period: 10 * SEC,
            },
            per_client: Budget {
                burst: 5,
                period: 10 * SEC,
            },
            recent: 60 * SEC,
            max_entries: 64,
        }
    }

    #[test]
    fn a_burst_of_failures_is_throttled_then_forgiven_with_time() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for i in 0..3 {
            assert_eq!(l.check("op", a, t0), Ok(()), "failure {i} must be allowed");
            l.failed(Some("op"), a, t0);
        }
        // The fourth guess in the same instant is refused, with the time to wait.
        assert_eq!(l.check("op", a, t0), Err(10 * SEC));
        assert_eq!(l.check("op", a, t0 + 9 * SEC), Err(SEC));
        // One failure regained per period.
        assert_eq!(l.check("op", a, t0 + 10 * SEC), Ok(()));
        l.failed(Some("op"), a, t0 + 10 * SEC);
        assert!(l.check("op", a, t0 + 10 * SEC).is_err());
        // After burst × period of quiet, everything is forgotten.
        assert_eq!(l.check("op", a, t0 + 50 * SEC), Ok(()));
    }

    #[test]
    fn another_source_is_not_throttled_by_a_guesser() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        let attacker = ip("192.0.2.7");
        for _ in 0..3 {
            l.failed(Some("op"), attacker, t0);
        }
        assert!(l.check("op", attacker, t0).is_err());
        assert_eq!(l.check("op", ip("198.51.100.1"), t0), Ok(()));
        assert_eq!(l.check("op", ip("2001:db8::1"), t0), Ok(()));
    }

    #[test]
    fn the_client_budget_throttles_only_sources_that_failed_recently() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        // Five sources, one guess each, spend the client's budget of 5.
        for i in 1..=5 {
            l.failed(Some("OP"), ip(&format!("192.0.2.{i}")), t0);
        }
        // A sixth failing source: its own pair budget is fine, but it failed (once, for
        // another client) recently and the client's budget is spent.
        let sixth = ip("192.0.2.6");
        l.failed(Some("other"), sixth, t0);
        assert_eq!(l.check("op", sixth, t0), Err(10 * SEC));
        // Each of the five is refused too (the case of the client id changes nothing).
        assert!(l.check("Op", ip("192.0.2.1"), t0).is_err());
        // The operator from an address that has not been failing still signs in.
        assert_eq!(l.check("op", ip("203.0.113.9"), t0), Ok(()));
        // Other clients from the failing sources are not affected by op's budget.
        assert_eq!(l.check("someone-else", ip("192.0.2.2"), t0), Ok(()));
    }

    #[test]
    fn rotating_client_ids_is_stopped_by_the_source_budget() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for i in 0..20 {
            let id = format!("bogus-{i}");
            assert_eq!(l.check(&id, a, t0), Ok(()));
            l.failed(None, a, t0);
        }
        assert_eq!(l.check("bogus-new", a, t0), Err(SEC));
        assert_eq!(
            l.sizes(),
            Sizes {
                sources: 1,
                pairs: 0,
                clients: 0
            }
        );
    }

    #[test]
    fn success_forgives_the_pair_only() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        let a = ip("192.0.2.7");
        for _ in 0..3 {
            l.failed(Some("op"), a, t0);
        }
        assert!(l.check("op", a, t0).is_err());
        l.succeeded("OP", a);
        assert_eq!(l.check("op", a, t0), Ok(()));
        // The source budget is untouched by a success: rotating ids after one success still
        // runs into it.
        for _ in 0..17 {
            l.failed(None, a, t0);
        }
        assert!(l.check("x", a, t0).is_err());
    }

    #[test]
    fn loopback_and_ipv6_64s_are_one_source() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        // A local user rotating 127.x.y.z addresses, and a host rotating its /64.
        for i in 0..3 {
            l.failed(Some("op"), ip(&format!("127.0.{i}.9")), t0);
            l.failed(Some("op"), ip(&format!("2001:db8:1:2::{i}")), t0);
        }
        assert!(l.check("op", ip("127.255.0.1"), t0).is_err());
        assert!(l.check("op", ip("::ffff:127.0.0.1"), t0).is_err());
        assert!(l.check("op", ip("2001:db8:1:2:ffff::1"), t0).is_err());
        // The neighbouring /64 and ::1 are other sources.
        assert_eq!(l.check("op", ip("2001:db8:1:3::1"), t0), Ok(()));
        assert_eq!(l.check("op", ip("::1"), t0), Ok(()));
        // v4-mapped v6 is the v4 address.
        l.failed(Some("op"), ip("::ffff:192.0.2.1"), t0);
        assert_eq!(l.sizes().sources, 3);
    }

    #[test]
    fn memory_is_bounded_when_sources_and_clients_rotate() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        // 100,000 distinct sources naming 100,000 distinct (existing-looking) client ids.
        for i in 0u32..100_000 {
            let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.failed(Some(&format!("client-{i}")), a, t0);
        }
        let s = l.sizes();
        assert!(s.sources <= 64 && s.pairs <= 64 && s.clients <= 64, "{s:?}");
        // Client ids too long to be real are never stored.
        l.failed(Some(&"x".repeat(10_000)), ip("192.0.2.1"), t0);
        assert!(l.sizes().pairs <= 64);
    }

    #[test]
    fn eviction_keeps_the_most_indebted_source() {
        let l = TokenLimiter::new(small());
        let t0 = Instant::now();
        let attacker = ip("192.0.2.7");
        for _ in 0..20 {
            l.failed(None, attacker, t0);
        }
        assert!(l.check("x", attacker, t0).is_err());
        // The attacker then floods the table with one failure from each of many sources: each
        // of those has less debt than the attacker's main source, which therefore survives.
        for i in 0u32..1000 {
            l.failed(None, IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), t0);
        }
        assert!(l.check("x", attacker, t0).is_err());
        assert!(l.sizes().sources <= 64);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
