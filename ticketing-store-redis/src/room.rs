//! [`WaitingRoom`] on Redis: [`RedisWaitingRoom`], each call one Lua script on the event's
//! slot.
//!
//! ## Keys
//!
//! A room lives beside its event's inventory, under the same hash tag, so every script of
//! a room runs on one slot (and one primary of a cluster). Every room script receives the
//! same five keys, `<prefix>{ev:<tag>}:<name>`, in this order:
//!
//! | name | type | holds |
//! |---|---|---|
//! | `room` | hash | event id, settings, `opened`, `last` (last step), `credit`, `sold`, `admitted`, `seq` (arrivals after the opening) |
//! | `rq` | sorted set | waiting tickets (pre-queue included) scored by their order: the queue |
//! | `rp` | sorted set | admitted tickets scored by pass expiry (ms): the live passes |
//! | `rv` | hash | visitor → its current ticket (waiting or admitted): one place per visitor |
//! | `rt` | hash | ticket → `<mark><joined_at>\|<visitor>`, mark `q` live, `l` lapsed, `x` left |
//!
//! A ticket's key in these is the 16-character random part of its id (80 random bits,
//! Crockford base32). The id a visitor holds is `q_<ULID>.<tag>`: a ULID whose time part
//! is the ticket's `joined_at` and whose random part is the key, then the event's tag, so
//! `status` and `leave` find the slot from the id alone and the script checks that the
//! time part matches. An id without a tag, with another shape or naming no ticket is
//! `not_found`.
//!
//! ## Order and exact positions
//!
//! The queue's score is the admission order. A visitor who joins before the opening
//! (`opens_at`) is scored by its *pre-queue shuffle key*: the first 52 bits of
//! SHA-1 over the room's `shuffle_seed` (16 lowercase hex digits) followed by the visitor
//! id, computed in the script with `redis.sha1hex` (Lua has no SHA-256, so this key is not
//! the core's [`shuffle_key`](ticketing_core::room::shuffle_key): the same seed and
//! visitors give the same order on this backend, another order than in memory or
//! PostgreSQL). Ties, a 52-bit collision, go by ticket key. A visitor who joins after the
//! opening is scored 2^52 + its arrival number (`HINCRBY` on `seq`). Every score is an
//! integer below 2^53, exact as a double, and every pre-queue score sorts before every
//! later arrival's, so the opening moves nothing: it only stamps `opened` and the opening
//! credit. Admission takes the lowest scores (`ZPOPMIN`); leaving is `ZREM`. So the queue
//! holds exactly the visitors still waiting, in order, and a visitor's position is
//! `ZRANK + 1`: exact, in O(log n), whatever left or was admitted before it.
//!
//! ## The step
//!
//! `admit` lapses passes past their expiry (earliest first, at most
//! [`LAPSE_PER_STEP_MAX`] a step; a pass past its time reads as lapsed and never counts as
//! live, so a backlog only waits to be swept), then computes
//! [`AdmissionBudget`](ticketing_core::room::AdmissionBudget) in the same integer
//! arithmetic (credit in visitor-milliseconds, at most one second's worth), live passes
//! counted with `ZCOUNT` over expiries after now, and moves the budget's head of the queue
//! to `rp` with one expiry. The estimated wait is computed by the client with the core's
//! [`estimated_wait_seconds`] from the counts the status script answers.
//!
//! ## Memory
//!
//! A waiting visitor costs one sorted-set member (its ticket key), two hash fields (ticket
//! → record, visitor → ticket key) and the record (`q`, 13 digits, `|`, the visitor id): about
//! 250 bytes with a 12-byte visitor id (`examples/redis_room_bench.rs` measures it). Records of
//! lapsed and left tickets stay (their status reads `lapsed` or `left`) but leave `rq`,
//! `rp` and `rv`.
//!
//! ## The list of rooms
//!
//! [`rooms`](WaitingRoom::rooms) reads one sorted set under a fixed key,
//! `<prefix>{idx}:rooms` (event ids at score 0, so in id order), beside the event listing
//! on the `{idx}` slot. `configure` adds the event to it first (idempotent `ZADD`), then
//! runs the room's script on the event's slot: two calls, as on a cluster no script may
//! touch two slots. A crash between the two leaves an event listed without a room: its
//! `admit` answers `not_found`, which the sweeper counts as a failed step, until
//! `configure` is run again; the other way round would leave a room that visitors join
//! but no sweeper steps. On a cluster every `configure` and `rooms` call goes to the
//! `{idx}` slot's primary; both are rare (an administrator's call, one read per sweeper
//! tick), and no join, poll or step touches it. A `SCAN` instead would read every key of
//! every primary on each sweeper tick.
//!
//! ## Retries
//!
//! `configure`, `join` (a retry sends the same fresh ticket key, and the visitor's place is
//! found again), `status`, `leave` and `stats` are tried again after a lost answer as
//! [`RedisStoreConfig::retries`] allows; `admit` only when it cannot have run.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use serde::Deserialize;
use ticketing_core::room::{
    ADMIT_PER_STEP_MAX, AdmitStep, QueueState, QueueStatus, QueueTicket, RoomSettings, RoomStats,
    WaitingRoom, check_room_settings, estimated_wait_seconds,
};
use ticketing_core::{Entity, Error, EventId, HolderId, QueueTicketId, Result, Timestamp};

