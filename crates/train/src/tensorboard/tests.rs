use super::wire::{crc32c, encode_event, masked_crc};
use super::*;

/// A fresh, empty directory for one test.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-tb-{}-{tag}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// One TFRecord around `data`, framed as the writer frames it.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = len.to_vec();
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The record error that reading `path` gives; checks that the message names the file.
fn read_error(path: &Path) -> RecordError {
    let err = read_events(path).expect_err("the file is damaged");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    RecordError::find(&err).expect("a record error").clone()
}

#[test]
fn crc32c_matches_the_rfc_3720_vector() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    // RFC 3720 B.4: 32 bytes of zeros.
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    // As TensorBoard's own `masked_crc32c(b"123456789")` computes it.
    assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
}

#[test]
fn an_event_encodes_byte_for_byte() {
    // step 1 (field 2, varint), wall_time 0.0 left out, summary (field 5) with one value:
    // tag "loss" (field 1), simple_value 0.5f32 = 0x3F000000 (field 2, fixed32).
    let value = [&[0x0a, 4][..], b"loss", &[0x15, 0x00, 0x00, 0x00, 0x3f]].concat();
    let summary = [&[0x0a, value.len() as u8][..], &value].concat();
    let expected = [&[0x10, 0x01, 0x2a, summary.len() as u8][..], &summary].concat();
    assert_eq!(expected.len(), 17);
    assert_eq!(encode_event(0.0, 1, None, &[("loss", 0.5)]), expected);

    // wall_time 1.5 (field 1, fixed64 0x3FF8000000000000), step 300 (varint ac 02),
    // file_version "brain.Event:2" (field 3, 13 bytes).
    let expected = [
        &[
            0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0xac, 0x02, 0x1a, 13,
        ][..],
        b"brain.Event:2",
    ]
    .concat();
    assert_eq!(encode_event(1.5, 300, Some(FILE_VERSION), &[]), expected);
    // A negative step is a ten-byte varint.
    assert_eq!(encode_event(0.0, -1, None, &[]).len(), 11);
}

