//! `ip-filter`: allows only, or forbids, client addresses: single
//! addresses, CIDR ranges (`10.0.0.0/8`) and from-to ranges
//! (`10.0.0.1-10.0.0.9`). Addresses and CIDR ranges are parsed as the DoS
//! lists parse them (a range with host bits set is refused, not
//! truncated).

use std::net::IpAddr;

use serde::Deserialize;
use serde_yaml::Value;

use crate::cidr::Cidr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// "allow" (only the listed addresses pass) or "forbid".
    action: String,
    /// Addresses, CIDR ranges and from-to ranges.
    addresses: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Range {
    Net(Cidr),
    FromTo(IpAddr, IpAddr),
}

impl Range {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Range::Net(net) => net.contains(&match ip {
                IpAddr::V4(a) => Cidr::V4(a.octets(), 32),
                IpAddr::V6(a) => Cidr::V6(a.octets(), 128),
            }),
            Range::FromTo(a, b) => a.is_ipv4() == ip.is_ipv4() && *a <= ip && ip <= *b,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpFilterSpec {
    /// True: only the listed addresses pass; false: they are refused.
    pub allow: bool,
    pub ranges: Vec<Range>,
}

impl IpFilterSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
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
        Ok(IpFilterSpec { allow, ranges })
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

    fn parse(args: &str) -> Result<IpFilterSpec, String> {
        IpFilterSpec::parse(serde_yaml::from_str(args).unwrap())
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
            assert!(parse(bad).is_err(), "{bad}");
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
            let err = parse(&format!("{{action: forbid, addresses: ['{entry}']}}")).unwrap_err();
            assert_eq!(err, entry.parse::<Cidr>().unwrap_err());
            assert!(err.contains(&format!("did you mean \"{fixed}\"")), "{err}");
        }
    }
}
