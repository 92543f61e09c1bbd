//! Sealed chunks: the points of one series in one time partition, sorted by
//! (recorded, instance), compressed column by column.
//!
//! Layout: version byte, point count, then seven length-prefixed columns
//! (recorded, instance, observed, template, kind, number, document) and a
//! CRC-32 of everything before it.
//!
//! - recorded and instance: first value raw, then delta-of-delta codes;
//! - observed, as an offset from recorded: per point `0` = as predicted
//!   (absent again after an absent point, else the previous offset plus the
//!   previous change of offset — so both "observed = recorded + c" and
//!   back-filled regular series, where recorded is constant and observed
//!   advances steadily, cost one bit), `10` = absent, `11` + 7-bit width +
//!   zigzag of the miss (offset − prediction);
//! - template and kind: runs of (length, value) varints;
//! - numbers: either "decimal" (each value is `m / 10^k` for one `k` per
//!   chunk; deltas of `m` in a prefix code, raw bits as the escape) or
//!   Gorilla XOR, whichever is smaller;
//! - documents: varint code, 0 = new (length + bytes), `i` = the `i`-th
//!   distinct document seen before in this chunk.

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{
    corrupt, decode_dod, encode_dod, put_bytes, put_uvarint, unzigzag, zigzag, BitReader,
    BitWriter, Reader,
};
use crate::{Point, Result, Value};

/// Version 2 predicts the observed offset linearly (version 1 repeated it).
const VERSION: u8 = 2;
const KIND_NUM: u8 = 0;
const KIND_DOC: u8 = 1;
const KIND_DEL: u8 = 2;
const DICT_MAX: usize = 4096;

