//! `ops-probe`: socket paths for the host's operator-edge tests that the
//! `hostile` tool does not reach.

wasmward_sdk::wit_bindgen::generate!({
    path: "wit",
    world: "ops-probe",
    runtime_path: "wasmward_sdk::wit_bindgen::rt",
});
wasmward_sdk::embed_docs!("wit/world.wit");

use std::net::{SocketAddr, UdpSocket};

struct Probe;

impl Guest for Probe {
    fn udp_connect(addr: String) -> Result<(), String> {
        let peer: SocketAddr = addr.parse().map_err(|e| format!("parse: {e}"))?;
        let local = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let socket = UdpSocket::bind(local).map_err(|e| format!("bind: {e}"))?;
        socket.connect(peer).map_err(|e| format!("connect: {e}"))?;
        socket.send(b"x").map(drop).map_err(|e| format!("send: {e}"))
    }
}

export!(Probe);
