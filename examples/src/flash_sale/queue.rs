//! The waiting room from the buyers' side (`--queue`): join with one's holder id, poll the
//! ticket until admitted (shop with the pass) or turned away, and leave when done.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ticketing_core::{HolderId, Pass, QueueTicketId};

use super::buyer::Sale;
use super::config::QueueConfig;
use super::stats::{Op, bump};
use super::target::Place;

/// How long, beyond the short hold, the room may admit nobody while nobody shops before
/// a queued buyer concludes it will not be admitted: too little is free to serve one buyer
/// (walked-away holds lapse within the short hold and give seats back), or nothing runs
/// the room's admission steps.
const STARVED_GRACE: Duration = Duration::from_secs(3);
/// A poll comes this share of the interval early or late at most.
const POLL_JITTER: f64 = 0.2;
/// Mixed into a buyer's seed for its poll jitter, so polls do not change its plan.
const POLL_SEED: u64 = 0x5155_4555_4550_4f4c;

/// A buyer let in: its ticket (to leave with) and its pass (to reserve with).
pub(crate) struct Admission {
    ticket: QueueTicketId,
    pub(crate) pass: Pass,
}

/// The holder id buyer `buyer` reserves as and queues as.
pub(crate) fn holder(buyer: u64) -> Option<HolderId> {
    HolderId::new(format!("buyer-{buyer}")).ok()
}

/// Queues buyer `buyer` until it is admitted; `None` when it was turned away (the room
/// said sold out, less than `seats_per_buyer` places are left unsold, or the room admits
/// nobody), the sale closed, or the room kept failing. A buyer turned away has left the
/// room.
pub(crate) async fn queue_up(sale: &Sale, buyer: u64, queue: &QueueConfig) -> Option<Admission> {
    let c = &sale.stats.counters;
    let Some(visitor) = holder(buyer) else {
        bump(&c.queue_join_failed);
        return None;
    };
    let joined_at = Instant::now();
    let joined = sale
        .call(Op::Queue, || sale.target.join(&sale.event, &visitor))
        .await;
    let Ok((ticket, mut place)) = joined else {
        bump(&c.queue_join_failed);
        return None;
    };
    bump(&c.queue_joined);
    let mut rng = StdRng::seed_from_u64(sale.config.seed ^ buyer ^ POLL_SEED);
    let grace = Duration::from_secs(u64::from(sale.config.short_ttl_seconds)) + STARVED_GRACE;
    loop {
        let turned = match place {
            Place::Admitted(pass) => {
                sale.stats.admitted(joined_at.elapsed());
                return Some(Admission { ticket, pass });
            }
            Place::SoldOut => Some(&c.queue_sold_out),
            Place::Gone => Some(&c.queue_poll_failed),
            // Less than a buyer's share unsold: the room admits nobody again.
            Place::Waiting if sale.stats.unsold() < u64::from(queue.seats_per_buyer) => {
                Some(&c.queue_sold_out)
            }
            Place::Waiting if sale.stats.room_starved(grace) => Some(&c.queue_starved),
            Place::Waiting => None,
        };
        if let Some(counter) = turned {
            bump(counter);
            break;
        }
        let jitter = rng.random_range(1.0 - POLL_JITTER..=1.0 + POLL_JITTER);
        sale.think(queue.poll_interval.mul_f64(jitter)).await;
        if sale.is_closed() {
            bump(&c.queue_closed);
            break;
        }
        bump(&c.status_polls);
        let polled = sale
            .call(Op::Queue, || sale.target.queue_status(&ticket))
            .await;
        let Ok(now) = polled else {
            bump(&c.queue_poll_failed);
            break;
        };
        place = now;
    }
    leave(sale, &ticket).await;
    None
}

/// An admitted buyer is done: it gives its pass back.
pub(crate) async fn done(sale: &Sale, admission: Admission) {
    leave(sale, &admission.ticket).await;
    sale.stats.gone();
}

async fn leave(sale: &Sale, ticket: &QueueTicketId) {
    let c = &sale.stats.counters;
    match sale.call(Op::Queue, || sale.target.leave(ticket)).await {
        Ok(()) => bump(&c.queue_left),
        Err(_) => bump(&c.queue_leave_failed),
    }
}
