//! `allowed_network_hosts` entries: parsing, matching and coverage.
//!
//! An entry is `[scheme://]host[:port]`:
//! - `host`: `example.com` (that name only), `*.example.com` (any subdomain,
//!   at any depth, but not `example.com` itself), an IPv4/IPv6 literal, or a
//!   CIDR (`10.0.0.0/8`, `2001:db8::/32`). IPv6 with a port needs brackets:
//!   `[::1]:8080`, `[2001:db8::/32]:443`.
//! - `scheme`: `http://` or `https://` limits wasi:http requests to that
//!   scheme. No scheme means both. Raw sockets cannot see the protocol, so
//!   for them a scheme only selects the default port.
//! - `port`: none means the scheme's default port (80 for http, 443 for
//!   https; both without a scheme), `:8443` one port, `:8000-8999` a range,
//!   `:*` any port.
//!
//! Matching is case-insensitive and ignores one trailing dot.
//!
//! ```ignore
//! let rules = HostRules::parse(&["*.example.com".into(), "https://api.x.io:8443".into()]).unwrap();
//! assert!(rules.check_url("https", "a.example.com", 443).is_ok());
//! assert!(rules.check_url("https", "example.com", 443).is_err()); // apex not included
//! assert!(rules.check_url("http", "api.x.io", 8443).is_err()); // https only
//! ```

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::{ErrorKind, Problem};

/// A URL scheme wasi:http requests may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    /// `http`, default port 80.
    Http,
    /// `https`, default port 443.
    Https,
}

impl Scheme {
    /// Parses `http` / `https`, case-insensitively.
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

const BOTH: &[Scheme] = &[Scheme::Http, Scheme::Https];

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// Exactly this name (lowercase, no trailing dot).
    Name(String),
    /// Strict subdomains of this name (`*.name`).
    Subdomains(String),
    /// An IP literal (a full-length prefix) or a CIDR.
    Net(IpNet),
}

/// The port part of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMatch {
    /// No port written: the scheme's default port.
    Default,
    /// `:N`, or `:A-B` inclusive.
    Range(u16, u16),
    /// `:*`.
    Any,
}

/// One parsed `allowed_network_hosts` entry. Displays in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// `None` = http and https.
    pub scheme: Option<Scheme>,
    /// Which hosts.
    pub host: HostMatch,
    /// Which ports.
    pub port: PortMatch,
}

/// A name or an address to check, as found in a URL or a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Name(String),
    Ip(IpAddr),
}

fn bad(problem: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem::new(ErrorKind::Malformed, problem, fix)
}

