//! The buyers' HTTP client: a keep-alive HTTP/1.1 pool (hyper-util's) on a server on this
//! machine, speaking the REST API's JSON (the adapter's own wire types).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketing_core::{
    Availability, Change, Event, EventId, EventSpec, GaRequest, HolderId, IdempotencyKey, Order,
    OrderId, Pass, PassError, PaymentId, PoolAvailability, PoolId, QueueTicketId, Reservation,
    ReservationId, ReservationToken, ReserveRequest, RoomSettings, SeatId, Ticket, TicketCode,
    TicketId, TicketItem, Timestamp,
};
use ticketing_http::wire::{
    BestAvailableBody, CommitBody, CreateEventBody, GaItem, OrderView, PolicyBody, PoolBody,
    ReservationView, ReserveBody, SeatBody, SeatMap, TicketView,
};
use ticketing_http::{
    ADMIN_KEY, ADMISSION_PASS, IDEMPOTENCY_KEY, JoinBody, QueueView, RESERVATION_TOKEN,
};

use super::SaleError;
use super::target::{Failure, Hold, Place, Sold};

/// A ticketing server on this machine, driven over its REST API.
#[derive(Clone)]
pub struct HttpTarget {
    client: Client<HttpConnector, Full<Bytes>>,
    base: Arc<str>,
    admin_key: Option<Arc<str>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `http://host:port` of `url` when its host is this machine (`localhost` or a loopback
/// address); an error otherwise. A load generator is pointed at one's own server only.
pub fn loopback_base(url: &str) -> Result<String, SaleError> {
    let invalid = |why: &str| SaleError::Invalid(format!("--url {url}: {why}"));
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("only http:// is supported"));
    }
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(invalid(
            "refusing a host that is not this machine (use localhost, 127.0.0.1 or [::1])",
        ));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("give the server's root, without a path"));
    }
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    Ok(format!("http://{authority}"))
}

/// An answer: status, `Retry-After`, body.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Bytes,
}

impl HttpTarget {
    /// A client of the server at `url` (loopback only), keeping up to `connections`
    /// connections alive; every request gets `timeout`. Admin routes (creating the event,
    /// the audit's reads) send `admin_key`.
    pub fn new(
        url: &str,
        admin_key: Option<String>,
        timeout: Duration,
        connections: usize,
    ) -> Result<Self, SaleError> {
        let base = loopback_base(url)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build(connector);
        Ok(Self {
            client,
            base: base.into(),
            admin_key: admin_key.map(Into::into),
            timeout,
        })
    }

    /// `http://host:port`.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| Failure::Other(format!("building a request: {error}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| Failure::Transient(format!("HTTP: {error}")))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| Failure::Transient(format!("HTTP body: {error}")))?
                .to_bytes();
            Ok(Answer {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Failure::Transient(format!("no answer within {:?}", self.timeout)))?
    }

    fn admin(&self) -> Vec<(&str, &str)> {
        self.admin_key
            .as_deref()
            .map(|key| vec![(ADMIN_KEY, key)])
            .unwrap_or_default()
    }

