//! Backend pools: several members (URL, weight, priority group) behind one
//! `[[backends]]` name, how a member is chosen, and how a failing one is
//! taken out of service (active health checks, passive ejection, the
//! circuit breaker with the managed product's semantics).

use std::{sync::Arc, time::Duration};

use http::Uri;
use serde::{Deserialize, Serialize};

/// One member as written: `{ url = "http://10.0.0.5:8080", weight = 5, priority = 1 }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSection {
    /// http:// or https:// URL; every member has the same scheme and path.
    pub url: String,
    /// Share of the requests within its priority group (1-1000, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Priority group, 1 (default) first: a later group serves only while
    /// no member of an earlier one is available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
}

/// `[backends.health_check]`: an HTTP GET sent to every member on its own
/// new connection.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSection {
    /// Path requested, e.g. "/healthz".
    pub path: String,
    /// Statuses that count as healthy: "200", "200-299" (default ["200-299"]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<String>>,
    /// Milliseconds between checks of a member (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// Milliseconds a check may take, connecting included (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Consecutive passed checks that bring a member back (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// Consecutive failed checks that take a member out (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
}

/// `[backends.ejection]`: passive checks on live traffic.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EjectionSection {
    /// Consecutive connect failures or 5xx answers that eject a member
    /// (default 5; 0 turns passive ejection off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    /// Milliseconds of the first ejection; each further one doubles it
    /// (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ms: Option<u64>,
    /// Longest ejection in milliseconds (default 300000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
}

/// `[backends.circuit_breaker]`: the managed product's rule — `failure_count`
/// failures within `interval_secs` open the breaker for `trip_duration_secs`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSection {
    /// Failures within the interval that trip the breaker.
    pub failure_count: u32,
    /// Seconds of the window failures are counted in.
    pub interval_secs: u64,
    /// Statuses that count as failures: "500-599", "429" (default ["500-599"]).
    /// Connect failures and timeouts always count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code_ranges: Option<Vec<String>>,
    /// Seconds the breaker stays open.
    pub trip_duration_secs: u64,
    /// Whether the backend's `Retry-After` (seconds) on the tripping answer
    /// replaces the trip duration (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_retry_after: Option<bool>,
}

/// How a member of a group is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Balance {
    /// Smooth weighted round robin.
    RoundRobin,
    /// The fewest requests awaiting their response head; ties by weight.
    LeastRequests,
}

/// An inclusive range of statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusRange {
    pub min: u16,
    pub max: u16,
}

impl StatusRange {
    pub fn contains(self, status: u16) -> bool {
        (self.min..=self.max).contains(&status)
    }
}

/// One validated member.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// host:port as written (the host may be a name to resolve).
    pub authority: String,
    pub weight: u32,
    pub priority: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    pub path: String,
    pub statuses: Vec<StatusRange>,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ejection {
    /// 0: off.
    pub consecutive_failures: u32,
    pub base: Duration,
    pub max: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CircuitBreaker {
    pub failure_count: u32,
    pub interval: Duration,
    pub statuses: Vec<StatusRange>,
    pub trip_duration: Duration,
    pub accept_retry_after: bool,
}

/// A validated pool: members sorted by priority group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolSpec {
    /// The `[[backends]]` name (status and metrics show it).
    pub name: String,
    pub members: Vec<Member>,
    pub balance: Balance,
    pub health_check: Option<HealthCheck>,
    pub ejection: Ejection,
    pub circuit_breaker: Option<CircuitBreaker>,
    /// How often members' host names are resolved again.
    pub resolve_interval: Duration,
}

/// What a pooled `[[backends]]` entry adds to a plain one.
pub(super) struct PoolSections<'a> {
    pub name: &'a str,
    pub members: &'a [MemberSection],
    pub balance: Option<&'a str>,
    pub health_check: Option<&'a HealthCheckSection>,
    pub ejection: Option<&'a EjectionSection>,
    pub circuit_breaker: Option<&'a CircuitBreakerSection>,
    pub resolve_interval_ms: Option<u64>,
}

