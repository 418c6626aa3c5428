//! Decodes an operation sequence, runs it on the in-memory store and on the reference
//! model, and asserts equal results and every invariant.
//!
//! Run for N seconds (nightly toolchain, `cargo install cargo-fuzz`):
//! `cargo +nightly fuzz run ops -- -max_total_time=N`
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ticketing_core::testkit::fuzz::run_ops(data);
});
