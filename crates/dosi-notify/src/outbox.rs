//! The durable outbox: a journal of notifications, appended (and fsynced)
//! before the write that caused them is acknowledged, so a crash between the
//! commit and the delivery loses nothing; pending notifications are delivered
//! after a restart.
//!
//! Layout: `<dir>/NNNNNNNNNNNNNNNN.outbox` segments of records framed as
//! `[u32 length][u32 crc32][payload]` (little endian). A payload is a tag
//! byte and the record's fields:
//!
//! | tag | record | meaning |
//! |---|---|---|
//! | 1 | `Enqueue { nid, outgoing }` | a notification to deliver |
//! | 2 | `Done { nid }` | delivered, discarded, or its subscription deleted |
//! | 3 | `Dead { nid, attempts, at, reason }` | moved to the dead letters |
//! | 4 | `Revive { nid }` | a dead letter is retried (pending again) |
//!
//! Only `Enqueue` and `Revive` are waited for (fsynced before the caller
//! continues). A lost `Done` means one more delivery after a crash, which
//! at-least-once delivery allows; a lost `Dead` means the notification is
//! retried again.
//!
//! On open every segment is replayed (a torn tail in the last one is cut),
//! and the live records are rewritten into one fresh segment; the same
//! compaction runs when the active segment outgrows a limit.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;
use dosi_ngsi::Timestamp;
use tokio::sync::oneshot;

use crate::deliver::Outgoing;

/// A segment is compacted once it is larger than this and mostly dead.
const COMPACT_AFTER_BYTES: u64 = 64 * 1024 * 1024;

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Reading or writing the journal failed.
    #[error("outbox IO failed at {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The writer stopped (after an IO error or at shutdown).
    #[error("the outbox is unavailable: {0}")]
    Unavailable(String),
}

type Result<T, E = OutboxError> = std::result::Result<T, E>;

fn io_err(path: &Path, source: std::io::Error) -> OutboxError {
    OutboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its position in the outbox (increasing in enqueue order).
    pub nid: u64,
    /// What to send.
    pub outgoing: Arc<Outgoing>,
    /// When it was enqueued in this process (recovered ones: when loaded);
    /// for the commit-to-delivery latency.
    pub since: std::time::Instant,
}

/// A notification that failed its last attempt (or could not be queued).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its position in the outbox.
    pub nid: u64,
    /// What was to be sent.
    pub outgoing: Arc<Outgoing>,
    /// Attempts made.
    pub attempts: u32,
    /// When it was given up.
    pub at: Timestamp,
    /// Why: the last error.
    pub reason: String,
}

/// What the journal holds after a replay.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Notifications still to deliver, in enqueue order.
    pub pending: Vec<Pending>,
    /// Dead letters, in enqueue order.
    pub dead: Vec<DeadLetter>,
}

enum Record {
    Enqueue {
        nid: u64,
        outgoing: Arc<Outgoing>,
    },
    Done {
        nid: u64,
    },
    Dead {
        nid: u64,
        attempts: u32,
        at: Timestamp,
        reason: String,
    },
    Revive {
        nid: u64,
    },
}

enum Msg {
    Write {
        frames: Vec<u8>,
        live: Vec<(u64, Vec<u8>)>,
        ends: Vec<(u64, Option<Vec<u8>>)>,
        durable: bool,
        done: Option<oneshot::Sender<Result<()>>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// The outbox journal. Cheap to share behind an `Arc`.
pub struct Outbox {
    tx: parking_lot::Mutex<mpsc::Sender<Msg>>,
    next_nid: std::sync::atomic::AtomicU64,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, replays it, and compacts it
    /// into a fresh segment. Returns what is pending and dead.
    pub fn open(dir: &Path, fsync: bool) -> Result<(Outbox, Recovered)> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let segments = list_segments(dir)?;
        let mut live: BTreeMap<u64, LiveRec> = BTreeMap::new();
        let mut max_nid = 0;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            replay_segment(&segment_path(dir, *seg), last, &mut live, &mut max_nid)?;
        }
        let next_segment = segments.last().map_or(1, |s| s + 1);
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            segment: next_segment,
            file: create_segment(dir, next_segment)?,
            bytes: 0,
            fsync,
            live: BTreeMap::new(),
        };
        // Rewrite the live records into the new segment, then drop the old ones.
        for (nid, rec) in &live {
            writer.live.insert(*nid, rec.frames());
        }
        writer.rewrite_live()?;
        for seg in segments {
            let p = segment_path(dir, seg);
            std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
        }
        sync_dir(dir)?;
        let mut rec = Recovered::default();
        for (nid, l) in live {
            match l.dead {
                None => rec.pending.push(Pending {
                    nid,
                    outgoing: l.outgoing,
                    since: std::time::Instant::now(),
                }),
                Some(d) => rec.dead.push(DeadLetter {
                    nid,
                    outgoing: l.outgoing,
                    attempts: d.attempts,
                    at: d.at,
                    reason: d.reason,
                }),
            }
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("dosi-outbox".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err(dir, e))?;
        Ok((
            Outbox {
                tx: parking_lot::Mutex::new(tx),
                next_nid: std::sync::atomic::AtomicU64::new(max_nid + 1),
            },
            rec,
        ))
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .lock()
            .send(msg)
            .map_err(|_| OutboxError::Unavailable("the outbox writer has stopped".into()))
    }