/// Count, numeric count, sum, sum of squares, min and max of some points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    pub count: u64,
    pub num: u64,
    pub sum: f64,
    pub sumsq: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            count: 0,
            num: 0,
            sum: 0.0,
            sumsq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Summary {
    #[inline]
    pub(crate) fn add_num(&mut self, x: f64) {
        self.count += 1;
        self.num += 1;
        self.sum += x;
        self.sumsq += x * x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    #[inline]
    pub(crate) fn add(&mut self, v: &Value) {
        match v {
            Value::Num(x) => self.add_num(*x),
            Value::Doc(_) => self.count += 1,
            Value::Deleted => {}
        }
    }

    pub(crate) fn merge(&mut self, o: &Summary) {
        self.count += o.count;
        self.num += o.num;
        self.sum += o.sum;
        self.sumsq += o.sumsq;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, self.count);
        put_uvarint(buf, self.num);
        if self.num > 0 {
            for f in [self.sum, self.sumsq, self.min, self.max] {
                buf.extend_from_slice(&f.to_bits().to_le_bytes());
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self> {
        let mut s = Summary {
            count: r.uvarint()?,
            num: r.uvarint()?,
            ..Summary::default()
        };
        if s.num > 0 {
            s.sum = r.f64le()?;
            s.sumsq = r.f64le()?;
            s.min = r.f64le()?;
            s.max = r.f64le()?;
        }
        Ok(s)
    }
}

/// What the index keeps about a chunk (enough to skip it or to answer an
/// aggregate without decoding it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChunkMeta {
    pub n: u32,
    pub min_rec: i64,
    pub max_rec: i64,
    /// Smallest and largest observed time, if any point has one.
    pub obs: Option<(i64, i64)>,
    pub min_inst: u64,
    pub max_inst: u64,
    pub summary: Summary,
}

impl ChunkMeta {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, u64::from(self.n));
        crate::codec::put_ivarint(buf, self.min_rec);
        put_uvarint(buf, self.max_rec.wrapping_sub(self.min_rec) as u64);
        match self.obs {
            None => buf.push(0),
            Some((a, b)) => {
                buf.push(1);
                crate::codec::put_ivarint(buf, a);
                put_uvarint(buf, b.wrapping_sub(a) as u64);
            }
        }
        put_uvarint(buf, self.min_inst);
        put_uvarint(buf, self.max_inst.wrapping_sub(self.min_inst));
        self.summary.encode(buf);
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self> {
        let n = u32::try_from(r.uvarint()?).map_err(|_| corrupt("chunk too large"))?;
        let min_rec = r.ivarint()?;
        let max_rec = min_rec.wrapping_add(r.uvarint()? as i64);
        let obs = match r.u8()? {
            0 => None,
            1 => {
                let a = r.ivarint()?;
                Some((a, a.wrapping_add(r.uvarint()? as i64)))
            }
            _ => return Err(corrupt("bad chunk index entry")),
        };
        let min_inst = r.uvarint()?;
        let max_inst = min_inst.wrapping_add(r.uvarint()?);
        let summary = Summary::decode(r)?;
        Ok(Self {
            n,
            min_rec,
            max_rec,
            obs,
            min_inst,
            max_inst,
            summary,
        })
    }
}

fn kind_of(v: &Value) -> u8 {
    match v {
        Value::Num(_) => KIND_NUM,
        Value::Doc(_) => KIND_DOC,
        Value::Deleted => KIND_DEL,
    }
}

/// Encodes points sorted by (recorded, instance); at least one.
pub(crate) fn encode(points: &[Point]) -> (Vec<u8>, ChunkMeta) {
    debug_assert!(!points.is_empty());
    let mut meta = ChunkMeta {
        n: points.len() as u32,
        min_rec: i64::MAX,
        max_rec: i64::MIN,
        obs: None,
        min_inst: u64::MAX,
        max_inst: 0,
        summary: Summary::default(),
    };
    for p in points {
        meta.min_rec = meta.min_rec.min(p.recorded);
        meta.max_rec = meta.max_rec.max(p.recorded);
        meta.min_inst = meta.min_inst.min(p.instance);
        meta.max_inst = meta.max_inst.max(p.instance);
        if let Some(o) = p.observed {
            meta.obs = Some(meta.obs.map_or((o, o), |(a, b)| (a.min(o), b.max(o))));
        }
        meta.summary.add(&p.value);
    }

    let rec = encode_dod(points.iter().map(|p| p.recorded));
    let inst = encode_dod(points.iter().map(|p| p.instance as i64));

    let mut w = BitWriter::default();
    let mut pred = ObsPredictor::default();
    for p in points {
        let cur = p.observed.map(|o| o.wrapping_sub(p.recorded));
        let guess = pred.guess();
        if cur == guess {
            w.bit(false);
        } else {
            w.bit(true);
            match cur {
                None => w.bit(false),
                Some(off) => {
                    w.bit(true);
                    let z = zigzag(off.wrapping_sub(guess.unwrap_or(0)));
                    let width = 64 - z.leading_zeros();
                    w.write(u64::from(width), 7);
                    w.write(z, width);
                }
            }
        }
        pred.saw(cur);
    }
    let obs = w.finish();

    let mut tpl = Vec::new();
    for_runs(points.iter().map(|p| p.tpl), |run, t| {
        put_uvarint(&mut tpl, run);
        put_uvarint(&mut tpl, u64::from(t));
    });
    let mut kind = Vec::new();
    for_runs(points.iter().map(|p| kind_of(&p.value)), |run, k| {
        put_uvarint(&mut kind, run);
        kind.push(k);
    });

    let nums: Vec<f64> = points
        .iter()
        .filter_map(|p| match p.value {
            Value::Num(x) => Some(x),
            _ => None,
        })
        .collect();
    let num = encode_nums(&nums);

    let mut doc = Vec::new();
    let mut dict: HashMap<&[u8], u64> = HashMap::new();
    for p in points {
        if let Value::Doc(d) = &p.value {
            match dict.get(&d[..]) {
                Some(i) => put_uvarint(&mut doc, *i),
                None => {
                    put_uvarint(&mut doc, 0);
                    put_bytes(&mut doc, d);
                    if dict.len() < DICT_MAX {
                        let i = dict.len() as u64 + 1;
                        dict.insert(d, i);
                    }
                }
            }
        }
    }

    let mut out = Vec::with_capacity(16 + rec.len() + num.len() + doc.len());
    out.push(VERSION);
    put_uvarint(&mut out, points.len() as u64);
    for col in [&rec, &inst, &obs, &tpl, &kind, &num, &doc] {
        put_bytes(&mut out, col);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    (out, meta)
}

fn for_runs<T: PartialEq + Copy>(it: impl Iterator<Item = T>, mut f: impl FnMut(u64, T)) {
    let mut cur: Option<(T, u64)> = None;
    for v in it {
        cur = match cur {
            Some((c, n)) if c == v => Some((c, n + 1)),
            Some((c, n)) => {
                f(n, c);
                Some((v, 1))
            }
            None => Some((v, 1)),
        };
    }
    if let Some((c, n)) = cur {
        f(n, c);
    }
}

const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];

/// `x` as `m / 10^k`, if that gives back exactly the same bits.
#[inline]
fn as_decimal(x: f64, k: usize) -> Option<i64> {
    let m = (x * POW10[k]).round();
    if m.is_nan() || m.abs() >= 9.0e15 {
        return None;
    }
    // Through the integer, as the decoder does (this also keeps -0.0 out).
    let m = m as i64;
    ((m as f64 / POW10[k]).to_bits() == x.to_bits()).then_some(m)
}

fn encode_nums(nums: &[f64]) -> Vec<u8> {
    if nums.is_empty() {
        return Vec::new();
    }
    // The decimal scale with the fewest escapes (smallest on ties).
    let mut best = (usize::MAX, 0usize);
    for k in 0..POW10.len() {
        let misses = nums.iter().filter(|x| as_decimal(**x, k).is_none()).count();
        if misses < best.0 {
            best = (misses, k);
        }
        if misses == 0 {
            break;
        }
    }
    let xor = encode_xor(nums);
    if best.0 < nums.len() {
        let dec = encode_decimal(nums, best.1);
        if dec.len() <= xor.len() {
            return dec;
        }
    }
    xor
}

fn encode_decimal(nums: &[f64], k: usize) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.write(1 + k as u64, 8);
    let mut prev = 0i64;
    for x in nums {
        match as_decimal(*x, k) {
            Some(m) => {
                let d = m.wrapping_sub(prev);
                prev = m;
                if d == 0 {
                    w.write(0, 1);
                    continue;
                }
                let z = zigzag(d);
                if z < 1 << 6 {
                    w.write(0b10, 2);
                    w.write(z, 6);
                } else if z < 1 << 14 {
                    w.write(0b110, 3);
                    w.write(z, 14);
                } else if z < 1 << 30 {
                    w.write(0b1110, 4);
                    w.write(z, 30);
                } else {
                    w.write(0b11110, 5);
                    w.write(z, 64);
                }
            }
            None => {
                w.write(0b11111, 5);
                w.write(x.to_bits(), 64);
            }
        }
    }
    w.finish()
}

