//! Port-4500 demultiplexing (RFC 3948): UDP unframing, keepalive / IKE / ESP classification,
//! and ESP packets handed to an SA (see `esp::fuzzing::udp_demux_target`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    esp::fuzzing::udp_demux_target(data);
});
