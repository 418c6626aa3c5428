//! The buyers: each draws a plan from the seed, tries to hold seats (retrying on conflict
//! if it is that kind of buyer), then commits, cancels, or lets the hold lapse.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ticketing_core::{
    BestAvailable, ClientReservationId, EventId, IdempotencyKey, OrderId, Pass, PaymentId,
    ReservationId, ReservationToken, ReserveRequest,
};
use tokio::sync::{Semaphore, watch};

use super::config::{BLOCK_SIZES, SaleConfig};
use super::layout::{Layout, SeatView, Zipf};
use super::queue::{done, holder, queue_up};
use super::stats::{Op, Stats, bump};
use super::target::{Failure, Hold, Target};

/// Calls of one operation, for transient failures and rate limits, before giving up.
const CALL_ATTEMPTS_MAX: u32 = 5;
/// The first pause after a transient failure; it doubles each time.
const TRANSIENT_BACKOFF: Duration = Duration::from_millis(50);
/// The longest `Retry-After` a buyer honours.
const RATE_LIMIT_WAIT_MAX: Duration = Duration::from_secs(5);
/// How long after its hold lapsed a late payer pays.
const LATE_MARGIN: Duration = Duration::from_millis(500);

/// What a buyer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A block of adjacent seats it picks on the seat map.
    Pick,
    /// The best available adjacent seats.
    Best,
    /// Standing places.
    Ga,
}

/// What a buyer does with its hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Commit,
    Abandon,
    WalkAway,
    PayLate,
}

/// One buyer's intentions, drawn from its own seeded generator.
#[derive(Debug, Clone, Copy)]
struct Plan {
    want: Want,
    size: u32,
    fate: Fate,
    retries: u32,
    think: Duration,
}

impl Plan {
    fn draw(rng: &mut StdRng, config: &SaleConfig) -> Self {
        let mix = &config.mix;
        let roll: f64 = rng.random();
        let want = if roll < mix.best_available {
            Want::Best
        } else if roll < mix.best_available + mix.ga {
            Want::Ga
        } else {
            Want::Pick
        };
        let roll: f64 = rng.random();
        let mut size = BLOCK_SIZES[0].0;
        let mut cumulative = 0.0;
        for (candidate, share) in BLOCK_SIZES {
            cumulative += share;
            size = candidate;
            if roll < cumulative {
                break;
            }
        }
        let roll: f64 = rng.random();
        let fate = if roll < mix.abandon {
            Fate::Abandon
        } else if roll < mix.abandon + mix.expire {
            Fate::WalkAway
        } else if roll < mix.abandon + mix.expire + mix.late {
            Fate::PayLate
        } else {
            Fate::Commit
        };
        let retries = if rng.random_bool(mix.retry) {
            mix.retries
        } else {
            0
        };
        let think = if config.think_max > config.think_min {
            rng.random_range(config.think_min..=config.think_max)
        } else {
            config.think_min
        };
        Self {
            want,
            size,
            fate,
            retries,
            think,
        }
    }
}

/// What the buyer last heard about its reservation, to compare with the store's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Its commit succeeded.
    Committed,
    /// Its cancel succeeded.
    Cancelled,
    /// It let the hold lapse, or was told it had lapsed.
    Expired,
    /// It does not know (no token, a call that kept failing): any status may be right.
    Unknown,
}

/// A reservation a buyer made, for the audit.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: ReservationId,
    pub(crate) seen: Seen,
    /// The order its commit answered with.
    pub(crate) order: Option<OrderId>,
}

/// The sale's shared state.
pub(crate) struct Sale {
    pub(crate) target: Target,
    pub(crate) config: SaleConfig,
    pub(crate) event: EventId,
    pub(crate) layout: Layout,
    zipf: Zipf,
    view: SeatView,
    pub(crate) stats: Stats,
    permits: Semaphore,
    next_buyer: AtomicU64,
    closed: watch::Sender<bool>,
    finished: AtomicBool,
    /// Seats of holds let lapse, to free on the seat map once due.
    lapses: Mutex<Vec<(Instant, Vec<u32>)>>,
    /// When the last hold let lapse is due.
    last_lapse: Mutex<Option<Instant>>,
}

