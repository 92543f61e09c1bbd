//! The write-ahead log: segment files `wal/NNNNNNNNNNNNNNNN.wal` holding
//! records framed as `[u32 length][u32 crc32][payload]` (little endian), the
//! payload being the JSON of a [`RecordIn`]/[`RecordOut`].

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use dosi_ngsi::{Entity, EntityId, TenantId};
use serde::{Deserialize, Serialize};

use crate::{Change, Result, StoreError};

/// Bytes of a record header.
pub const HEADER: usize = 8;

/// A record as written (borrowing the caller's data).
#[derive(Serialize)]
pub enum RecordOut<'a> {
    /// An atomic commit to a tenant.
    Commit {
        /// The tenant.
        tenant: &'a TenantId,
        /// Its changes, in order.
        changes: Vec<ChangeOut<'a>>,
    },
    /// A metadata write (`value: None` removes).
    Meta {
        /// Namespace.
        ns: &'a str,
        /// Key.
        key: &'a str,
        /// New value.
        value: Option<&'a [u8]>,
    },
}

/// A change as written.
#[derive(Serialize)]
pub enum ChangeOut<'a> {
    /// Insert or replace.
    Put(&'a Entity),
    /// Remove.
    Delete(&'a EntityId),
}

/// A record as read back.
#[derive(Deserialize)]
pub enum RecordIn {
    /// An atomic commit to a tenant.
    Commit {
        /// The tenant.
        tenant: TenantId,
        /// Its changes, in order.
        changes: Vec<ChangeIn>,
    },
    /// A metadata write.
    Meta {
        /// Namespace.
        ns: String,
        /// Key.
        key: String,
        /// New value.
        value: Option<Vec<u8>>,
    },
}

/// A change as read back.
#[derive(Deserialize)]
pub enum ChangeIn {
    /// Insert or replace.
    Put(Entity),
    /// Remove.
    Delete(EntityId),
}

/// The framed bytes of a commit record.
pub fn frame_commit(tenant: &TenantId, changes: &[Change]) -> Result<Vec<u8>> {
    let changes = changes
        .iter()
        .map(|c| match c {
            Change::Put(e) => ChangeOut::Put(e),
            Change::Delete(id) => ChangeOut::Delete(id),
        })
        .collect();
    frame(&RecordOut::Commit { tenant, changes })
}

/// The framed bytes of a record.
pub fn frame(rec: &RecordOut<'_>) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; HEADER];
    serde_json::to_writer(&mut buf, rec)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode WAL record: {e}")))?;
    let len = u32::try_from(buf.len() - HEADER).map_err(|_| {
        StoreError::Corrupt(format!(
            "a single commit of {} bytes exceeds the 4 GiB record limit",
            buf.len()
        ))
    })?;
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

/// The path of segment `n`.
pub fn segment_path(wal_dir: &Path, n: u64) -> PathBuf {
    wal_dir.join(format!("{n:016}.wal"))
}

/// Segment numbers present in `wal_dir`, ascending.
pub fn list_segments(wal_dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(wal_dir).map_err(|e| io_err(wal_dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| io_err(wal_dir, e))?;
        let name = ent.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".wal"))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads every record of the segment at `path` and hands it to `apply`.
///
/// A bad record (short, bad crc) is a torn tail when it is in the last
/// segment and no valid record follows it: the file is truncated there, with
/// a warning, because that write was never acknowledged. Anywhere else it is
/// [`StoreError::Corrupt`] naming the file and offset. Returns the segment's
/// length after any truncation.
pub fn replay_segment(
    path: &Path,
    is_last: bool,
    mut apply: impl FnMut(RecordIn) -> Result<()>,
) -> Result<u64> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    let file_len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, &mut file);
    let mut offset = 0u64;
    let mut payload = Vec::new();
    loop {
        match read_record(&mut reader, offset, file_len, &mut payload) {
            Ok(None) => return Ok(offset),
            Ok(Some(len)) => {
                let rec: RecordIn = serde_json::from_slice(&payload).map_err(|e| {
                    // The crc matched, so this is not a torn write.
                    StoreError::Corrupt(format!(
                        "{}: record at offset {offset} does not decode: {e}",
                        path.display()
                    ))
                })?;
                apply(rec)?;
                offset += HEADER as u64 + len;
            }
            Err(why) => {
                drop(reader);
                let follows = valid_record_follows(&mut file, offset, file_len);
                if !is_last || follows {
                    return Err(StoreError::Corrupt(format!(
                        "{}: {why} at offset {offset}",
                        path.display()
                    )));
                }
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    dropped_bytes = file_len - offset,
                    "truncating a torn write at the end of the WAL ({why}); it was never acknowledged"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io_err(path, e))?;
                f.set_len(offset).map_err(|e| io_err(path, e))?;
                f.sync_all().map_err(|e| io_err(path, e))?;
                return Ok(offset);
            }
        }
    }
}