/// The scheme and path every member shares, and the pool.
pub(super) struct Parsed {
    pub scheme: String,
    pub base_path: String,
    pub spec: Arc<PoolSpec>,
}

const MAX_MEMBERS: usize = 64;

impl PoolSections<'_> {
    /// Validates the members and settings; messages name the field and the fix.
    pub fn parse(&self) -> Result<Parsed, String> {
        if self.members.is_empty() {
            return Err(
                "members is empty; list at least one { url = \"http://HOST:PORT\" }".into(),
            );
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(format!(
                "members: {} members, at most {MAX_MEMBERS} are allowed",
                self.members.len()
            ));
        }
        let mut members = Vec::with_capacity(self.members.len());
        let mut shared: Option<(String, String)> = None;
        for (i, m) in self.members.iter().enumerate() {
            let at = |msg: String| format!("members[{i}]: {msg}");
            let uri: Uri = m.url.parse().map_err(|_| {
                at(format!(
                    "url \"{}\" is not a URL such as \"http://127.0.0.1:9000\"",
                    m.url
                ))
            })?;
            let scheme = uri.scheme_str().unwrap_or_default().to_string();
            if scheme != "http" && scheme != "https" {
                return Err(at(format!(
                    "url \"{}\": only http:// and https:// members are supported",
                    m.url
                )));
            }
            let authority = uri
                .authority()
                .ok_or_else(|| at(format!("url \"{}\" has no host", m.url)))?;
            if uri.query().is_some() {
                return Err(at(format!(
                    "url \"{}\" must not have a query string",
                    m.url
                )));
            }
            let path = uri.path().trim_end_matches('/').to_string();
            match &shared {
                None => shared = Some((scheme, path)),
                Some((s, p)) if *s != scheme || *p != path => {
                    return Err(at(format!(
                        "url \"{}\" differs in scheme or path from the first member (\"{s}://...{p}\"); members differ only in host and port",
                        m.url
                    )));
                }
                Some(_) => {}
            }
            let weight = m.weight.unwrap_or(1);
            if !(1..=1000).contains(&weight) {
                return Err(at(format!(
                    "weight {weight} is out of range; use 1 to 1000"
                )));
            }
            let priority = m.priority.unwrap_or(1);
            if !(1..=100).contains(&priority) {
                return Err(at(format!(
                    "priority {priority} is out of range; use 1 (first) to 100"
                )));
            }
            let authority = authority.to_string();
            if members.iter().any(|o: &Member| o.authority == authority) {
                return Err(at(format!(
                    "\"{authority}\" is listed twice; list each member once and give it a weight"
                )));
            }
            members.push(Member {
                authority,
                weight,
                priority,
            });
        }
        // Stable: the written order stays within a group.
        members.sort_by_key(|m| m.priority);
        let balance = match self.balance {
            None | Some("round-robin") => Balance::RoundRobin,
            Some("least-requests") => Balance::LeastRequests,
            Some(other) => {
                return Err(format!(
                    "balance \"{other}\" is unknown; use \"round-robin\" or \"least-requests\""
                ));
            }
        };
        let health_check = self.health_check.map(health_check).transpose()?;
        let ejection = ejection(self.ejection)?;
        let circuit_breaker = self.circuit_breaker.map(breaker).transpose()?;
        let resolve_interval = millis(
            "resolve_interval_ms",
            self.resolve_interval_ms,
            30_000,
            86_400_000,
        )?;
        let (scheme, base_path) = shared.expect("one member at least");
        Ok(Parsed {
            scheme,
            base_path,
            spec: Arc::new(PoolSpec {
                name: self.name.to_string(),
                members,
                balance,
                health_check,
                ejection,
                circuit_breaker,
                resolve_interval,
            }),
        })
    }
}

fn millis(field: &str, v: Option<u64>, default: u64, max: u64) -> Result<Duration, String> {
    match v.unwrap_or(default) {
        v if v == 0 || v > max => Err(format!(
            "{field} = {v} is out of range; use 1 to {max} milliseconds"
        )),
        v => Ok(Duration::from_millis(v)),
    }
}

