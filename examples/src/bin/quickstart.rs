//! The quick start: embed the in-memory store, create an event, reserve, commit, and print
//! the seat map.
//!
//! Run with: `cargo run -p ticketing-examples --bin quickstart`

use ticketing_core::{
    BestAvailable, CommitRequest, EventId, EventSpec, HolderId, IdempotencyKey, InventoryStore,
    MemoryStore, PaymentId, Policy, PoolId, PoolSpec, ReserveRequest, Seat, SeatId, SeatStatus,
};

const ROWS: [&str; 4] = ["A", "B", "C", "D"];
const SEATS_PER_ROW: u32 = 12;

fn layout() -> ticketing_core::Result<Vec<Seat>> {
    let mut seats = Vec::new();
    for (row_index, row) in ROWS.iter().enumerate() {
        for number in 1..=SEATS_PER_ROW {
            seats.push(Seat {
                id: SeatId::new(format!("{row}-{number}"))?,
                section: "Stalls".into(),
                row: (*row).into(),
                number,
                category: if row_index == 0 {
                    "premium"
                } else {
                    "standard"
                }
                .into(),
                accessible: number == 1,
                position: ticketing_core::Position {
                    x: number as f32,
                    y: row_index as f32,
                },
            });
        }
    }
    Ok(seats)
}

fn print_seat_map(event: &ticketing_core::Event, availability: &ticketing_core::Availability) {
    println!(
        "seat map at change #{} (. free  h held  X sold  # blocked)",
        availability.seq
    );
    for row in ROWS {
        let line: String = event
            .seats
            .iter()
            .zip(&availability.seats)
            .filter(|(seat, _)| seat.row == row)
            .map(|(_, status)| match status {
                SeatStatus::Available => '.',
                SeatStatus::Held => 'h',
                SeatStatus::Sold => 'X',
                SeatStatus::Blocked => '#',
            })
            .collect();
        println!("  row {row}  {line}");
    }
    for pool in &availability.pools {
        println!(
            "  {}: {} of {} available ({} held, {} sold)",
            pool.pool, pool.available, pool.capacity, pool.held, pool.sold
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ticketing_core::Result<()> {
    let store = MemoryStore::new();
    let event_id = EventId::new("quickstart-concert")?;
    let standing = PoolId::new("standing")?;
    let event = store
        .create_event(EventSpec {
            id: event_id.clone(),
            name: "Quick-start concert".into(),
            seats: layout()?,
            pools: vec![PoolSpec {
                id: standing.clone(),
                name: "Standing".into(),
                capacity: 200,
            }],
            sale_window: None,
            policy: Policy {
                holder_seats_max: Some(8),
                ..Policy::default()
            },
        })
        .await?;
    println!(
        "created '{}' with {} seats and {} GA pool",
        event.name,
        event.seats.len(),
        event.pools.len()
    );

    // Alice picks two seats on the map and two standing places.
    let alice = HolderId::new("alice")?;
    let request = ReserveRequest::new(event_id.clone(), alice)
        .seats([SeatId::new("A-5")?, SeatId::new("A-6")?])
        .ga(standing.clone(), 2);
    let held = store.reserve(request).await?;
    println!(
        "alice holds {:?} + 2 standing until {} ({})",
        held.seats, held.expires_at, held.id
    );

    // Bob wants A-6 too: he is told exactly which seat is gone.
    let bob = HolderId::new("bob")?;
    let clash = ReserveRequest::new(event_id.clone(), bob.clone()).seats([SeatId::new("A-6")?]);
    match store.reserve(clash).await {
        Err(error) => println!("bob: {} ({error})", error.code()),
        Ok(_) => unreachable!("A-6 is held by alice"),
    }

    // Bob asks for the best 3 adjacent seats instead.
    let best = BestAvailable {
        count: 3,
        adjacent: true,
        ..BestAvailable::default()
    };
    let bobs = store
        .reserve(ReserveRequest::new(event_id.clone(), bob).best_available(best))
        .await?;
    println!("bob gets best available {:?}", bobs.seats);

    // Alice pays; the commit carries an idempotency key, so a retry cannot sell twice.
    let token = held
        .token
        .clone()
        .ok_or_else(|| ticketing_core::Error::InvalidToken)?;
    let commit = CommitRequest::new(token, IdempotencyKey::new("alice-payment-1")?)
        .payment_id(PaymentId::new("pay_123")?);
    let order = store.commit(&held.id, commit.clone()).await?;
    let again = store.commit(&held.id, commit).await?;
    assert_eq!(order.id, again.id);
    println!(
        "alice's order {} has {} tickets:",
        order.id,
        order.tickets.len()
    );
    for ticket in &order.tickets {
        println!("  {:?}  code {}", ticket.item, ticket.code);
    }

    print_seat_map(&event, &store.availability(&event_id).await?);
    let changes = store.changes(&event_id, 0, 100).await?;
    println!(
        "change log: {} entries, the last one: {:?}",
        changes.len(),
        changes.last().map(|c| &c.kind)
    );
    Ok(())
}
