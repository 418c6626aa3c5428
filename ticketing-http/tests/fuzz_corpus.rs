//! Replays the `http` fuzz target's corpus (`fuzz/corpus/http`) as an ordinary test, so
//! every input the fuzzer kept — seeds and the crashes it found, once added — runs on every
//! `cargo test --features testkit`, without nightly.
#![cfg(feature = "testkit")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/http");
    let mut inputs: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|error| panic!("reading {}: {error}", corpus.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 16, "the seed corpus is missing");
    for input in inputs {
        let data = std::fs::read(&input).expect("a readable corpus file");
        let outcome = std::panic::catch_unwind(|| ticketing_http::testkit::run_requests(&data));
        assert!(outcome.is_ok(), "{} fails", input.display());
    }
}
