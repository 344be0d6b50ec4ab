//! Active health checks: every `interval`, a `GET path` to each member on a
//! new connection of its own (`Connection: close`), never a pooled one, so
//! that a member restarted on the same address is judged by what it
//! answers now and not by a connection to its previous process. The task
//! belongs to the pool's state, which reloads carry over (see
//! `state_registry`): it lives exactly as long as the pool is in use.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::member::Member;
use crate::{config::pool::HealthCheck, proxy::h1_client::Dialer};

/// Checks a member forever (the pool aborts it when the member leaves or
/// the pool is dropped).
pub async fn run(pool: Arc<str>, member: Arc<Member>, check: HealthCheck, dialer: Dialer) {
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = probe(&member, &dialer, &check).await;
        judge(&pool, &member, &check, result);
    }
}

/// One check: Ok(status) or why it failed.
async fn probe(member: &Member, dialer: &Dialer, check: &HealthCheck) -> Result<u16, String> {
    let exchange = async {
        let mut stream = dialer.dial().await.map_err(|e| e.to_string())?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: edgegw-health-check\r\nConnection: close\r\n\r\n",
            check.path, member.authority
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        while !head.contains(&b'\n') && head.len() < 4096 {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        status_of(&head).ok_or_else(|| "no HTTP status line in the answer".to_string())
    };
    match tokio::time::timeout(check.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", check.timeout.as_millis())),
    }
}

fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let mut words = line.split(|&b| b == b' ');
    if !words.next()?.starts_with(b"HTTP/1.") {
        return None;
    }
    std::str::from_utf8(words.next()?).ok()?.parse().ok()
}

/// Updates the member's streak and health from one result.
fn judge(pool: &str, m: &Member, check: &HealthCheck, result: Result<u16, String>) {
    let passed = match &result {
        Ok(status) => check.statuses.iter().any(|r| r.contains(*status)),
        Err(_) => false,
    };
    let streak = m.check_streak.load(Ordering::Relaxed);
    let streak = match (passed, streak) {
        (true, s) if s > 0 => s.saturating_add(1),
        (true, _) => 1,
        (false, s) if s < 0 => s.saturating_sub(1),
        (false, _) => -1,
    };
    m.check_streak.store(streak, Ordering::Relaxed);
    let healthy = m.healthy.load(Ordering::Relaxed);
    if !healthy && streak >= check.healthy_threshold as i32 {
        m.restored();
        tracing::info!(backend = pool, member = %m.authority, address = %m.address, "pool member passed its health checks: back in service");
    } else if healthy && -streak >= check.unhealthy_threshold as i32 {
        m.healthy.store(false, Ordering::Relaxed);
        let why = match result {
            Ok(status) => format!("status {status}"),
            Err(e) => e,
        };
        tracing::warn!(backend = pool, member = %m.authority, address = %m.address, reason = %why, "pool member failed its health checks: out of service");
    }
}

/// How long until an unhealthy member could be back (for `Retry-After`).
pub fn back_in(check: Option<&HealthCheck>) -> Duration {
    check.map_or(Duration::from_secs(1), |c| c.interval * c.healthy_threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pool::StatusRange;

    #[test]
    fn thresholds_take_a_member_out_and_bring_it_back() {
        let m = crate::proxy::pool::member::tests::member();
        let check = HealthCheck {
            path: "/h".into(),
            statuses: vec![StatusRange { min: 200, max: 299 }],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
        };
        judge("p", &m, &check, Err("refused".into()));
        assert!(
            m.healthy.load(Ordering::Relaxed),
            "one failure is not enough"
        );
        judge("p", &m, &check, Ok(503));
        assert!(!m.healthy.load(Ordering::Relaxed));
        judge("p", &m, &check, Ok(200));
        assert!(!m.healthy.load(Ordering::Relaxed));
        judge("p", &m, &check, Ok(204));
        assert!(m.healthy.load(Ordering::Relaxed));
        assert_eq!(status_of(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_of(b"SSH-2.0\r\n"), None);
    }
}
