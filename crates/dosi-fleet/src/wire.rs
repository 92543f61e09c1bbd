//! MQTT 3.1.1 packets, as the simulator's devices and `dosi bench mqtt`
//! write and read them: CONNECT, PUBLISH (QoS 0/1, DUP), SUBSCRIBE,
//! PINGREQ, DISCONNECT, and reading any packet as its first byte and body.
//! Just enough of the protocol for clients that must cost little CPU.

use tokio::io::{AsyncRead, AsyncReadExt};

/// PINGREQ.
pub const PINGREQ: [u8; 2] = [0xc0, 0];
/// DISCONNECT.
pub const DISCONNECT: [u8; 2] = [0xe0, 0];

/// Appends a remaining length (variable-length integer).
pub fn put_len(buf: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        buf.push(b);
        if n == 0 {
            return;
        }
    }
}

/// Appends a length-prefixed string (at most 65,535 bytes are written).
pub fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    let n = s.len().min(usize::from(u16::MAX));
    buf.extend_from_slice(&(n as u16).to_be_bytes());
    buf.extend_from_slice(&s[..n]);
}

/// A CONNECT packet with a clean session and the given keep-alive.
pub fn connect_packet(
    client_id: &str,
    user: Option<&str>,
    password: Option<&str>,
    keep_alive_s: u16,
) -> Vec<u8> {
    let extra = user.map_or(0, str::len) + password.map_or(0, str::len);
    let mut body = Vec::with_capacity(32 + client_id.len() + extra);
    put_str(&mut body, b"MQTT");
    body.push(4);
    let mut flags = 0x02; // clean session
    if user.is_some() {
        flags |= 0x80;
    }
    if password.is_some() {
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&keep_alive_s.to_be_bytes());
    put_str(&mut body, client_id.as_bytes());
    if let Some(u) = user {
        put_str(&mut body, u.as_bytes());
    }
    if let Some(p) = password {
        put_str(&mut body, p.as_bytes());
    }
    let mut p = vec![0x10];
    put_len(&mut p, body.len());
    p.extend_from_slice(&body);
    p
}

/// Appends a PUBLISH packet (`pkid` is written only for QoS > 0).
pub fn put_publish(buf: &mut Vec<u8>, topic: &str, payload: &[u8], qos: u8, pkid: u16, dup: bool) {
    let len = 2 + topic.len() + if qos > 0 { 2 } else { 0 } + payload.len();
    buf.push(0x30 | (qos << 1) | if dup { 0x08 } else { 0 });
    put_len(buf, len);
    put_str(buf, topic.as_bytes());
    if qos > 0 {
        buf.extend_from_slice(&pkid.to_be_bytes());
    }
    buf.extend_from_slice(payload);
}

/// A SUBSCRIBE packet for one filter (packet id 1).
pub fn subscribe_packet(filter: &str, qos: u8) -> Vec<u8> {
    let mut body = vec![0, 1];
    put_str(&mut body, filter.as_bytes());
    body.push(qos);
    let mut p = vec![0x82];
    put_len(&mut p, body.len());
    p.extend_from_slice(&body);
    p
}

/// Reads one packet: its first byte and (into `body`) its body.
pub async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    body: &mut Vec<u8>,
) -> std::io::Result<u8> {
    let kind = r.read_u8().await?;
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let b = r.read_u8().await?;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(std::io::Error::other("bad remaining length"));
        }
    }
    body.resize(len, 0);
    r.read_exact(body).await?;
    Ok(kind)
}