use crate::error::backend;
use crate::{RedisStore, RedisStoreConfig, Repeat, keys, wire};

/// The most lapsed passes one [`WaitingRoom::admit`] step sweeps: twice what a step may
/// admit, so sweeping keeps up with admission; passes past their time beyond it are
/// lapsed already (by reading) and swept by the next steps.
pub const LAPSE_PER_STEP_MAX: u32 = 2 * ADMIT_PER_STEP_MAX;

/// The largest `free_units` sent to the admit script: exact as a Lua number, and far more
/// than a step's bound ever needs.
const FREE_UNITS_MAX: u64 = 1 << 53;

/// The names of a room's keys, in the order every room script receives them as KEYS.
const ROOM_KEY_NAMES: [&str; 5] = ["room", "rq", "rp", "rv", "rt"];

/// Crockford's base32, as ULIDs are written.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// What every queue ticket id starts with (the core's prefix for them).
const TICKET_PREFIX: &str = "q_";
/// Characters of a ULID's time part (48 bits of milliseconds).
const TIME_CHARS: usize = 10;
/// Characters of a ticket key: a ULID's random part (80 bits).
const KEY_CHARS: usize = 16;
const _: () = assert!(TICKET_PREFIX.len() + TIME_CHARS + KEY_CHARS + 1 + keys::TAG_LENGTH <= 64);

/// A room script: the shared prelude, then the operation's body.
macro_rules! room_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../lua/room_common.lua"),
                "\n",
                include_str!(concat!("../lua/", $file))
            ))
        })
    };
}

struct RoomScripts {
    configure: LazyLock<Script>,
    join: LazyLock<Script>,
    status: LazyLock<Script>,
    leave: LazyLock<Script>,
    admit: LazyLock<Script>,
    stats: LazyLock<Script>,
}

static SCRIPTS: RoomScripts = RoomScripts {
    configure: room_script!("room_configure.lua"),
    join: room_script!("room_join.lua"),
    status: room_script!("room_status.lua"),
    leave: room_script!("room_leave.lua"),
    admit: room_script!("room_admit.lua"),
    stats: room_script!("room_stats.lua"),
};

impl RoomScripts {
    fn all(&self) -> [&Script; 6] {
        [
            &self.configure,
            &self.join,
            &self.status,
            &self.leave,
            &self.admit,
            &self.stats,
        ]
    }
}

