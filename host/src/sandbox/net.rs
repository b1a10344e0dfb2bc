//! `wasi:sockets`, guarded.
//!
//! Name lookups are answered only for names `allowed_network_hosts`
//! matches, and private answers are dropped under `block_private_ips`. A
//! connect is let through only to an address an allowed name resolved to in
//! this call (on a port the name's rule allows), or to an allowed IP literal
//! or CIDR, and never to a private address when they are blocked; the check
//! runs on the address actually dialed, so DNS rebinding gains nothing.
//! Bind/listen and UDP need their own grants. Every refusal is a denial:
//! the peer of a TCP connect, a UDP connect and each datagram is checked
//! here before wasmtime-wasi's own validity checks, which would otherwise
//! refuse unspecified, multicast, broadcast and IPv4-mapped peers unseen.

use super::denials::{Denial, Denials};
use crate::policy::{DenialKind, EffectivePolicy, ViolationAction};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{self, HostResolveAddressStream, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::{tcp, udp};
use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};
use wasmtime_wasi::WasiCtxBuilder;

/// Per-call network state shared by the lookup wrapper and the address
/// check: which allowed name each resolved address came from.
#[derive(Clone)]
pub struct NetGuard {
    policy: Arc<EffectivePolicy>,
    denials: Denials,
    resolved: Arc<Mutex<HashMap<IpAddr, String>>>,
    /// Lookup stream → the name being resolved.
    streams: Arc<Mutex<HashMap<u32, String>>>,
    /// Outgoing datagram stream → its socket's address family.
    families: Arc<Mutex<HashMap<u32, IpAddressFamily>>>,
}

impl NetGuard {
    pub fn new(policy: Arc<EffectivePolicy>, denials: Denials) -> Self {
        NetGuard { policy, denials, resolved: Arc::default(), streams: Arc::default(), families: Arc::default() }
    }

    fn record(&self, op: &str, target: String, rule: String, action: ViolationAction) {
        self.denials.record(Denial::new(DenialKind::Net, op, target, rule, action));
    }

    /// Network refusals honour `log` mode; a private address never does.
    fn refuse(&self, op: &str, target: String, rule: String) -> bool {
        let action = self.policy.violation_action.for_kind(DenialKind::Net);
        self.record(op, target, rule, action);
        action == ViolationAction::Log
    }

