//! The summary: figures for people (a table), for scripts (JSON) and for the eye (SVG).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;
use serde::Serialize;

use super::SaleError;
use super::audit::Audit;
use super::buyer::Sale;
use super::stats::{LatencyFigures, Op, Sample, WaitFigures, read};

/// One line of a chart: its label, colour, and what it plots of a sample.
type Series<'a> = (&'a str, RGBColor, fn(&Sample) -> f64);

/// The event on sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventFigures {
    /// Its id.
    pub id: String,
    /// Assigned seats.
    pub seats: u64,
    /// GA places.
    pub ga: u64,
    /// Seats plus GA places.
    pub capacity: u64,
}

/// What the buyers did and were told.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Buyers that came (and made at least one reserve call).
    pub arrived: u64,
    /// Buyers that came after the sale sold out and left at once (with `--queue`: after
    /// less than the room's seats per buyer was left unsold, as the room admits nobody
    /// then).
    pub turned_away: u64,
    /// Buyers that never came: the sale closed first (`--duration`).
    pub never_came: u64,
    /// Reserve calls answered (conflicts included; retried transient failures too).
    pub reserve_calls: u64,
    /// Reservations made.
    pub reserved: u64,
    /// Reserve attempts refused because a seat was taken.
    pub seat_conflicts: u64,
    /// Reserve attempts refused because a pool or best available was sold out.
    pub sold_out_answers: u64,
    /// Reserve attempts after a conflict.
    pub retries: u64,
    /// Buyers that left without a reservation after conflicts.
    pub gave_up: u64,
    /// Commit calls answered.
    pub commit_calls: u64,
    /// Reservations committed.
    pub committed: u64,
    /// Commits refused because the hold had lapsed (a think time past the hold).
    pub commits_refused_expired: u64,
    /// Late payers refused, as they must be.
    pub late_commits_refused: u64,
    /// Late payers accepted: must be 0 (expiry is final).
    pub late_commits_accepted: u64,
    /// Cancel calls answered.
    pub cancel_calls: u64,
    /// Reservations cancelled.
    pub cancelled: u64,
    /// Holds let lapse on purpose.
    pub walked_away: u64,
    /// Reservations whose token a retried reserve did not hand back.
    pub lost_tokens: u64,
    /// Answers 429 (waited out and retried).
    pub rate_limited: u64,
    /// Transient failures retried (backend errors, timeouts, dropped connections).
    pub transient: u64,
    /// Calls that failed for good, or errors nobody expects.
    pub errors: u64,
}

/// Per-second rates over the sale.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Rates {
    /// Reserve calls answered per second (conflicts included).
    pub reserve_calls_per_second: f64,
    /// Reservations made per second.
    pub reservations_per_second: f64,
    /// Commits per second.
    pub commits_per_second: f64,
}

/// Latency per operation, from the moment a call has its operation slot to its answer.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Latencies {
    /// Reserve.
    pub reserve: LatencyFigures,
    /// Commit.
    pub commit: LatencyFigures,
    /// Cancel.
    pub cancel: LatencyFigures,
    /// Waiting room calls: join, status poll, leave (none without `--queue`).
    pub queue: LatencyFigures,
}

