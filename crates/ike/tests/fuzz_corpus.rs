//! Replays the kept fuzz corpus (crates/ike/fuzz/corpus/{parse,engine}, minimised with
//! `cargo fuzz cmin`) through both fuzz entry points.

use std::path::Path;

#[test]
fn corpus_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut n = 0;
    for dir in ["parse", "engine"] {
        let rd = std::fs::read_dir(root.join(dir)).expect("corpus directory");
        for e in rd.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            ike::fuzzing::parse_target(&data);
            ike::fuzzing::engine_target(&data);
            n += 1;
        }
    }
    assert!(n > 0, "corpus is empty");
}
