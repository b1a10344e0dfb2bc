//! Classification of IP addresses a tool must not dial when
//! `block_private_ips` is on. Checked on the address actually dialed, after
//! DNS, so rebinding and redirects cannot reach these ranges.
//!
//! ```ignore
//! let r = classify("::ffff:127.0.0.1".parse().unwrap()).unwrap();
//! assert_eq!(r.name, "loopback");
//! assert_eq!(r.to_string(), "loopback 127.0.0.0/8 (embedded in ipv4-mapped ::ffff:0.0.0.0/96)");
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The range a non-public address fell in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrivateRange {
    /// Stable short name, e.g. `loopback`, `private`, `link-local`.
    pub name: &'static str,
    /// The CIDR the (possibly unwrapped) address fell in.
    pub net: IpNet,
    /// Set when the address was an IPv6 form carrying an IPv4 address.
    pub embedded: Option<Embedding>,
}

/// How an IPv4 address was carried inside an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedding {
    /// Stable short name of the form, e.g. `ipv4-mapped`, `6to4`, `nat64`.
    pub form: &'static str,
    /// The IPv6 prefix of that form.
    pub net: Ipv6Net,
    /// The unwrapped IPv4 address.
    pub ipv4: Ipv4Addr,
}

impl fmt::Display for PrivateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.net)?;
        if let Some(e) = &self.embedded {
            write!(f, " (embedded in {} {})", e.form, e.net)?;
        }
        Ok(())
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// IPv4 ranges, most specific first (broadcast sits inside reserved).
const V4: &[(&str, Ipv4Net)] = &[
    ("broadcast", v4(255, 255, 255, 255, 32)),
    ("this-network", v4(0, 0, 0, 0, 8)),
    ("private", v4(10, 0, 0, 0, 8)),
    ("cgnat", v4(100, 64, 0, 0, 10)),
    ("loopback", v4(127, 0, 0, 0, 8)),
    ("link-local", v4(169, 254, 0, 0, 16)),
    ("private", v4(172, 16, 0, 0, 12)),
    ("ietf-protocol", v4(192, 0, 0, 0, 24)),
    ("documentation", v4(192, 0, 2, 0, 24)),
    ("private", v4(192, 168, 0, 0, 16)),
    ("benchmarking", v4(198, 18, 0, 0, 15)),
    ("documentation", v4(198, 51, 100, 0, 24)),
    ("documentation", v4(203, 0, 113, 0, 24)),
    ("multicast", v4(224, 0, 0, 0, 4)),
    ("reserved", v4(240, 0, 0, 0, 4)),
];

/// IPv6 ranges that are non-public in themselves.
const V6: &[(&str, Ipv6Net)] = &[
    ("unspecified", v6([0, 0, 0, 0, 0, 0, 0, 0], 128)),
    ("loopback", v6([0, 0, 0, 0, 0, 0, 0, 1], 128)),
    ("discard", v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64)),
    ("documentation", v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32)),
    ("unique-local", v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)),
    ("link-local", v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10)),
    ("site-local", v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10)),
    ("multicast", v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8)),
];

const MAPPED: Ipv6Net = v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96);
const TRANSLATED: Ipv6Net = v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96);
const COMPAT: Ipv6Net = v6([0, 0, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const NAT64_LOCAL: Ipv6Net = v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48);
const TEREDO: Ipv6Net = v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32);