fn count(field: &str, v: Option<u32>, default: u32) -> Result<u32, String> {
    match v.unwrap_or(default) {
        v if v == 0 || v > 1000 => Err(format!("{field} = {v} is out of range; use 1 to 1000")),
        v => Ok(v),
    }
}

fn health_check(h: &HealthCheckSection) -> Result<HealthCheck, String> {
    let at = |m: String| format!("health_check.{m}");
    if !h.path.starts_with('/') || !h.path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(at(format!(
            "path \"{}\" must start with '/' and have no spaces or control characters",
            h.path
        )));
    }
    let statuses = match &h.statuses {
        None => vec![StatusRange { min: 200, max: 299 }],
        Some(list) => ranges("health_check.statuses", list)?,
    };
    let interval = millis("health_check.interval_ms", h.interval_ms, 5_000, 3_600_000)?;
    let timeout = millis("health_check.timeout_ms", h.timeout_ms, 2_000, 60_000)?;
    if timeout > interval {
        return Err(at(format!(
            "timeout_ms ({}) is longer than interval_ms ({}); make the timeout shorter",
            timeout.as_millis(),
            interval.as_millis()
        )));
    }
    Ok(HealthCheck {
        path: h.path.clone(),
        statuses,
        interval,
        timeout,
        healthy_threshold: count("health_check.healthy_threshold", h.healthy_threshold, 2)?,
        unhealthy_threshold: count("health_check.unhealthy_threshold", h.unhealthy_threshold, 2)?,
    })
}

fn ejection(e: Option<&EjectionSection>) -> Result<Ejection, String> {
    let consecutive_failures = e.and_then(|e| e.consecutive_failures).unwrap_or(5);
    if consecutive_failures > 1000 {
        return Err(format!(
            "ejection.consecutive_failures = {consecutive_failures} is out of range; use 0 (off) to 1000"
        ));
    }
    let base = millis(
        "ejection.base_ms",
        e.and_then(|e| e.base_ms),
        10_000,
        3_600_000,
    )?;
    let max = millis(
        "ejection.max_ms",
        e.and_then(|e| e.max_ms),
        300_000,
        86_400_000,
    )?;
    if max < base {
        return Err("ejection.max_ms is shorter than ejection.base_ms; raise max_ms".into());
    }
    Ok(Ejection {
        consecutive_failures,
        base,
        max,
    })
}

fn breaker(c: &CircuitBreakerSection) -> Result<CircuitBreaker, String> {
    if c.failure_count == 0 || c.failure_count > 1_000_000 {
        return Err(format!(
            "circuit_breaker.failure_count = {} is out of range; use 1 to 1000000",
            c.failure_count
        ));
    }
    if c.interval_secs == 0 || c.interval_secs > 86_400 {
        return Err(format!(
            "circuit_breaker.interval_secs = {} is out of range; use 1 to 86400",
            c.interval_secs
        ));
    }
    if c.trip_duration_secs == 0 || c.trip_duration_secs > 86_400 {
        return Err(format!(
            "circuit_breaker.trip_duration_secs = {} is out of range; use 1 to 86400",
            c.trip_duration_secs
        ));
    }
    let statuses = match &c.status_code_ranges {
        None => vec![StatusRange { min: 500, max: 599 }],
        Some(list) => ranges("circuit_breaker.status_code_ranges", list)?,
    };
    Ok(CircuitBreaker {
        failure_count: c.failure_count,
        interval: Duration::from_secs(c.interval_secs),
        statuses,
        trip_duration: Duration::from_secs(c.trip_duration_secs),
        accept_retry_after: c.accept_retry_after.unwrap_or(false),
    })
}