/// Waiting rooms in Redis, beside the inventory: the rules of [`ticketing_core::room`],
/// every call one script on the event's slot (see the [module docs](self) for the keys).
///
/// Made from a [`RedisStore`] ([`RedisStore::waiting_room`], sharing its connection, key
/// prefix, clock and retries) or on its own ([`RedisWaitingRoom::connect`]).
///
/// ```no_run
/// # async fn demo() -> ticketing_core::Result<()> {
/// use ticketing_core::{EventId, HolderId, RoomSettings, WaitingRoom};
/// use ticketing_store_redis::{RedisStore, RedisStoreConfig};
///
/// let store = RedisStore::connect(RedisStoreConfig::new("redis://127.0.0.1:6379")).await?;
/// let rooms = store.waiting_room();
/// let event = EventId::new("concert-1")?;
/// rooms.configure(&event, RoomSettings::rate(50)).await?;
/// let ticket = rooms.join(&event, &HolderId::new("alice")?).await?;
/// let state = rooms.status(&ticket.id).await?; // waiting, position 1
/// # let _ = state;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisWaitingRoom {
    store: RedisStore,
}

impl std::fmt::Debug for RedisWaitingRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWaitingRoom")
            .field("store", &self.store)
            .finish()
    }
}

impl RedisStore {
    /// The waiting rooms of this store's events: the same connection, key prefix, clock
    /// and retries. Scripts load on first use (or call
    /// [`RedisWaitingRoom::load_scripts`]).
    pub fn waiting_room(&self) -> RedisWaitingRoom {
        RedisWaitingRoom::new(self)
    }
}