/// Returns the non-public range `ip` falls in, or `None` for a public
/// address. IPv4 carried in IPv6 (mapped, compatible, 6to4, NAT64, Teredo)
/// is unwrapped and checked as IPv4.
///
/// ```ignore
/// assert!(classify("8.8.8.8".parse().unwrap()).is_none());
/// assert_eq!(classify("169.254.169.254".parse().unwrap()).unwrap().name, "link-local");
/// ```
pub fn classify(ip: IpAddr) -> Option<PrivateRange> {
    match ip {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<PrivateRange> {
    V4.iter()
        .find(|(_, net)| net.contains(&ip))
        .map(|&(name, net)| PrivateRange {
            name,
            net: net.into(),
            embedded: None,
        })
}

fn classify_v6(ip: Ipv6Addr) -> Option<PrivateRange> {
    // Own ranges first: `::` and `::1` sit inside the compatible /96.
    if let Some(&(name, net)) = V6.iter().find(|(_, net)| net.contains(&ip)) {
        return Some(PrivateRange {
            name,
            net: net.into(),
            embedded: None,
        });
    }
    let (form, net, ipv4) = embedded_v4(ip)?;
    let mut range = classify_v4(ipv4);
    // A local-use NAT64 prefix reaches an operator-local translator: never public.
    if range.is_none() && form == "nat64-local" {
        range = Some(PrivateRange {
            name: "nat64-local",
            net: net.into(),
            embedded: None,
        });
        return range;
    }
    range.map(|r| PrivateRange {
        embedded: Some(Embedding { form, net, ipv4 }),
        ..r
    })
}

/// The IPv4 address an IPv6 address carries, with the form's name and prefix.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<(&'static str, Ipv6Net, Ipv4Addr)> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    if MAPPED.contains(&ip) {
        return Some(("ipv4-mapped", MAPPED, low32));
    }
    if TRANSLATED.contains(&ip) {
        return Some(("ipv4-translated", TRANSLATED, low32));
    }
    if COMPAT.contains(&ip) {
        return Some(("ipv4-compatible", COMPAT, low32));
    }
    if SIX_TO_FOUR.contains(&ip) {
        return Some(("6to4", SIX_TO_FOUR, Ipv4Addr::from((bits >> 80) as u32)));
    }
    if NAT64.contains(&ip) {
        return Some(("nat64", NAT64, low32));
    }
    if NAT64_LOCAL.contains(&ip) {
        // Local-use prefix: assume the common /96 layout (IPv4 in the last 32 bits).
        return Some(("nat64-local", NAT64_LOCAL, low32));
    }
    if TEREDO.contains(&ip) {
        // The client's IPv4 is stored inverted in the last 32 bits.
        return Some(("teredo", TEREDO, Ipv4Addr::from(!(bits as u32))));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (address, expected "name cidr" or None for public, expected embedding form)
    const CASES: &[(&str, Option<&str>, Option<&str>)] = &[
        // IPv4 ranges, edges included.
        ("0.0.0.0", Some("this-network 0.0.0.0/8"), None),
        ("0.255.255.255", Some("this-network 0.0.0.0/8"), None),
        ("10.0.0.1", Some("private 10.0.0.0/8"), None),
        ("10.255.255.255", Some("private 10.0.0.0/8"), None),
        ("100.64.0.1", Some("cgnat 100.64.0.0/10"), None),
        ("100.127.255.255", Some("cgnat 100.64.0.0/10"), None),
        ("100.128.0.0", None, None),
        ("100.63.255.255", None, None),
        ("127.0.0.1", Some("loopback 127.0.0.0/8"), None),
        ("127.255.255.254", Some("loopback 127.0.0.0/8"), None),
        ("169.254.169.254", Some("link-local 169.254.0.0/16"), None),
        ("172.16.0.1", Some("private 172.16.0.0/12"), None),
        ("172.31.255.255", Some("private 172.16.0.0/12"), None),
        ("172.32.0.0", None, None),
        ("172.15.255.255", None, None),
        ("192.0.0.8", Some("ietf-protocol 192.0.0.0/24"), None),
        ("192.0.2.1", Some("documentation 192.0.2.0/24"), None),
        ("198.18.0.1", Some("benchmarking 198.18.0.0/15"), None),
        ("198.19.255.255", Some("benchmarking 198.18.0.0/15"), None),
        ("198.20.0.0", None, None),
        ("198.51.100.7", Some("documentation 198.51.100.0/24"), None),
        ("203.0.113.9", Some("documentation 203.0.113.0/24"), None),
        ("192.168.1.1", Some("private 192.168.0.0/16"), None),
        ("224.0.0.1", Some("multicast 224.0.0.0/4"), None),
        ("239.255.255.250", Some("multicast 224.0.0.0/4"), None),
        ("240.0.0.1", Some("reserved 240.0.0.0/4"), None),
        ("255.255.255.254", Some("reserved 240.0.0.0/4"), None),
        (
            "255.255.255.255",
            Some("broadcast 255.255.255.255/32"),
            None,
        ),
        // Public IPv4 must not be classified.
        ("8.8.8.8", None, None),
        ("1.1.1.1", None, None),
        ("93.184.216.34", None, None),
        ("192.0.1.255", None, None),
        ("192.169.0.1", None, None),
        ("223.255.255.255", None, None),
        // IPv6 ranges.
        ("::", Some("unspecified ::/128"), None),
        ("::1", Some("loopback ::1/128"), None),
        ("fc00::1", Some("unique-local fc00::/7"), None),
        ("fd12:3456::1", Some("unique-local fc00::/7"), None),
        ("fe80::1", Some("link-local fe80::/10"), None),
        ("febf::1", Some("link-local fe80::/10"), None),
        ("fec0::1", Some("site-local fec0::/10"), None),
        ("ff02::1", Some("multicast ff00::/8"), None),
        ("2001:db8::1", Some("documentation 2001:db8::/32"), None),
        ("100::1", Some("discard 100::/64"), None),
        // IPv4 embedded in IPv6: unwrapped and rechecked.
        (
            "::ffff:127.0.0.1",
            Some("loopback 127.0.0.0/8"),
            Some("ipv4-mapped"),
        ),
        (
            "::ffff:7f00:1",
            Some("loopback 127.0.0.0/8"),
            Some("ipv4-mapped"),
        ),
        (
            "::ffff:10.1.2.3",
            Some("private 10.0.0.0/8"),
            Some("ipv4-mapped"),
        ),
        (
            "::ffff:169.254.169.254",
            Some("link-local 169.254.0.0/16"),
            Some("ipv4-mapped"),
        ),
        (
            "::ffff:0:192.168.0.1",
            Some("private 192.168.0.0/16"),
            Some("ipv4-translated"),
        ),
        (
            "::127.0.0.1",
            Some("loopback 127.0.0.0/8"),
            Some("ipv4-compatible"),
        ),
        (
            "::10.0.0.1",
            Some("private 10.0.0.0/8"),
            Some("ipv4-compatible"),
        ),
        ("2002:7f00:1::", Some("loopback 127.0.0.0/8"), Some("6to4")),
        (
            "2002:a9fe:a9fe::1",
            Some("link-local 169.254.0.0/16"),
            Some("6to4"),
        ),
        (
            "2002:c0a8:101:1::1",
            Some("private 192.168.0.0/16"),
            Some("6to4"),
        ),
        (
            "64:ff9b::7f00:1",
            Some("loopback 127.0.0.0/8"),
            Some("nat64"),
        ),
        (
            "64:ff9b::a9fe:a9fe",
            Some("link-local 169.254.0.0/16"),
            Some("nat64"),
        ),
        (
            "64:ff9b::6440:1",
            Some("cgnat 100.64.0.0/10"),
            Some("nat64"),
        ),
        (
            "64:ff9b:1::7f00:1",
            Some("loopback 127.0.0.0/8"),
            Some("nat64-local"),
        ),
        (
            "64:ff9b:1::808:808",
            Some("nat64-local 64:ff9b:1::/48"),
            None,
        ),
        // Teredo: client 127.0.0.1 stored as !0x7f000001 = 0x80fffffe.
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            Some("loopback 127.0.0.0/8"),
            Some("teredo"),
        ),
        (
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            Some("private 10.0.0.0/8"),
            Some("teredo"),
        ),
        // Public IPv6 and public IPv4 inside IPv6 forms must not be classified.
        ("2606:4700:4700::1111", None, None),
        ("2001:4860:4860::8888", None, None),
        ("2002:0808:0808::", None, None),
        ("::ffff:8.8.8.8", None, None),
        ("64:ff9b::808:808", None, None),
        ("::1.1.1.1", None, None),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None, None),
        ("2001:db9::1", None, None),
        ("fbff::1", None, None),
    ];

    #[test]
    fn classification_table() {
        for &(addr, want, form) in CASES {
            let ip: IpAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
            let got = classify(ip);
            let got_s = got.map(|r| format!("{} {}", r.name, r.net));
            assert_eq!(got_s.as_deref(), want, "classify({addr})");
            let got_form = got.and_then(|r| r.embedded).map(|e| e.form);
            assert_eq!(got_form, form, "embedding form of {addr}");
        }
    }

    #[test]
    fn display_names_range_and_form() {
        let r = classify("::ffff:127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(
            r.to_string(),
            "loopback 127.0.0.0/8 (embedded in ipv4-mapped ::ffff:0.0.0.0/96)"
        );
        let r = classify("10.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(r.to_string(), "private 10.0.0.0/8");
    }
}
