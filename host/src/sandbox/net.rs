//! `wasi:sockets`, guarded.
//!
//! Name lookups are answered only for names `allowed_network_hosts`
//! matches, and private answers are dropped under `block_private_ips`. A
//! connect is let through only to an address an allowed name resolved to in
//! this call (on a port the name's rule allows), or to an allowed IP literal
//! or CIDR, and never to a private address when they are blocked; the check
//! runs on the address actually dialed, so DNS rebinding gains nothing.
//! Bind/listen and UDP need their own grants. Every refusal is a denial.

use super::denials::{Denial, Denials};
use crate::policy::{DenialKind, EffectivePolicy, ViolationAction};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{self, HostResolveAddressStream, ResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp;
use wasmtime_wasi::p2::TcpSocket;
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
}

impl NetGuard {
    pub fn new(policy: Arc<EffectivePolicy>, denials: Denials) -> Self {
        NetGuard { policy, denials, resolved: Arc::default(), streams: Arc::default() }
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

    /// For an IPv6 address that embeds an IPv4 one (mapped, compatible,
    /// 6to4, NAT64, ...), the rule refusing it when that is private.
    fn embedded_private(&self, ip: IpAddr) -> Option<String> {
        let IpAddr::V6(v6) = ip else { return None };
        crate::policy::ip::embedded_v4(v6)?;
        self.policy.blocked_ip(ip).map(|range| format!("block_private_ips: {range}"))
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
    // wasmtime-wasi refuses IPv4-mapped and -compatible peers with
    // `invalid-argument` before any address check runs; checking them here
    // first makes that attempt a recorded denial like every other.
    linker.instance(TCP_INTERFACE)?.func_wrap(
        "[method]tcp-socket.start-connect",
        move |mut store, (sock, net, addr): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)| {
            let mut view = getter(store.data_mut());
            let peer = SocketAddr::from(addr);
            if let Some(rule) = view.guard.embedded_private(peer.ip()) {
                view.guard.record("connect", peer.to_string(), rule, ViolationAction::Deny);
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            match tcp::HostTcpSocket::start_connect(&mut view.inner, sock, net, addr) {
                Ok(()) => Ok((Ok(()),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The `wasi:sockets/tcp` version the linker defines (other 0.2.x imports
/// resolve to it by semver).
const TCP_INTERFACE: &str = "wasi:sockets/tcp@0.2.12";

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
            match tcp_create_socket::Host::create_tcp_socket(&mut view.inner, family) {
                Ok(s) => Ok((Ok(s),)),
                Err(e) => Ok((Err(e.downcast()?),)),
            }
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
                match udp_create_socket::Host::create_udp_socket(&mut view.inner, family).await {
                    Ok(s) => Ok((Ok(s),)),
                    Err(e) => Ok((Err(e.downcast()?),)),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
