//! The write-ahead log: compact binary records, CRC-framed, appended to an
//! in-memory buffer under a short lock and written (and fsynced) by one
//! flusher thread. Callers of [`Wal::wait_durable`] share one fsync (group
//! commit).
//!
//! Files are `wal-<seq>.log`; a checkpoint rotates to a new file, and the
//! files before it are deleted once the catalog that covers them is durable.
//!
//! Frame: `varint len | crc32(payload) LE | payload`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::codec::{corrupt, put_bytes, put_ivarint, put_uvarint, Reader};
use crate::{Error, NewPoint, Result, SeriesId, Value};

/// Buffered bytes that make the flusher write without being asked.
const WRITE_BEHIND_BYTES: usize = 1 << 20;

const T_CREATE: u8 = 1;
const T_APPEND: u8 = 2;
const T_DELETE: u8 = 3;
const T_REPLACE: u8 = 4;
const T_DROP_SERIES: u8 = 5;
const T_META: u8 = 6;
const T_DROP_BEFORE: u8 = 7;

/// A logged mutation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rec {
    Create {
        id: SeriesId,
        key: Vec<u8>,
    },
    Append {
        s: SeriesId,
        inst: u64,
        p: NewPoint,
    },
    Delete {
        s: SeriesId,
        inst: u64,
    },
    Replace {
        s: SeriesId,
        inst: u64,
        p: NewPoint,
    },
    DropSeries {
        s: SeriesId,
    },
    Meta {
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    },
    DropBefore {
        s: SeriesId,
        t: i64,
        rollup: Option<i64>,
    },
}

fn put_point(buf: &mut Vec<u8>, p: &NewPoint) {
    let kind: u8 = match p.value {
        Value::Num(_) => 0,
        Value::Doc(_) => 1,
        Value::Deleted => 2,
    };
    buf.push(kind | (u8::from(p.observed.is_some()) << 2));
    put_ivarint(buf, p.recorded);
    if let Some(o) = p.observed {
        put_ivarint(buf, o.wrapping_sub(p.recorded));
    }
    put_uvarint(buf, u64::from(p.tpl));
    match &p.value {
        Value::Num(x) => buf.extend_from_slice(&x.to_bits().to_le_bytes()),
        Value::Doc(d) => put_bytes(buf, d),
        Value::Deleted => {}
    }
}

fn get_point(r: &mut Reader) -> Result<NewPoint> {
    let flags = r.u8()?;
    let recorded = r.ivarint()?;
    let observed = if flags & 4 != 0 {
        Some(recorded.wrapping_add(r.ivarint()?))
    } else {
        None
    };
    let tpl = u32::try_from(r.uvarint()?).map_err(|_| corrupt("template out of range"))?;
    let value = match flags & 3 {
        0 => Value::Num(r.f64le()?),
        1 => Value::Doc(Arc::from(r.lbytes()?)),
        2 => Value::Deleted,
        _ => return Err(corrupt("bad value kind in log")),
    };
    Ok(NewPoint {
        recorded,
        observed,
        tpl,
        value,
    })
}

/// Appends the framed record for an append (the hot path, no [`Rec`]).
pub(crate) fn frame_append(buf: &mut Vec<u8>, s: SeriesId, inst: u64, p: &NewPoint) {
    frame(buf, |b| {
        b.push(T_APPEND);
        put_uvarint(b, s);
        put_uvarint(b, inst);
        put_point(b, p);
    });
}

/// Appends a framed record.
pub(crate) fn frame_rec(buf: &mut Vec<u8>, rec: &Rec) {
    frame(buf, |b| match rec {
        Rec::Create { id, key } => {
            b.push(T_CREATE);
            put_uvarint(b, *id);
            put_bytes(b, key);
        }
        Rec::Append { s, inst, p } => {
            b.push(T_APPEND);
            put_uvarint(b, *s);
            put_uvarint(b, *inst);
            put_point(b, p);
        }
        Rec::Delete { s, inst } => {
            b.push(T_DELETE);
            put_uvarint(b, *s);
            put_uvarint(b, *inst);
        }
        Rec::Replace { s, inst, p } => {
            b.push(T_REPLACE);
            put_uvarint(b, *s);
            put_uvarint(b, *inst);
            put_point(b, p);
        }
        Rec::DropSeries { s } => {
            b.push(T_DROP_SERIES);
            put_uvarint(b, *s);
        }
        Rec::Meta { key, value } => {
            b.push(T_META);
            put_bytes(b, key);
            match value {
                None => b.push(0),
                Some(v) => {
                    b.push(1);
                    put_bytes(b, v);
                }
            }
        }
        Rec::DropBefore { s, t, rollup } => {
            b.push(T_DROP_BEFORE);
            put_uvarint(b, *s);
            put_ivarint(b, *t);
            put_ivarint(b, rollup.unwrap_or(0));
        }
    });
}

fn frame(buf: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    // Payloads are small: reserve one length byte, fix up if longer.
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 5]);
    body(buf);
    let len = buf.len() - start - 5;
    let crc = crc32fast::hash(&buf[start + 5..]);
    let mut head = Vec::with_capacity(9);
    put_uvarint(&mut head, len as u64);
    head.extend_from_slice(&crc.to_le_bytes());
    if head.len() == 5 {
        buf[start..start + 5].copy_from_slice(&head);
    } else {
        buf.splice(start..start + 5, head);
    }
}