impl Sale {
    pub(crate) fn new(
        target: Target,
        config: SaleConfig,
        event: EventId,
        layout: Layout,
    ) -> Result<Self, super::SaleError> {
        let stats = Stats::new(layout.capacity())?;
        Ok(Self {
            zipf: Zipf::new(layout.sections.len(), config.mix.zipf_exponent),
            view: SeatView::new(layout.seat_ids.len()),
            permits: Semaphore::new(config.concurrency),
            target,
            config,
            event,
            layout,
            stats,
            next_buyer: AtomicU64::new(0),
            closed: watch::Sender::new(false),
            finished: AtomicBool::new(false),
            lapses: Mutex::new(Vec::new()),
            last_lapse: Mutex::new(None),
        })
    }

    /// Closes the sale: no buyer starts anything new; holders check out without thinking.
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        self.close();
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// When every hold let lapse has lapsed (as far as this side can tell).
    pub(crate) fn last_lapse(&self) -> Option<Instant> {
        *self.last_lapse.lock()
    }

    /// Frees on the seat map the seats of holds that lapsed by now.
    pub(crate) fn release_lapsed(&self) {
        let now = Instant::now();
        let due: Vec<Vec<u32>> = {
            let mut lapses = self.lapses.lock();
            let (due, later) = lapses.drain(..).partition(|(at, _)| *at <= now);
            *lapses = later;
            due.into_iter().map(|(_, seats)| seats).collect()
        };
        for seats in due {
            self.view.mark(&seats, false);
        }
    }

    fn lapse_later(&self, seats: Vec<u32>, at: Instant) {
        {
            let mut last = self.last_lapse.lock();
            *last = Some(last.map_or(at, |last| last.max(at)));
        }
        self.lapses.lock().push((at, seats));
    }

    /// Waits `duration`, or less if the sale closes.
    pub(crate) async fn think(&self, duration: Duration) {
        let mut closed = self.closed.subscribe();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = closed.wait_for(|closed| *closed) => {}
        }
    }

    /// One call of `op`, holding an operation slot, timed; transient failures and rate
    /// limits are retried (the calls are idempotent), at most [`CALL_ATTEMPTS_MAX`] times.
    pub(crate) async fn call<T, F, Fut>(&self, op: Op, mut once: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let c = &self.stats.counters;
        let calls = match op {
            Op::Reserve => &c.reserve_calls,
            Op::Commit => &c.commit_calls,
            Op::Cancel => &c.cancel_calls,
            Op::Queue => &c.queue_calls,
        };
        let mut backoff = TRANSIENT_BACKOFF;
        for attempt in 1..=CALL_ATTEMPTS_MAX {
            let result = {
                let Ok(_permit) = self.permits.acquire().await else {
                    return Err(Failure::Other("the operation slots closed".to_owned()));
                };
                let started = Instant::now();
                let result = once().await;
                self.stats.record(op, started.elapsed());
                result
            };
            bump(calls);
            let last = attempt == CALL_ATTEMPTS_MAX;
            match result {
                Err(Failure::Transient(_)) if !last => {
                    bump(&c.transient);
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(Failure::RateLimited(wait)) if !last => {
                    bump(&c.rate_limited);
                    tokio::time::sleep(wait.min(RATE_LIMIT_WAIT_MAX)).await;
                }
                Err(
                    failure @ (Failure::Transient(_) | Failure::RateLimited(_) | Failure::Other(_)),
                ) => {
                    bump(&c.errors);
                    return Err(failure);
                }
                other => return other,
            }
        }
        Err(Failure::Other("no attempt left".to_owned()))
    }
}

/// A buyer session: takes the next buyer until every buyer came or the sale closed.
/// Returns the reservations its buyers made.
pub(crate) async fn session(sale: Arc<Sale>) -> Vec<Entry> {
    let mut ledger = Vec::new();
    while !sale.is_closed() {
        let buyer = sale.next_buyer.fetch_add(1, Ordering::Relaxed);
        if buyer >= sale.config.buyers {
            break;
        }
        if let Some(entry) = buy(&sale, buyer).await {
            ledger.push(entry);
        }
        bump(&sale.stats.counters.buyers_done);
    }
    ledger
}

