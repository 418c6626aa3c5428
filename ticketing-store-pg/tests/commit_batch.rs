//! `commit_batch` on PostgreSQL answers and changes exactly what the same commits one after
//! the other do: a large mixed batch (full commits that run set-based, and partial commits,
//! repeated keys, wrong tokens, lapsed holds, unknown reservations that run on their own)
//! against the same commits one by one on a twin store.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ticketing_core::{
    CommitRequest, EventId, HolderId, IdempotencyKey, ManualClock, Order, PoolId, Reservation,
    ReservationId, ReservationToken, ReserveRequest, Result, Seat, SeatId, Timestamp,
};
use ticketing_store_pg::PgStore;

mod common;
use common::{fresh_store, spec};

const SEATS: u32 = 80;

/// An 80-seat event with a 200-unit pool, and 40 holds on it: even ones for 30 to 68 s (they
/// lapse in turn, so their expiry is logged in one order), odd ones for 600 s; the same
/// requests on every store, so the stores start equal.
async fn store_with_holds(clock: &ManualClock) -> (PgStore, Vec<Reservation>) {
    let store = fresh_store(clock).await;
    let mut event = spec("e", "commit batch");
    event.seats = (1..=SEATS)
        .map(|number| Seat {
            id: SeatId::new(format!("A-{number}")).unwrap(),
            section: "Floor".into(),
            row: "A".into(),
            number,
            category: "standard".into(),
            accessible: false,
            position: Default::default(),
        })
        .collect();
    event.pools[0].capacity = 200;
    event.policy.reservation_ttl_seconds_max = 900;
    store.create_event(event).await.unwrap();
    let mut holds = Vec::new();
    for n in 0..40u32 {
        let mut request = ReserveRequest::new(
            EventId::new("e").unwrap(),
            HolderId::new(format!("h{n}")).unwrap(),
        )
        .ttl_seconds(if n % 2 == 0 { 30 + n } else { 600 });
        if n % 4 != 3 {
            request = request.seats([
                SeatId::new(format!("A-{}", n + 1)).unwrap(),
                SeatId::new(format!("A-{}", n + 41)).unwrap(),
            ]);
        }
        if n % 3 != 0 || n % 4 == 3 {
            request = request.ga(PoolId::new("ga").unwrap(), 1 + n % 3);
        }
        holds.push(store.reserve(request).await.unwrap());
    }
    (store, holds)
}

/// The batch: mostly full commits of live holds, with every kind of commit that runs on
/// its own mixed in (a deterministic shuffle, so failures reproduce).
fn commits(holds: &[Reservation]) -> Vec<(ReservationId, CommitRequest)> {
    let key = |k: String| IdempotencyKey::new(k).unwrap();
    let mut out = Vec::new();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for step in 0..120u64 {
        let n = usize::try_from(next(holds.len() as u64)).unwrap();
        let hold = &holds[n];
        let token = hold.token.clone().unwrap();
        let request = match next(10) {
            // A partial commit: its first seat only, when it has seats.
            0 if !hold.seats.is_empty() => {
                let mut request = CommitRequest::new(token, key(format!("k{step}")));
                request.seats = Some(vec![hold.seats[0].clone()]);
                request
            }
            // A wrong token.
            1 => CommitRequest::new(ReservationToken::generate(), key(format!("k{step}"))),
            // A key used before in the batch (a replay, or a mismatch if for another hold).
            2 if step > 0 => CommitRequest::new(token, key(format!("k{}", next(step)))),
            // An unknown reservation.
            3 if step % 7 == 0 => {
                out.push((
                    ReservationId::new("rsv_unknown").unwrap(),
                    CommitRequest::new(token, key(format!("k{step}"))),
                ));
                continue;
            }
            _ => CommitRequest::new(token, key(format!("k{step}"))),
        };
        out.push((hold.id.clone(), request));
    }
    out
}

/// An answer with the store's own ids left out (orders are compared by what they sold).
fn outcome(answer: &Result<Order>) -> String {
    match answer {
        Ok(order) => format!(
            "ok {} {:?}",
            order.holder,
            order
                .tickets
                .iter()
                .map(|t| format!("{:?}", t.item))
                .collect::<Vec<_>>()
        ),
        Err(error) => format!("{error:?}"),
    }
}

/// The event's change log with ids left out.
async fn log(store: &PgStore) -> Vec<serde_json::Value> {
    let changes = store
        .changes(&EventId::new("e").unwrap(), 0, 10_000)
        .await
        .unwrap();
    changes
        .into_iter()
        .map(|change| {
            let mut kind = serde_json::to_value(&change.kind).unwrap();
            if let Some(fields) = kind.as_object_mut() {
                fields.remove("reservation");
                fields.remove("order");
            }
            serde_json::json!([change.seq, change.at, kind])
        })
        .collect()
}

#[tokio::test]
async fn a_batch_equals_its_commits_one_after_the_other() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000_000));
    let (batched, batched_holds) = store_with_holds(&clock).await;
    let (sequential, sequential_holds) = store_with_holds(&clock).await;
    // The even holds have lapsed; the odd ones (600 s) are live.
    clock.advance(Duration::from_secs(120));

    let answers = batched.commit_batch(commits(&batched_holds)).await;
    let mut expected = Vec::new();
    for (reservation, request) in commits(&sequential_holds) {
        expected.push(sequential.commit(&reservation, request).await);
    }
    assert_eq!(answers.len(), expected.len());
    let mut committed = 0;
    for (n, (got, want)) in answers.iter().zip(&expected).enumerate() {
        assert_eq!(outcome(got), outcome(want), "commit {n}");
        committed += usize::from(got.is_ok());
    }
    assert!(committed >= 15, "the batch committed {committed}");
    assert!(
        answers
            .iter()
            .any(|a| a.as_ref().is_err_and(|e| e.code() == "reservation_expired")),
        "lapsed holds were in the batch"
    );

    let event = EventId::new("e").unwrap();
    let (a, b) = (
        batched.availability(&event).await.unwrap(),
        sequential.availability(&event).await.unwrap(),
    );
    assert_eq!(a, b, "the same seats and pools");
    assert_eq!(
        log(&batched).await,
        log(&sequential).await,
        "the same change log"
    );
    let replayed = ticketing_core::testkit::invariants::replay(
        &batched.event(&event).await.unwrap(),
        &batched.changes(&event, 0, 10_000).await.unwrap(),
    )
    .unwrap();
    assert_eq!(replayed, a, "the log replays to the snapshot");
    // Every order reads back as the batch answered it.
    for answer in answers.iter().flatten() {
        assert_eq!(&batched.order(&answer.id).await.unwrap(), answer);
    }
}