#[test]
fn scalars_read_back_with_tags_values_and_steps() -> Result<()> {
    let dir = temp_dir("roundtrip");
    let before = wall_time_now();
    let mut writer = EventWriter::create(&dir)?;
    let name = writer
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    assert_eq!(writer.path().parent(), Some(dir.as_path()));
    let mut expected = Vec::new();
    for step in [1u64, 2, 10, 300, 70_000] {
        let loss = 1.0 / step as f64;
        let acc = 0.25 + step as f64 * 1e-6;
        writer.add_scalar("train/loss", loss, step)?;
        writer.add_scalars(step, &[("train/accuracy", acc), ("lr", 0.1)])?;
        expected.push((step, vec![("train/loss", loss)]));
        expected.push((step, vec![("train/accuracy", acc), ("lr", 0.1)]));
    }
    writer.add_scalars(5, &[])?; // nothing written
    let events = read_events(writer.path())?;
    let after = wall_time_now();
    assert_eq!(events.len(), 1 + expected.len());
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    assert_eq!(events[0].step, 0);
    assert!(events[0].scalars.is_empty());
    for event in &events {
        assert!(before <= event.wall_time && event.wall_time <= after);
    }
    for (event, (step, values)) in events[1..].iter().zip(&expected) {
        assert_eq!(event.step, *step as i64);
        assert_eq!(event.file_version, None);
        let want: Vec<(String, f32)> = values
            .iter()
            .map(|&(t, v)| (t.to_owned(), v as f32))
            .collect();
        assert_eq!(event.scalars, want);
    }
    // The writer flushed: a second reader sees everything while the writer lives.
    writer.add_scalar("late", f64::NAN, 1)?;
    let last = read_events(writer.path())?.pop().unwrap();
    assert!(last.scalars[0].0 == "late" && last.scalars[0].1.is_nan());
    drop(writer);
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn bad_arguments_are_refused_naming_the_file() -> Result<()> {
    let dir = temp_dir("args");
    let mut writer = EventWriter::create(&dir)?;
    let path = writer.path().display().to_string();
    for err in [
        writer.add_scalar("", 1.0, 1).unwrap_err(),
        writer.add_scalar("x", 1.0, u64::MAX).unwrap_err(),
    ] {
        assert!(err.to_string().contains(&path), "{err}");
    }
    assert_eq!(read_events(writer.path())?.len(), 1);
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn a_flipped_byte_is_a_crc_error_naming_the_file_and_record() -> Result<()> {
    let dir = temp_dir("flip");
    let mut writer = EventWriter::create(&dir)?;
    writer.add_scalar("loss", 0.5, 1)?;
    writer.add_scalar("loss", 0.25, 2)?;
    let path = writer.path().to_path_buf();
    drop(writer);
    let good = fs::read(&path).unwrap();
    let first_len = good.len() - 2 * record(&encode_event(1.0, 1, None, &[("loss", 0.5)])).len();

    let mut bad = good.clone();
    bad[first_len + 12 + 3] ^= 0x01; // a data byte of record 1
    fs::write(&path, &bad).unwrap();
    let err = read_error(&path);
    assert!(
        matches!(err, RecordError::DataCrc { record: 1, .. }),
        "{err}"
    );
    assert!(read_events(&path)
        .unwrap_err()
        .to_string()
        .contains("record 1"));

    let mut bad = good.clone();
    bad[first_len + 2] ^= 0x80; // a length byte of record 1
    fs::write(&path, &bad).unwrap();
    assert!(matches!(
        read_error(&path),
        RecordError::LengthCrc { record: 1, .. }
    ));

    let mut bad = good;
    *bad.last_mut().unwrap() ^= 0xff; // the stored data CRC of record 2
    fs::write(&path, &bad).unwrap();
    assert!(matches!(
        read_error(&path),
        RecordError::DataCrc { record: 2, .. }
    ));
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn a_truncated_file_is_an_error_at_every_cut() -> Result<()> {
    let dir = temp_dir("cut");
    let mut writer = EventWriter::create(&dir)?;
    writer.add_scalar("loss", 0.5, 1)?;
    let path = writer.path().to_path_buf();
    drop(writer);
    let good = fs::read(&path).unwrap();
    let first_len = record(&encode_event(1.0, 0, Some(FILE_VERSION), &[])).len();
    for cut in [
        first_len + 1,
        first_len + 11,
        first_len + 12,
        good.len() - 1,
    ] {
        fs::write(&path, &good[..cut]).unwrap();
        let err = read_error(&path);
        assert_eq!(err, RecordError::Truncated { record: 1 }, "cut at {cut}");
    }
    fs::write(&path, &good[..first_len]).unwrap();
    assert_eq!(read_events(&path)?.len(), 1);
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn huge_lengths_are_errors_not_allocations() {
    let dir = temp_dir("huge");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.out.tfevents.0.test");
    for (len, want) in [
        (
            1u64 << 60,
            RecordError::TooLong {
                record: 0,
                len: 1 << 60,
            },
        ),
        (MAX_RECORD_LEN, RecordError::Truncated { record: 0 }),
    ] {
        let len = len.to_le_bytes();
        let mut bytes = len.to_vec();
        bytes.extend_from_slice(&masked_crc(&len).to_le_bytes());
        bytes.extend_from_slice(&[0; 100]);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read_error(&path), want);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_protobuf_is_an_error_and_unknown_fields_are_skipped() -> Result<()> {
    let dir = temp_dir("proto");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.out.tfevents.0.test");
    // Unknown fields of every wire type, in Event (4, 6, 7, 8) and Summary.Value (9).
    let mut value = vec![0x0a, 1, b'x', 0x15];
    value.extend_from_slice(&2.0f32.to_le_bytes());
    value.extend_from_slice(&[0x4a, 2, 0xde, 0xad]);
    let mut event = encode_event(2.5, 7, None, &[]);
    event.extend_from_slice(&[0x20, 0x96, 0x01, 0x31, 1, 2, 3, 4, 5, 6, 7, 8]);
    event.extend_from_slice(&[0x3d, 1, 2, 3, 4, 0x42, 0]);
    event.extend_from_slice(&[0x2a, value.len() as u8 + 2, 0x0a, value.len() as u8]);
    event.extend_from_slice(&value);
    fs::write(&path, record(&event)).unwrap();
    let events = read_events(&path)?;
    assert_eq!(
        events,
        [Event {
            wall_time: 2.5,
            step: 7,
            file_version: None,
            scalars: vec![("x".into(), 2.0)],
        }]
    );

    let bad: [&[u8]; 6] = [
        &[0x00, 0x00],                   // field number 0
        &[0x10],                         // a varint cut short
        &[0x1a, 5, b'a'],                // a string longer than the message
        &[0x0b],                         // wire type 3 (groups)
        &[0x11, 0, 0, 0, 0, 0, 0, 0, 0], // step as fixed64
        &[0x1a, 1, 0xff],                // file_version not UTF-8
    ];
    for data in bad {
        let mut bytes = record(&encode_event(1.0, 0, Some(FILE_VERSION), &[]));
        bytes.extend_from_slice(&record(data));
        fs::write(&path, &bytes).unwrap();
        let err = read_error(&path);
        assert!(
            matches!(err, RecordError::Protobuf { record: 1, .. }),
            "{data:?}: {err}"
        );
    }
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn writers_in_the_same_second_never_overwrite() -> Result<()> {
    let dir = temp_dir("same-second");
    fs::create_dir_all(&dir).unwrap();
    let taken = dir.join("events.out.tfevents.1700000000.host");
    fs::write(&taken, b"keep").unwrap();
    let mut a = EventWriter::create_named(&dir, 1_700_000_000, "host")?;
    let mut b = EventWriter::create_named(&dir, 1_700_000_000, "host")?;
    assert_eq!(a.path(), dir.join("events.out.tfevents.1700000000.host.1"));
    assert_eq!(b.path(), dir.join("events.out.tfevents.1700000000.host.2"));
    a.add_scalar("a", 1.0, 1)?;
    b.add_scalar("b", 2.0, 1)?;
    assert_eq!(fs::read(&taken).unwrap(), b"keep");
    assert_eq!(read_events(a.path())?[1].scalars, [("a".into(), 1.0)]);
    assert_eq!(read_events(b.path())?[1].scalars, [("b".into(), 2.0)]);
    // Through the public constructor too: two writers at once, two files.
    let (c, d) = (EventWriter::create(&dir)?, EventWriter::create(&dir)?);
    assert_ne!(c.path(), d.path());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 5);
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}

#[test]
fn host_names_are_sanitized() {
    assert_eq!(sanitize_host("box-1.lan\n"), "box-1.lan");
    assert_eq!(sanitize_host("a/b c\\ü"), "a_b_c__");
    assert_eq!(sanitize_host("  \n"), "localhost");
    assert_eq!(sanitize_host(&"x".repeat(300)).len(), 64);
    let host = hostname();
    assert!(!host.is_empty() && !host.contains('/'), "{host}");
}

/// Runs `scripts/check_tensorboard.py` with the Python named by `LSTM_TENSORBOARD_PYTHON`
/// (one with `tensorboard` installed), so that TensorBoard itself reads our files.
#[test]
fn real_tensorboard_reads_our_files() -> Result<()> {
    let Some(python) = std::env::var_os("LSTM_TENSORBOARD_PYTHON") else {
        eprintln!("skipped: set LSTM_TENSORBOARD_PYTHON to a Python with tensorboard installed");
        return Ok(());
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_tensorboard.py");
    let dir = temp_dir("real");
    let mut writer = EventWriter::create(&dir)?;
    let path = writer.path().to_path_buf();
    for step in 1..=3u64 {
        writer.add_scalar("train/loss", 1.0 / step as f64, step)?;
        writer.add_scalars(step, &[("eval/accuracy", 0.5 + step as f64 / 10.0)])?;
    }
    drop(writer);
    let run = |expect: &[&str]| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .args(expect)
            .output()
            .expect("LSTM_TENSORBOARD_PYTHON runs");
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out.status.success()
    };
    assert!(run(&[
        "train/loss@1=1.0",
        "train/loss@2=0.5",
        "train/loss@3=0.3333333333333333",
        "eval/accuracy@1=0.6",
        "eval/accuracy@3=0.8",
    ]));
    // The check is not vacuous: a wrong value, step or tag fails it.
    assert!(!run(&["train/loss@1=0.9"]));
    assert!(!run(&["train/loss@4=0.25"]));
    assert!(!run(&["val/loss=1.0"]));
    // TensorBoard checks our CRCs: a flipped byte in the last record (eval/accuracy at
    // step 3) makes it drop that record and keep the ones before.
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() - 6;
    bytes[at] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    assert!(run(&["train/loss@3=0.3333333333333333"]));
    assert!(!run(&["eval/accuracy@3=0.8"]));
    fs::remove_dir_all(&dir).unwrap();
    Ok(())
}