fn encode_xor(nums: &[f64]) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.write(0, 8);
    let mut prev = 0u64;
    let mut window: Option<(u32, u32)> = None;
    for (i, x) in nums.iter().enumerate() {
        let bits = x.to_bits();
        if i == 0 {
            w.write(bits, 64);
            prev = bits;
            continue;
        }
        let xor = bits ^ prev;
        prev = bits;
        if xor == 0 {
            w.write(0, 1);
            continue;
        }
        let lead = xor.leading_zeros().min(63);
        let trail = xor.trailing_zeros();
        match window {
            Some((pl, pt)) if lead >= pl && trail >= pt => {
                w.write(0b10, 2);
                w.write(xor >> pt, 64 - pl - pt);
            }
            _ => {
                let len = 64 - lead - trail;
                w.write(0b11, 2);
                w.write(u64::from(lead), 6);
                w.write(u64::from(len - 1), 6);
                w.write(xor >> trail, len);
                window = Some((lead, trail));
            }
        }
    }
    w.finish()
}

fn decode_nums(col: &[u8], n: usize, out: &mut Vec<f64>) -> Result<()> {
    out.clear();
    if n == 0 {
        return Ok(());
    }
    out.reserve(n);
    let mut r = BitReader::new(col);
    let mode = r.read(8)? as usize;
    if mode == 0 {
        let mut prev = r.read(64)?;
        out.push(f64::from_bits(prev));
        let mut window = (0u32, 0u32);
        for _ in 1..n {
            if r.bit()? {
                if r.bit()? {
                    let lead = r.read(6)? as u32;
                    let len = r.read(6)? as u32 + 1;
                    if lead + len > 64 {
                        return Err(corrupt("bad XOR window"));
                    }
                    window = (lead, 64 - lead - len);
                }
                let (pl, pt) = window;
                if pl + pt >= 64 {
                    return Err(corrupt("XOR window before any"));
                }
                prev ^= r.read(64 - pl - pt)? << pt;
            }
            out.push(f64::from_bits(prev));
        }
    } else {
        let k = mode - 1;
        let scale = *POW10.get(k).ok_or_else(|| corrupt("bad number mode"))?;
        let mut m = 0i64;
        for _ in 0..n {
            if !r.bit()? {
                out.push(m as f64 / scale);
                continue;
            }
            let width = if !r.bit()? {
                6
            } else if !r.bit()? {
                14
            } else if !r.bit()? {
                30
            } else if !r.bit()? {
                64
            } else {
                out.push(f64::from_bits(r.read(64)?));
                continue;
            };
            m = m.wrapping_add(unzigzag(r.read(width)?));
            out.push(m as f64 / scale);
        }
    }
    Ok(())
}

