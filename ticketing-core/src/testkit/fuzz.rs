//! The fuzz target's body: an operation sequence decoded from bytes, run on the in-memory
//! store and on the model, results compared and invariants checked after every step.
//!
//! `fuzz/fuzz_targets/ops.rs` calls [`run_ops`]; the seed corpus in `fuzz/corpus/ops` is
//! replayed by `cargo test` (`tests/fuzz_corpus.rs`), so a crash found once stays fixed.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::model_check::{Case, run_waitlist_case};

/// Polls a future of the in-memory store to completion; it never waits.
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

/// Decodes `data` as a [`Case`], runs it on a fresh in-memory store (with waitlists) and on
/// the model, and panics with the step where they part or an invariant breaks.
pub fn run_ops(data: &[u8]) {
    let case = Case::decode(data);
    let t = ready(super::waitlist::memory_waitlist_for_test());
    if let Err(why) = ready(run_waitlist_case(&t, &case)) {
        panic!("{why}\ncase: {case:#?}");
    }
}