impl HostPattern {
    /// Parses one entry. Errors say what to write instead.
    pub fn parse(entry: &str) -> Result<HostPattern, Problem> {
        if entry.is_empty() {
            return Err(bad(
                "empty host pattern",
                "write a host such as `api.example.com`, or remove the entry",
            ));
        }
        if !entry.is_ascii() {
            return Err(bad(
                "non-ASCII host name",
                "write the name in its punycode (`xn--`) form",
            ));
        }
        if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("whitespace in host pattern", "remove the spaces"));
        }
        let lower = entry.to_ascii_lowercase();
        let (scheme, rest) = match lower.split_once("://") {
            Some((s, rest)) => match Scheme::parse(s) {
                Some(s) => (Some(s), rest),
                None => {
                    return Err(bad(
                        format!("unsupported scheme `{s}://`"),
                        "use `http://`, `https://`, or no scheme",
                    ))
                }
            },
            None => (None, lower.as_str()),
        };
        if rest.contains('@') {
            return Err(bad(
                "host pattern has user info (`user@`)",
                "remove everything up to and including `@`",
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(bad(
                "host pattern has a query or fragment",
                "write only `host[:port]`",
            ));
        }
        let (host, port) = split_host_port(rest)?;
        let bracketed = rest.starts_with('[');
        let host = parse_host(host)?;
        if bracketed && !matches!(host, HostMatch::Net(IpNet::V6(_))) {
            return Err(bad(
                "brackets hold only IPv6 addresses",
                "write names and IPv4 without `[]`",
            ));
        }
        let port = match port {
            None => PortMatch::Default,
            Some(p) => parse_port(p)?,
        };
        Ok(HostPattern { scheme, host, port })
    }

    /// The schemes this entry allows.
    pub fn schemes(&self) -> &'static [Scheme] {
        match self.scheme {
            Some(Scheme::Http) => &[Scheme::Http],
            Some(Scheme::Https) => &[Scheme::Https],
            None => BOTH,
        }
    }

    /// Inclusive port range allowed under `scheme`.
    fn ports(&self, scheme: Scheme) -> (u16, u16) {
        match self.port {
            PortMatch::Default => (scheme.default_port(), scheme.default_port()),
            PortMatch::Range(a, b) => (a, b),
            PortMatch::Any => (0, u16::MAX),
        }
    }

    /// True for IP literal and CIDR entries.
    pub fn is_ip(&self) -> bool {
        matches!(self.host, HostMatch::Net(_))
    }

    fn allows_port(&self, scheme: Scheme, port: u16) -> bool {
        let (a, b) = self.ports(scheme);
        self.schemes().contains(&scheme) && (a..=b).contains(&port)
    }

    /// For raw sockets: the port is allowed under any of the entry's schemes.
    fn allows_socket_port(&self, port: u16) -> bool {
        self.schemes().iter().any(|&s| self.allows_port(s, port))
    }

    fn matches(&self, target: &Target) -> bool {
        match (&self.host, target) {
            (HostMatch::Name(n), Target::Name(t)) => n == t,
            (HostMatch::Subdomains(d), Target::Name(t)) => is_subdomain(t, d),
            (HostMatch::Net(net), Target::Ip(ip)) => net.contains(ip),
            _ => false,
        }
    }

    fn covers_host(&self, other: &HostMatch) -> bool {
        match (&self.host, other) {
            (HostMatch::Name(a), HostMatch::Name(b)) => a == b,
            (HostMatch::Subdomains(d), HostMatch::Name(n)) => is_subdomain(n, d),
            (HostMatch::Subdomains(d), HostMatch::Subdomains(e)) => e == d || is_subdomain(e, d),
            (HostMatch::Net(a), HostMatch::Net(b)) => a.contains(b),
            _ => false,
        }
    }

    /// True when every (scheme, host, port) `other` allows, `self` allows too.
    ///
    /// ```ignore
    /// let wide = HostPattern::parse("*.example.com:*").unwrap();
    /// assert!(wide.covers(&HostPattern::parse("https://a.example.com").unwrap()));
    /// ```
    pub fn covers(&self, other: &HostPattern) -> bool {
        self.covers_host(&other.host)
            && other
                .schemes()
                .iter()
                .all(|&s| self.covers_scheme(other, s))
    }

    fn covers_scheme(&self, other: &HostPattern, s: Scheme) -> bool {
        let (a, b) = self.ports(s);
        let (c, d) = other.ports(s);
        self.schemes().contains(&s) && a <= c && d <= b
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.scheme {
            write!(f, "{}://", s.as_str())?;
        }
        let host = match &self.host {
            HostMatch::Name(n) => n.clone(),
            HostMatch::Subdomains(d) => format!("*.{d}"),
            HostMatch::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                net.addr().to_string()
            }
            HostMatch::Net(net) => net.to_string(),
        };
        let v6 = matches!(self.host, HostMatch::Net(IpNet::V6(_)));
        match self.port {
            PortMatch::Default => f.write_str(&host),
            _ if v6 => write!(f, "[{host}]:{}", PortDisplay(self.port)),
            _ => write!(f, "{host}:{}", PortDisplay(self.port)),
        }
    }
}

struct PortDisplay(PortMatch);

impl fmt::Display for PortDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            PortMatch::Default => Ok(()),
            PortMatch::Any => f.write_str("*"),
            PortMatch::Range(a, b) if a == b => write!(f, "{a}"),
            PortMatch::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

fn is_subdomain(name: &str, domain: &str) -> bool {
    name.len() > domain.len() + 1
        && name.ends_with(domain)
        && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
}