/// A parsed chunk: columns located, CRC checked, nothing decoded yet.
pub(crate) struct ChunkView<'a> {
    version: u8,
    n: usize,
    cols: [&'a [u8]; 7],
}

/// The columns a caller wants decoded.
#[derive(Default)]
pub(crate) struct Columns {
    pub kinds: Vec<u8>,
    pub nums: Vec<f64>,
    pub docs: Vec<Arc<[u8]>>,
}

impl<'a> ChunkView<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 5 {
            return Err(corrupt("chunk too short"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != want {
            return Err(corrupt("chunk checksum mismatch"));
        }
        let mut r = Reader::new(body);
        let version = r.u8()?;
        if version != VERSION && version != 1 {
            return Err(corrupt("unknown chunk version"));
        }
        let n = r.uvarint()?;
        if n == 0 || n > (body.len() as u64) * 8 {
            return Err(corrupt("bad chunk point count"));
        }
        let mut cols: [&[u8]; 7] = [&[]; 7];
        for c in &mut cols {
            *c = r.lbytes()?;
        }
        Ok(Self {
            version,
            n: n as usize,
            cols,
        })
    }

    pub(crate) fn recorded(&self) -> Result<Vec<i64>> {
        decode_dod(self.cols[0], self.n)
    }

    pub(crate) fn instances(&self) -> Result<Vec<u64>> {
        Ok(decode_dod(self.cols[1], self.n)?
            .into_iter()
            .map(|v| v as u64)
            .collect())
    }

    pub(crate) fn observed(&self, rec: &[i64]) -> Result<Vec<Option<i64>>> {
        let mut r = BitReader::new(self.cols[2]);
        let mut out = Vec::with_capacity(self.n);
        let mut pred = ObsPredictor::default();
        // Version 1 repeated the previous offset (no change of offset).
        let linear = self.version >= 2;
        for t in rec {
            let guess = if linear { pred.guess() } else { pred.last };
            let cur = if r.bit()? {
                if r.bit()? {
                    let width = r.read(7)? as u32;
                    if width > 64 {
                        return Err(corrupt("bad observed width"));
                    }
                    let miss = unzigzag(r.read(width)?);
                    Some(if linear {
                        miss.wrapping_add(guess.unwrap_or(0))
                    } else {
                        miss
                    })
                } else {
                    None
                }
            } else {
                guess
            };
            pred.saw(cur);
            out.push(cur.map(|off| t.wrapping_add(off)));
        }
        Ok(out)
    }

    fn runs<T: Copy>(
        &self,
        col: usize,
        mut val: impl FnMut(&mut Reader) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut r = Reader::new(self.cols[col]);
        let mut out = Vec::with_capacity(self.n);
        while !r.is_empty() {
            let run = r.uvarint()?;
            let v = val(&mut r)?;
            if run == 0 || run > (self.n - out.len()) as u64 {
                return Err(corrupt("bad run length"));
            }
            out.extend(std::iter::repeat_n(v, run as usize));
        }
        if out.len() != self.n {
            return Err(corrupt("runs do not cover the chunk"));
        }
        Ok(out)
    }

    pub(crate) fn tpls(&self) -> Result<Vec<u32>> {
        self.runs(3, |r| {
            u32::try_from(r.uvarint()?).map_err(|_| corrupt("template out of range"))
        })
    }

    pub(crate) fn kinds(&self) -> Result<Vec<u8>> {
        self.runs(4, |r| match r.u8()? {
            k @ (KIND_NUM | KIND_DOC | KIND_DEL) => Ok(k),
            _ => Err(corrupt("bad value kind")),
        })
    }

    pub(crate) fn nums(&self, n: usize, out: &mut Vec<f64>) -> Result<()> {
        decode_nums(self.cols[5], n, out)
    }

    pub(crate) fn docs(&self, n: usize) -> Result<Vec<Arc<[u8]>>> {
        let mut r = Reader::new(self.cols[6]);
        let mut dict: Vec<Arc<[u8]>> = Vec::new();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let code = r.uvarint()?;
            if code == 0 {
                let d: Arc<[u8]> = Arc::from(r.lbytes()?);
                if dict.len() < DICT_MAX {
                    dict.push(d.clone());
                }
                out.push(d);
            } else {
                let d = dict
                    .get((code - 1) as usize)
                    .ok_or_else(|| corrupt("bad document reference"))?;
                out.push(d.clone());
            }
        }
        Ok(out)
    }

    /// Decodes the columns needed for values: kinds, numbers and (if
    /// `docs`) documents.
    pub(crate) fn values_into(&self, cols: &mut Columns, docs: bool) -> Result<()> {
        cols.kinds = self.kinds()?;
        let nn = cols.kinds.iter().filter(|k| **k == KIND_NUM).count();
        self.nums(nn, &mut cols.nums)?;
        if docs {
            let nd = cols.kinds.iter().filter(|k| **k == KIND_DOC).count();
            cols.docs = self.docs(nd)?;
        }
        Ok(())
    }

    /// Every point.
    pub(crate) fn points(&self) -> Result<Vec<Point>> {
        let rec = self.recorded()?;
        let inst = self.instances()?;
        let obs = self.observed(&rec)?;
        let tpl = self.tpls()?;
        let mut cols = Columns::default();
        self.values_into(&mut cols, true)?;
        let (mut ni, mut di) = (0, 0);
        let mut out = Vec::with_capacity(self.n);
        for i in 0..self.n {
            let value = match cols.kinds[i] {
                KIND_NUM => {
                    ni += 1;
                    Value::Num(cols.nums[ni - 1])
                }
                KIND_DOC => {
                    di += 1;
                    Value::Doc(cols.docs[di - 1].clone())
                }
                _ => Value::Deleted,
            };
            out.push(Point {
                instance: inst[i],
                recorded: rec[i],
                observed: obs[i],
                tpl: tpl[i],
                value,
            });
        }
        Ok(out)
    }
}