/// The waiting room (`--queue`): its settings, what became of the buyers who queued, how
/// long they waited and how often they asked.
///
/// Every buyer who reserved was admitted first: `counts.arrived` (buyers who made a reserve
/// call) equals `admitted`, and `passes_refused` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct QueueFigures {
    /// Visitors admitted per second.
    pub admit_per_second: u32,
    /// Most buyers shopping at once; `None`: no cap.
    pub active_max: Option<u32>,
    /// Seats per buyer the room assumes.
    pub seats_per_buyer: u32,
    /// Pass lifetime, in seconds.
    pub pass_ttl_seconds: u32,
    /// The pause between a buyer's status polls, in milliseconds (before jitter).
    pub poll_interval_ms: u64,
    /// Buyers who joined the queue.
    pub joined: u64,
    /// Buyers admitted (each then shopped).
    pub admitted: u64,
    /// Buyers turned away while queued because the event sold out: the room said so, or
    /// less than the room's seats per buyer was left unsold.
    pub sold_out_while_queued: u64,
    /// Buyers who gave up because the room admitted nobody for a while with nobody
    /// shopping (too little free for one buyer, or nothing running admission steps).
    pub starved: u64,
    /// Buyers still queued when the sale closed.
    pub closed_while_queued: u64,
    /// Buyers whose status polls kept failing (or whose ticket lapsed while queued).
    pub poll_failures: u64,
    /// Buyers who could not join (they count in none of the above).
    pub join_failures: u64,
    /// Tickets given back (admitted buyers done, turned-away buyers leaving).
    pub left: u64,
    /// Leave calls that failed for good (the pass lapses on its own).
    pub leave_failures: u64,
    /// Reserves refused for a missing, forged or lapsed pass: must be 0.
    pub passes_refused: u64,
    /// Status polls made.
    pub status_polls: u64,
    /// Status polls per second over the sale.
    pub status_polls_per_second: f64,
    /// How long admitted buyers waited.
    pub wait: WaitFigures,
}

impl QueueFigures {
    /// Whether every buyer who joined is accounted for: `joined = admitted +
    /// sold_out_while_queued + starved + closed_while_queued + poll_failures`.
    pub fn add_up(&self) -> bool {
        self.admitted
            + self.sold_out_while_queued
            + self.starved
            + self.closed_while_queued
            + self.poll_failures
            == self.joined
    }
}

/// What was sold, by the buyers' count.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct SoldFigures {
    /// Seats sold.
    pub seats: u64,
    /// GA places sold.
    pub ga: u64,
    /// Seats plus places.
    pub total: u64,
    /// Of the capacity.
    pub share: f64,
}

/// Everything a run measured and checked: printed as a table, written by `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Where the buyers went.
    pub target: String,
    /// The seed of every buyer's choices.
    pub seed: u64,
    /// The event.
    pub event: EventFigures,
    /// Buyers simulated at most.
    pub buyers: u64,
    /// Operations in flight at most.
    pub concurrency: usize,
    /// Buyers shopping at once at most.
    pub sessions: usize,
    /// From the first buyer to the last one's last answer, in seconds.
    pub elapsed_seconds: f64,
    /// When everything was sold, in seconds from the start; `None`: not sold out.
    pub sold_out_after_seconds: Option<f64>,
    /// What the buyers did and were told.
    pub counts: Counts,
    /// Rates over `elapsed_seconds`.
    pub rates: Rates,
    /// Latencies.
    pub latency: Latencies,
    /// What was sold.
    pub sold: SoldFigures,
    /// The waiting room, with `--queue`.
    pub queue: Option<QueueFigures>,
    /// The audit.
    pub audit: Audit,
    /// Rates and latencies over time.
    pub timeline: Vec<Sample>,
}

