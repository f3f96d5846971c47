//! Byte-level helpers of the codec: varints, zigzag, bounds-checked readers, bit I/O.

use super::{Result, corrupt};

// ---------------------------------------------------------------------------
// Byte-level helpers
// ---------------------------------------------------------------------------

#[inline]
pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub(super) fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(super) fn u8(&mut self) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => corrupt("truncated"),
        }
    }

    #[inline]
    pub(super) fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return corrupt("varint overflow");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return corrupt("varint overflow");
            }
        }
    }

    #[inline]
    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return corrupt("truncated");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(super) fn u64_le(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
}

/// LSB-first bit writer appending to a byte vector.
pub(super) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    pub(super) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Append the low `w` bits of `v` (`w <= 64`, `v < 2^w`).
    #[inline]
    pub(super) fn put(&mut self, v: u64, w: u32) {
        if w == 0 {
            return;
        }
        self.acc |= v << self.n;
        let total = self.n + w;
        if total >= 64 {
            self.out.extend_from_slice(&self.acc.to_le_bytes());
            self.acc = if self.n == 0 { 0 } else { v >> (64 - self.n) };
            self.n = total - 64;
        } else {
            self.n = total;
        }
    }

    pub(super) fn finish(self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

/// LSB-first bit reader; every read is bounds-checked.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            end: data.len().saturating_mul(8),
        }
    }

    #[inline]
    pub(super) fn window(&self, byte: usize) -> u128 {
        if let Some(s) = self.data.get(byte..byte + 16) {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            u128::from_le_bytes(a)
        } else {
            let mut a = [0u8; 16];
            let s = self.data.get(byte..).unwrap_or(&[]);
            a[..s.len()].copy_from_slice(s);
            u128::from_le_bytes(a)
        }
    }

    /// Read `w <= 64` bits.
    #[inline]
    pub(super) fn get(&mut self, w: u32) -> Result<u64> {
        if w == 0 {
            return Ok(0);
        }
        if self.pos + w as usize > self.end {
            return corrupt("truncated bit stream");
        }
        let word = self.window(self.pos >> 3) >> (self.pos & 7);
        self.pos += w as usize;
        Ok(word as u64 & mask(w))
    }

    /// Bytes consumed so far (partial last byte included).
    pub(super) fn consumed(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

#[inline]
pub(super) fn mask(w: u32) -> u64 {
    if w >= 64 { u64::MAX } else { (1u64 << w) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_and_zigzag() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, 1 << 63] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
