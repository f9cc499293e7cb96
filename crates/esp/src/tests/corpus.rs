//! Replays every file of the fuzzing corpora (`fuzz/corpus/<target>/`) through the same
//! functions the fuzz targets call: none may panic.

use std::path::PathBuf;

use crate::fuzzing;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            f(&data);
            n += 1;
        }
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn open_corpus() {
    replay("open", fuzzing::open_target);
}

#[test]
fn udp_demux_corpus() {
    replay("udp_demux", fuzzing::udp_demux_target);
}

/// A few hand-made inputs for each mode of the targets, so that they are exercised even
/// before a corpus exists.
#[test]
fn targets_on_seeds() {
    for sel in 0u8..=255 {
        let mut d = vec![sel, 4, 0x45];
        d.extend((0..100u8).map(|i| i.wrapping_mul(37)));
        fuzzing::open_target(&d);
        fuzzing::open_target(&d[..3]);
        fuzzing::open_target(&[sel]);
    }
    fuzzing::open_target(&[]);
    for d in [
        &[][..],
        &[0x11, 0x94, 0x11, 0x94, 0, 9, 0, 0, 0xff][..],
        &[0x11, 0x94, 0x11, 0x94, 0, 12, 0, 0, 0, 0, 0, 0][..],
        &[0x11, 0x94, 0x11, 0x94, 0, 16, 0, 0, 1, 2, 3, 4, 0, 0, 0, 1][..],
        &[
            0x11, 0x94, 0x11, 0x94, 0, 16, 0, 0, 0x0c, 0x0f, 0xfe, 0xe0, 0, 0, 0, 1,
        ][..],
    ] {
        fuzzing::udp_demux_target(d);
    }
}