pub(crate) fn summarize(sale: &Sale, elapsed: Duration, audit: Audit) -> Summary {
    let c = &sale.stats.counters;
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let seats = sale.layout.seat_ids.len() as u64;
    let capacity = sale.layout.capacity();
    let (sold_seats, sold_ga) = (read(&c.sold_seats), read(&c.sold_ga));
    let counts = Counts {
        arrived: read(&c.arrived),
        turned_away: read(&c.turned_away),
        never_came: sale.config.buyers.saturating_sub(read(&c.buyers_done)),
        reserve_calls: read(&c.reserve_calls),
        reserved: read(&c.reserved),
        seat_conflicts: read(&c.seat_conflicts),
        sold_out_answers: read(&c.sold_out_answers),
        retries: read(&c.retries),
        gave_up: read(&c.gave_up),
        commit_calls: read(&c.commit_calls),
        committed: read(&c.committed),
        commits_refused_expired: read(&c.commits_refused_expired),
        late_commits_refused: read(&c.late_commits_refused),
        late_commits_accepted: read(&c.late_commits_accepted),
        cancel_calls: read(&c.cancel_calls),
        cancelled: read(&c.cancelled),
        walked_away: read(&c.walked_away),
        lost_tokens: read(&c.lost_tokens),
        rate_limited: read(&c.rate_limited),
        transient: read(&c.transient),
        errors: read(&c.errors),
    };
    Summary {
        target: sale.target.describe(),
        seed: sale.config.seed,
        event: EventFigures {
            id: sale.event.to_string(),
            seats,
            ga: capacity - seats,
            capacity,
        },
        buyers: sale.config.buyers,
        concurrency: sale.config.concurrency,
        sessions: sale.config.sessions,
        elapsed_seconds: elapsed.as_secs_f64(),
        sold_out_after_seconds: sale.stats.sold_out_after.get().map(Duration::as_secs_f64),
        rates: Rates {
            reserve_calls_per_second: counts.reserve_calls as f64 / seconds,
            reservations_per_second: counts.reserved as f64 / seconds,
            commits_per_second: counts.committed as f64 / seconds,
        },
        counts,
        latency: Latencies {
            reserve: sale.stats.figures(Op::Reserve),
            commit: sale.stats.figures(Op::Commit),
            cancel: sale.stats.figures(Op::Cancel),
            queue: sale.stats.figures(Op::Queue),
        },
        queue: queue_figures(sale, seconds),
        sold: SoldFigures {
            seats: sold_seats,
            ga: sold_ga,
            total: sold_seats + sold_ga,
            share: (sold_seats + sold_ga) as f64 / capacity.max(1) as f64,
        },
        audit,
        timeline: sale.stats.timeline(),
    }
}

fn queue_figures(sale: &Sale, seconds: f64) -> Option<QueueFigures> {
    let queue = sale.config.queue?;
    let c = &sale.stats.counters;
    let status_polls = read(&c.status_polls);
    Some(QueueFigures {
        admit_per_second: queue.admit_per_second,
        active_max: queue.active_max,
        seats_per_buyer: queue.seats_per_buyer,
        pass_ttl_seconds: queue.pass_ttl_seconds,
        poll_interval_ms: u64::try_from(queue.poll_interval.as_millis()).unwrap_or(u64::MAX),
        joined: read(&c.queue_joined),
        admitted: read(&c.queue_admitted),
        sold_out_while_queued: read(&c.queue_sold_out),
        starved: read(&c.queue_starved),
        closed_while_queued: read(&c.queue_closed),
        poll_failures: read(&c.queue_poll_failed),
        join_failures: read(&c.queue_join_failed),
        left: read(&c.queue_left),
        leave_failures: read(&c.queue_leave_failed),
        passes_refused: read(&c.pass_refused),
        status_polls,
        status_polls_per_second: status_polls as f64 / seconds,
        wait: sale.stats.waits(),
    })
}

/// `12,345`.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1_000.0)
}

/// A wait: `850 ms`, `2.35 s`.
fn wait(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1_000.0)
    }
}