/// "500-599" or "429" → ranges of statuses 100-599.
fn ranges(field: &str, list: &[String]) -> Result<Vec<StatusRange>, String> {
    if list.is_empty() {
        return Err(format!(
            "{field} is empty; list statuses such as \"500-599\""
        ));
    }
    list.iter()
        .map(|text| {
            let bad = || {
                format!(
                    "{field}: \"{text}\" is not a status or range such as \"500-599\" (100 to 599)"
                )
            };
            let (min, max) = text.split_once('-').unwrap_or((text, text));
            let parse = |s: &str| {
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|v| (100..=599).contains(v))
            };
            match (parse(min), parse(max)) {
                (Some(min), Some(max)) if min <= max => Ok(StatusRange { min, max }),
                _ => Err(bad()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(url: &str, weight: Option<u32>, priority: Option<u32>) -> MemberSection {
        MemberSection {
            url: url.into(),
            weight,
            priority,
        }
    }

    fn parse(members: &[MemberSection], balance: Option<&str>) -> Result<Parsed, String> {
        PoolSections {
            name: "p",
            members,
            balance,
            health_check: None,
            ejection: None,
            circuit_breaker: None,
            resolve_interval_ms: None,
        }
        .parse()
    }

    #[test]
    fn members_sorted_by_priority_with_defaults() {
        let p = parse(
            &[
                member("http://b:2/api", Some(3), Some(2)),
                member("http://a:1/api/", None, None),
            ],
            None,
        )
        .unwrap();
        assert_eq!(p.base_path, "/api");
        let s = &p.spec;
        assert_eq!(s.members[0].authority, "a:1");
        assert_eq!((s.members[0].weight, s.members[0].priority), (1, 1));
        assert_eq!((s.members[1].weight, s.members[1].priority), (3, 2));
        assert_eq!(s.balance, Balance::RoundRobin);
        assert_eq!(s.ejection.consecutive_failures, 5);
    }

    #[test]
    fn refusals_name_the_field_and_the_fix() {
        let cases: [(Vec<MemberSection>, Option<&str>, &str); 6] = [
            (vec![], None, "members is empty"),
            (
                vec![member("http://a:1", Some(0), None)],
                None,
                "members[0]: weight 0 is out of range; use 1 to 1000",
            ),
            (
                vec![member("http://a:1", Some(1001), None)],
                None,
                "weight 1001 is out of range",
            ),
            (
                vec![
                    member("http://a:1", None, None),
                    member("https://b:1", None, None),
                ],
                None,
                "members[1]: url \"https://b:1\" differs in scheme or path",
            ),
            (
                vec![
                    member("http://a:1", None, None),
                    member("http://a:1", None, None),
                ],
                None,
                "listed twice",
            ),
            (
                vec![member("http://a:1", None, None)],
                Some("random"),
                "balance \"random\" is unknown; use \"round-robin\" or \"least-requests\"",
            ),
        ];
        for (members, balance, want) in cases {
            let err = parse(&members, balance).err().unwrap();
            assert!(err.contains(want), "{err:?} lacks {want:?}");
        }
    }

    #[test]
    fn status_ranges_and_breaker_settings() {
        assert_eq!(
            ranges("f", &["500-599".into(), "429".into()]).unwrap(),
            vec![
                StatusRange { min: 500, max: 599 },
                StatusRange { min: 429, max: 429 }
            ]
        );
        for bad in ["600", "599-500", "5xx", ""] {
            assert!(
                ranges("f", &[bad.into()])
                    .unwrap_err()
                    .contains("is not a status")
            );
        }
        let c = CircuitBreakerSection {
            failure_count: 0,
            interval_secs: 10,
            status_code_ranges: None,
            trip_duration_secs: 5,
            accept_retry_after: None,
        };
        assert!(
            breaker(&c)
                .unwrap_err()
                .contains("failure_count = 0 is out of range")
        );
        let h = HealthCheckSection {
            path: "/h".into(),
            statuses: None,
            interval_ms: Some(100),
            timeout_ms: Some(500),
            healthy_threshold: None,
            unhealthy_threshold: None,
        };
        assert!(
            health_check(&h)
                .unwrap_err()
                .contains("timeout_ms (500) is longer than interval_ms (100)")
        );
    }
}