fn decode_rec(payload: &[u8]) -> Result<Rec> {
    let mut r = Reader::new(payload);
    let rec = match r.u8()? {
        T_CREATE => Rec::Create {
            id: r.uvarint()?,
            key: r.lbytes()?.to_vec(),
        },
        T_APPEND => Rec::Append {
            s: r.uvarint()?,
            inst: r.uvarint()?,
            p: get_point(&mut r)?,
        },
        T_DELETE => Rec::Delete {
            s: r.uvarint()?,
            inst: r.uvarint()?,
        },
        T_REPLACE => Rec::Replace {
            s: r.uvarint()?,
            inst: r.uvarint()?,
            p: get_point(&mut r)?,
        },
        T_DROP_SERIES => Rec::DropSeries { s: r.uvarint()? },
        T_META => {
            let key = r.lbytes()?.to_vec();
            let value = match r.u8()? {
                0 => None,
                1 => Some(r.lbytes()?.to_vec()),
                _ => return Err(corrupt("bad meta record")),
            };
            Rec::Meta { key, value }
        }
        T_DROP_BEFORE => Rec::DropBefore {
            s: r.uvarint()?,
            t: r.ivarint()?,
            rollup: Some(r.ivarint()?).filter(|g| *g > 0),
        },
        _ => return Err(corrupt("unknown log record type")),
    };
    if !r.is_empty() {
        return Err(corrupt("trailing bytes in log record"));
    }
    Ok(rec)
}

/// Walks the records of a log file, giving each with the offset where its
/// frame starts; returns how many bytes were whole and valid (a torn or
/// corrupt tail ends the walk, it is not an error).
pub(crate) fn replay(bytes: &[u8], mut f: impl FnMut(u64, Rec) -> Result<()>) -> Result<usize> {
    let mut r = Reader::new(bytes);
    loop {
        let start = r.pos();
        if r.is_empty() {
            return Ok(start);
        }
        let Ok(len) = r.uvarint() else {
            return Ok(start);
        };
        let Ok(crc) = r.u32le() else {
            return Ok(start);
        };
        let Ok(payload) = r.bytes(len as usize) else {
            return Ok(start);
        };
        if crc32fast::hash(payload) != crc {
            return Ok(start);
        }
        match decode_rec(payload) {
            Ok(rec) => f(start as u64, rec)?,
            // Whole, checksummed, but not a record we know: stop here
            // rather than guess.
            Err(_) => return Ok(start),
        }
    }
}

/// Name of log file `seq`.
pub(crate) fn file_name(seq: u64) -> String {
    format!("wal-{seq:016}.log")
}

/// Parses a log file name.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

#[derive(Clone, Debug, Default)]
struct Durable {
    lsn: u64,
    error: Option<Arc<str>>,
}

struct State {
    buf: Vec<u8>,
    /// Bytes logged so far (the log sequence number).
    lsn: u64,
    /// Highest lsn someone waits to see durable.
    requested: u64,
    shutdown: bool,
}

struct FileState {
    file: File,
    /// Files rotated away from and not yet fsynced.
    old: Vec<File>,
}

struct Shared {
    state: Mutex<State>,
    file: Mutex<FileState>,
    cv: Condvar,
    durable: watch::Sender<Durable>,
    fsync: bool,
}