    /// The decision for one socket address use; `true` lets it through.
    pub fn check(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let p = &self.policy;
        let ip = addr.ip();
        match usage {
            // The implicit bind before a connect or send: wildcard, port 0.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind if ip.is_unspecified() && addr.port() == 0 => {
                matches!(usage, SocketAddrUse::TcpBind) || p.allow_udp || self.refuse("bind", addr.to_string(), "allow_udp = false".into())
            }
            SocketAddrUse::TcpBind | SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => {
                p.allow_listen || self.refuse("listen", addr.to_string(), "allow_listen = false".into())
            }
            SocketAddrUse::UdpBind => p.allow_listen && p.allow_udp || self.refuse("bind", addr.to_string(), "allow_listen = false".into()),
            SocketAddrUse::UdpSend if !p.allow_udp => self.refuse("send", addr.to_string(), "allow_udp = false".into()),
            // Datagrams from anyone but an allowed peer are dropped unseen.
            SocketAddrUse::UdpReceive => p.allow_udp && self.peer_allowed(addr).is_ok(),
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => self.check_peer(addr),
        }
    }

    fn check_peer(&self, addr: SocketAddr) -> bool {
        match self.peer_allowed(addr) {
            Ok(()) => true,
            Err((rule, true)) => {
                self.record("connect", addr.to_string(), rule, ViolationAction::Deny);
                false
            }
            Err((rule, false)) => self.refuse("connect", addr.to_string(), rule),
        }
    }

    /// `Err((rule, private))`: why a peer is refused, and whether it is a
    /// private address (refused even in `log` mode).
    fn peer_allowed(&self, addr: SocketAddr) -> Result<(), (String, bool)> {
        let p = &self.policy;
        if let Some(range) = p.blocked_ip(addr.ip()) {
            return Err((format!("block_private_ips: {range}"), true));
        }
        if p.network.allows_ip(addr.ip(), addr.port()).is_some() {
            return Ok(());
        }
        let name = self.resolved.lock().unwrap_or_else(|e| e.into_inner()).get(&addr.ip()).cloned();
        let rule = match name {
            Some(name) if p.network.allows_name_port(&name, addr.port()).is_some() => return Ok(()),
            Some(name) => format!("port {} is not allowed for {name} by allowed_network_hosts", addr.port()),
            None if p.network.is_empty() => "allowed_network_hosts is empty".into(),
            None => "address is neither on allowed_network_hosts nor resolved from an allowed name in this call".into(),
        };
        Err((rule, false))
    }

    /// The host's decision on a peer a TCP connect, a UDP connect or a
    /// datagram names, made before wasmtime-wasi's own validity checks:
    /// those refuse an unspecified, multicast, broadcast, IPv4-mapped or
    /// port-0 peer with `invalid-argument` before any policy check runs,
    /// so without this the attempt would leave no denial row. A refusal is
    /// recorded (naming the private range or the rule) and its error
    /// returned; `None` lets wasmtime-wasi go on, and its address check
    /// records what `log` mode lets through.
    fn precheck_peer(&self, op: &str, peer: SocketAddr, family: IpAddressFamily, tcp: bool) -> Option<ErrorCode> {
        match self.peer_allowed(peer) {
            Ok(()) => {}
            Err((rule, true)) => {
                self.record(op, peer.to_string(), rule, ViolationAction::Deny);
                return Some(ErrorCode::AccessDenied);
            }
            Err((rule, false)) => {
                if self.policy.violation_action.for_kind(DenialKind::Net) == ViolationAction::Deny {
                    self.record(op, peer.to_string(), rule, ViolationAction::Deny);
                    return Some(ErrorCode::AccessDenied);
                }
            }
        }
        let why = invalid_peer(peer, family, tcp)?;
        self.record(op, peer.to_string(), format!("invalid peer address: {why}"), ViolationAction::Deny);
        Some(ErrorCode::InvalidArgument)
    }

    /// A bind that wasmtime-wasi would refuse as `invalid-argument` before
    /// its address check (multicast or broadcast for TCP, an IPv4-mapped or
    /// wrong-family address): the policy's decision on it is recorded as
    /// for any bind, then the invalid address. `None` lets wasmtime-wasi
    /// go on (its own check then runs, and records, as usual).
    fn precheck_bind(&self, local: SocketAddr, family: IpAddressFamily, tcp: bool) -> Option<ErrorCode> {
        let why = invalid_local(local, family, tcp)?;
        let usage = if tcp { SocketAddrUse::TcpBind } else { SocketAddrUse::UdpBind };
        if !self.check(local, usage) {
            return Some(ErrorCode::AccessDenied);
        }
        self.record("bind", local.to_string(), format!("invalid local address: {why}"), ViolationAction::Deny);
        Some(ErrorCode::InvalidArgument)
    }

    /// Whether `name` may be looked up.
    fn check_lookup(&self, name: &str) -> bool {
        if self.policy.network.allows_name(name).is_some() {
            return true;
        }
        let rule = if self.policy.network.is_empty() {
            "allowed_network_hosts is empty".to_string()
        } else {
            "name is not on allowed_network_hosts".to_string()
        };
        self.refuse("lookup", name.to_string(), rule)
    }

    /// Vets one answer of a lookup of `name`: a private address is dropped
    /// (and recorded); others are remembered for the connect check.
    fn admit_answer(&self, name: &str, ip: IpAddr) -> bool {
        if let Some(range) = self.policy.blocked_ip(ip) {
            self.record("lookup", format!("{name} -> {ip}"), format!("block_private_ips: {range}"), ViolationAction::Deny);
            return false;
        }
        self.resolved.lock().unwrap_or_else(|e| e.into_inner()).insert(ip, name.to_string());
        true
    }
}

/// Enables sockets with every use going through `guard`.
pub fn configure(b: &mut WasiCtxBuilder, guard: &NetGuard) {
    // Everything is enabled at the WASI level so that each attempt reaches
    // the checks below and is recorded, rather than failing unseen.
    b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true);
    let g = guard.clone();
    b.socket_addr_check(move |addr, usage| {
        let ok = g.check(addr, usage);
        Box::pin(async move { ok })
    });
}

/// The lookup view the guarded bindings see.
pub struct GuardedNet<'a> {
    inner: WasiSocketsCtxView<'a>,
    guard: &'a NetGuard,
}

impl<'a> GuardedNet<'a> {
    pub fn new(inner: WasiSocketsCtxView<'a>, guard: &'a NetGuard) -> Self {
        GuardedNet { inner, guard }
    }
}

