//! Byte and bit level encodings: varints, a bounds-checked reader, and the
//! bit streams the chunk columns are made of.
//!
//! Every decoder returns [`Error::Corrupt`] on bad input; none panics.

use crate::{Error, Result};

/// A `Corrupt` error.
pub(crate) fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

/// Zigzag: small magnitudes, either sign, become small unsigned numbers.
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends an unsigned LEB128 varint.
#[inline]
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends a zigzag varint.
#[inline]
pub(crate) fn put_ivarint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, zigzag(v));
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// A bounds-checked cursor over bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| corrupt("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt("varint too long"));
            }
        }
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64> {
        Ok(unzigzag(self.uvarint()?))
    }

    /// A varint that must fit a `usize` no larger than what is left to read
    /// times `per_item` (guards allocations sized from the data).
    pub(crate) fn len(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.uvarint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes as u64) > left {
            return Err(corrupt("length exceeds the data"));
        }
        Ok(n as usize)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| corrupt("unexpected end of data"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn lbytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len(1)?;
        self.bytes(n)
    }

    pub(crate) fn u32le(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64le(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn f64le(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64le()?))
    }
}

/// Writes bit fields, most significant bit first.
#[derive(Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    acc: u128,
    nbits: u32,
}

impl BitWriter {
    /// Writes the low `n` bits of `v` (`n` ≤ 64).
    #[inline]
    pub(crate) fn write(&mut self, v: u64, n: u32) {
        if n == 0 {
            return;
        }
        let v = if n == 64 { v } else { v & ((1u64 << n) - 1) };
        self.acc = (self.acc << n) | u128::from(v);
        self.nbits += n;
        while self.nbits >= 8 {
            self.nbits -= 8;
            self.buf.push((self.acc >> self.nbits) as u8);
        }
        self.acc &= (1u128 << self.nbits) - 1;
    }

    #[inline]
    pub(crate) fn bit(&mut self, b: bool) {
        self.write(u64::from(b), 1);
    }

    /// The bytes, the last one zero-padded.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.buf.push((self.acc << (8 - self.nbits)) as u8);
        }
        self.buf
    }
}

/// Reads what [`BitWriter`] wrote; past the end is `Corrupt`.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    len_bits: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            len_bits: data.len() * 8,
        }
    }

    /// Reads `n` bits (`n` ≤ 64).
    #[inline]
    pub(crate) fn read(&mut self, n: u32) -> Result<u64> {
        if n == 0 {
            return Ok(0);
        }
        if self.pos + n as usize > self.len_bits {
            return Err(corrupt("bit stream ends early"));
        }
        let byte = self.pos / 8;
        let off = (self.pos % 8) as u32;
        let x = match self.data.get(byte..byte + 16) {
            Some(w) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(w);
                u128::from_be_bytes(a)
            }
            None => {
                let mut a = [0u8; 16];
                let rest = &self.data[byte..];
                a[..rest.len()].copy_from_slice(rest);
                u128::from_be_bytes(a)
            }
        };
        self.pos += n as usize;
        Ok(((x << off) >> (128 - n)) as u64)
    }

    #[inline]
    pub(crate) fn bit(&mut self) -> Result<bool> {
        if self.pos >= self.len_bits {
            return Err(corrupt("bit stream ends early"));
        }
        let b = (self.data[self.pos / 8] >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(b == 1)
    }
}

/// Delta-of-delta code (Gorilla, widened for µs): `0` for zero, then
/// prefixes `10`, `110`, `1110`, `11110`, `11111` for 7, 12, 20, 32 and 64
/// bit zigzag payloads.
#[inline]
pub(crate) fn put_dod(w: &mut BitWriter, dod: i64) {
    if dod == 0 {
        w.write(0, 1);
        return;
    }
    let z = zigzag(dod);
    if z < 1 << 7 {
        w.write(0b10, 2);
        w.write(z, 7);
    } else if z < 1 << 12 {
        w.write(0b110, 3);
        w.write(z, 12);
    } else if z < 1 << 20 {
        w.write(0b1110, 4);
        w.write(z, 20);
    } else if z < 1 << 32 {
        w.write(0b11110, 5);
        w.write(z, 32);
    } else {
        w.write(0b11111, 5);
        w.write(z, 64);
    }
}

/// Inverse of [`put_dod`].
#[inline]
pub(crate) fn get_dod(r: &mut BitReader) -> Result<i64> {
    if !r.bit()? {
        return Ok(0);
    }
    let n = if !r.bit()? {
        7
    } else if !r.bit()? {
        12
    } else if !r.bit()? {
        20
    } else if !r.bit()? {
        32
    } else {
        64
    };
    Ok(unzigzag(r.read(n)?))
}

/// Encodes a sequence of (wrapping) integers: the first raw, then
/// delta-of-delta codes.
pub(crate) fn encode_dod(values: impl Iterator<Item = i64>) -> Vec<u8> {
    let mut w = BitWriter::default();
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, v) in values.enumerate() {
        if i == 0 {
            w.write(v as u64, 64);
        } else {
            let delta = v.wrapping_sub(prev);
            put_dod(&mut w, delta.wrapping_sub(prev_delta));
            prev_delta = delta;
        }
        prev = v;
    }
    w.finish()
}

/// Decodes `n` integers written by [`encode_dod`].
pub(crate) fn decode_dod(data: &[u8], n: usize) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let mut r = BitReader::new(data);
    let mut prev = r.read(64)? as i64;
    out.push(prev);
    let mut delta = 0i64;
    for _ in 1..n {
        delta = delta.wrapping_add(get_dod(&mut r)?);
        prev = prev.wrapping_add(delta);
        out.push(prev);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, 1 << 63] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(Reader::new(&b).uvarint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            put_ivarint(&mut b, v);
            assert_eq!(Reader::new(&b).ivarint().unwrap(), v);
        }
        assert!(Reader::new(&[0xff; 11]).uvarint().is_err());
        assert!(Reader::new(&[0x80]).uvarint().is_err());
    }

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        let fields: Vec<(u64, u32)> = (1..=64).map(|n| (u64::MAX >> (64 - n) ^ 5, n)).collect();
        for (v, n) in &fields {
            w.write(*v, *n);
        }
        let b = w.finish();
        let mut r = BitReader::new(&b);
        for (v, n) in &fields {
            let m = if *n == 64 { u64::MAX } else { (1 << n) - 1 };
            assert_eq!(r.read(*n).unwrap(), v & m);
        }
        assert!(r.read(64).is_err());
    }

    #[test]
    fn dod_round_trip() {
        let v = vec![0, 60, 120, 180, 181, -5, i64::MAX, i64::MIN, 7, 7, 7];
        let b = encode_dod(v.iter().copied());
        assert_eq!(decode_dod(&b, v.len()).unwrap(), v);
        assert!(decode_dod(&b[..3], v.len()).is_err());
    }
}
