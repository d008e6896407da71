//! The wire formats: CRC-32C for the records, protobuf for the `Event` in each.

use super::Event;

/// The CRC-32C (Castagnoli) table, reflected polynomial `0x82F63B78`.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32C of `data`.
pub(super) fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// The masked CRC-32C of `data`, as TFRecords store it.
pub(super) fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    // ((crc >> 15) | (crc << 17)) + 0xa282ead8
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_key(buf: &mut Vec<u8>, field: u64, wire: u8) {
    put_varint(buf, (field << 3) | u64::from(wire));
}

fn put_len(buf: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(buf, field, LEN);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// The `Event` protobuf: `wall_time` and `step` left out at zero (proto3), then either
/// `file_version` or a summary of `scalars`.
pub(super) fn encode_event(
    wall_time: f64,
    step: i64,
    file_version: Option<&str>,
    scalars: &[(&str, f32)],
) -> Vec<u8> {
    let mut buf = Vec::new();
    if wall_time.to_bits() != 0 {
        put_key(&mut buf, 1, FIXED64);
        buf.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        put_key(&mut buf, 2, VARINT);
        put_varint(&mut buf, step as u64);
    }
    if let Some(version) = file_version {
        put_len(&mut buf, 3, version.as_bytes());
    }
    if !scalars.is_empty() {
        let mut summary = Vec::new();
        for &(tag, value) in scalars {
            let mut v = Vec::new();
            put_len(&mut v, 1, tag.as_bytes());
            put_key(&mut v, 2, FIXED32);
            v.extend_from_slice(&value.to_le_bytes());
            put_len(&mut summary, 1, &v);
        }
        put_len(&mut buf, 5, &summary);
    }
    buf
}

/// Reads protobuf fields from a byte slice.
struct Fields<'a> {
    buf: &'a [u8],
}

/// A field's payload.
enum Payload<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(&'a [u8]),
    Fixed32([u8; 4]),
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!("{n} bytes expected, {} left", self.buf.len()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.take(1)?.first().expect("1 byte");
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits".into());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// The next field number and payload, `None` at the end.
    fn next_field(&mut self) -> std::result::Result<Option<(u64, Payload<'a>)>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        if field == 0 {
            return Err("field number 0".into());
        }
        let payload = match wire {
            VARINT => Payload::Varint(self.varint()?),
            FIXED64 => Payload::Fixed64(self.take(8)?.try_into().expect("8 bytes")),
            LEN => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| format!("length {n}"))?;
                Payload::Len(self.take(n)?)
            }
            FIXED32 => Payload::Fixed32(self.take(4)?.try_into().expect("4 bytes")),
            _ => return Err(format!("field {field} has unsupported wire type {wire}")),
        };
        Ok(Some((field, payload)))
    }
}

fn wrong_type(message: &str, field: u64) -> String {
    format!("{message} field {field} has the wrong wire type")
}

/// Decodes an `Event`, skipping fields it does not know.
pub(super) fn decode_event(data: &[u8]) -> std::result::Result<Event, String> {
    let mut event = Event {
        wall_time: 0.0,
        step: 0,
        file_version: None,
        scalars: Vec::new(),
    };
    let mut fields = Fields { buf: data };
    while let Some((field, payload)) = fields.next_field()? {
        match (field, payload) {
            (1, Payload::Fixed64(b)) => event.wall_time = f64::from_le_bytes(b),
            (2, Payload::Varint(v)) => event.step = v as i64,
            (3, Payload::Len(b)) => {
                let version = std::str::from_utf8(b).map_err(|e| format!("file_version: {e}"))?;
                event.file_version = Some(version.to_owned());
            }
            (5, Payload::Len(b)) => decode_summary(b, &mut event.scalars)?,
            (1..=3 | 5, _) => return Err(wrong_type("Event", field)),
            _ => {}
        }
    }
    Ok(event)
}

/// Appends the `simple_value` scalars of a `Summary` to `scalars`.
fn decode_summary(
    data: &[u8],
    scalars: &mut Vec<(String, f32)>,
) -> std::result::Result<(), String> {
    let mut fields = Fields { buf: data };
    while let Some((field, payload)) = fields.next_field()? {
        match (field, payload) {
            (1, Payload::Len(value)) => {
                let (mut tag, mut simple) = (String::new(), None);
                let mut inner = Fields { buf: value };
                while let Some((field, payload)) = inner.next_field()? {
                    match (field, payload) {
                        (1, Payload::Len(b)) => {
                            tag = std::str::from_utf8(b)
                                .map_err(|e| format!("tag: {e}"))?
                                .to_owned();
                        }
                        (2, Payload::Fixed32(b)) => simple = Some(f32::from_le_bytes(b)),
                        (1 | 2, _) => return Err(wrong_type("Summary.Value", field)),
                        _ => {}
                    }
                }
                if let Some(value) = simple {
                    scalars.push((tag, value));
                }
            }
            (1, _) => return Err(wrong_type("Summary", field)),
            _ => {}
        }
    }
    Ok(())
}