    /// Appends notifications; returns their entries once they are durable.
    pub async fn append(&self, items: Vec<Outgoing>) -> Result<Vec<Pending>> {
        let mut live = Vec::with_capacity(items.len());
        let mut out = Vec::with_capacity(items.len());
        for o in items {
            let nid = self
                .next_nid
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let o = Arc::new(o);
            let f = frame(&Record::Enqueue {
                nid,
                outgoing: o.clone(),
            });
            live.push((nid, f));
            out.push(Pending {
                nid,
                outgoing: o,
                since: std::time::Instant::now(),
            });
        }
        let (done, rx) = oneshot::channel();
        self.send(Msg::Write {
            frames: Vec::new(),
            live,
            ends: Vec::new(),
            durable: true,
            done: Some(done),
        })?;
        rx.await
            .map_err(|_| OutboxError::Unavailable("the outbox writer has stopped".into()))??;
        Ok(out)
    }

    /// Records that `nid` is finished (delivered or discarded). Not waited for.
    pub fn done(&self, nid: u64) {
        let _ = self.send(Msg::Write {
            frames: frame(&Record::Done { nid }),
            live: Vec::new(),
            ends: vec![(nid, None)],
            durable: false,
            done: None,
        });
    }

    /// Records that `nid` became a dead letter. Not waited for.
    pub fn dead(&self, d: &DeadLetter) {
        let f = frame(&Record::Dead {
            nid: d.nid,
            attempts: d.attempts,
            at: d.at,
            reason: d.reason.clone(),
        });
        let _ = self.send(Msg::Write {
            frames: f.clone(),
            live: Vec::new(),
            ends: vec![(d.nid, Some(f))],
            durable: false,
            done: None,
        });
    }

    /// Makes dead letter `nid` pending again; durable on return.
    pub async fn revive(&self, nid: u64) -> Result<()> {
        let f = frame(&Record::Revive { nid });
        let (done, rx) = oneshot::channel();
        self.send(Msg::Write {
            frames: f,
            live: Vec::new(),
            ends: vec![(nid, Some(Vec::new()))],
            durable: true,
            done: Some(done),
        })?;
        rx.await
            .map_err(|_| OutboxError::Unavailable("the outbox writer has stopped".into()))?
    }