impl RedisWaitingRoom {
    /// Rooms over `store`'s connection, key prefix, clock and retries.
    pub fn new(store: &RedisStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Connects as [`RedisStore::connect`] does, then loads the room scripts.
    ///
    /// Errors: `invalid_request` for a malformed URL; `backend` when no server answers.
    pub async fn connect(config: RedisStoreConfig) -> Result<Self> {
        let rooms = Self::new(&RedisStore::connect(config).await?);
        rooms.load_scripts().await?;
        Ok(rooms)
    }

    /// Loads the room scripts on every primary. Calls reload a script themselves when a
    /// server answers NOSCRIPT, so this only saves the first calls a round trip.
    ///
    /// Errors: `backend`.
    pub async fn load_scripts(&self) -> Result<()> {
        for script in SCRIPTS.all() {
            let mut connection = self.store.connection.clone();
            script
                .prepare_invoke()
                .load_async(&mut connection)
                .await
                .map_err(|error| backend("load_scripts", &error))?;
        }
        Ok(())
    }

    /// The store the rooms share their connection with.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    /// The five keys of `event`'s room, in the order every room script takes them as
    /// `KEYS` (for operators, and benchmarks that measure them).
    pub fn room_keys(&self, event: &EventId) -> Vec<String> {
        self.keys_of(&keys::tag(event))
    }

    /// The key of the list of rooms (a sorted set of event ids).
    pub fn rooms_key(&self) -> String {
        format!("{}{{idx}}:rooms", self.store.keys.prefix())
    }

    fn keys_of(&self, tag: &str) -> Vec<String> {
        let prefix = self.store.keys.prefix();
        ROOM_KEY_NAMES
            .iter()
            .map(|name| format!("{prefix}{{ev:{tag}}}:{name}"))
            .collect()
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        script: &Script,
        tag: &str,
        args: &[&[u8]],
        repeat: Repeat,
    ) -> Result<T> {
        let answer = self
            .store
            .run(operation, script, &self.keys_of(tag), args, repeat)
            .await?;
        wire::decode(operation, wire::parse(operation, &answer)?)
    }
}

/// 80 random bits as 16 Crockford base32 characters: a fresh ticket key.
fn fresh_key() -> String {
    let bits = rand::random::<u128>() >> 48;
    (0..KEY_CHARS)
        .map(|i| char::from(CROCKFORD[((bits >> (75 - 5 * i)) & 31) as usize]))
        .collect()
}

/// A ULID's time part: 48 bits of milliseconds as 10 Crockford base32 characters.
fn time_part(at: Timestamp) -> String {
    let millis = at.as_millis() & ((1 << 48) - 1);
    (0..TIME_CHARS)
        .map(|i| char::from(CROCKFORD[((millis >> (45 - 5 * i)) & 31) as usize]))
        .collect()
}

/// The milliseconds a ULID's time part says, or `None` for characters that are not
/// canonical Crockford base32.
fn time_of(part: &str) -> Option<u64> {
    part.bytes().try_fold(0u64, |millis, byte| {
        let digit = CROCKFORD.iter().position(|c| *c == byte)?;
        Some((millis << 5) | digit as u64)
    })
}

/// The id of the ticket with `key`, made at `joined_at`, in the room with `tag`.
fn ticket_id(joined_at: Timestamp, key: &str, tag: &str) -> Result<QueueTicketId> {
    QueueTicketId::new(format!(
        "{TICKET_PREFIX}{}{key}.{tag}",
        time_part(joined_at)
    ))
}

/// A ticket id's parts as the scripts take them: key, `joined_at` (ms) and tag; `None`
/// when the id is not one this backend makes.
fn ticket_parts(id: &QueueTicketId) -> Option<(&str, u64, &str)> {
    let tag = keys::tag_of(id.as_str())?;
    let ulid = id
        .as_str()
        .strip_prefix(TICKET_PREFIX)?
        .strip_suffix(tag)?
        .strip_suffix('.')?;
    if ulid.len() != TIME_CHARS + KEY_CHARS || !ulid.is_ascii() {
        return None;
    }
    let (time, key) = ulid.split_at(TIME_CHARS);
    if !key.bytes().all(|byte| CROCKFORD.contains(&byte)) {
        return None;
    }
    Some((key, time_of(time)?, tag))
}

fn optional(value: Option<impl ToString>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

#[derive(Deserialize)]
struct Joined {
    key: String,
    joined_at: u64,
}

/// Where a ticket stands, as the status script answers.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Place {
    PreQueue,
    Waiting,
    SoldOut,
    Admitted,
    Lapsed,
    Left,
}

#[derive(Deserialize)]
struct Placed {
    event: String,
    visitor: String,
    joined_at: u64,
    now: u64,
    place: Place,
    position: Option<u64>,
    opens_at: Option<u64>,
    expires_at: Option<u64>,
    rate: Option<u32>,
    opened_at: Option<u64>,
    admitted_total: Option<u64>,
}

impl Placed {
    fn status(&self) -> Result<QueueStatus> {
        let now = Timestamp::from_millis(self.now);
        Ok(match self.place {
            Place::PreQueue => QueueStatus::PreQueue {
                opens_at: self.opens_at.map_or(now, Timestamp::from_millis),
            },
            Place::Waiting => {
                let position = self.position.ok_or_else(|| {
                    wire::malformed("status", "a waiting ticket without position")
                })?;
                let settings = RoomSettings {
                    admit_per_second: self.rate,
                    active_max: None,
                    pass_ttl_seconds: RoomSettings::PASS_TTL_SECONDS_DEFAULT,
                    seats_per_buyer: RoomSettings::SEATS_PER_BUYER_DEFAULT,
                    opens_at: None,
                    shuffle_seed: 0,
                };
                let stats = RoomStats {
                    admitted_total: self.admitted_total.unwrap_or(0),
                    opened_at: self.opened_at.map(Timestamp::from_millis),
                    ..RoomStats::default()
                };
                QueueStatus::Waiting {
                    position,
                    estimated_wait_seconds: estimated_wait_seconds(
                        &settings, &stats, now, position,
                    ),
                }
            }
            Place::SoldOut => QueueStatus::SoldOut,
            Place::Admitted => QueueStatus::Admitted {
                pass_expires_at: Timestamp::from_millis(self.expires_at.ok_or_else(|| {
                    wire::malformed("status", "an admitted ticket without expiry")
                })?),
            },
            Place::Lapsed => QueueStatus::Lapsed,
            Place::Left => QueueStatus::Left,
        })
    }
}

/// A room's settings from its hash fields (`id`, rate, cap, ttl, spb, opens, seed).
type SettingsFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u32>,
    Option<String>,
    Option<String>,
);