/// Splits `host[:port]`, `[v6]:port`, or a bare IPv6 literal/CIDR.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), Problem> {
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(bad(
                "unclosed `[`",
                "write an IPv6 address as `[::1]` or `[::1]:8080`",
            ));
        };
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(p))),
                None => Err(bad(
                    format!("unexpected `{after}` after `]`"),
                    "write `[addr]:port`",
                )),
            },
        };
    }
    if rest.matches(':').count() > 1 {
        // Bare IPv6: no port possible without brackets.
        return Ok((rest, None));
    }
    Ok(match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    })
}

fn parse_port(p: &str) -> Result<PortMatch, Problem> {
    if p.contains('/') {
        return Err(bad(
            "host pattern has a path",
            "remove everything from the first `/`",
        ));
    }
    if p == "*" {
        return Ok(PortMatch::Any);
    }
    let one = |s: &str| -> Result<u16, Problem> {
        match s.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(
                format!("invalid port `{s}`"),
                "write a port from 1 to 65535, a range `8000-8999`, or `*` for any port",
            )),
            Ok(n) => Ok(n),
        }
    };
    match p.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(bad(
                    format!("port range {a}-{b} is backwards"),
                    format!("write {b}-{a}"),
                ));
            }
            Ok(PortMatch::Range(a, b))
        }
        None => one(p).map(|n| PortMatch::Range(n, n)),
    }
}

fn parse_host(host: &str) -> Result<HostMatch, Problem> {
    if let Some((addr, len)) = host.split_once('/') {
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return Err(bad(
                "host pattern has a path",
                "remove everything from the first `/`",
            ));
        };
        if len.contains(':') {
            return Err(bad(
                "IPv6 CIDR with a port needs brackets",
                format!("write `[{addr}/{}]`", len.replace(':', "]:")),
            ));
        }
        let net = len
            .parse::<u8>()
            .ok()
            .and_then(|l| IpNet::new(ip, l).ok())
            .ok_or_else(|| {
                bad(
                    format!("invalid prefix length `/{len}`"),
                    "write a CIDR such as `10.0.0.0/8`",
                )
            })?;
        if net.trunc() != net {
            return Err(bad(
                format!("CIDR `{host}` has host bits set"),
                format!("write `{}`", net.trunc()),
            ));
        }
        return Ok(HostMatch::Net(net));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostMatch::Net(IpNet::from(ip)));
    }
    if host.contains(':') {
        return Err(bad(
            "invalid IPv6 address",
            "write an IPv6 address as `[::1]` or `[::1]:8080`",
        ));
    }
    if host == "*" {
        return Err(bad(
            "`*` would allow every host",
            "list the hosts the tool needs, e.g. `api.example.com` or `*.example.com`",
        ));
    }
    if let Some(domain) = host.strip_prefix("*.") {
        return Ok(HostMatch::Subdomains(parse_name(domain)?));
    }
    if host.contains('*') {
        return Err(bad(
            "`*` is allowed only as the whole first label",
            "write `*.example.com` (any subdomain) or list the names",
        ));
    }
    Ok(HostMatch::Name(parse_name(host)?))
}

fn parse_name(name: &str) -> Result<String, Problem> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(bad(
            "empty host name",
            "write a host such as `api.example.com`",
        ));
    }
    if name.len() > 253 {
        return Err(bad(
            "host name longer than 253 characters",
            "check the name",
        ));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad(
                format!("invalid label `{label}` in `{name}`"),
                "labels are 1 to 63 characters, separated by single dots",
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                format!("invalid character in `{label}`"),
                "a host pattern is `[http(s)://]host[:port]`: letters, digits, `-`, `.` only",
            ));
        }
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) {
        // Resolvers read `127.1` or `2130706433` as IPv4: refuse the ambiguity.
        return Err(bad(
            format!("`{name}` looks like an IP address but is not one"),
            "write the address in full dotted form, e.g. `127.0.0.1`",
        ));
    }
    Ok(name.to_string())
}