/// Buyer `buyer`'s whole visit: through the waiting room first with `--queue`, then
/// shopping. Its reservation, if it made one.
///
/// A buyer finding the sale sold out is turned away at once; with `--queue`, so is one
/// finding less than a buyer's share (`seats_per_buyer`) unsold, for which the room would
/// admit nobody again.
async fn buy(sale: &Sale, buyer: u64) -> Option<Entry> {
    let share = sale
        .config
        .queue
        .map_or(1, |queue| u64::from(queue.seats_per_buyer));
    if sale.stats.unsold() < share {
        bump(&sale.stats.counters.turned_away);
        return None;
    }
    let Some(queue) = sale.config.queue else {
        return shop(sale, buyer, None).await;
    };
    let admission = queue_up(sale, buyer, &queue).await?;
    let entry = shop(sale, buyer, Some(&admission.pass)).await;
    done(sale, admission).await;
    entry
}

/// Buyer `buyer` shops, with its admission `pass` on a gated event.
async fn shop(sale: &Sale, buyer: u64, pass: Option<&Pass>) -> Option<Entry> {
    let seed = sale.config.seed ^ buyer.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = StdRng::seed_from_u64(seed);
    let plan = Plan::draw(&mut rng, &sale.config);
    let c = &sale.stats.counters;
    bump(&c.arrived);
    let hold = obtain(sale, buyer, &plan, &mut rng, pass).await?;
    bump(&c.reserved);
    let seats = sale.layout.indexes(&hold.seats);
    sale.view.mark(&seats, true);
    let Some(token) = hold.token.clone() else {
        bump(&c.lost_tokens);
        return Some(Entry {
            id: hold.id,
            seen: Seen::Unknown,
            order: None,
        });
    };
    let (seen, order) = match plan.fate {
        Fate::WalkAway => {
            bump(&c.walked_away);
            let ttl = Duration::from_secs(u64::from(sale.config.short_ttl_seconds));
            sale.lapse_later(seats, Instant::now() + ttl + LATE_MARGIN);
            (Seen::Expired, None)
        }
        Fate::PayLate => pay_late(sale, buyer, &hold, &token, seats).await,
        Fate::Abandon => {
            sale.think(plan.think).await;
            (abandon(sale, &hold, &token, &seats).await, None)
        }
        Fate::Commit => {
            sale.think(plan.think).await;
            checkout(sale, buyer, &hold, &token, &seats).await
        }
    };
    Some(Entry {
        id: hold.id,
        seen,
        order,
    })
}

/// Tries to hold seats, retrying after conflicts as the plan allows.
async fn obtain(
    sale: &Sale,
    buyer: u64,
    plan: &Plan,
    rng: &mut StdRng,
    pass: Option<&Pass>,
) -> Option<Hold> {
    let c = &sale.stats.counters;
    let mut size = plan.size;
    for attempt in 0..=plan.retries {
        if attempt > 0 {
            if sale.is_closed() || sale.stats.is_sold_out() {
                break;
            }
            bump(&c.retries);
            let pause = rng.random_range(Duration::ZERO..=sale.config.think_min);
            tokio::time::sleep(pause).await;
        }
        let Some(request) = request(sale, buyer, attempt, plan, size, rng) else {
            bump(&c.errors);
            return None;
        };
        match sale
            .call(Op::Reserve, || sale.target.reserve(&request, pass))
            .await
        {
            Ok(hold) => return Some(hold),
            Err(Failure::PassRefused(_)) => {
                bump(&c.pass_refused);
                return None;
            }
            Err(Failure::SeatsTaken(seats)) => {
                bump(&c.seat_conflicts);
                sale.view.mark(&sale.layout.indexes(&seats), true);
            }
            Err(Failure::SoldOut { ga, remaining }) => {
                bump(&c.sold_out_answers);
                if ga && remaining > 0 {
                    size = size.min(remaining);
                }
            }
            Err(_) => return None,
        }
    }
    bump(&c.gave_up);
    None
}

