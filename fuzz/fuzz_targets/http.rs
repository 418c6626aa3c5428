//! Decodes a sequence of HTTP requests (method, route with fuzzed ids, headers, JSON-ish
//! body) and clock advances, sends them to the router over an in-memory store, and asserts
//! no panic, no 5xx, problem documents with a `code` for every error, and every invariant.
//!
//! Run for N seconds (nightly toolchain, `cargo install cargo-fuzz`):
//! `cargo +nightly fuzz run http -- -max_total_time=N`
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ticketing_http::testkit::run_requests(data);
});
