//! CIDR blocks for the allow, deny and ban tries.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

/// An address block; host bits are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cidr {
    V4([u8; 4], u8),
    V6([u8; 16], u8),
}

impl Cidr {
    pub fn prefix_len(&self) -> u8 {
        match self {
            Cidr::V4(_, p) | Cidr::V6(_, p) => *p,
        }
    }

    /// True if every address of `other` is in `self`.
    pub fn contains(&self, other: &Cidr) -> bool {
        match (*self, *other) {
            (Cidr::V4(a, p), Cidr::V4(b, q)) => p <= q && mask(b, p) == a,
            (Cidr::V6(a, p), Cidr::V6(b, q)) => p <= q && mask(b, p) == a,
            _ => false,
        }
    }
}

/// Zeroes every bit after the first `prefix` bits.
pub fn mask<const N: usize>(mut bytes: [u8; N], prefix: u8) -> [u8; N] {
    for (i, b) in bytes.iter_mut().enumerate() {
        let keep = (prefix as usize).saturating_sub(i * 8).min(8);
        *b &= (0xff_u16 << (8 - keep)) as u8;
    }
    bytes
}

impl FromStr for Cidr {
    type Err = String;

    /// "10.0.0.0/8", "2001:db8::/32", or a bare address (a single host).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("\"{s}\" is not a CIDR such as \"192.0.2.0/24\" or \"2001:db8::/32\"")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("\"{s}\": prefix length must be 0 to {max}"))?,
        };
        let cidr = match addr {
            IpAddr::V4(a) => Cidr::V4(mask(a.octets(), prefix), prefix),
            IpAddr::V6(a) => Cidr::V6(mask(a.octets(), prefix), prefix),
        };
        let exact = match (addr, cidr) {
            (IpAddr::V4(a), Cidr::V4(m, _)) => a.octets() == m,
            (IpAddr::V6(a), Cidr::V6(m, _)) => a.octets() == m,
            _ => unreachable!(),
        };
        if !exact {
            return Err(format!(
                "\"{s}\" has host bits set; did you mean \"{cidr}\"?"
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cidr::V4(a, p) => write!(f, "{}/{p}", Ipv4Addr::from(*a)),
            Cidr::V6(a, p) => write!(f, "{}/{p}", Ipv6Addr::from(*a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks_and_hosts() {
        assert_eq!("10.0.0.0/8".parse(), Ok(Cidr::V4([10, 0, 0, 0], 8)));
        assert_eq!("192.0.2.7".parse(), Ok(Cidr::V4([192, 0, 2, 7], 32)));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert_eq!(v6.to_string(), "2001:db8::/32");
        assert_eq!("::/0".parse::<Cidr>().unwrap().prefix_len(), 0);
        let wide: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(wide.contains(&"10.1.0.0/16".parse().unwrap()));
        assert!(wide.contains(&wide));
        assert!(!wide.contains(&"11.0.0.0/16".parse().unwrap()));
        assert!(!wide.contains(&"0.0.0.0/0".parse().unwrap()));
        assert!(!wide.contains(&v6));
    }

    #[test]
    fn rejects_with_one_line_naming_the_input() {
        for (bad, want) in [
            ("10.0.0.1/8", "did you mean \"10.0.0.0/8\""),
            ("10.0.0.0/33", "0 to 32"),
            ("2001:db8::/129", "0 to 128"),
            ("banana", "not a CIDR"),
            ("10.0.0.0/", "prefix length"),
        ] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert!(err.contains(want) && err.contains(bad), "{bad}: {err}");
        }
    }
}