    /// Flushes what was written and stops the writer.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

struct DeadState {
    attempts: u32,
    at: Timestamp,
    reason: String,
}

struct LiveRec {
    outgoing: Arc<Outgoing>,
    enqueue: Vec<u8>,
    dead: Option<DeadState>,
    dead_frame: Vec<u8>,
}

impl LiveRec {
    fn frames(&self) -> (Vec<u8>, Vec<u8>) {
        (self.enqueue.clone(), self.dead_frame.clone())
    }
}

struct Writer {
    dir: PathBuf,
    segment: u64,
    file: File,
    bytes: u64,
    fsync: bool,
    /// Live records: nid → (enqueue frame, dead frame or empty).
    live: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut failed: Option<String> = None;
        // One buffer for every group commit, kept at its largest size so that
        // batches are not copied again while it grows.
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        while let Ok(first) = rx.recv() {
            buf.clear();
            let mut waiters = Vec::new();
            let mut durable = false;
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Write {
                        frames,
                        live,
                        ends,
                        durable: d,
                        done,
                    } => {
                        // Live frames are written from here (the `frames` of a
                        // write hold only its other records).
                        buf.extend_from_slice(&frames);
                        for (nid, f) in live {
                            buf.extend_from_slice(&f);
                            self.live.insert(nid, (f, Vec::new()));
                        }
                        for (nid, dead) in ends {
                            match dead {
                                None => {
                                    self.live.remove(&nid);
                                }
                                Some(f) => {
                                    if let Some(l) = self.live.get_mut(&nid) {
                                        l.1 = f;
                                    }
                                }
                            }
                        }
                        durable |= d;
                        if let Some(w) = done {
                            waiters.push(w);
                        }
                    }
                    Msg::Shutdown(tx) => shutdown = Some(tx),
                }
                if shutdown.is_none() && buf.len() < 8 * 1024 * 1024 {
                    next = rx.try_recv().ok();
                }
            }
            let r = match &failed {
                Some(why) => Err(OutboxError::Unavailable(why.clone())),
                None => self.write(&buf, durable || shutdown.is_some()),
            };
            if let Err(e) = &r {
                if failed.is_none() {
                    tracing::error!(error = %e, "outbox write failed; notifications can no longer be made durable");
                    failed = Some(e.to_string());
                }
            }
            for w in waiters {
                let _ = w.send(match &r {
                    Ok(()) => Ok(()),
                    Err(e) => Err(OutboxError::Unavailable(e.to_string())),
                });
            }
            if let Some(tx) = shutdown {
                let _ = tx.send(());
                return;
            }
            if failed.is_none() && self.bytes > COMPACT_AFTER_BYTES {
                if let Err(e) = self.compact() {
                    tracing::error!(error = %e, "outbox compaction failed");
                    failed = Some(e.to_string());
                }
            }
        }
    }

    fn write(&mut self, buf: &[u8], durable: bool) -> Result<()> {
        let path = segment_path(&self.dir, self.segment);
        self.file.write_all(buf).map_err(|e| io_err(&path, e))?;
        if durable && self.fsync {
            self.file.sync_data().map_err(|e| io_err(&path, e))?;
        }
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// Writes every live record into the current segment and syncs it.
    fn rewrite_live(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        for (enq, dead) in self.live.values() {
            buf.extend_from_slice(enq);
            buf.extend_from_slice(dead);
        }
        self.write(&buf, true)?;
        let path = segment_path(&self.dir, self.segment);
        self.file.sync_all().map_err(|e| io_err(&path, e))
    }

    /// Starts a new segment holding only the live records; removes the old one.
    fn compact(&mut self) -> Result<()> {
        let old = self.segment;
        self.segment += 1;
        self.file = create_segment(&self.dir, self.segment)?;
        self.bytes = 0;
        self.rewrite_live()?;
        sync_dir(&self.dir)?;
        let p = segment_path(&self.dir, old);
        std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
        Ok(())
    }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.outbox"))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let ent = ent.map_err(|e| io_err(dir, e))?;
        if let Some(n) = ent
            .file_name()
            .to_str()
            .and_then(|s| s.strip_suffix(".outbox"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn create_segment(dir: &Path, n: u64) -> Result<File> {
    let p = segment_path(dir, n);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .map_err(|e| io_err(&p, e))?;
    sync_dir(dir)?;
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn replay_segment(
    path: &Path,
    last: bool,
    live: &mut BTreeMap<u64, LiveRec>,
    max_nid: &mut u64,
) -> Result<()> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| io_err(path, e))?;
    let mut pos = 0;
    while pos < data.len() {
        let Some((rec, raw, len)) = read_frame(&data[pos..]) else {
            if last {
                tracing::warn!(path = %path.display(), offset = pos, "outbox ends in a torn record; cut there");
                break;
            }
            return Err(io_err(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("corrupt outbox record at offset {pos}"),
                ),
            ));
        };
        pos += len;
        match rec {
            Record::Enqueue { nid, outgoing } => {
                *max_nid = (*max_nid).max(nid);
                live.insert(
                    nid,
                    LiveRec {
                        outgoing,
                        enqueue: raw.to_vec(),
                        dead: None,
                        dead_frame: Vec::new(),
                    },
                );
            }
            Record::Done { nid } => {
                live.remove(&nid);
            }
            Record::Dead {
                nid,
                attempts,
                at,
                reason,
            } => {
                if let Some(l) = live.get_mut(&nid) {
                    l.dead = Some(DeadState {
                        attempts,
                        at,
                        reason,
                    });
                    l.dead_frame = raw.to_vec();
                }
            }
            Record::Revive { nid } => {
                if let Some(l) = live.get_mut(&nid) {
                    l.dead = None;
                    l.dead_frame.clear();
                }
            }
        }
    }
    Ok(())
}

// ---- record encoding ----

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_u32(b, v.len() as u32);
    b.extend_from_slice(v);
}
fn put_pairs(b: &mut Vec<u8>, v: &[(String, String)]) {
    put_u32(b, v.len() as u32);
    for (k, x) in v {
        put_bytes(b, k.as_bytes());
        put_bytes(b, x.as_bytes());
    }
}

