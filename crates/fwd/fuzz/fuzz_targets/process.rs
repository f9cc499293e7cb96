//! `fwd::process` on arbitrary packets from every NIC of a fixed topology, with an arbitrary
//! GSO size and checksum offsets, then what the agent does with the verdict
//! (see `fwd::fuzzing::process_target`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fwd::fuzzing::process_target(data);
});
