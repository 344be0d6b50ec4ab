//! `ip-filter`: allows only, or forbids, client addresses: single
//! addresses, CIDR ranges (`10.0.0.0/8`) and from-to ranges
//! (`10.0.0.1-10.0.0.9`). Addresses and CIDR ranges are parsed as the DoS
//! lists parse them (a range with host bits set is refused, not
//! truncated; see `gateway_model::policy::ip_filter`). A filtered client gets 403. With XDP attached,
//! a client XDP denies or has banned (and does not allow) gets 403 too,
//! whatever the policy's own list says.

use std::net::IpAddr;

use gateway_model::policy::ip_filter::IpFilterSpec;
use hyper::StatusCode;

use super::{
    XdpState,
    respond::{Answer, refusal},
};

#[derive(Debug)]
pub struct IpFilter(IpFilterSpec);

impl IpFilter {
    pub fn new(spec: &IpFilterSpec) -> Self {
        IpFilter(spec.clone())
    }

    pub fn check(&self, ip: IpAddr, xdp: Option<&XdpState>) -> Option<Answer> {
        if xdp.is_some_and(|x| x.refuses(ip)) {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                "Forbidden: the caller's IP address is denied or banned by the gateway",
            ));
        }
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let listed = self.0.ranges.iter().any(|r| r.contains(ip));
        (listed != self.0.allow).then(|| {
            refusal(
                StatusCode::FORBIDDEN,
                "Forbidden: the caller's IP address is not allowed",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(args: &str) -> IpFilter {
        IpFilter::new(&IpFilterSpec::parse(serde_yaml::from_str(args).unwrap()).unwrap())
    }

    fn blocked(f: &IpFilter, ip: &str) -> bool {
        f.check(ip.parse().unwrap(), None).is_some()
    }

    #[test]
    fn allow_and_forbid_lists() {
        let allow =
            filter("{action: allow, addresses: [10.0.0.0/8, 192.168.1.5, 172.16.0.1-172.16.0.9]}");
        assert!(!blocked(&allow, "10.1.2.3"));
        assert!(!blocked(&allow, "192.168.1.5"));
        assert!(!blocked(&allow, "172.16.0.9"));
        assert!(!blocked(&allow, "::ffff:10.0.0.1"));
        assert!(blocked(&allow, "172.16.0.10"));
        assert!(blocked(&allow, "8.8.8.8"));
        let forbid = filter("{action: forbid, addresses: ['2001:db8::/32']}");
        assert!(blocked(&forbid, "2001:db8::1"));
        assert!(!blocked(&forbid, "127.0.0.1"));
    }
}