/// Kind codes, for callers walking [`Columns`].
pub(crate) mod kind {
    pub(crate) const NUM: u8 = super::KIND_NUM;
    pub(crate) const DOC: u8 = super::KIND_DOC;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(i: u64, t: i64, o: Option<i64>, tpl: u32, v: Value) -> Point {
        Point {
            instance: i,
            recorded: t,
            observed: o,
            tpl,
            value: v,
        }
    }

    #[test]
    fn round_trip_mixed() {
        let doc: Arc<[u8]> = Arc::from(&b"{\"a\":1}"[..]);
        let pts = vec![
            pt(1, -5, None, 0, Value::Num(21.5)),
            pt(3, 60, Some(61), 0, Value::Num(-0.0)),
            pt(2, 60, Some(61), 7, Value::Doc(doc.clone())),
            pt(9, 120, Some(i64::MIN), 7, Value::Deleted),
            pt(10, i64::MAX, None, u32::MAX, Value::Doc(doc)),
            pt(11, i64::MAX, Some(5), 1, Value::Num(f64::NAN)),
            pt(12, i64::MAX, Some(5), 1, Value::Num(1e300)),
        ];
        let (b, meta) = encode(&pts);
        let v = ChunkView::parse(&b).unwrap();
        let got = v.points().unwrap();
        assert_eq!(got.len(), pts.len());
        for (a, b) in got.iter().zip(&pts) {
            assert_eq!(
                (a.instance, a.recorded, a.observed, a.tpl),
                (b.instance, b.recorded, b.observed, b.tpl)
            );
            match (&a.value, &b.value) {
                (Value::Num(x), Value::Num(y)) => assert_eq!(x.to_bits(), y.to_bits()),
                (x, y) => assert_eq!(x, y),
            }
        }
        assert_eq!(meta.n, 7);
        assert_eq!(meta.summary.count, 6);
        assert_eq!(meta.summary.num, 4);
        let mut bad = b.clone();
        bad[3] ^= 1;
        assert!(ChunkView::parse(&bad).is_err());
    }

    #[test]
    fn decimal_and_xor_round_trip() {
        for nums in [
            vec![21.3, 21.4, 21.4, 19.9, 1e-7, 3.0],
            vec![0.1 + 0.2, std::f64::consts::PI, -1.0 / 3.0],
        ] {
            let b = encode_nums(&nums);
            let mut out = Vec::new();
            decode_nums(&b, nums.len(), &mut out).unwrap();
            let bits: Vec<u64> = out.iter().map(|x| x.to_bits()).collect();
            let want: Vec<u64> = nums.iter().map(|x| x.to_bits()).collect();
            assert_eq!(bits, want);
        }
    }
}

/// Predicts the next observed offset: absent after an absent point, else
/// the last offset plus the last change of offset.
#[derive(Default)]
struct ObsPredictor {
    last: Option<i64>,
    step: i64,
}

impl ObsPredictor {
    fn guess(&self) -> Option<i64> {
        self.last.map(|o| o.wrapping_add(self.step))
    }
    fn saw(&mut self, cur: Option<i64>) {
        if let (Some(c), Some(l)) = (cur, self.last) {
            self.step = c.wrapping_sub(l);
        } else if cur.is_some() {
            self.step = 0;
        }
        self.last = cur;
    }
}
