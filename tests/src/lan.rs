//! A small Ethernet segment: a bridge in a namespace of its own, and one
//! veth from each member namespace to it, all in 10.210.0.0/24. Several
//! clients (a legitimate one and an attacker, say) then reach one gateway
//! interface, which is what an XDP program sees on a real LAN.

use crate::netns::{NetNs, sh, unique_name};

pub struct Lan {
    /// The switch namespace; deleting it deletes the bridge and every
    /// veth that has an end in it.
    pub switch: NetNs,
    bridge: String,
}

impl Lan {
    pub fn new() -> Lan {
        let switch = NetNs::new("sw");
        let bridge = unique_name("br");
        switch.exec(&["ip", "link", "add", &bridge, "type", "bridge"]);
        switch.exec(&["ip", "link", "set", &bridge, "up"]);
        Lan { switch, bridge }
    }

    /// Connects `ns` with address 10.210.0.`host`/24; returns the name of
    /// its interface inside `ns`.
    pub fn join(&self, ns: &NetNs, host: u8) -> String {
        let inner = unique_name("ln");
        let port = unique_name("lp");
        sh(
            "ip",
            &[
                "link",
                "add",
                &inner,
                "netns",
                &ns.name,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &self.switch.name,
            ],
        );
        self.switch
            .exec(&["ip", "link", "set", &port, "master", &self.bridge]);
        self.switch.exec(&["ip", "link", "set", &port, "up"]);
        let addr = format!("{}/24", Self::ip(host));
        ns.exec(&["ip", "addr", "add", &addr, "dev", &inner]);
        ns.exec(&["ip", "link", "set", &inner, "up"]);
        inner
    }

    pub fn ip(host: u8) -> String {
        format!("10.210.0.{host}")
    }
}

impl Default for Lan {
    fn default() -> Self {
        Self::new()
    }
}