/// Links the guarded `ip-name-lookup` and TCP connect over wasmtime-wasi's
/// own.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, getter: fn(&mut T) -> GuardedNet<'_>) -> wasmtime::Result<()> {
    struct Guarded;
    impl HasData for Guarded {
        type Data<'a> = GuardedNet<'a>;
    }
    linker.allow_shadowing(true);
    ip_name_lookup::add_to_linker::<T, Guarded>(linker, getter)?;
    // wasmtime-wasi refuses unspecified (`0.0.0.0`, `::`), multicast,
    // broadcast, IPv4-mapped and -compatible peers and port 0 with
    // `invalid-argument` before any address check runs; checking every
    // peer here first makes each such attempt a recorded denial that names
    // the range or the rule, like every other.
    linker.instance(TCP_INTERFACE)?.func_wrap(
        "[method]tcp-socket.start-connect",
        move |mut store, (sock, net, addr): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)| {
            let mut view = getter(store.data_mut());
            let peer = SocketAddr::from(addr);
            let family = tcp::HostTcpSocket::address_family(&mut view.inner, Resource::new_borrow(sock.rep()))?;
            if let Some(code) = view.guard.precheck_peer("connect", peer, family, true) {
                return Ok((Err(code),));
            }
            to_guest(tcp::HostTcpSocket::start_connect(&mut view.inner, sock, net, addr))
        },
    )?;
    linker.instance(TCP_INTERFACE)?.func_wrap_async(
        "[method]tcp-socket.start-bind",
        move |mut store, (sock, net, addr): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)| {
            Box::new(async move {
                let mut view = getter(store.data_mut());
                let family = tcp::HostTcpSocket::address_family(&mut view.inner, Resource::new_borrow(sock.rep()))?;
                if let Some(code) = view.guard.precheck_bind(SocketAddr::from(addr), family, true) {
                    return Ok((Err(code),));
                }
                to_guest(tcp::HostTcpSocket::start_bind(&mut view.inner, sock, net, addr).await)
            })
        },
    )?;
    let mut udp_linker = linker.instance(UDP_INTERFACE)?;
    udp_linker.func_wrap_async(
        "[method]udp-socket.start-bind",
        move |mut store, (sock, net, addr): (Resource<UdpSocket>, Resource<Network>, IpSocketAddress)| {
            Box::new(async move {
                let mut view = getter(store.data_mut());
                let family = udp::HostUdpSocket::address_family(&mut view.inner, Resource::new_borrow(sock.rep()))?;
                if let Some(code) = view.guard.precheck_bind(SocketAddr::from(addr), family, false) {
                    return Ok((Err(code),));
                }
                to_guest(udp::HostUdpSocket::start_bind(&mut view.inner, sock, net, addr).await)
            })
        },
    )?;
    // UDP "connect": the peer given to `stream`.
    udp_linker.func_wrap_async(
        "[method]udp-socket.stream",
        move |mut store, (sock, remote): (Resource<UdpSocket>, Option<IpSocketAddress>)| {
            Box::new(async move {
                let mut view = getter(store.data_mut());
                let family = udp::HostUdpSocket::address_family(&mut view.inner, Resource::new_borrow(sock.rep()))?;
                if let Some(addr) = remote {
                    if let Some(code) = view.guard.precheck_peer("connect", SocketAddr::from(addr), family, false) {
                        return Ok((Err(code),));
                    }
                }
                let streams = udp::HostUdpSocket::stream(&mut view.inner, sock, remote).await;
                if let Ok((_, outgoing)) = &streams {
                    view.guard.families.lock().unwrap_or_else(|e| e.into_inner()).insert(outgoing.rep(), family);
                }
                to_guest(streams)
            })
        },
    )?;
    // Datagrams naming their own peer: each is checked; the ones before a
    // refused datagram are sent (WIT: a partial send is not an error).
    udp_linker.func_wrap(
        "[method]outgoing-datagram-stream.send",
        move |mut store, (stream, mut datagrams): (Resource<udp::OutgoingDatagramStream>, Vec<udp::OutgoingDatagram>)| {
            let mut view = getter(store.data_mut());
            let family = view.guard.families.lock().unwrap_or_else(|e| e.into_inner()).get(&stream.rep()).copied();
            let refused = datagrams.iter().enumerate().find_map(|(i, d)| {
                let peer = SocketAddr::from(d.remote_address?);
                let natural = if peer.is_ipv4() { IpAddressFamily::Ipv4 } else { IpAddressFamily::Ipv6 };
                view.guard.precheck_peer("send", peer, family.unwrap_or(natural), false).map(|code| (i, code))
            });
            if let Some((i, code)) = refused {
                if i == 0 {
                    return Ok((Err(code),));
                }
                datagrams.truncate(i);
            }
            to_guest(udp::HostOutgoingDatagramStream::send(&mut view.inner, stream, datagrams))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The `wasi:sockets/tcp` and `udp` versions the linker defines (other
/// 0.2.x imports resolve to them by semver).
const TCP_INTERFACE: &str = "wasi:sockets/tcp@0.2.12";
const UDP_INTERFACE: &str = "wasi:sockets/udp@0.2.12";

/// Why wasmtime-wasi would refuse `peer` as a remote address with
/// `invalid-argument` (its `is_valid_remote_address`,
/// `is_valid_unicast_address` (TCP only) and `is_valid_address_family`).
fn invalid_peer(peer: SocketAddr, family: IpAddressFamily, tcp: bool) -> Option<&'static str> {
    let ip = peer.ip();
    if ip.to_canonical().is_unspecified() {
        return Some("unspecified address");
    }
    if peer.port() == 0 {
        return Some("port 0");
    }
    if tcp {
        if let Some(why) = not_unicast(ip) {
            return Some(why);
        }
    }
    invalid_family(ip, family)
}

/// Why wasmtime-wasi would refuse `local` as a bind address with
/// `invalid-argument` (TCP: not unicast; both: wrong family, IPv4-mapped).
fn invalid_local(local: SocketAddr, family: IpAddressFamily, tcp: bool) -> Option<&'static str> {
    if tcp {
        if let Some(why) = not_unicast(local.ip()) {
            return Some(why);
        }
    }
    invalid_family(local.ip(), family)
}

fn not_unicast(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.is_multicast() => Some("multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("broadcast address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("multicast address"),
        _ => None,
    }
}

fn invalid_family(ip: IpAddr, family: IpAddressFamily) -> Option<&'static str> {
    match (family, ip) {
        (IpAddressFamily::Ipv4, IpAddr::V4(_)) => None,
        (IpAddressFamily::Ipv6, IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            Some("IPv4-mapped IPv6 address (use the IPv4 address instead)")
        }
        (IpAddressFamily::Ipv6, IpAddr::V6(v6))
            if matches!(v6.segments(), [0, 0, 0, 0, 0, 0, _, _]) && !v6.is_loopback() && !v6.is_unspecified() =>
        {
            Some("deprecated IPv4-compatible IPv6 address")
        }
        (IpAddressFamily::Ipv6, IpAddr::V6(_)) => None,
        _ => Some("address family does not match the socket's"),
    }
}

