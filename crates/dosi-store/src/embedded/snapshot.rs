//! Checkpoints: `snapshot/NNNNNNNNNNNNNNNN.snap` holds the whole state as of
//! the start of WAL segment `N` (every segment below `N` is covered by it).
//!
//! Format: `DOSISNAP` version:u8, then varints and byte strings:
//! next_seq, names(n, str*), meta(n, (ns, key, bytes)*),
//! tenants(n, (tenant, n, (seq, id, blob, has_bbox:u8, [4 × f64])*)*),
//! then the crc32 of everything before it (u32 LE).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dosi_ngsi::model::Iri;
use dosi_ngsi::{EntityId, TenantId};

use super::codec::{put_str, put_var};
use super::state::{Row, RowImage};
use super::wal::{io_err, sync_dir};
use crate::{Result, StoreError};

const MAGIC: &[u8; 8] = b"DOSISNAP";
const VERSION: u8 = 1;

/// Everything a snapshot holds.
#[derive(Default)]
pub struct Image {
    /// The next creation sequence to hand out.
    pub next_seq: u64,
    /// The names table (blobs refer to it by index).
    pub names: Vec<Iri>,
    /// Metadata `(ns, key, value)`.
    pub meta: Vec<(String, String, Vec<u8>)>,
    /// Tenants with their rows in creation order.
    pub tenants: Vec<(TenantId, Vec<RowImage>)>,
}

/// The path of the snapshot covering segments below `n`.
pub fn snapshot_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.snap"))
}

/// Snapshot numbers present in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let ent = ent.map_err(|e| io_err(dir, e))?;
        if let Some(n) = ent
            .file_name()
            .to_str()
            .and_then(|s| s.strip_suffix(".snap"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Writes `image` as snapshot `n` of `dir` durably (temp file, fsync,
/// rename, fsync of the directory).
pub fn write(dir: &Path, n: u64, image: &Image) -> Result<PathBuf> {
    let path = snapshot_path(dir, n);
    let tmp = path.with_extension("snap.tmp");
    let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut w = HashWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
        scratch: Vec::with_capacity(1 << 10),
    };
    let io = |e| io_err(&tmp, e);
    w.raw(MAGIC).map_err(io)?;
    w.raw(&[VERSION]).map_err(io)?;
    w.var(image.next_seq).map_err(io)?;
    w.var(image.names.len() as u64).map_err(io)?;
    for name in &image.names {
        w.str(name).map_err(io)?;
    }
    w.var(image.meta.len() as u64).map_err(io)?;
    for (ns, key, value) in &image.meta {
        w.str(ns).map_err(io)?;
        w.str(key).map_err(io)?;
        w.bytes(value).map_err(io)?;
    }
    w.var(image.tenants.len() as u64).map_err(io)?;
    for (tenant, rows) in &image.tenants {
        w.str(tenant.as_str()).map_err(io)?;
        w.var(rows.len() as u64).map_err(io)?;
        for (seq, row, bbox) in rows {
            w.var(*seq).map_err(io)?;
            w.str(row.id.as_str()).map_err(io)?;
            w.bytes(&row.blob).map_err(io)?;
            match bbox {
                None => w.raw(&[0]).map_err(io)?,
                Some(b) => {
                    w.raw(&[1]).map_err(io)?;
                    for x in b {
                        w.raw(&x.to_le_bytes()).map_err(io)?;
                    }
                }
            }
        }
    }
    let crc = w.crc.clone().finalize();
    let mut inner = w.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(io)?;
    let file = inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(dir)?;
    Ok(path)
}

struct HashWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    scratch: Vec<u8>,
}

impl<W: Write> HashWriter<W> {
    fn raw(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.inner.write_all(b)
    }
    fn var(&mut self, v: u64) -> std::io::Result<()> {
        self.scratch.clear();
        put_var(&mut self.scratch, v);
        let s = std::mem::take(&mut self.scratch);
        let r = self.raw(&s);
        self.scratch = s;
        r
    }
    fn str(&mut self, s: &str) -> std::io::Result<()> {
        self.scratch.clear();
        put_str(&mut self.scratch, s);
        let s = std::mem::take(&mut self.scratch);
        let r = self.raw(&s);
        self.scratch = s;
        r
    }
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.var(b.len() as u64)?;
        self.raw(b)
    }
}

