//! A writer for "newc" cpio archives (the format Linux's initramfs unpacker reads), with fixed metadata
//! (mtime 0, uid/gid 0) so archives are reproducible.
//!
//! Layout per entry: a 110-byte ASCII header (`070701` + 13 eight-digit hex fields), the NUL-terminated
//! name padded so header+name is a multiple of 4, then the data padded to a multiple of 4. The archive ends
//! with an entry named `TRAILER!!!`.

/// newc magic.
pub const MAGIC: &[u8; 6] = b"070701";
/// Name of the closing entry.
pub const TRAILER: &str = "TRAILER!!!";
/// Size of the fixed header.
pub const HEADER_LEN: usize = 110;

/// File type bits of `mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;

/// Builds a newc archive in memory.
#[derive(Debug, Default)]
pub struct CpioWriter {
    buf: Vec<u8>,
    next_ino: u32,
}

fn pad4(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

impl CpioWriter {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            next_ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) {
        let ino = if name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let namesize = name.len() + 1;
        let fields: [u32; 13] = [
            ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            namesize as u32,
            0, // check
        ];
        // Each entry starts 4-aligned because every previous entry ends padded.
        debug_assert_eq!(self.buf.len() % 4, 0);
        self.buf.extend_from_slice(MAGIC);
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        pad4(&mut self.buf);
        self.buf.extend_from_slice(data);
        pad4(&mut self.buf);
    }

    /// Adds a directory (`name` without leading `/`, e.g. `scenario`). Parents must be added first.
    pub fn dir(&mut self, name: &str, perm: u32) -> &mut Self {
        self.entry(
            name.trim_start_matches('/'),
            S_IFDIR | (perm & 0o7777),
            2,
            &[],
        );
        self
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(
            name.trim_start_matches('/'),
            S_IFREG | (perm & 0o7777),
            1,
            data,
        );
        self
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, 1, &[]);
        self.buf
    }
}

/// Appends archive `extra` to `base` (for instance a gzip'd initramfs) so Linux unpacks both: the
/// unpacker only recognises an uncompressed archive at a 4-byte aligned offset, and skips zero padding.
pub fn concat_archives(base: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(base.len() + extra.len() + 512);
    out.extend_from_slice(base);
    while !out.len().is_multiple_of(512) {
        out.push(0);
    }
    out.extend_from_slice(extra);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed entry: name, mode, nlink, data.
    #[derive(Debug, PartialEq)]
    struct Entry {
        name: String,
        mode: u32,
        nlink: u32,
        mtime: u32,
        data: Vec<u8>,
    }

    /// A small newc reader checking the format rules as it goes.
    fn read_all(mut b: &[u8]) -> Vec<Entry> {
        let total = b.len();
        let mut out = Vec::new();
        loop {
            let off = total - b.len();
            assert_eq!(off % 4, 0, "entry at unaligned offset {off}");
            assert_eq!(&b[..6], MAGIC);
            let field = |i: usize| {
                let s = std::str::from_utf8(&b[6 + i * 8..6 + (i + 1) * 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, nlink, mtime, filesize, namesize) = (
                field(1),
                field(4),
                field(5),
                field(6) as usize,
                field(11) as usize,
            );
            let name_end = HEADER_LEN + namesize;
            assert_eq!(b[name_end - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(b[HEADER_LEN..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.div_ceil(4) * 4;
            assert!(b[name_end..data_start].iter().all(|&x| x == 0));
            let data_end = data_start + filesize;
            let next = data_end.div_ceil(4) * 4;
            assert!(b[data_end..next].iter().all(|&x| x == 0));
            let data = b[data_start..data_end].to_vec();
            b = &b[next..];
            let done = name == TRAILER;
            out.push(Entry {
                name,
                mode,
                nlink,
                mtime,
                data,
            });
            if done {
                assert!(b.is_empty(), "bytes after trailer");
                return out;
            }
        }
    }

    #[test]
    fn round_trip() {
        let mut w = CpioWriter::new();
        w.dir("/scenario", 0o755)
            .file("scenario/run.sh", 0o755, b"#!/bin/sh\necho hi\n")
            .file("expect.json", 0o644, b"{}")
            .file("empty", 0o600, b"");
        let bytes = w.finish();
        assert_eq!(bytes.len() % 4, 0);
        let e = read_all(&bytes);
        let names: Vec<&str> = e.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "scenario",
                "scenario/run.sh",
                "expect.json",
                "empty",
                TRAILER
            ]
        );
        assert_eq!(e[0].mode, 0o040755);
        assert_eq!(e[0].nlink, 2);
        assert_eq!(e[1].mode, 0o100755);
        assert_eq!(e[1].data, b"#!/bin/sh\necho hi\n");
        assert_eq!(e[2].data, b"{}");
        assert!(e[3].data.is_empty());
        assert!(e.iter().all(|x| x.mtime == 0));
    }

    #[test]
    fn padding_for_every_name_and_data_length() {
        for name_len in 1..9 {
            for data_len in 0..9 {
                let name: String = "n".repeat(name_len);
                let data = vec![0xabu8; data_len];
                let mut w = CpioWriter::new();
                w.file(&name, 0o644, &data);
                let e = read_all(&w.finish());
                assert_eq!(e[0].name, name);
                assert_eq!(e[0].data, data);
            }
        }
    }

    #[test]
    fn header_is_ascii_hex() {
        let mut w = CpioWriter::new();
        w.file("a", 0o644, b"xyz");
        let b = w.finish();
        assert_eq!(
            &b[..HEADER_LEN],
            {
                let mut h = b"070701".to_vec();
                for f in [1u32, 0o100644, 0, 0, 1, 0, 3, 0, 0, 0, 0, 2, 0] {
                    h.extend_from_slice(format!("{f:08x}").as_bytes());
                }
                h
            }
            .as_slice()
        );
    }

    #[test]
    fn concatenation_aligns_second_archive() {
        let base = vec![0x1f, 0x8b, 1, 2, 3];
        let extra = CpioWriter::new().finish();
        let all = concat_archives(&base, &extra);
        assert_eq!(&all[..5], &base[..]);
        assert_eq!(all.len() % 4, 0);
        let start = all.len() - extra.len();
        assert_eq!(start % 4, 0);
        assert!(all[5..start].iter().all(|&b| b == 0));
        assert_eq!(read_all(&all[start..]).len(), 1);
    }
}
