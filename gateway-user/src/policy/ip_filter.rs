//! `ip-filter`: allows only, or forbids, client addresses: single
//! addresses, CIDR ranges (`10.0.0.0/8`) and from-to ranges
//! (`10.0.0.1-10.0.0.9`). Addresses and CIDR ranges are parsed as the DoS
//! lists parse them (a range with host bits set is refused, not
//! truncated). A filtered client gets 403. With XDP attached,
//! a client XDP denies or has banned (and does not allow) gets 403 too,
//! whatever the policy's own list says.

use std::net::IpAddr;

use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_yaml::Value;

use super::{XdpState, respond::json_error};
use crate::{datapath::Cidr, proxy::ProxyBody};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// "allow" (only the listed addresses pass) or "forbid".
    action: String,
    /// Addresses, CIDR ranges and from-to ranges.
    addresses: Vec<String>,
}

#[derive(Debug)]
enum Range {
    Net(Cidr),
    FromTo(IpAddr, IpAddr),
}

impl Range {
    fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Range::Net(net) => net.contains(&match ip {
                IpAddr::V4(a) => Cidr::V4(a.octets(), 32),
                IpAddr::V6(a) => Cidr::V6(a.octets(), 128),
            }),
            Range::FromTo(a, b) => a.is_ipv4() == ip.is_ipv4() && *a <= ip && ip <= *b,
        }
    }
}

#[derive(Debug)]
pub struct IpFilter {
    allow: bool,
    ranges: Vec<Range>,
}

impl IpFilter {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        let allow = match f.action.as_str() {
            "allow" => true,
            "forbid" => false,
            other => {
                return Err(format!(
                    "action \"{other}\" is unknown; use allow or forbid"
                ));
            }
        };
        let ranges = f
            .addresses
            .iter()
            .map(|a| parse_range(a))
            .collect::<Result<_, _>>()?;
        Ok(IpFilter { allow, ranges })
    }

    pub fn check(&self, ip: IpAddr, xdp: Option<&XdpState>) -> Option<Response<ProxyBody>> {
        if xdp.is_some_and(|x| x.refuses(ip)) {
            return Some(json_error(
                StatusCode::FORBIDDEN,
                "Forbidden: the caller's IP address is denied or banned by the gateway",
            ));
        }
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let listed = self.ranges.iter().any(|r| r.contains(ip));
        (listed != self.allow).then(|| {
            json_error(
                StatusCode::FORBIDDEN,
                "Forbidden: the caller's IP address is not allowed",
            )
        })
    }
}

fn parse_range(text: &str) -> Result<Range, String> {
    let bad = || {
        format!(
            "\"{text}\" is not an address, a CIDR range (10.0.0.0/8) or a range (10.0.0.1-10.0.0.9)"
        )
    };
    if let Some((a, b)) = text.split_once('-') {
        let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let b: IpAddr = b.trim().parse().map_err(|_| bad())?;
        if a.is_ipv4() != b.is_ipv4() || a > b {
            return Err(bad());
        }
        return Ok(Range::FromTo(a, b));
    }
    let addr = text.split_once('/').map_or(text, |(addr, _)| addr);
    if addr.parse::<IpAddr>().is_err() {
        return Err(bad());
    }
    text.parse::<Cidr>().map(Range::Net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(args: &str) -> IpFilter {
        IpFilter::parse(serde_yaml::from_str(args).unwrap()).unwrap()
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

    #[test]
    fn rejects_bad_entries() {
        for bad in [
            "{action: deny, addresses: []}",
            "{action: allow, addresses: [10.0.0.300]}",
            "{action: allow, addresses: [10.0.0.9-10.0.0.1]}",
            "{action: allow, addresses: [10.0.0.0/33]}",
            "{action: allow, addresses: [banana/8]}",
        ] {
            assert!(
                IpFilter::parse(serde_yaml::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    /// Host bits are refused with the DoS lists' message (one parser).
    #[test]
    fn host_bits_are_refused_as_the_dos_lists_refuse_them() {
        for (entry, fixed) in [
            ("10.0.0.1/8", "10.0.0.0/8"),
            ("192.168.1.130/25", "192.168.1.128/25"),
            ("2001:db8::1/32", "2001:db8::/32"),
        ] {
            let args = format!("{{action: forbid, addresses: ['{entry}']}}");
            let err = IpFilter::parse(serde_yaml::from_str(&args).unwrap()).unwrap_err();
            assert_eq!(err, entry.parse::<Cidr>().unwrap_err());
            assert!(err.contains(&format!("did you mean \"{fixed}\"")), "{err}");
        }
    }
}