    pub(crate) async fn create_event(&self, spec: EventSpec) -> Result<Event, SaleError> {
        if self.admin_key.is_none() {
            return Err(SaleError::Invalid(
                "--url needs --admin-key (or TICKETING_ADMIN_KEY) to create the event: \
                 ticketing-server prints its key at start"
                    .to_owned(),
            ));
        }
        let body = serde_json::to_vec(&create_event_body(&spec))
            .map_err(|error| SaleError::Http(format!("encoding the event: {error}")))?;
        let answer = self
            .send(Method::POST, "/v1/events", &self.admin(), Some(body))
            .await
            .map_err(|failure| SaleError::Http(format!("creating the event: {failure}")))?;
        if answer.status != StatusCode::CREATED {
            return Err(SaleError::Http(format!(
                "creating the event: {} {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )));
        }
        Ok(Event::from_spec(spec, Timestamp::EPOCH))
    }

    /// Gates `event` with a room (`PUT /v1/events/{id}/queue`, an admin route).
    pub(crate) async fn configure_room(
        &self,
        event: &EventId,
        settings: &RoomSettings,
    ) -> Result<(), SaleError> {
        let body = serde_json::to_vec(settings)
            .map_err(|error| SaleError::Http(format!("encoding the room's settings: {error}")))?;
        let path = format!("/v1/events/{event}/queue");
        let answer = self
            .send(Method::PUT, &path, &self.admin(), Some(body))
            .await
            .map_err(|failure| SaleError::Http(format!("gating the event: {failure}")))?;
        if answer.status == StatusCode::OK {
            return Ok(());
        }
        let document: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if document["code"] == "rooms_disabled" {
            return Err(SaleError::Http(
                "--queue: the server has no waiting rooms (rooms_disabled)".to_owned(),
            ));
        }
        Err(SaleError::Http(format!(
            "gating the event: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )))
    }

    /// Joins `event`'s room (`POST /v1/events/{id}/queue`) as `visitor`.
    pub(crate) async fn join(
        &self,
        event: &EventId,
        visitor: &HolderId,
    ) -> Result<(QueueTicketId, Place), Failure> {
        let body = JoinBody {
            user_id: Some(visitor.to_string()),
        };
        let path = format!("/v1/events/{event}/queue");
        let answer = self
            .send(Method::POST, &path, &[], Some(encode(&body)?))
            .await?;
        if answer.status != StatusCode::OK {
            return Err(failure(&answer));
        }
        let view: QueueView = decode(&answer)?;
        let ticket = QueueTicketId::new(&view.ticket_id).map_err(other)?;
        Ok((ticket, place(view)?))
    }

    /// Where a queue ticket stands (`GET /v1/queue/{ticket}`).
    pub(crate) async fn queue_status(&self, ticket: &QueueTicketId) -> Result<Place, Failure> {
        let path = format!("/v1/queue/{ticket}");
        let answer = self.send(Method::GET, &path, &[], None).await?;
        if answer.status != StatusCode::OK {
            return Err(failure(&answer));
        }
        place(decode(&answer)?)
    }

    /// Leaves the queue, or gives the pass back (`DELETE /v1/queue/{ticket}`).
    pub(crate) async fn leave(&self, ticket: &QueueTicketId) -> Result<(), Failure> {
        let path = format!("/v1/queue/{ticket}");
        let answer = self.send(Method::DELETE, &path, &[], None).await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(failure(&answer)),
        }
    }

    /// Reserves, with the buyer's `Admission-Pass` when it has one.
    pub(crate) async fn reserve(
        &self,
        request: &ReserveRequest,
        pass: Option<&Pass>,
    ) -> Result<Hold, Failure> {
        let body = ReserveBody {
            client_reservation_id: request
                .client_reservation_id
                .as_ref()
                .map(|id| id.to_string()),
            user_id: Some(request.holder.to_string()),
            seat_ids: request.seats.iter().map(ToString::to_string).collect(),
            ga: request.ga.iter().map(ga_item).collect(),
            best_available: request
                .best_available
                .as_ref()
                .map(|best| BestAvailableBody {
                    count: best.count,
                    adjacent: best.adjacent,
                    section: best.section.clone(),
                    category: best.category.clone(),
                }),
            ttl_seconds: request.ttl_seconds,
        };
        let path = format!("/v1/events/{}/reservations", request.event);
        let headers: Vec<(&str, &str)> = pass
            .map(|pass| (ADMISSION_PASS, pass.as_str()))
            .into_iter()
            .collect();
        let answer = self
            .send(Method::POST, &path, &headers, Some(encode(&body)?))
            .await?;
        if !matches!(answer.status, StatusCode::CREATED | StatusCode::OK) {
            return Err(failure(&answer));
        }
        let view: ReservationView = decode(&answer)?;
        let token = match &view.token {
            Some(token) => Some(ReservationToken::parse(token).map_err(other)?),
            None => None,
        };
        Ok(Hold {
            id: ReservationId::new(&view.reservation_id).map_err(other)?,
            token,
            seats: seat_ids(&view.seats)?,
        })
    }

    pub(crate) async fn commit(
        &self,
        id: &ReservationId,
        token: &ReservationToken,
        key: &IdempotencyKey,
        payment: &PaymentId,
    ) -> Result<Sold, Failure> {
        let body = CommitBody {
            payment_id: Some(payment.to_string()),
            ..CommitBody::default()
        };
        let token = token.expose();
        let headers = [
            (RESERVATION_TOKEN, token.as_str()),
            (IDEMPOTENCY_KEY, key.as_str()),
        ];
        let path = format!("/v1/reservations/{id}/commit");
        let answer = self
            .send(Method::POST, &path, &headers, Some(encode(&body)?))
            .await?;
        if answer.status != StatusCode::OK {
            return Err(failure(&answer));
        }
        let view: OrderView = decode(&answer)?;
        Ok(Sold::from_order(&order_from_view(&view)?))
    }

    pub(crate) async fn cancel(
        &self,
        id: &ReservationId,
        token: &ReservationToken,
    ) -> Result<(), Failure> {
        let token = token.expose();
        let path = format!("/v1/reservations/{id}/cancel");
        let answer = self
            .send(
                Method::POST,
                &path,
                &[(RESERVATION_TOKEN, token.as_str())],
                None,
            )
            .await?;
        match answer.status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            _ => Err(failure(&answer)),
        }
    }

    /// The seat map, as the core's availability.
    pub(crate) async fn availability(&self, event: &EventId) -> Result<Availability, Failure> {
        let path = format!("/v1/events/{event}/seatmap");
        let answer = self.send(Method::GET, &path, &[], None).await?;
        if answer.status != StatusCode::OK {
            return Err(failure(&answer));
        }
        let map: SeatMap = decode(&answer)?;
        let seats = map
            .seats
            .iter()
            .map(|seat| parse_snake(&seat.status))
            .collect::<Result<_, _>>()?;
        let pools = map
            .pools
            .iter()
            .map(|pool| {
                Ok(PoolAvailability {
                    pool: PoolId::new(&pool.pool).map_err(other)?,
                    capacity: pool.capacity,
                    held: pool.held,
                    sold: pool.sold,
                    blocked: pool.blocked,
                    available: pool.available,
                })
            })
            .collect::<Result<_, Failure>>()?;
        Ok(Availability {
            event: EventId::new(&map.event_id).map_err(other)?,
            seq: map.seq,
            seats,
            pools,
        })
    }

    pub(crate) async fn reservation(&self, id: &ReservationId) -> Result<Reservation, Failure> {
        let path = format!("/v1/reservations/{id}");
        let answer = self.send(Method::GET, &path, &self.admin(), None).await?;
        if answer.status != StatusCode::OK {
            return Err(failure(&answer));
        }
        reservation_from_view(&decode(&answer)?)
    }

    pub(crate) async fn order(&self, id: &OrderId) -> Result<Order, Failure> {
        let path = format!("/v1/orders/{id}");
        let answer = self.send(Method::GET, &path, &self.admin(), None).await?;
        if answer.status != StatusCode::OK {
            return Err(failure(&answer));
        }
        order_from_view(&decode(&answer)?)
    }

    /// The change log from sequence 1 through `seq`, read from the Server-Sent Events
    /// stream (which goes on live: it is dropped once `seq` arrived).
    pub(crate) async fn changes_through(
        &self,
        event: &EventId,
        seq: u64,
    ) -> Result<Vec<Change>, Failure> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}/v1/events/{event}/changes?after=0", self.base))
            .header(header::ACCEPT, "text/event-stream")
            .body(Full::new(Bytes::new()))
            .map_err(|error| Failure::Other(format!("building a request: {error}")))?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| Failure::Transient("the change stream did not open".to_owned()))?
            .map_err(|error| Failure::Transient(format!("HTTP: {error}")))?;
        if response.status() != StatusCode::OK {
            return Err(Failure::Other(format!(
                "the change stream answered {}",
                response.status()
            )));
        }
        let mut body = response.into_body();
        let mut stream = SseReader::default();
        while stream.changes.last().map_or(0, |change| change.seq) < seq {
            let frame = tokio::time::timeout(self.timeout, body.frame())
                .await
                .map_err(|_| Failure::Transient("the change stream stalled".to_owned()))?;
            let Some(frame) = frame else {
                return Err(Failure::Other("the change stream ended early".to_owned()));
            };
            let frame = frame.map_err(|error| Failure::Transient(format!("SSE: {error}")))?;
            if let Ok(data) = frame.into_data() {
                stream.feed(&data)?;
            }
        }
        stream
            .changes
            .truncate(usize::try_from(seq).unwrap_or(usize::MAX));
        Ok(stream.changes)
    }
}

/// Splits a Server-Sent Events stream into `change` events.
#[derive(Default)]
struct SseReader {
    pending: Vec<u8>,
    changes: Vec<Change>,
}

impl SseReader {
    fn feed(&mut self, data: &[u8]) -> Result<(), Failure> {
        let searched = self.pending.len().saturating_sub(1);
        self.pending.extend_from_slice(data);
        let mut from = searched;
        let mut consumed = 0;
        while let Some(at) = find_blank_line(&self.pending[from..]) {
            let end = from + at;
            self.event(consumed, end)?;
            consumed = end + 2;
            from = consumed;
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    /// One event: the lines of `pending[start..end]`.
    fn event(&mut self, start: usize, end: usize) -> Result<(), Failure> {
        let text = String::from_utf8_lossy(&self.pending[start..end]);
        let mut name = "message";
        let mut data = String::new();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim();
            } else if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        match name {
            "change" => {
                let change: Change = serde_json::from_str(&data)
                    .map_err(|error| Failure::Other(format!("a change: {error}")))?;
                self.changes.push(change);
                Ok(())
            }
            "resync" => Err(Failure::Other(format!(
                "the server no longer retains the whole change log: {data}"
            ))),
            "error" => Err(Failure::Transient(format!(
                "the change stream failed: {data}"
            ))),
            _ => Ok(()),
        }
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\n\n")
}

/// Where a queue ticket stands, by the server's view of it.
fn place(view: QueueView) -> Result<Place, Failure> {
    Ok(match view.status.as_str() {
        "waiting" | "pre_queue" => Place::Waiting,
        "sold_out" => Place::SoldOut,
        "admitted" => {
            let pass = view
                .pass
                .ok_or_else(|| other("an admitted ticket without its pass"))?;
            Place::Admitted(Pass::from_text(pass))
        }
        "lapsed" | "left" => Place::Gone,
        status => return Err(other(format!("a queue status of {status:?}"))),
    })
}

fn other(error: impl std::fmt::Display) -> Failure {
    Failure::Other(format!("unexpected answer: {error}"))
}

fn encode(body: &impl serde::Serialize) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(body).map_err(other)
}

fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, Failure> {
    serde_json::from_slice(&answer.body).map_err(other)
}

/// A snake_case enum value (`held`, `committed`, `checked_in`) as the core's type.
fn parse_snake<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    serde_json::from_value(Value::String(text.to_owned())).map_err(other)
}

fn seat_ids(ids: &[String]) -> Result<Vec<SeatId>, Failure> {
    ids.iter()
        .map(|id| SeatId::new(id).map_err(other))
        .collect()
}

fn ga_item(ga: &GaRequest) -> GaItem {
    GaItem {
        pool: ga.pool.to_string(),
        quantity: ga.quantity,
    }
}

fn parse_time(text: &str) -> Result<Timestamp, Failure> {
    let time = humantime::parse_rfc3339_weak(text).map_err(other)?;
    let since = time.duration_since(UNIX_EPOCH).map_err(other)?;
    Ok(Timestamp::from_millis(
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
    ))
}

/// What a non-success answer means to a buyer.
fn failure(answer: &Answer) -> Failure {
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        return Failure::RateLimited(answer.retry_after.unwrap_or(Duration::from_secs(1)));
    }
    let document: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let code = document["code"].as_str().unwrap_or_default();
    match code {
        "seat_unavailable" => Failure::SeatsTaken(
            document["seat_ids"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|id| SeatId::new(id).ok())
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "sold_out" => Failure::SoldOut {
            ga: document["pool"].is_string(),
            remaining: document["remaining"]
                .as_u64()
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        },
        "reservation_expired" => Failure::Expired,
        "reservation_not_active" => Failure::NotActive,
        "pass_required" => Failure::PassRefused(PassError::Missing.code()),
        "invalid_pass" => Failure::PassRefused(PassError::Malformed.code()),
        "pass_expired" => Failure::PassRefused("pass_expired"),
        "idempotency_in_flight" => Failure::Transient(code.to_owned()),
        _ if answer.status.is_server_error() => {
            Failure::Transient(format!("{} {code}", answer.status))
        }
        _ => Failure::Other(format!(
            "{} {code}: {}",
            answer.status,
            document["detail"].as_str().unwrap_or_default()
        )),
    }
}

fn create_event_body(spec: &EventSpec) -> CreateEventBody {
    CreateEventBody {
        event_id: spec.id.to_string(),
        name: spec.name.clone(),
        seats: spec
            .seats
            .iter()
            .map(|seat| SeatBody {
                seat_id: seat.id.to_string(),
                section: seat.section.clone(),
                row: seat.row.clone(),
                number: seat.number,
                category: seat.category.clone(),
                accessible: seat.accessible,
                x: seat.position.x,
                y: seat.position.y,
            })
            .collect(),
        pools: spec
            .pools
            .iter()
            .map(|pool| PoolBody {
                pool: pool.id.to_string(),
                name: pool.name.clone(),
                capacity: pool.capacity,
            })
            .collect(),
        sale_window: None,
        policy: Some(PolicyBody {
            reservation_ttl_seconds: Some(spec.policy.reservation_ttl_seconds),
            reservation_ttl_seconds_max: Some(spec.policy.reservation_ttl_seconds_max),
            ..PolicyBody::default()
        }),
    }
}

fn reservation_from_view(view: &ReservationView) -> Result<Reservation, Failure> {
    Ok(Reservation {
        id: ReservationId::new(&view.reservation_id).map_err(other)?,
        event: EventId::new(&view.event_id).map_err(other)?,
        holder: HolderId::new(&view.user_id).map_err(other)?,
        status: parse_snake(&view.status)?,
        seats: seat_ids(&view.seats)?,
        ga: view
            .ga
            .iter()
            .map(|ga| {
                Ok(GaRequest {
                    pool: PoolId::new(&ga.pool).map_err(other)?,
                    quantity: ga.quantity,
                })
            })
            .collect::<Result<_, Failure>>()?,
        created_at: parse_time(&view.created_at)?,
        expires_at: parse_time(&view.expires_at)?,
        token: None,
        client_reservation_id: None,
        order: match &view.order_id {
            Some(order) => Some(OrderId::new(order).map_err(other)?),
            None => None,
        },
    })
}

fn ticket_from_view(view: &TicketView) -> Result<Ticket, Failure> {
    let item = match (&view.seat_id, &view.pool) {
        (Some(seat), None) => TicketItem::Seat(SeatId::new(seat).map_err(other)?),
        (None, Some(pool)) => TicketItem::Pool(PoolId::new(pool).map_err(other)?),
        _ => return Err(other("a ticket with neither or both of seat_id and pool")),
    };
    Ok(Ticket {
        id: TicketId::new(&view.ticket_id).map_err(other)?,
        order: OrderId::new(&view.order_id).map_err(other)?,
        event: EventId::new(&view.event_id).map_err(other)?,
        holder: HolderId::new(&view.user_id).map_err(other)?,
        item,
        code: TicketCode::new(&view.code).map_err(other)?,
        status: parse_snake(&view.status)?,
    })
}

fn order_from_view(view: &OrderView) -> Result<Order, Failure> {
    Ok(Order {
        id: OrderId::new(&view.order_id).map_err(other)?,
        event: EventId::new(&view.event_id).map_err(other)?,
        reservation: ReservationId::new(&view.reservation_id).map_err(other)?,
        holder: HolderId::new(&view.user_id).map_err(other)?,
        payment_id: match &view.payment_id {
            Some(payment) => Some(PaymentId::new(payment).map_err(other)?),
            None => None,
        },
        tickets: view
            .tickets
            .iter()
            .map(ticket_from_view)
            .collect::<Result<_, _>>()?,
        created_at: parse_time(&view.created_at)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_loopback_hosts_are_accepted() {
        for good in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://localhost:3000",
            "http://[::1]:8080",
            "http://127.1.2.3",
        ] {
            assert!(loopback_base(good).is_ok(), "{good}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
            "http://0.0.0.0:8080",
            "http://127.0.0.1:8080/v1",
            "127.0.0.1:8080",
        ] {
            assert!(loopback_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_sent_events_split_into_changes_across_chunks() {
        let text = "event: change\nid: 1\ndata: {\"event\":\"e\",\"seq\":1,\"at\":5,\"kind\":{\"type\":\"event_created\"}}\n\n: keep-alive\n\n";
        let mut reader = SseReader::default();
        for chunk in text.as_bytes().chunks(7) {
            reader.feed(chunk).unwrap();
        }
        assert_eq!(reader.changes.len(), 1);
        assert_eq!(reader.changes[0].seq, 1);
        assert!(reader.pending.is_empty());
    }
}
