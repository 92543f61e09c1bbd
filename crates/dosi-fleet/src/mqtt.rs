//! A minimal MQTT 3.1.1 client, one per simulated device (ADR 12): CONNECT
//! with the device's id and token, PUBLISH at QoS 1 and wait for the PUBACK,
//! PINGREQ when idle, reconnect with back-off. A device publishes at most
//! once a second or so, so one message in flight per connection is what a
//! real sensor does, and a task with a socket and a few hundred bytes of
//! buffer is all a device costs (100,000 of them fit in a few hundred MB).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::counters::Counters;
use crate::wire::{self, read_packet, DISCONNECT, PINGREQ};

/// Keep-alive announced in CONNECT, seconds; a PINGREQ goes out after half of it idle.
const KEEP_ALIVE_S: u16 = 600;
/// How long to wait for CONNACK or PUBACK.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A CONNECT packet (clean session, username and password).
pub(crate) fn connect_packet(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    wire::connect_packet(client_id, Some(user), Some(password), KEEP_ALIVE_S)
}

/// A QoS 1 PUBLISH packet.
pub(crate) fn publish_packet(topic: &str, payload: &[u8], pkid: u16, dup: bool) -> Vec<u8> {
    let mut buf = Vec::with_capacity(topic.len() + payload.len() + 9);
    wire::put_publish(&mut buf, topic, payload, 1, pkid, dup);
    buf
}

/// Where and as whom a device connects.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// The broker.
    pub broker: SocketAddr,
    /// Source address to bind (spreads many connections over loopback addresses).
    pub source: Option<IpAddr>,
}

struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    body: Vec<u8>,
    pkid: u16,
    last_io: Instant,
}

async fn connect(ep: &Endpoint, id: &str, token: &str) -> std::io::Result<Conn> {
    let socket = match ep.broker {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = ep.source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let s: TcpStream = tokio::time::timeout(ANSWER_TIMEOUT, socket.connect(ep.broker))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let _ = s.set_nodelay(true);
    let (r, mut w) = s.into_split();
    w.write_all(&connect_packet(id, id, token)).await?;
    let mut c = Conn {
        r: BufReader::with_capacity(256, r),
        w,
        body: Vec::new(),
        pkid: 0,
        last_io: Instant::now(),
    };
    let kind = tokio::time::timeout(ANSWER_TIMEOUT, read_packet(&mut c.r, &mut c.body))
        .await
        .map_err(|_| std::io::Error::other("no CONNACK"))??;
    if kind >> 4 != 2 || c.body.get(1) != Some(&0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("connection refused (CONNACK code {:?})", c.body.get(1)),
        ));
    }
    Ok(c)
}

impl Conn {
    async fn publish(&mut self, topic: &str, payload: &[u8], dup: bool) -> std::io::Result<()> {
        self.pkid = self.pkid.checked_add(1).unwrap_or(1);
        let pkid = self.pkid;
        self.w
            .write_all(&publish_packet(topic, payload, pkid, dup))
            .await?;
        self.last_io = Instant::now();
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let kind = tokio::time::timeout_at(deadline, read_packet(&mut self.r, &mut self.body))
                .await
                .map_err(|_| std::io::Error::other("no PUBACK"))??;
            // PUBACK with our packet id; PINGRESP and anything else is skipped.
            if kind >> 4 == 4 && self.body.get(..2) == Some(&pkid.to_be_bytes()[..]) {
                return Ok(());
            }
        }
    }

    async fn ping(&mut self) -> std::io::Result<()> {
        self.w.write_all(&PINGREQ).await?;
        self.last_io = Instant::now();
        Ok(())
    }
}