impl network::Host for GuardedNet<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.inner, error)
    }

    fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.inner, err)
    }
}

impl network::HostNetwork for GuardedNet<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, this)
    }
}

impl ip_name_lookup::Host for GuardedNet<'_> {
    fn resolve_addresses(&mut self, network: Resource<Network>, name: String) -> Result<Resource<ResolveAddressStream>, SocketError> {
        if !self.guard.check_lookup(&name) {
            return Err(ErrorCode::PermanentResolverFailure.into());
        }
        let stream = ip_name_lookup::Host::resolve_addresses(&mut self.inner, network, name.clone())?;
        self.guard.streams.lock().unwrap_or_else(|e| e.into_inner()).insert(stream.rep(), name);
        Ok(stream)
    }
}

impl HostResolveAddressStream for GuardedNet<'_> {
    fn resolve_next_address(&mut self, resource: Resource<ResolveAddressStream>) -> Result<Option<IpAddress>, SocketError> {
        let name = self.guard.streams.lock().unwrap_or_else(|e| e.into_inner()).get(&resource.rep()).cloned().unwrap_or_default();
        loop {
            let r = Resource::new_borrow(resource.rep());
            match HostResolveAddressStream::resolve_next_address(&mut self.inner, r)? {
                Some(addr) => {
                    let ip = match addr {
                        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
                        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
                    };
                    if self.guard.admit_answer(&name, ip) {
                        return Ok(Some(addr));
                    }
                }
                None => return Ok(None),
            }
        }
    }

    fn subscribe(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.inner, resource)
    }

    fn drop(&mut self, resource: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.guard.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(&resource.rep());
        HostResolveAddressStream::drop(&mut self.inner, resource)
    }
}

// Socket creation: every socket is a host descriptor, so a tool without a
// network grant is refused the socket itself (not only its connects), and
// no call may take the process's last descriptors (see `fds`).

const TCP_CREATE_INTERFACE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const UDP_CREATE_INTERFACE: &str = "wasi:sockets/udp-create-socket@0.2.12";

impl NetGuard {
    /// Whether the policy lets the tool create a socket of this protocol;
    /// a refusal is recorded (and let through in `log` mode).
    fn may_create_socket(&self, udp: bool, family: network::IpAddressFamily) -> bool {
        let p = &self.policy;
        let family = match family {
            network::IpAddressFamily::Ipv4 => "ipv4",
            network::IpAddressFamily::Ipv6 => "ipv6",
        };
        if udp {
            p.allow_udp || self.refuse("create", format!("udp/{family} socket"), "allow_udp = false".into())
        } else {
            !p.network.is_empty()
                || p.allow_listen
                || self.refuse(
                    "create",
                    format!("tcp/{family} socket"),
                    "no network grant (allowed_network_hosts is empty and allow_listen = false)".into(),
                )
        }
    }
}

