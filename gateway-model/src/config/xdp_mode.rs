//! `[xdp] mode`: how the XDP program is attached.

use std::str::FromStr;

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the NIC driver: fastest; needs driver support.
    Native,
    /// Generic (skb) mode: works on any interface, including `lo`.
    Skb,
    /// Do not attach XDP at all (proxy only).
    Off,
}

impl FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(XdpMode::Native),
            "skb" => Ok(XdpMode::Skb),
            "off" => Ok(XdpMode::Off),
            other => Err(format!(
                "unknown XDP mode \"{other}\"; use native, skb or off"
            )),
        }
    }
}

impl std::fmt::Display for XdpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            XdpMode::Native => "native",
            XdpMode::Skb => "skb",
            XdpMode::Off => "off",
        })
    }
}
