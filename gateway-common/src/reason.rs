//! Verdict reasons: every packet the XDP program sees is counted under exactly
//! one of these. The discriminant is the index into the `COUNTERS` map.

/// Why the XDP program passed or dropped a packet.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Passed to the kernel stack (including non-IP frames and fail-open).
    Passed = 0,
    /// Truncated or inconsistent headers.
    Malformed = 1,
    /// Source matched the deny list.
    Denied = 2,
    /// Source is under a temporary ban.
    Banned = 3,
    /// Per-source packet token bucket exhausted.
    RateLimited = 4,
    /// Per-source new-connection (SYN) token bucket exhausted.
    SynRateLimited = 5,
    /// Destination port is not a protected port and the policy drops it.
    PortFiltered = 6,
    /// Invalid TCP flag combination.
    BadTcpFlags = 7,
    /// IP fragment dropped by the fragment policy.
    Fragment = 8,
    /// A frame the parser cannot see into (more VLAN tags than it walks, an
    /// encapsulation it does not parse, an IPv6 extension chain longer than
    /// it follows), dropped while anything is enforced: it could carry any
    /// source to the stack. See `unparsed` in the program's `verdict`.
    Unparsed = 9,
}

impl Reason {
    /// Every reason, in counter-index order.
    pub const ALL: [Reason; 10] = [
        Reason::Passed,
        Reason::Malformed,
        Reason::Denied,
        Reason::Banned,
        Reason::RateLimited,
        Reason::SynRateLimited,
        Reason::PortFiltered,
        Reason::BadTcpFlags,
        Reason::Fragment,
        Reason::Unparsed,
    ];

    /// The snake_case name used in CLI output, JSON and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Passed => "passed",
            Reason::Malformed => "malformed",
            Reason::Denied => "denied",
            Reason::Banned => "banned",
            Reason::RateLimited => "rate_limited",
            Reason::SynRateLimited => "syn_rate_limited",
            Reason::PortFiltered => "port_filtered",
            Reason::BadTcpFlags => "bad_tcp_flags",
            Reason::Fragment => "fragment",
            Reason::Unparsed => "unparsed",
        }
    }

    /// True for verdicts that let the packet through.
    pub const fn is_pass(self) -> bool {
        matches!(self, Reason::Passed)
    }
}