/// Reads the snapshot at `path`.
pub fn read(path: &Path) -> Result<Image> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut r = HashReader {
        inner: BufReader::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
        left: len.saturating_sub(4),
        buf: Vec::new(),
    };
    let bad = |why: &str| StoreError::Corrupt(format!("snapshot {}: {why}", path.display()));
    let mut magic = [0u8; 9];
    r.exact(&mut magic).map_err(|_| bad("too short"))?;
    if &magic[..8] != MAGIC || magic[8] != VERSION {
        return Err(bad("not a dosi snapshot of a known version"));
    }
    let mut image = Image {
        next_seq: r.var().ok_or_else(|| bad("truncated"))?,
        ..Image::default()
    };
    let n = r.count().ok_or_else(|| bad("truncated"))?;
    for _ in 0..n {
        image
            .names
            .push(Iri::from(r.string().ok_or_else(|| bad("bad name"))?));
    }
    let n = r.count().ok_or_else(|| bad("truncated"))?;
    for _ in 0..n {
        let ns = r.string().ok_or_else(|| bad("bad meta"))?.to_owned();
        let key = r.string().ok_or_else(|| bad("bad meta"))?.to_owned();
        let value = r.bytes().ok_or_else(|| bad("bad meta"))?.to_vec();
        image.meta.push((ns, key, value));
    }
    let n = r.count().ok_or_else(|| bad("truncated"))?;
    for _ in 0..n {
        let tenant = r.string().ok_or_else(|| bad("bad tenant"))?;
        let tenant = if tenant.is_empty() {
            TenantId::default_tenant()
        } else {
            TenantId::parse(tenant).map_err(|_| bad("bad tenant name"))?
        };
        let k = r.count().ok_or_else(|| bad("truncated"))?;
        let mut rows = Vec::with_capacity(k);
        for _ in 0..k {
            let seq = r.var().ok_or_else(|| bad("truncated row"))?;
            let id = EntityId::new_unchecked(r.string().ok_or_else(|| bad("bad entity id"))?);
            let blob: Arc<[u8]> = Arc::from(r.bytes().ok_or_else(|| bad("truncated row"))?);
            let mut flag = [0u8; 1];
            r.exact(&mut flag).map_err(|_| bad("truncated row"))?;
            let bbox = if flag[0] == 1 {
                let mut b = [0f64; 4];
                for x in &mut b {
                    let mut raw = [0u8; 8];
                    r.exact(&mut raw).map_err(|_| bad("truncated row"))?;
                    *x = f64::from_le_bytes(raw);
                }
                Some(b)
            } else {
                None
            };
            rows.push((seq, Row { id, blob }, bbox));
        }
        image.tenants.push((tenant, rows));
    }
    if r.left != 0 {
        return Err(bad("unexpected bytes before the checksum"));
    }
    let want = r.crc.clone().finalize();
    let mut crc = [0u8; 4];
    r.inner
        .read_exact(&mut crc)
        .map_err(|_| bad("missing checksum"))?;
    if u32::from_le_bytes(crc) != want {
        return Err(bad("checksum mismatch"));
    }
    Ok(image)
}

/// Reads and hashes the body, never past `left` bytes, so a corrupt length
/// cannot make us allocate more than the file holds.
struct HashReader<R> {
    inner: R,
    crc: crc32fast::Hasher,
    left: u64,
    buf: Vec<u8>,
}

impl<R: Read> HashReader<R> {
    fn exact(&mut self, out: &mut [u8]) -> std::io::Result<()> {
        if out.len() as u64 > self.left {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.inner.read_exact(out)?;
        self.left -= out.len() as u64;
        self.crc.update(out);
        Ok(())
    }
    fn var(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let mut b = [0u8; 1];
            self.exact(&mut b).ok()?;
            out |= u64::from(b[0] & 0x7f) << shift;
            if b[0] & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }
    fn count(&mut self) -> Option<usize> {
        let n = self.var()?;
        (n <= self.left).then_some(n as usize)
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let n = self.count()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(n, 0);
        let ok = self.exact(&mut buf).is_ok();
        self.buf = buf;
        ok.then_some(&self.buf[..])
    }
    fn string(&mut self) -> Option<&str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        Image {
            next_seq: 7,
            names: vec![Iri::from("urn:T")],
            meta: vec![("ns".into(), "k".into(), b"v".to_vec())],
            tenants: vec![
                (TenantId::default_tenant(), vec![]),
                (
                    TenantId::parse("t1").unwrap(),
                    vec![
                        (
                            3,
                            Row {
                                id: EntityId::new_unchecked("urn:a"),
                                blob: Arc::from(&b"\x01\x00"[..]),
                            },
                            Some([1.0, 2.0, 3.0, 4.0]),
                        ),
                        (
                            5,
                            Row {
                                id: EntityId::new_unchecked("urn:b"),
                                blob: Arc::from(&b""[..]),
                            },
                            None,
                        ),
                    ],
                ),
            ],
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), 4, &image()).unwrap();
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![4]);
        let back = read(&p).unwrap();
        assert_eq!(back.next_seq, 7);
        assert_eq!(back.names, image().names);
        assert_eq!(back.meta, image().meta);
        let rows = &back.tenants[1].1;
        assert_eq!(back.tenants[1].0.as_str(), "t1");
        assert_eq!(
            (rows[0].0, rows[0].1.id.as_str(), &*rows[0].1.blob),
            (3, "urn:a", &b"\x01\x00"[..])
        );
        assert_eq!(rows[0].2, Some([1.0, 2.0, 3.0, 4.0]));
        assert_eq!(rows[1].2, None);

        let bytes = std::fs::read(&p).unwrap();
        for cut in 0..bytes.len() {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            assert!(read(&p).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            std::fs::write(&p, &b).unwrap();
            assert!(read(&p).is_err(), "flip at {i}");
        }
    }
}