fn frame(r: &Record) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    match r {
        Record::Enqueue { nid, outgoing: o } => {
            b.push(1);
            put_u64(&mut b, *nid);
            put_bytes(&mut b, o.notification_id.as_bytes());
            put_bytes(&mut b, o.subscription_id.as_bytes());
            put_bytes(&mut b, o.tenant.as_bytes());
            put_bytes(&mut b, o.uri.as_bytes());
            put_pairs(&mut b, &o.headers);
            put_pairs(&mut b, &o.notifier_info);
            put_bytes(&mut b, &o.body);
            put_u64(&mut b, o.timeout_ms);
        }
        Record::Done { nid } => {
            b.push(2);
            put_u64(&mut b, *nid);
        }
        Record::Dead {
            nid,
            attempts,
            at,
            reason,
        } => {
            b.push(3);
            put_u64(&mut b, *nid);
            put_u32(&mut b, *attempts);
            put_u64(&mut b, at.0 as u64);
            put_bytes(&mut b, reason.as_bytes());
        }
        Record::Revive { nid } => {
            b.push(4);
            put_u64(&mut b, *nid);
        }
    }
    let len = (b.len() - 8) as u32;
    let crc = crc32fast::hash(&b[8..]);
    b[..4].copy_from_slice(&len.to_le_bytes());
    b[4..8].copy_from_slice(&crc.to_le_bytes());
    b
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()? as usize;
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            v.push((self.string()?, self.string()?));
        }
        Some(v)
    }
}

/// Decodes the frame at the start of `data`: the record, its raw bytes and length.
fn read_frame(data: &[u8]) -> Option<(Record, &[u8], usize)> {
    if data.len() < 8 {
        return None;
    }
    let len = u32::from_le_bytes(data[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(data[4..8].try_into().ok()?);
    let payload = data.get(8..8 + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let mut r = Reader { b: payload };
    let rec = match r.u8()? {
        1 => {
            let nid = r.u64()?;
            let outgoing = Outgoing {
                notification_id: r.string()?,
                subscription_id: r.string()?,
                tenant: r.string()?,
                uri: r.string()?,
                headers: r.pairs()?,
                notifier_info: r.pairs()?,
                body: Bytes::copy_from_slice(r.bytes()?),
                timeout_ms: r.u64()?,
            };
            Record::Enqueue {
                nid,
                outgoing: Arc::new(outgoing),
            }
        }
        2 => Record::Done { nid: r.u64()? },
        3 => Record::Dead {
            nid: r.u64()?,
            attempts: r.u32()?,
            at: Timestamp(r.u64()? as i64),
            reason: r.string()?,
        },
        4 => Record::Revive { nid: r.u64()? },
        _ => return None,
    };
    Some((rec, &data[..8 + len], 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(i: u32) -> Outgoing {
        Outgoing {
            notification_id: format!("urn:ngsi-ld:Notification:{i}"),
            subscription_id: "urn:s:1".into(),
            tenant: String::new(),
            uri: "http://127.0.0.1:9/notify".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            notifier_info: vec![],
            body: Bytes::from(format!("{{\"n\":{i}}}")),
            timeout_ms: 1000,
        }
    }

    #[tokio::test]
    async fn pending_dead_and_done_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (ob, rec) = Outbox::open(dir.path(), true).unwrap();
        assert!(rec.pending.is_empty());
        let p = ob.append((0..5).map(out).collect()).await.unwrap();
        ob.done(p[0].nid);
        ob.dead(&DeadLetter {
            nid: p[1].nid,
            outgoing: p[1].outgoing.clone(),
            attempts: 3,
            at: Timestamp(7),
            reason: "HTTP 500".into(),
        });
        ob.dead(&DeadLetter {
            nid: p[2].nid,
            outgoing: p[2].outgoing.clone(),
            attempts: 3,
            at: Timestamp(7),
            reason: "HTTP 500".into(),
        });
        ob.revive(p[2].nid).await.unwrap();
        ob.close().await;
        drop(ob);
        let (ob2, rec) = Outbox::open(dir.path(), true).unwrap();
        let pending: Vec<u64> = rec.pending.iter().map(|p| p.nid).collect();
        assert_eq!(pending, vec![p[2].nid, p[3].nid, p[4].nid]);
        assert_eq!(*rec.pending[1].outgoing, out(3));
        assert_eq!(rec.dead.len(), 1);
        assert_eq!(rec.dead[0].nid, p[1].nid);
        assert_eq!(rec.dead[0].reason, "HTTP 500");
        // New ids continue after the old ones.
        let q = ob2.append(vec![out(9)]).await.unwrap();
        assert!(q[0].nid > p[4].nid);
        // Only one segment is left after the reopen compaction.
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (ob, _) = Outbox::open(dir.path(), true).unwrap();
        ob.append(vec![out(1), out(2)]).await.unwrap();
        ob.close().await;
        drop(ob);
        let seg = list_segments(dir.path()).unwrap();
        let p = segment_path(dir.path(), *seg.last().unwrap());
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        let mut torn = frame(&Record::Enqueue {
            nid: 99,
            outgoing: Arc::new(out(3)),
        });
        torn.truncate(torn.len() - 3);
        f.write_all(&torn).unwrap();
        drop(f);
        let (_ob, rec) = Outbox::open(dir.path(), true).unwrap();
        assert_eq!(rec.pending.len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn frames_never_panic_on_garbage(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = read_frame(&data);
        }
    }
}