impl Summary {
    /// The summary as a table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = &self.counts;
        let e = &self.event;
        let _ = writeln!(out, "FLASH SALE  {}  seed {}", self.target, self.seed);
        let _ = writeln!(
            out,
            "  event {}: {} seats + {} GA = {} places; {} buyers ({} came, {} turned away sold out, {} never came), concurrency {}, sessions {}",
            e.id,
            grouped(e.seats),
            grouped(e.ga),
            grouped(e.capacity),
            grouped(self.buyers),
            grouped(c.arrived),
            grouped(c.turned_away),
            grouped(c.never_came),
            self.concurrency,
            grouped(self.sessions as u64),
        );
        let sold_out = self.sold_out_after_seconds.map_or_else(
            || "not sold out".to_owned(),
            |s| format!("sold out after {s:.2} s"),
        );
        let _ = writeln!(out, "  ran {:.2} s; {sold_out}\n", self.elapsed_seconds);
        let _ = writeln!(
            out,
            "  {:<9} {:>11} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "operation", "calls", "per s", "p50", "p90", "p99", "max"
        );
        let queue_row = self.queue.map(|_| ("queue", &self.latency.queue));
        for (name, figures) in [
            ("reserve", &self.latency.reserve),
            ("commit", &self.latency.commit),
            ("cancel", &self.latency.cancel),
        ]
        .into_iter()
        .chain(queue_row)
        {
            let _ = writeln!(
                out,
                "  {name:<9} {:>11} {:>10} {:>10} {:>10} {:>10} {:>10}",
                grouped(figures.count),
                grouped((figures.count as f64 / self.elapsed_seconds.max(1e-9)) as u64),
                millis(figures.p50_us),
                millis(figures.p90_us),
                millis(figures.p99_us),
                millis(figures.max_us),
            );
        }
        let r = &self.rates;
        let _ = writeln!(
            out,
            "\n  reserves/s {:.0} (reservations made/s {:.0})   commits/s {:.0}",
            r.reserve_calls_per_second, r.reservations_per_second, r.commits_per_second
        );
        let _ = writeln!(
            out,
            "  reserved {}   committed {}   cancelled {}   walked away {}   commits refused as expired {}   late payers refused {} (accepted {})",
            grouped(c.reserved),
            grouped(c.committed),
            grouped(c.cancelled),
            grouped(c.walked_away),
            grouped(c.commits_refused_expired),
            grouped(c.late_commits_refused),
            grouped(c.late_commits_accepted),
        );
        let _ = writeln!(
            out,
            "  conflicts {} (seat taken {}, sold out {})   retries {}   gave up {}   rate limited {}   transient {}   errors {}",
            grouped(c.seat_conflicts + c.sold_out_answers),
            grouped(c.seat_conflicts),
            grouped(c.sold_out_answers),
            grouped(c.retries),
            grouped(c.gave_up),
            grouped(c.rate_limited),
            grouped(c.transient),
            grouped(c.errors),
        );
        if let Some(queue) = &self.queue {
            queue_table(queue, &mut out);
        }
        let s = &self.sold;
        let _ = writeln!(
            out,
            "  sold {} seats + {} GA = {} of {} ({:.1}%)\n",
            grouped(s.seats),
            grouped(s.ga),
            grouped(s.total),
            grouped(e.capacity),
            s.share * 100.0
        );
        self.audit_table(&mut out);
        out
    }

    fn audit_table(&self, out: &mut String) {
        if let Some(queue) = &self.queue
            && queue.admitted != self.counts.arrived
        {
            let _ = writeln!(
                out,
                "  ! {} buyers reserved but {} were admitted",
                grouped(self.counts.arrived),
                grouped(queue.admitted)
            );
        }
        let a = &self.audit;
        let verdict = if a.passed { "PASSED" } else { "FAILED" };
        let _ = writeln!(out, "AUDIT  {verdict}");
        let _ = writeln!(
            out,
            "  oversold seats {}   oversold GA places {}   orphaned holds {}   active past expiry {}   orders not matching the seat map {}",
            a.oversold_seats,
            a.oversold_ga,
            a.orphaned_holds,
            a.active_past_expiry,
            a.orders_not_matching
        );
        let _ = writeln!(
            out,
            "  buyer/store disagreements {}   late commits accepted {}   failed reads {}   swept at close {}",
            a.disagreements, a.late_commits_accepted, a.read_failures, a.swept
        );
        let _ = writeln!(
            out,
            "  change log replays to the final seat map: {} ({} changes)",
            if a.log_replays { "yes" } else { "NO" },
            grouped(a.log_changes)
        );
        let n = &a.reservations;
        let _ = writeln!(
            out,
            "  reservations {} = committed {} + cancelled {} + expired {} + active {}{}",
            grouped(n.reserved),
            grouped(n.committed),
            grouped(n.cancelled),
            grouped(n.expired),
            grouped(n.active),
            if n.add_up() {
                ""
            } else {
                "  (DOES NOT ADD UP)"
            }
        );
        for problem in &a.problems {
            let _ = writeln!(out, "  ! {problem}");
        }
    }

    /// Writes the summary as JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), SaleError> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|error| SaleError::Invalid(format!("encoding the summary: {error}")))?;
        std::fs::write(path, json)?;
        Ok(())
    }

    /// Draws throughput (top) and latency (bottom) over time as an SVG at `path`.
    pub fn write_plot(&self, path: &Path) -> Result<(), SaleError> {
        let plot = |error: &dyn std::fmt::Display| SaleError::Plot(error.to_string());
        let root = SVGBackend::new(path, (1_100, 760)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot(&e))?;
        let (upper, lower) = root.split_vertically(390);
        let t_max = self
            .timeline
            .last()
            .map_or(1.0, |sample| sample.t_seconds)
            .max(0.001);
        let throughput: [Series<'_>; 4] = [
            ("reserve calls/s", BLUE, |s| s.reserve_calls_per_second),
            ("reservations/s", GREEN, |s| s.reservations_per_second),
            ("commits/s", MAGENTA, |s| s.commits_per_second),
            ("conflicts/s", RED, |s| s.conflicts_per_second),
        ];
        let caption = format!(
            "Flash sale on {}: {} buyers, {} places",
            self.target,
            grouped(self.buyers),
            grouped(self.event.capacity)
        );
        self.panel(
            &upper,
            &caption,
            "operations per second",
            t_max,
            &throughput,
        )
        .map_err(|e| plot(&e))?;
        let latency: [Series<'_>; 3] = [
            ("reserve p50 (ms)", BLUE, |s| s.reserve_p50_ms),
            ("reserve p99 (ms)", RED, |s| s.reserve_p99_ms),
            ("commit p99 (ms)", MAGENTA, |s| s.commit_p99_ms),
        ];
        self.panel(
            &lower,
            "Latency per interval",
            "milliseconds",
            t_max,
            &latency,
        )
        .map_err(|e| plot(&e))?;
        root.present().map_err(|e| plot(&e))?;
        Ok(())
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        caption: &str,
        unit: &str,
        t_max: f64,
        series: &[Series<'_>],
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let y_max = self
            .timeline
            .iter()
            .flat_map(|sample| series.iter().map(move |(_, _, value)| value(sample)))
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the sale opened")
            .y_desc(unit)
            .draw()?;
        for (name, color, value) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    self.timeline.iter().map(|s| (s.t_seconds, value(s))),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

/// The queue's lines of the table.
fn queue_table(q: &QueueFigures, out: &mut String) {
    let cap = q.active_max.map_or_else(
        || "no cap".to_owned(),
        |cap| format!("at most {} shopping", grouped(u64::from(cap))),
    );
    let _ = writeln!(
        out,
        "  queue: {}/s admitted, {cap}, {} seats per buyer, {} s passes, polls every {} ms",
        grouped(u64::from(q.admit_per_second)),
        q.seats_per_buyer,
        q.pass_ttl_seconds,
        q.poll_interval_ms,
    );
    let _ = writeln!(
        out,
        "  joined {}   admitted {}   turned away sold out while queued {}   gave up (nobody admitted) {}   queued at close {}   poll failures {}   join failures {}   passes refused {}{}",
        grouped(q.joined),
        grouped(q.admitted),
        grouped(q.sold_out_while_queued),
        grouped(q.starved),
        grouped(q.closed_while_queued),
        grouped(q.poll_failures),
        grouped(q.join_failures),
        grouped(q.passes_refused),
        if q.add_up() {
            ""
        } else {
            "  (DOES NOT ADD UP)"
        },
    );
    let _ = writeln!(
        out,
        "  queue wait p50 {}   p99 {}   max {}   status polls {} ({:.0}/s)   left {} (failed {})",
        wait(q.wait.p50_ms),
        wait(q.wait.p99_ms),
        wait(q.wait.max_ms),
        grouped(q.status_polls),
        q.status_polls_per_second,
        grouped(q.left),
        grouped(q.leave_failures),
    );
    if q.joined > 0 && q.admitted == 0 && q.starved > 0 {
        let _ = writeln!(
            out,
            "  ! the room admitted nobody: is something running its admission steps (a server's room sweeper)?"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