/// The reserve request of attempt `attempt`: seats picked on the seat map (or best
/// available when none looked free where the buyer looked), best available, or GA.
fn request(
    sale: &Sale,
    buyer: u64,
    attempt: u32,
    plan: &Plan,
    size: u32,
    rng: &mut StdRng,
) -> Option<ReserveRequest> {
    let holder = holder(buyer)?;
    let client_id = ClientReservationId::new(format!("fs-{buyer}-{attempt}")).ok()?;
    let mut request =
        ReserveRequest::new(sale.event.clone(), holder).client_reservation_id(client_id);
    if matches!(plan.fate, Fate::WalkAway | Fate::PayLate) {
        request = request.ttl_seconds(sale.config.short_ttl_seconds);
    }
    let best = |section: Option<String>| BestAvailable {
        count: size,
        adjacent: true,
        section,
        category: None,
    };
    Some(match (plan.want, &sale.layout.pool) {
        (Want::Ga, Some((pool, _))) => request.ga(pool.clone(), size),
        (Want::Pick, _) => match sale.view.pick(&sale.layout, &sale.zipf, size as usize, rng) {
            Some(block) => request.seats(
                block
                    .iter()
                    .map(|&seat| sale.layout.seat_ids[seat as usize].clone()),
            ),
            None => request.best_available(best(None)),
        },
        _ => {
            // The first try names a popular section half the time; retries take any.
            let section = (attempt == 0 && rng.random_bool(0.5))
                .then(|| sale.zipf.sample(rng))
                .flatten()
                .map(|rank| sale.layout.sections[rank].name.clone());
            request.best_available(best(section))
        }
    })
}

fn payment(buyer: u64) -> Option<(IdempotencyKey, PaymentId)> {
    Some((
        IdempotencyKey::new(format!("pay-{buyer}")).ok()?,
        PaymentId::new(format!("pay-{buyer}")).ok()?,
    ))
}

/// Commits after thinking.
async fn checkout(
    sale: &Sale,
    buyer: u64,
    hold: &Hold,
    token: &ReservationToken,
    seats: &[u32],
) -> (Seen, Option<OrderId>) {
    let c = &sale.stats.counters;
    let Some((key, payment)) = payment(buyer) else {
        bump(&c.errors);
        return (Seen::Unknown, None);
    };
    let committed = sale
        .call(Op::Commit, || {
            sale.target.commit(&hold.id, token, &key, &payment)
        })
        .await;
    match committed {
        Ok(sold) => {
            bump(&c.committed);
            sale.stats.sold(sold.seats, sold.ga_units);
            (Seen::Committed, Some(sold.order))
        }
        Err(Failure::Expired) => {
            bump(&c.commits_refused_expired);
            sale.view.mark(seats, false);
            (Seen::Expired, None)
        }
        Err(_) => (Seen::Unknown, None),
    }
}

/// Cancels after thinking.
async fn abandon(sale: &Sale, hold: &Hold, token: &ReservationToken, seats: &[u32]) -> Seen {
    let c = &sale.stats.counters;
    let cancelled = sale
        .call(Op::Cancel, || sale.target.cancel(&hold.id, token))
        .await;
    match cancelled {
        Ok(()) => {
            bump(&c.cancelled);
            sale.view.mark(seats, false);
            Seen::Cancelled
        }
        Err(Failure::Expired) => {
            sale.view.mark(seats, false);
            Seen::Expired
        }
        Err(_) => Seen::Unknown,
    }
}

/// Pays once the short hold has lapsed: the store must refuse (expiry is final).
async fn pay_late(
    sale: &Sale,
    buyer: u64,
    hold: &Hold,
    token: &ReservationToken,
    seats: Vec<u32>,
) -> (Seen, Option<OrderId>) {
    let c = &sale.stats.counters;
    let ttl = Duration::from_secs(u64::from(sale.config.short_ttl_seconds));
    tokio::time::sleep(ttl + LATE_MARGIN).await;
    sale.view.mark(&seats, false);
    let Some((key, payment)) = payment(buyer) else {
        bump(&c.errors);
        return (Seen::Unknown, None);
    };
    let committed = sale
        .call(Op::Commit, || {
            sale.target.commit(&hold.id, token, &key, &payment)
        })
        .await;
    match committed {
        Err(Failure::Expired) => {
            bump(&c.late_commits_refused);
            (Seen::Expired, None)
        }
        Ok(sold) => {
            bump(&c.late_commits_accepted);
            sale.stats.sold(sold.seats, sold.ga_units);
            (Seen::Committed, Some(sold.order))
        }
        Err(_) => (Seen::Unknown, None),
    }
}