/// One device's MQTT session: publishes every payload received on `rx` to
/// `topic`, reconnecting when the connection drops (a message in flight is
/// resent once, with DUP). Connects on the first message, through `gate`
/// (bounds the connections being set up at once).
pub(crate) async fn device_session(
    ep: Endpoint,
    id: String,
    token: Arc<str>,
    topic: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    counters: Arc<Counters>,
    gate: Arc<Semaphore>,
) {
    let mut conn: Option<Conn> = None;
    let mut backoff = Duration::from_millis(500);
    let mut retry_at: Option<Instant> = None;
    loop {
        let ping_at = conn
            .as_ref()
            .map(|c| c.last_io + Duration::from_secs(u64::from(KEEP_ALIVE_S) / 2));
        let msg = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
            _ = sleep_until_opt(ping_at) => {
                if let Some(c) = conn.as_mut() {
                    if c.ping().await.is_err() {
                        conn = None;
                    }
                }
                continue;
            }
        };
        counters.published.fetch_add(1, Ordering::Relaxed);
        let mut done = false;
        for attempt in 0..2 {
            if conn.is_none() {
                if retry_at.is_some_and(|t| Instant::now() < t) {
                    break;
                }
                let permit = gate.acquire().await;
                let c = connect(&ep, &id, &token).await;
                drop(permit);
                match c {
                    Ok(c) => {
                        counters.connects.fetch_add(1, Ordering::Relaxed);
                        conn = Some(c);
                        backoff = Duration::from_millis(500);
                        retry_at = None;
                    }
                    Err(e) => {
                        counters.connect_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(device = %id, error = %e, "MQTT connect failed");
                        let jitter = rand::rng().random_range(0.5..1.5);
                        retry_at = Some(Instant::now() + backoff.mul_f64(jitter));
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        break;
                    }
                }
            }
            if let Some(c) = conn.as_mut() {
                match c.publish(&topic, &msg, attempt > 0).await {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(device = %id, error = %e, "MQTT publish failed; reconnecting");
                        counters.reconnects.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
        }
        if done {
            counters.acked.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(mut c) = conn {
        let _ = c.w.write_all(&DISCONNECT).await;
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::put_len;

    #[test]
    fn remaining_length_encoding() {
        let check = |n: usize, want: &[u8]| {
            let mut b = Vec::new();
            put_len(&mut b, n);
            assert_eq!(b, want, "{n}");
        };
        check(0, &[0]);
        check(127, &[0x7f]);
        check(128, &[0x80, 1]);
        check(16_383, &[0xff, 0x7f]);
        check(2_097_152, &[0x80, 0x80, 0x80, 1]);
    }

    /// Device `d1` publishing through `broker` with `token`: its queue,
    /// counters and session task.
    fn session_to(
        broker: std::net::SocketAddr,
        token: &str,
    ) -> (
        mpsc::Sender<Vec<u8>>,
        Arc<Counters>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(4);
        let counters = Arc::new(Counters::default());
        let session = tokio::spawn(device_session(
            Endpoint {
                broker,
                source: None,
            },
            "d1".into(),
            Arc::from(token),
            "/json/k/d1/attrs".into(),
            rx,
            counters.clone(),
            Arc::new(Semaphore::new(1)),
        ));
        (tx, counters, session)
    }

    #[tokio::test]
    async fn packets_read_back() {
        let p = publish_packet("/json/k/d1/attrs", b"{\"a\":1}", 7, true);
        let mut r = &p[..];
        let mut body = Vec::new();
        let kind = read_packet(&mut r, &mut body).await.unwrap();
        assert_eq!(kind, 0x3a);
        assert_eq!(&body[..2], &[0, 16]);
        assert_eq!(&body[2..18], b"/json/k/d1/attrs");
        assert_eq!(&body[18..20], &[0, 7]);
        assert_eq!(&body[20..], b"{\"a\":1}");
        let c = connect_packet("d1", "d1", "tok");
        let mut r = &c[..];
        assert_eq!(read_packet(&mut r, &mut body).await.unwrap(), 0x10);
        assert_eq!(&body[..6], b"\0\x04MQTT");
    }

    /// A broker that drops the first connection at the first PUBLISH and
    /// acknowledges the resent (DUP) message on the second.
    #[tokio::test]
    async fn reconnects_and_resends_once() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut body = Vec::new();
            let (mut s, _) = l.accept().await.unwrap();
            assert_eq!(read_packet(&mut s, &mut body).await.unwrap() >> 4, 1);
            s.write_all(&[0x20, 2, 0, 0]).await.unwrap();
            assert_eq!(read_packet(&mut s, &mut body).await.unwrap(), 0x32);
            drop(s);
            let (mut s, _) = l.accept().await.unwrap();
            assert_eq!(read_packet(&mut s, &mut body).await.unwrap() >> 4, 1);
            assert!(
                body.windows(3).any(|w| w == b"tok"),
                "the token is the password"
            );
            s.write_all(&[0x20, 2, 0, 0]).await.unwrap();
            assert_eq!(read_packet(&mut s, &mut body).await.unwrap(), 0x3a, "DUP");
            let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
            let pkid = [body[2 + topic_len], body[3 + topic_len]];
            s.write_all(&[0x40, 2, pkid[0], pkid[1]]).await.unwrap();
            body[4 + topic_len..].to_vec()
        });
        let (tx, counters, session) = session_to(broker, "tok");
        tx.send(b"{\"a\":1}".to_vec()).await.unwrap();
        assert_eq!(server.await.unwrap(), b"{\"a\":1}");
        drop(tx);
        session.await.unwrap();
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(g(&counters.published), 1);
        assert_eq!(g(&counters.acked), 1);
        assert_eq!(g(&counters.failed), 0);
        assert_eq!(g(&counters.connects), 2);
        assert_eq!(g(&counters.reconnects), 1);
    }

    /// A refused CONNECT (bad credentials) fails the message, counted.
    #[tokio::test]
    async fn refused_connection_fails_the_message() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let broker = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut body = Vec::new();
            let (mut s, _) = l.accept().await.unwrap();
            let _ = read_packet(&mut s, &mut body).await;
            let _ = s.write_all(&[0x20, 2, 0, 5]).await;
        });
        let (tx, counters, session) = session_to(broker, "wrong");
        tx.send(b"{}".to_vec()).await.unwrap();
        drop(tx);
        session.await.unwrap();
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(g(&counters.failed), 1);
        assert_eq!(g(&counters.connect_errors), 1);
        assert_eq!(g(&counters.acked), 0);
    }
}