fn settings_of(event: &EventId, fields: SettingsFields) -> Result<Option<RoomSettings>> {
    let (id, rate, cap, ttl, spb, opens, seed) = fields;
    if id.as_deref() != Some(event.as_str()) {
        return Ok(None);
    }
    let malformed = || wire::malformed("settings", "a room hash that does not parse");
    let number = |text: Option<String>| -> Result<Option<u64>> {
        match text.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| malformed()),
        }
    };
    let small = |value: Option<u64>| -> Result<Option<u32>> {
        value
            .map(|value| u32::try_from(value).map_err(|_| malformed()))
            .transpose()
    };
    Ok(Some(RoomSettings {
        admit_per_second: small(number(rate)?)?,
        active_max: small(number(cap)?)?,
        pass_ttl_seconds: ttl.ok_or_else(malformed)?,
        seats_per_buyer: spb.ok_or_else(malformed)?,
        opens_at: number(opens)?.map(Timestamp::from_millis),
        shuffle_seed: seed
            .and_then(|seed| u64::from_str_radix(&seed, 16).ok())
            .ok_or_else(malformed)?,
    }))
}

#[async_trait]
impl WaitingRoom for RedisWaitingRoom {
    async fn configure(&self, event: &EventId, settings: RoomSettings) -> Result<()> {
        check_room_settings(&settings)?;
        let mut connection = self.store.connection.clone();
        redis::cmd("ZADD")
            .arg(self.rooms_key())
            .arg(0)
            .arg(event.as_str())
            .exec_async(&mut connection)
            .await
            .map_err(|error| backend("configure", &error))?;
        let args = [
            self.store.now_arg(),
            event.to_string(),
            optional(settings.admit_per_second),
            optional(settings.active_max),
            settings.pass_ttl_seconds.to_string(),
            settings.seats_per_buyer.to_string(),
            optional(settings.opens_at.map(Timestamp::as_millis)),
            format!("{:016x}", settings.shuffle_seed),
        ];
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        let tag = keys::tag(event);
        self.call::<()>("configure", &SCRIPTS.configure, &tag, &args, Repeat::Safe)
            .await
    }

    async fn settings(&self, event: &EventId) -> Result<Option<RoomSettings>> {
        let key = self.room_keys(event).swap_remove(0);
        let mut connection = self.store.connection.clone();
        let fields: SettingsFields = redis::cmd("HMGET")
            .arg(&key)
            .arg("id")
            .arg("rate")
            .arg("cap")
            .arg("ttl")
            .arg("spb")
            .arg("opens")
            .arg("seed")
            .query_async(&mut connection)
            .await
            .map_err(|error| backend("settings", &error))?;
        settings_of(event, fields)
    }