/// The log writer.
pub(crate) struct Wal {
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

impl Wal {
    /// Starts logging into `file` (already created); `lsn` is where the
    /// byte count starts.
    pub(crate) fn start(dir: &Path, file: File, lsn: u64, fsync: bool) -> Result<Self> {
        let (durable, _) = watch::channel(Durable { lsn, error: None });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::with_capacity(WRITE_BEHIND_BYTES),
                lsn,
                requested: lsn,
                shutdown: false,
            }),
            file: Mutex::new(FileState {
                file,
                old: Vec::new(),
            }),
            cv: Condvar::new(),
            durable,
            fsync,
        });
        let s = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("dosi-tsdb-wal".into())
            .spawn(move || flusher(&s))?;
        Ok(Self {
            shared,
            flusher: Some(flusher),
            dir: dir.to_path_buf(),
        })
    }

    /// Appends framed bytes (call with the lock of what they describe held,
    /// so the log order matches the order of application).
    #[inline]
    pub(crate) fn log(&self, framed: &[u8]) {
        let mut st = self.shared.state.lock();
        st.buf.extend_from_slice(framed);
        st.lsn += framed.len() as u64;
        if st.buf.len() >= WRITE_BEHIND_BYTES {
            drop(st);
            self.shared.cv.notify_one();
        }
    }

    /// Logs with a closure that frames into the buffer directly.
    #[inline]
    pub(crate) fn log_with(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut st = self.shared.state.lock();
        let before = st.buf.len();
        f(&mut st.buf);
        st.lsn += (st.buf.len() - before) as u64;
        if st.buf.len() >= WRITE_BEHIND_BYTES {
            drop(st);
            self.shared.cv.notify_one();
        }
    }

    /// Bytes logged so far.
    pub(crate) fn lsn(&self) -> u64 {
        self.shared.state.lock().lsn
    }

    /// Waits until everything up to `target` is durable.
    pub(crate) async fn wait_durable(&self, target: u64) -> Result<()> {
        let mut rx = self.shared.durable.subscribe();
        {
            let d = rx.borrow();
            if let Some(e) = &d.error {
                return Err(Error::Io(std::io::Error::other(e.to_string())));
            }
            if d.lsn >= target {
                return Ok(());
            }
        }
        {
            let mut st = self.shared.state.lock();
            st.requested = st.requested.max(target);
        }
        self.shared.cv.notify_one();
        let d = rx
            .wait_for(|d| d.lsn >= target || d.error.is_some())
            .await
            .map_err(|_| Error::Io(std::io::Error::other("log writer stopped")))?;
        match &d.error {
            Some(e) if d.lsn < target => Err(Error::Io(std::io::Error::other(e.to_string()))),
            _ => Ok(()),
        }
    }

    /// Switches to a new file (the caller makes sure nothing is logged
    /// meanwhile). The old file is fsynced by the next flush.
    pub(crate) fn rotate(&self, new_file: File) -> Result<u64> {
        let mut st = self.shared.state.lock();
        let buf = std::mem::take(&mut st.buf);
        let lsn = st.lsn;
        let mut f = self.shared.file.lock();
        drop(st);
        if let Err(e) = f.file.write_all(&buf) {
            fail(&self.shared, &e);
            return Err(e.into());
        }
        let old = std::mem::replace(&mut f.file, new_file);
        f.old.push(old);
        Ok(lsn)
    }

    /// The directory of the log.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.cv.notify_one();
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
    }
}

fn fail(shared: &Shared, e: &std::io::Error) {
    tracing::error!(error = %e, "history log write failed");
    shared.durable.send_modify(|d| {
        d.error.get_or_insert_with(|| Arc::from(e.to_string()));
    });
}

fn flusher(shared: &Shared) {
    let mut spare: Vec<u8> = Vec::with_capacity(WRITE_BEHIND_BYTES);
    let mut published = shared.durable.borrow().lsn;
    loop {
        let mut st = shared.state.lock();
        while !(st.shutdown || st.requested > published || st.buf.len() >= WRITE_BEHIND_BYTES) {
            if shared
                .cv
                .wait_for(&mut st, Duration::from_millis(200))
                .timed_out()
                && !st.buf.is_empty()
            {
                break;
            }
        }
        let want_sync = st.requested > published || st.shutdown;
        let shutdown = st.shutdown;
        let lsn = st.lsn;
        spare.clear();
        std::mem::swap(&mut st.buf, &mut spare);
        // Take the file before letting go of the buffer so that writes keep
        // the log order.
        let mut f = shared.file.lock();
        drop(st);
        let mut res = f.file.write_all(&spare);
        if res.is_ok() && want_sync && shared.fsync {
            for o in f.old.drain(..) {
                if let Err(e) = o.sync_data() {
                    res = Err(e);
                }
            }
            if res.is_ok() {
                res = f.file.sync_data();
            }
        }
        drop(f);
        match res {
            Err(e) => fail(shared, &e),
            Ok(()) if want_sync => {
                published = lsn;
                shared.durable.send_modify(|d| d.lsn = d.lsn.max(lsn));
            }
            Ok(()) => {}
        }
        if spare.capacity() > 4 * WRITE_BEHIND_BYTES {
            spare = Vec::with_capacity(WRITE_BEHIND_BYTES);
        }
        if shutdown {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_tail_is_cut() {
        let recs = vec![
            Rec::Create {
                id: 7,
                key: b"urn:x/temp".to_vec(),
            },
            Rec::Append {
                s: 7,
                inst: 1,
                p: NewPoint {
                    recorded: 1_700_000_000_000_000,
                    observed: Some(1_700_000_000_000_001),
                    tpl: 3,
                    value: Value::Num(21.5),
                },
            },
            Rec::Replace {
                s: 7,
                inst: 1,
                p: NewPoint {
                    recorded: -4,
                    observed: None,
                    tpl: 0,
                    value: Value::Doc(Arc::from(vec![1u8; 300])),
                },
            },
            Rec::Delete { s: 7, inst: 1 },
            Rec::Meta {
                key: b"k".to_vec(),
                value: Some(b"v".to_vec()),
            },
            Rec::Meta {
                key: b"k".to_vec(),
                value: None,
            },
            Rec::DropBefore {
                s: 7,
                t: 5,
                rollup: Some(60),
            },
            Rec::DropSeries { s: 7 },
        ];
        let mut buf = Vec::new();
        for r in &recs {
            frame_rec(&mut buf, r);
        }
        let mut got = Vec::new();
        let n = replay(&buf, |_, r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(got, recs);

        let mut got = Vec::new();
        let cut = replay(&buf[..buf.len() - 2], |_, r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), recs.len() - 1);
        assert!(cut < buf.len());
    }
}