fn parse_target(host: &str) -> Option<Target> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(Target::Ip(ip));
    }
    let h = h.strip_suffix('.').unwrap_or(h);
    (!h.is_empty() && h.is_ascii() && !h.contains(['/', ':', '@', '*']))
        .then(|| Target::Name(h.to_ascii_lowercase()))
}

/// Why a network use was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostDenial {
    /// No entries at all.
    NoNetwork,
    /// The host (or scheme) is not a plain host we can check.
    Malformed(String),
    /// No entry names the host.
    NotListed(String),
    /// An entry names the host, but not with this scheme.
    Scheme { scheme: String, rule: String },
    /// An entry names the host, but not this port.
    Port { port: u16, rule: String },
}

impl fmt::Display for HostDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostDenial::NoNetwork => f.write_str("no allowed_network_hosts granted"),
            HostDenial::Malformed(h) => write!(f, "malformed host or scheme `{h}`"),
            HostDenial::NotListed(h) => write!(f, "`{h}` matches no allowed_network_hosts entry"),
            HostDenial::Scheme { scheme, rule } => {
                write!(f, "scheme {scheme} not allowed by `{rule}`")
            }
            HostDenial::Port { port, rule } => write!(f, "port {port} not allowed by `{rule}`"),
        }
    }
}

/// The parsed `allowed_network_hosts` list. Empty = no network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRules {
    patterns: Vec<HostPattern>,
}

impl HostRules {
    /// Parses every entry; the error carries the failing index.
    pub fn parse(entries: &[String]) -> Result<HostRules, (usize, Problem)> {
        let patterns = entries
            .iter()
            .enumerate()
            .map(|(i, e)| HostPattern::parse(e).map_err(|p| (i, p)))
            .collect::<Result<_, _>>()?;
        Ok(HostRules { patterns })
    }

    /// Builds rules from already-parsed patterns.
    pub fn from_patterns(patterns: Vec<HostPattern>) -> HostRules {
        HostRules { patterns }
    }

    /// The entries, in order.
    pub fn patterns(&self) -> &[HostPattern] {
        &self.patterns
    }