    async fn rooms(&self) -> Result<Vec<EventId>> {
        let mut connection = self.store.connection.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.rooms_key())
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .map_err(|error| backend("rooms", &error))?;
        ids.into_iter().map(EventId::new).collect()
    }

    async fn join(&self, event: &EventId, visitor: &HolderId) -> Result<QueueTicket> {
        let tag = keys::tag(event);
        let now = self.store.now_arg();
        let fresh = fresh_key();
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            visitor.as_str().as_bytes(),
            fresh.as_bytes(),
        ];
        let joined: Joined = self
            .call("join", &SCRIPTS.join, &tag, &args, Repeat::Safe)
            .await?;
        let joined_at = Timestamp::from_millis(joined.joined_at);
        Ok(QueueTicket {
            id: ticket_id(joined_at, &joined.key, &tag)?,
            event: event.clone(),
            visitor: visitor.clone(),
            joined_at,
        })
    }

    async fn status(&self, ticket: &QueueTicketId) -> Result<QueueState> {
        let not_found = || Error::not_found(Entity::QueueTicket, ticket);
        let (key, joined_at, tag) = ticket_parts(ticket).ok_or_else(not_found)?;
        let now = self.store.now_arg();
        let joined_at = joined_at.to_string();
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            ticket.as_str().as_bytes(),
            key.as_bytes(),
            joined_at.as_bytes(),
        ];
        let placed: Placed = self
            .call("status", &SCRIPTS.status, tag, &args, Repeat::Safe)
            .await?;
        Ok(QueueState {
            status: placed.status()?,
            ticket: QueueTicket {
                id: ticket.clone(),
                event: EventId::new(&placed.event)?,
                visitor: HolderId::new(&placed.visitor)?,
                joined_at: Timestamp::from_millis(placed.joined_at),
            },
        })
    }

    async fn leave(&self, ticket: &QueueTicketId) -> Result<()> {
        let not_found = || Error::not_found(Entity::QueueTicket, ticket);
        let (key, joined_at, tag) = ticket_parts(ticket).ok_or_else(not_found)?;
        let now = self.store.now_arg();
        let joined_at = joined_at.to_string();
        let args: [&[u8]; 4] = [
            now.as_bytes(),
            ticket.as_str().as_bytes(),
            key.as_bytes(),
            joined_at.as_bytes(),
        ];
        self.call("leave", &SCRIPTS.leave, tag, &args, Repeat::Safe)
            .await
    }

    async fn admit(&self, event: &EventId, free_units: u64) -> Result<AdmitStep> {
        let now = self.store.now_arg();
        let free = free_units.min(FREE_UNITS_MAX).to_string();
        let admit_max = ADMIT_PER_STEP_MAX.to_string();
        let lapse_max = LAPSE_PER_STEP_MAX.to_string();
        let args: [&[u8]; 5] = [
            now.as_bytes(),
            event.as_str().as_bytes(),
            free.as_bytes(),
            admit_max.as_bytes(),
            lapse_max.as_bytes(),
        ];
        let tag = keys::tag(event);
        self.call("admit", &SCRIPTS.admit, &tag, &args, Repeat::Unsafe)
            .await
    }

    async fn stats(&self, event: &EventId) -> Result<RoomStats> {
        let now = self.store.now_arg();
        let args: [&[u8]; 2] = [now.as_bytes(), event.as_str().as_bytes()];
        let tag = keys::tag(event);
        self.call("stats", &SCRIPTS.stats, &tag, &args, Repeat::Safe)
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ticket_ids_are_ulids_with_the_tag_and_parse_back() {
        let event = EventId::new("ev-1").unwrap();
        let tag = keys::tag(&event);
        let at = Timestamp::from_millis(1_767_225_600_123);
        let key = fresh_key();
        assert_eq!(key.len(), KEY_CHARS);
        let id = ticket_id(at, &key, &tag).unwrap();
        // The time part is the core's ULID time part for the same instant.
        let core = QueueTicketId::generate(at);
        assert_eq!(id.as_str()[..12], core.as_str()[..12]);
        assert_eq!(
            ticket_parts(&id),
            Some((key.as_str(), at.as_millis(), tag.as_str()))
        );
        assert_ne!(fresh_key(), key);
        let other = format!("{}.{tag}", QueueTicketId::generate(at));
        assert!(ticket_parts(&QueueTicketId::new(other).unwrap()).is_some());
        for bad in [
            "q_01KNOWNNOTHING".to_owned(),
            format!("q_{}.{tag}", &id.as_str()[2..27]),
            format!("r_{}", &id.as_str()[2..]),
            format!("q_{}u{}", &id.as_str()[2..12], &id.as_str()[13..]),
            format!("q_{}.AAAA", &id.as_str()[2..28]),
        ] {
            let bad = QueueTicketId::new(&bad).unwrap();
            assert_eq!(ticket_parts(&bad), None, "{bad}");
        }
    }

    #[test]
    fn settings_read_back_from_the_hash() {
        let event = EventId::new("ev-1").unwrap();
        let some = |text: &str| Some(text.to_owned());
        let fields = (
            some("ev-1"),
            some("20"),
            some(""),
            Some(600),
            Some(2),
            some("1767225600000"),
            some("000000000000002a"),
        );
        let settings = settings_of(&event, fields.clone()).unwrap().unwrap();
        assert_eq!(
            settings,
            RoomSettings::rate(20)
                .opens_at(Timestamp::from_millis(1_767_225_600_000))
                .shuffle_seed(42)
        );
        let other = EventId::new("ev-2").unwrap();
        assert_eq!(settings_of(&other, fields.clone()).unwrap(), None);
        let mut broken = fields;
        broken.6 = some("xyz");
        assert_eq!(settings_of(&event, broken).unwrap_err().code(), "backend");
    }
}