/// Reads the record at `offset` into `payload`: `Ok(None)` at a clean end,
/// `Ok(Some(len))` for a good record, `Err(reason)` for a bad one.
fn read_record(
    r: &mut impl Read,
    offset: u64,
    file_len: u64,
    payload: &mut Vec<u8>,
) -> std::result::Result<Option<u64>, String> {
    if offset == file_len {
        return Ok(None);
    }
    let mut header = [0u8; HEADER];
    r.read_exact(&mut header)
        .map_err(|e| short_or(e, "short record header"))?;
    let len = u64::from(u32::from_le_bytes(header[..4].try_into().expect("4 bytes")));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 {
        // Never written by us (a payload is at least `{}`): zero-filled space
        // that a crash left after the last write.
        return Err("empty record".into());
    }
    if offset + HEADER as u64 + len > file_len {
        return Err(format!(
            "record of {len} bytes runs past the end of the file"
        ));
    }
    payload.clear();
    payload.resize(len as usize, 0);
    r.read_exact(payload)
        .map_err(|e| short_or(e, "short record"))?;
    if crc32fast::hash(payload) != crc {
        return Err("record checksum mismatch".into());
    }
    Ok(Some(len))
}

fn short_or(e: std::io::Error, what: &str) -> String {
    if e.kind() == ErrorKind::UnexpectedEof {
        what.to_owned()
    } else {
        format!("{what}: {e}")
    }
}

/// True if, skipping the bad record at `offset` by its length field, a record
/// with a valid checksum follows; then the damage is not a torn tail.
fn valid_record_follows(file: &mut File, offset: u64, file_len: u64) -> bool {
    let mut header = [0u8; HEADER];
    if file.seek(SeekFrom::Start(offset)).is_err() || file.read_exact(&mut header).is_err() {
        return false;
    }
    let len = u64::from(u32::from_le_bytes(header[..4].try_into().expect("4 bytes")));
    let next = offset + HEADER as u64 + len;
    if next >= file_len || file.seek(SeekFrom::Start(next)).is_err() {
        return false;
    }
    let mut payload = Vec::new();
    matches!(
        read_record(&mut *file, next, file_len, &mut payload),
        Ok(Some(_))
    )
}

/// An IO error about `path`.
pub fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Makes a directory entry (a created or renamed file) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn meta(key: &str) -> Vec<u8> {
        frame(&RecordOut::Meta {
            ns: "n",
            key,
            value: Some(b"v"),
        })
        .unwrap()
    }

    /// Replays `bytes` as a segment; the keys read, or the error text.
    fn replay(bytes: &[u8], is_last: bool) -> (std::result::Result<Vec<String>, String>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let p = segment_path(dir.path(), 1);
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        let mut keys = Vec::new();
        let r = replay_segment(&p, is_last, |r| {
            if let RecordIn::Meta { key, .. } = r {
                keys.push(key);
            }
            Ok(())
        });
        let len = std::fs::metadata(&p).unwrap().len();
        (r.map(|_| keys).map_err(|e| e.to_string()), len)
    }

    fn check(bytes: Vec<u8>, is_last: bool, expected: std::result::Result<&[&str], &str>) {
        let (got, len) = replay(&bytes, is_last);
        match (got, expected) {
            (Ok(keys), Ok(want)) => {
                assert_eq!(keys, want);
                let good: usize = want.iter().map(|k| meta(k).len()).sum();
                assert_eq!(len, good as u64, "file truncated to the good records");
            }
            (Err(e), Err(want)) => assert!(e.contains(want), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn torn_tails_and_corruption() {
        let (a, b, c) = (meta("a"), meta("b"), meta("c"));
        let mut bad_b = b.clone();
        bad_b[HEADER + 2] ^= 0xff;
        check(cat(&[&a, &b]), true, Ok(&["a", "b"]));
        check(Vec::new(), true, Ok(&[]));
        check(cat(&[&a, &b[..3]]), true, Ok(&["a"]));
        check(cat(&[&a, &b[..HEADER + 1]]), true, Ok(&["a"]));
        check(cat(&[&a, &bad_b]), true, Ok(&["a"]));
        check(
            cat(&[&a, b"garbage that is not a record"]),
            true,
            Ok(&["a"]),
        );
        check(cat(&[&a, &[0u8; 100]]), true, Ok(&["a"]));
        check(
            cat(&[&a, &bad_b, &c]),
            true,
            Err("checksum mismatch at offset"),
        );
        check(
            cat(&[&a, &b[..3]]),
            false,
            Err("short record header at offset"),
        );
        check(
            cat(&[&a, &bad_b]),
            false,
            Err("checksum mismatch at offset"),
        );
    }
}
