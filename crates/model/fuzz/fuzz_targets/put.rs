//! ARM writes (PUT, PATCH tags, DELETE) with arbitrary JSON bodies against a hub-and-spoke
//! state with a VPN gateway (see `model::fuzzing::put_target`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    model::fuzzing::put_target(data);
});