    /// True when no network is granted.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// wasi:http check of one request: the first entry allowing scheme, host
    /// and port, or why none does. `host` may be a name or an IP literal
    /// (IPv6 with or without brackets).
    pub fn check_url(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<&HostPattern, HostDenial> {
        if self.is_empty() {
            return Err(HostDenial::NoNetwork);
        }
        let (Some(s), Some(target)) = (Scheme::parse(scheme), parse_target(host)) else {
            return Err(HostDenial::Malformed(format!("{scheme}://{host}")));
        };
        let mut named = self
            .patterns
            .iter()
            .filter(|p| p.matches(&target))
            .peekable();
        let Some(first) = named.peek().copied() else {
            return Err(HostDenial::NotListed(host.to_string()));
        };
        if let Some(p) = named.clone().find(|p| p.allows_port(s, port)) {
            return Ok(p);
        }
        match named.find(|p| p.schemes().contains(&s)) {
            Some(p) => Err(HostDenial::Port {
                port,
                rule: p.to_string(),
            }),
            None => Err(HostDenial::Scheme {
                scheme: s.as_str().into(),
                rule: first.to_string(),
            }),
        }
    }

    /// Name lookup: allowed when some entry names `name` on any port.
    pub fn allows_name(&self, name: &str) -> Option<&HostPattern> {
        let target = parse_target(name)?;
        self.patterns.iter().find(|p| p.matches(&target))
    }

    /// Raw-socket connect to an address an allowed `name` resolved to.
    pub fn allows_name_port(&self, name: &str, port: u16) -> Option<&HostPattern> {
        let target = parse_target(name)?;
        self.patterns
            .iter()
            .find(|p| p.matches(&target) && p.allows_socket_port(port))
    }

    /// Raw-socket connect to a literal address: IP and CIDR entries only.
    pub fn allows_ip(&self, ip: IpAddr, port: u16) -> Option<&HostPattern> {
        let target = Target::Ip(ip);
        self.patterns
            .iter()
            .find(|p| p.matches(&target) && p.allows_socket_port(port))
    }

    /// True when, for each scheme `other` allows, one entry here covers it.
    pub fn covers(&self, other: &HostPattern) -> bool {
        other.schemes().iter().all(|&s| {
            self.patterns
                .iter()
                .any(|p| p.covers_host(&other.host) && p.covers_scheme(other, s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (entry, Ok(canonical form) or Err(substring of the problem))
    const PARSE: &[(&str, Result<&str, &str>)] = &[
        ("example.com", Ok("example.com")),
        ("Example.COM.", Ok("example.com")),
        ("*.example.com", Ok("*.example.com")),
        ("*.com", Ok("*.com")),
        ("example.com:8443", Ok("example.com:8443")),
        ("example.com:*", Ok("example.com:*")),
        ("example.com:8000-8999", Ok("example.com:8000-8999")),
        ("https://example.com", Ok("https://example.com")),
        ("HTTP://example.com:8080", Ok("http://example.com:8080")),
        ("_srv.example.com", Ok("_srv.example.com")),
        ("xn--bcher-kva.example", Ok("xn--bcher-kva.example")),
        ("127.0.0.1", Ok("127.0.0.1")),
        ("93.184.216.34:443", Ok("93.184.216.34:443")),
        ("::1", Ok("::1")),
        ("[::1]", Ok("::1")),
        ("[::1]:8080", Ok("[::1]:8080")),
        ("[2001:db8::1]:*", Ok("[2001:db8::1]:*")),
        ("10.0.0.0/8", Ok("10.0.0.0/8")),
        ("10.0.0.0/8:5432", Ok("10.0.0.0/8:5432")),
        ("2001:db8::/32", Ok("2001:db8::/32")),
        ("[2001:db8::/32]:443", Ok("[2001:db8::/32]:443")),
        ("https://[::1]:8443", Ok("https://[::1]:8443")),
        ("", Err("empty host pattern")),
        ("*", Err("every host")),
        ("*:443", Err("every host")),
        ("foo.*.com", Err("whole first label")),
        ("*example.com", Err("whole first label")),
        ("example.com/path", Err("has a path")),
        ("https://example.com/", Err("has a path")),
        ("example.com:443/x", Err("has a path")),
        ("user@example.com", Err("user info")),
        ("https://u:p@example.com", Err("user info")),
        ("ftp://example.com", Err("unsupported scheme")),
        ("example.com?x=1", Err("query")),
        ("bücher.example", Err("punycode")),
        ("exa mple.com", Err("whitespace")),
        ("example..com", Err("invalid label")),
        (".example.com", Err("invalid label")),
        ("example.com:0", Err("invalid port")),
        ("example.com:65536", Err("invalid port")),
        ("example.com:", Err("invalid port")),
        ("example.com:http", Err("invalid port")),
        ("example.com:9000-8000", Err("backwards")),
        ("ex!ample.com", Err("invalid character")),
        ("127.1", Err("looks like an IP")),
        ("2130706433", Err("looks like an IP")),
        ("10.0.0.1/8", Err("host bits set")),
        ("10.0.0.0/33", Err("prefix length")),
        ("2001:db8::1/32", Err("host bits set")),
        ("[::1", Err("unclosed")),
        ("[::1]x", Err("after `]`")),
        ("[example.com]:80", Err("only IPv6")),
        ("[127.0.0.1]:80", Err("only IPv6")),
        ("2001:db8::/32:443", Err("needs brackets")),
        ("1:2:3", Err("invalid IPv6")),
    ];

    #[test]
    fn parse_table() {
        for &(entry, want) in PARSE {
            let got = HostPattern::parse(entry).map(|p| p.to_string());
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "parse({entry:?})"),
                (Err(g), Err(w)) => assert!(
                    g.to_string().contains(w),
                    "parse({entry:?}): {g} lacks {w:?}"
                ),
                (g, w) => panic!("parse({entry:?}) = {g:?}, want {w:?}"),
            }
        }
    }

    /// (rules, scheme, host, port, Ok(matching rule) or Err(denial text))
    type UrlCase = (
        &'static [&'static str],
        &'static str,
        &'static str,
        u16,
        Result<&'static str, &'static str>,
    );
    const URLS: &[UrlCase] = &[
        (
            &["example.com"],
            "https",
            "example.com",
            443,
            Ok("example.com"),
        ),
        (
            &["example.com"],
            "http",
            "example.com",
            80,
            Ok("example.com"),
        ),
        (
            &["example.com"],
            "https",
            "EXAMPLE.com.",
            443,
            Ok("example.com"),
        ),
        (
            &["example.com"],
            "https",
            "example.com",
            80,
            Err("port 80 not allowed by `example.com`"),
        ),
        (
            &["example.com"],
            "http",
            "example.com",
            443,
            Err("port 443"),
        ),
        (
            &["example.com"],
            "https",
            "www.example.com",
            443,
            Err("matches no"),
        ),
        (
            &["example.com"],
            "https",
            "example.com.evil.io",
            443,
            Err("matches no"),
        ),
        (&["example.com"], "ftp", "example.com", 21, Err("malformed")),
        (
            &["*.example.com"],
            "https",
            "a.example.com",
            443,
            Ok("*.example.com"),
        ),
        (
            &["*.example.com"],
            "https",
            "a.b.example.com",
            443,
            Ok("*.example.com"),
        ),
        (
            &["*.example.com"],
            "https",
            "example.com",
            443,
            Err("matches no"),
        ),
        (
            &["*.example.com"],
            "https",
            "badexample.com",
            443,
            Err("matches no"),
        ),
        (
            &["example.com:8443"],
            "https",
            "example.com",
            8443,
            Ok("example.com:8443"),
        ),
        (
            &["example.com:8443"],
            "http",
            "example.com",
            8443,
            Ok("example.com:8443"),
        ),
        (
            &["example.com:8443"],
            "https",
            "example.com",
            443,
            Err("port 443"),
        ),
        (
            &["example.com:*"],
            "http",
            "example.com",
            1,
            Ok("example.com:*"),
        ),
        (
            &["example.com:8000-8999"],
            "http",
            "example.com",
            8999,
            Ok("example.com:8000-8999"),
        ),
        (
            &["example.com:8000-8999"],
            "http",
            "example.com",
            9000,
            Err("port 9000"),
        ),
        (
            &["https://example.com"],
            "https",
            "example.com",
            443,
            Ok("https://example.com"),
        ),
        (
            &["https://example.com"],
            "http",
            "example.com",
            80,
            Err("scheme http not allowed by `https://example.com`"),
        ),
        (
            &["http://example.com", "https://example.com:*"],
            "https",
            "example.com",
            8443,
            Ok("https://example.com:*"),
        ),
        (
            &["10.0.0.0/8:*"],
            "http",
            "10.1.2.3",
            8080,
            Ok("10.0.0.0/8:*"),
        ),
        (&["10.0.0.0/8"], "http", "11.0.0.1", 80, Err("matches no")),
        (&["[::1]:8080"], "http", "[::1]", 8080, Ok("[::1]:8080")),
        (&["[::1]:8080"], "http", "::1", 8080, Ok("[::1]:8080")),
        (
            &["2001:db8::/32"],
            "https",
            "[2001:db8::5]",
            443,
            Ok("2001:db8::/32"),
        ),
        (&["127.0.0.1"], "http", "localhost", 80, Err("matches no")),
        (&["localhost"], "http", "127.0.0.1", 80, Err("matches no")),
        (
            &[],
            "https",
            "example.com",
            443,
            Err("no allowed_network_hosts"),
        ),
    ];

    #[test]
    fn check_url_table() {
        for &(rules, scheme, host, port, want) in URLS {
            let rules =
                HostRules::parse(&rules.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
            let got = rules
                .check_url(scheme, host, port)
                .map(|p| p.to_string())
                .map_err(|d| d.to_string());
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{scheme}://{host}:{port}"),
                (Err(g), Err(w)) => {
                    assert!(g.contains(w), "{scheme}://{host}:{port}: {g} lacks {w:?}")
                }
                _ => panic!("{scheme}://{host}:{port} = {got:?}, want {want:?}"),
            }
        }
    }

    /// (rules, name, port (None = lookup), allowed)
    const SOCKETS: &[(&[&str], &str, Option<u16>, bool)] = &[
        (&["example.com"], "example.com", None, true),
        (&["example.com:5432"], "example.com", None, true),
        (&["example.com"], "other.com", None, false),
        (&["*.example.com"], "db.example.com", Some(443), true),
        (&["example.com"], "example.com", Some(80), true),
        (&["example.com"], "example.com", Some(22), false),
        (&["https://example.com"], "example.com", Some(443), true),
        (&["https://example.com"], "example.com", Some(80), false),
        (&["example.com:*"], "example.com", Some(22), true),
    ];

    #[test]
    fn socket_name_table() {
        for &(rules, name, port, want) in SOCKETS {
            let rules =
                HostRules::parse(&rules.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
            let got = match port {
                None => rules.allows_name(name).is_some(),
                Some(p) => rules.allows_name_port(name, p).is_some(),
            };
            assert_eq!(got, want, "{rules:?} {name} {port:?}");
        }
    }

    /// (rules, ip, port, allowed) — only literal/CIDR entries admit an IP.
    const IPS: &[(&[&str], &str, u16, bool)] = &[
        (&["10.0.0.0/8:5432"], "10.9.9.9", 5432, true),
        (&["10.0.0.0/8:5432"], "10.9.9.9", 5433, false),
        (&["93.184.216.34"], "93.184.216.34", 443, true),
        (&["93.184.216.34"], "93.184.216.34", 22, false),
        (&["example.com:*"], "93.184.216.34", 443, false),
        (&["[::1]:*"], "::1", 9, true),
        (&["2001:db8::/32:*"], "2001:db8::1", 9, false),
        (&["[2001:db8::/32]:*"], "2001:db8::1", 9, true),
        (&["10.0.0.0/8:*"], "::ffff:10.0.0.1", 80, false),
    ];

    #[test]
    fn allows_ip_table() {
        for &(rules, ip, port, want) in IPS {
            let parsed = HostRules::parse(&rules.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            let Ok(parsed) = parsed else {
                assert!(!want, "{rules:?} should parse");
                continue;
            };
            assert_eq!(
                parsed.allows_ip(ip.parse().unwrap(), port).is_some(),
                want,
                "{rules:?} {ip}:{port}"
            );
        }
    }

    /// (ceiling entries, tool entry, covered)
    const COVERS: &[(&[&str], &str, bool)] = &[
        (&["example.com"], "example.com", true),
        (&["example.com"], "https://example.com", true),
        (&["https://example.com"], "example.com", false),
        (
            &["http://example.com", "https://example.com"],
            "example.com",
            true,
        ),
        (&["example.com"], "example.com:8443", false),
        (&["example.com:*"], "example.com:8443", true),
        (&["example.com:*"], "https://example.com", true),
        (&["example.com:8000-9000"], "example.com:8443", true),
        (&["example.com:8000-9000"], "example.com:8000-9001", false),
        (&["*.example.com"], "a.example.com", true),
        (&["*.example.com"], "*.a.example.com", true),
        (&["*.example.com"], "*.example.com", true),
        (&["*.example.com"], "example.com", false),
        (&["example.com"], "*.example.com", false),
        (&["*.com"], "api.example.com", true),
        (&["10.0.0.0/8"], "10.1.0.0/16", true),
        (&["10.0.0.0/8"], "10.1.2.3", true),
        (&["10.0.0.0/16"], "10.0.0.0/8", false),
        (&["10.0.0.0/8"], "example.com", false),
        (&["::/0"], "::1", true),
        (&["0.0.0.0/0"], "::1", false),
    ];

    #[test]
    fn covers_table() {
        for &(ceiling, tool, want) in COVERS {
            let rules =
                HostRules::parse(&ceiling.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            let tool_p = HostPattern::parse(tool).unwrap();
            assert_eq!(rules.covers(&tool_p), want, "{ceiling:?} covers {tool}");
        }
    }
}