/// Links the guarded `create-tcp-socket` and `create-udp-socket` over
/// wasmtime-wasi's own.
pub fn add_create_socket_guards<T: Send + 'static>(
    linker: &mut Linker<T>,
    getter: fn(&mut T) -> GuardedNet<'_>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
    linker.allow_shadowing(true);
    linker.instance(TCP_CREATE_INTERFACE)?.func_wrap(
        "create-tcp-socket",
        move |mut store, (family,): (network::IpAddressFamily,)| {
            let mut view = getter(store.data_mut());
            if !view.guard.may_create_socket(false, family) {
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            super::fds::check_reserve().map_err(wasmtime::Error::new)?;
            to_guest(tcp_create_socket::Host::create_tcp_socket(&mut view.inner, family))
        },
    )?;
    linker.instance(UDP_CREATE_INTERFACE)?.func_wrap_async(
        "create-udp-socket",
        move |mut store, (family,): (network::IpAddressFamily,)| {
            Box::new(async move {
                let mut view = getter(store.data_mut());
                if !view.guard.may_create_socket(true, family) {
                    return Ok((Err(ErrorCode::AccessDenied),));
                }
                super::fds::check_reserve().map_err(wasmtime::Error::new)?;
                to_guest(udp_create_socket::Host::create_udp_socket(&mut view.inner, family).await)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
/// A wasmtime-wasi socket result as the guest sees it: the error code, or
/// a trap when the error is not one.
fn to_guest<T>(r: Result<T, SocketError>) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: IpAddressFamily = IpAddressFamily::Ipv4;
    const V6: IpAddressFamily = IpAddressFamily::Ipv6;

    /// (peer, socket family, TCP?, why wasmtime-wasi would refuse it)
    const CASES: &[(&str, IpAddressFamily, bool, Option<&str>)] = &[
        ("93.184.216.34:80", V4, true, None),
        ("[2606:2800:220:1::]:443", V6, true, None),
        ("0.0.0.0:80", V4, true, Some("unspecified address")),
        ("[::]:80", V6, true, Some("unspecified address")),
        ("[::ffff:0.0.0.0]:80", V6, true, Some("unspecified address")),
        ("93.184.216.34:0", V4, false, Some("port 0")),
        ("224.0.0.1:80", V4, true, Some("multicast address")),
        ("224.0.0.1:80", V4, false, None),
        ("255.255.255.255:80", V4, true, Some("broadcast address")),
        ("[ff02::1]:80", V6, true, Some("multicast address")),
        ("[::ffff:93.184.216.34]:80", V6, true, Some("IPv4-mapped IPv6 address (use the IPv4 address instead)")),
        ("[::93.184.216.34]:80", V6, false, Some("deprecated IPv4-compatible IPv6 address")),
        ("[::1]:80", V6, true, None),
        ("93.184.216.34:80", V6, true, Some("address family does not match the socket's")),
        ("[2606:2800:220:1::]:443", V4, false, Some("address family does not match the socket's")),
    ];

    /// (local address, socket family, TCP?, why a bind would be refused)
    const BINDS: &[(&str, IpAddressFamily, bool, Option<&str>)] = &[
        ("0.0.0.0:0", V4, true, None),
        ("[::]:0", V6, true, None),
        ("127.0.0.1:8080", V4, true, None),
        ("224.0.0.1:0", V4, true, Some("multicast address")),
        ("224.0.0.1:0", V4, false, None),
        ("[::ffff:127.0.0.1]:0", V6, true, Some("IPv4-mapped IPv6 address (use the IPv4 address instead)")),
        ("127.0.0.1:0", V6, false, Some("address family does not match the socket's")),
    ];

    #[test]
    fn invalid_local_table() {
        for &(local, family, tcp, want) in BINDS {
            let addr: SocketAddr = local.parse().unwrap();
            assert_eq!(invalid_local(addr, family, tcp), want, "{local} {family:?} tcp={tcp}");
        }
    }

    #[test]
    fn invalid_peer_table() {
        for &(peer, family, tcp, want) in CASES {
            let addr: SocketAddr = peer.parse().unwrap();
            assert_eq!(invalid_peer(addr, family, tcp), want, "{peer} {family:?} tcp={tcp}");
        }
    }
}
