//! `InboundSa::open` on arbitrary bytes, plus authentic packets with arbitrary trailers and
//! seal/open round trips (see `esp::fuzzing::open_target`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    esp::fuzzing::open_target(data);
});
