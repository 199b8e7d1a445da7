//! The byte formats of the catalog's files: log records and the checkpoint.
//!
//! A record is `[len: u32 LE][crc32c of payload: u32 LE][payload]`, the payload the JSON of a
//! [`Record`]: one sequence number, the time the writer applied it, and the changes of one
//! group commit, in order. A checkpoint is one header line
//! `shardline-catalog-checkpoint v1 seq=<seq> crc32c=<hex>` and the state's JSON.
//!
//! Invariants: a record is either read back whole with its checksum, or reported as the torn
//! tail (with the offset where good data ends); a record whose checksum matches but whose
//! content does not decode is corruption, never a tail to cut.

use serde::{Deserialize, Serialize};

use super::changes::Change;

/// No single record is larger: a length beyond it is garbage, not a record to wait for.
pub(crate) const MAX_RECORD_BYTES: usize = 256 << 20;
const FRAME_HEADER: usize = 8;
const CHECKPOINT_PREFIX: &str = "shardline-catalog-checkpoint v1 ";

/// One group commit of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) seq: u64,
    /// The time the changes were applied at (deletion times, token creation times).
    pub(crate) at_ns: i64,
    pub(crate) changes: Vec<Change>,
}

/// Bytes `change` takes in a record's payload (without the frame), counted without building it.
pub(crate) fn encoded_len(change: &Change) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, change).expect("a change is plain data");
    n.0
}

/// The frame of one record. Callers keep records under [`MAX_RECORD_BYTES`].
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let payload = serde_json::to_vec(record).expect("a record is plain data");
    debug_assert!(payload.len() <= MAX_RECORD_BYTES);
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Where reading a segment stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornTail {
    /// Bytes of whole records before it.
    pub(crate) valid_len: u64,
    pub(crate) reason: String,
}

/// A segment read back.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) records: Vec<Record>,
    /// Bytes of whole records.
    pub(crate) valid_len: u64,
    pub(crate) torn: Option<TornTail>,
}

/// Reads every whole record of a segment; stops at the first frame that is cut short or fails
/// its checksum. `Err` only for a record that passed its checksum and still does not decode.
pub(crate) fn decode_segment(bytes: &[u8]) -> Result<Segment, String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let torn = loop {
        let rest = &bytes[at..];
        if rest.is_empty() {
            break None;
        }
        let tail = |reason: String| TornTail {
            valid_len: at as u64,
            reason,
        };
        if rest.len() < FRAME_HEADER {
            break Some(tail(format!("{} bytes of a record header", rest.len())));
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len > MAX_RECORD_BYTES {
            break Some(tail(format!("a record length of {len} bytes")));
        }
        let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
            break Some(tail(format!(
                "a record of {len} bytes cut short at {}",
                rest.len() - FRAME_HEADER
            )));
        };
        if crc32c::crc32c(payload) != crc {
            break Some(tail("a record failing its checksum".to_string()));
        }
        let record: Record = serde_json::from_slice(payload).map_err(|e| {
            format!("the record at byte {at} has a good checksum but does not decode ({e})")
        })?;
        records.push(record);
        at += FRAME_HEADER + len;
    };
    Ok(Segment {
        records,
        valid_len: torn.as_ref().map_or(at as u64, |t| t.valid_len),
        torn,
    })
}

/// The checkpoint file's bytes for `json`, the state after record `seq`.
pub(crate) fn encode_checkpoint(seq: u64, json: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{CHECKPOINT_PREFIX}seq={seq} crc32c={:08x}\n",
        crc32c::crc32c(json)
    )
    .into_bytes();
    out.extend_from_slice(json);
    out
}

/// `(seq, json)` of a checkpoint file, or why it cannot be trusted.
pub(crate) fn decode_checkpoint(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "the header is not text")?;
    let json = &bytes[nl + 1..];
    let fields = header
        .strip_prefix(CHECKPOINT_PREFIX)
        .ok_or_else(|| format!("unexpected header '{header}'"))?;
    let mut seq = None;
    let mut crc = None;
    for f in fields.split(' ') {
        if let Some(v) = f.strip_prefix("seq=") {
            seq = v.parse::<u64>().ok();
        } else if let Some(v) = f.strip_prefix("crc32c=") {
            crc = u32::from_str_radix(v, 16).ok();
        }
    }
    let (Some(seq), Some(stored)) = (seq, crc) else {
        return Err(format!("unexpected header '{header}'"));
    };
    let computed = crc32c::crc32c(json);
    if stored != computed {
        return Err(format!(
            "checksum mismatch: stored {stored:08x}, computed {computed:08x}"
        ));
    }
    Ok((seq, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        Record {
            seq,
            at_ns: 7,
            changes: vec![Change::CreateDatabase {
                name: format!("db{seq}"),
                retention_ns: None,
            }],
        }
    }

    #[test]
    fn records_round_trip_and_a_cut_anywhere_is_a_torn_tail() {
        let mut bytes = encode(&record(1));
        let first = bytes.len();
        bytes.extend(encode(&record(2)));
        let seg = decode_segment(&bytes).unwrap();
        assert_eq!(seg.records, vec![record(1), record(2)]);
        assert_eq!(seg.valid_len, bytes.len() as u64);
        assert!(seg.torn.is_none());
        for cut in first..bytes.len() {
            let seg = decode_segment(&bytes[..cut]).unwrap();
            assert_eq!(seg.records, vec![record(1)], "cut at {cut}");
            let expect_torn = cut > first;
            assert_eq!(seg.torn.is_some(), expect_torn, "cut at {cut}");
            assert_eq!(seg.valid_len, first as u64);
        }
    }

    #[test]
    fn a_flipped_byte_ends_the_log_there() {
        let mut bytes = encode(&record(1));
        let first = bytes.len();
        bytes.extend(encode(&record(2)));
        for i in first..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            let seg = decode_segment(&damaged).unwrap();
            assert_eq!(seg.records.len(), 1, "byte {i}");
            assert_eq!(seg.torn.unwrap().valid_len, first as u64);
        }
    }

    #[test]
    fn checkpoints_check_their_header_and_checksum() {
        let bytes = encode_checkpoint(42, b"{\"a\":1}");
        assert_eq!(decode_checkpoint(&bytes).unwrap(), (42, &b"{\"a\":1}"[..]));
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = b']';
        assert!(decode_checkpoint(&bad).unwrap_err().contains("checksum"));
        assert!(decode_checkpoint(b"nonsense").is_err());
        assert!(decode_checkpoint(b"shardline-catalog-checkpoint v1 seq=x crc32c=0\n{}").is_err());
    }
}
