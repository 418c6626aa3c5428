//! Key layout and store-made ids.
//!
//! Every key of an event is `<prefix>{ev:<tag>}:<name>`, where the tag is 16 base32
//! characters of the SHA-256 of the event id: the same hash slot for all of them, whatever
//! bytes the id holds (a `{`, `}` or `:` in an id can never reach the key's structure).
//! Reservation, order and ticket ids and ticket codes end in `.<tag>`, so an operation that
//! names only one of them finds its event's slot without a lookup elsewhere.

use data_encoding::{BASE32_NOPAD, HEXLOWER};
use sha2::{Digest, Sha256};
use ticketing_core::{
    Error, EventId, OrderId, ReservationId, ReservationToken, Result, TicketCode, TicketId,
    Timestamp,
};

/// Bytes of SHA-256 kept in a tag: 80 bits, 16 base32 characters.
const TAG_BYTES: usize = 10;
/// Characters of a tag.
pub(crate) const TAG_LENGTH: usize = 16;
const _: () = assert!(TAG_BYTES * 8 == TAG_LENGTH * 5);
/// The longest key prefix.
pub(crate) const PREFIX_LENGTH_MAX: usize = 64;

/// The names of an event's keys, in the order every event script receives them as KEYS.
const EVENT_KEY_NAMES: [&str; 23] = [
    "ev", "seats", "layout", "st", "pools", "pc", "rsv", "due", "hc", "ord", "tkt", "code", "rrec",
    "crec", "rect", "log", "wq", "we", "wh", "free", "place", "next", "adj",
];

/// Digits of a layout index in the free-seat index's members (`INDEX_DIGITS` in
/// `lua/common.lua`): zero-padded so that byte order is layout order, which holds only while
/// every index fits.
const FREE_INDEX_DIGITS: u32 = 6;
const _: () =
    assert!(ticketing_core::validate::SEATS_PER_EVENT_MAX < 10usize.pow(FREE_INDEX_DIGITS));

/// An event's hash tag: base32 of the first 80 bits of the SHA-256 of its id.
pub(crate) fn tag(event: &EventId) -> String {
    let digest = Sha256::digest(event.as_str().as_bytes());
    BASE32_NOPAD.encode(&digest[..TAG_BYTES])
}

/// The tag a store-made id or code ends in, or `None` when it has none (then it names
/// nothing this store made: `not_found`).
pub(crate) fn tag_of(id: &str) -> Option<&str> {
    let (_, tag) = id.rsplit_once('.')?;
    let well_formed = tag.len() == TAG_LENGTH
        && tag
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || (b'2'..=b'7').contains(&byte));
    well_formed.then_some(tag)
}

/// Checks a key prefix: up to 64 bytes of `A-Z a-z 0-9 - _ . :` (no braces, so the first
/// `{` of every key is the event's tag).
pub(crate) fn check_prefix(prefix: &str) -> Result<()> {
    let allowed =
        |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':');
    if prefix.len() > PREFIX_LENGTH_MAX || !prefix.bytes().all(allowed) {
        return Err(Error::invalid(
            "key_prefix",
            "at most 64 bytes of A-Z a-z 0-9 - _ . :",
        ));
    }
    Ok(())
}

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: String) -> Self {
        Self { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The event's keys for a tag, in script order.
    pub(crate) fn event(&self, tag: &str) -> Vec<String> {
        EVENT_KEY_NAMES
            .iter()
            .map(|name| format!("{}{{ev:{tag}}}:{name}", self.prefix))
            .collect()
    }

    /// The listing keys: event ids (sorted set) and summaries (hash), on their own slot.
    pub(crate) fn listing(&self) -> [String; 2] {
        [
            format!("{}{{idx}}:events", self.prefix),
            format!("{}{{idx}}:summaries", self.prefix),
        ]
    }
}

/// A fresh reservation id for an event with `tag`: `rsv_<ULID>.<tag>`.
pub(crate) fn reservation_id(at: Timestamp, tag: &str) -> Result<ReservationId> {
    ReservationId::new(format!("{}.{tag}", ReservationId::generate(at)))
}

/// A fresh order id: `ord_<ULID>.<tag>`.
pub(crate) fn order_id(at: Timestamp, tag: &str) -> Result<OrderId> {
    OrderId::new(format!("{}.{tag}", OrderId::generate(at)))
}

/// A fresh stem for an order's ticket ids (`tkt_<ULID>`; the script appends `-<n>.<tag>`).
pub(crate) fn ticket_stem(at: Timestamp) -> String {
    TicketId::generate(at).to_string()
}

/// A fresh gate code for a transferred ticket: 26 random base32 characters and the tag.
pub(crate) fn ticket_code(tag: &str) -> Result<TicketCode> {
    TicketCode::new(format!("{}.{tag}", TicketCode::generate()))
}

/// 128 random bits (hex) from which a commit's script derives its ticket codes.
pub(crate) fn code_seed() -> String {
    HEXLOWER.encode(&rand::random::<[u8; 16]>())
}

/// What the store keeps of a token: its SHA-256, hex.
pub(crate) fn token_digest(token: &ReservationToken) -> String {
    HEXLOWER.encode(&token.digest())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tags_are_stable_base32_and_found_again_in_ids() {
        let event = EventId::new("ev-1:x.y|z").unwrap();
        let tag = tag(&event);
        assert_eq!(tag.len(), TAG_LENGTH);
        assert_eq!(tag, super::tag(&event));
        let id = reservation_id(Timestamp::from_millis(1), &tag).unwrap();
        assert_eq!(tag_of(id.as_str()), Some(tag.as_str()));
        assert!(id.as_str().len() <= ticketing_core::ID_LENGTH_MAX);
        let code = ticket_code(&tag).unwrap();
        assert_eq!(tag_of(code.as_str()), Some(tag.as_str()));
        let stem = ticket_stem(Timestamp::from_millis(1));
        assert!(format!("{stem}-64.{tag}").len() <= ticketing_core::ID_LENGTH_MAX);
        for bad in [
            "rsv_x",
            "rsv_x.",
            "a.abcdefghijklmnop",
            "a.AAAAAAAAAAAAAAA1",
            "a.AAAA",
        ] {
            assert_eq!(tag_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_share_one_tag_and_prefixes_refuse_braces() {
        let keys = Keys::new("t:".to_owned());
        let event = keys.event("ABCDEFGHIJKLMNOP");
        assert_eq!(event.len(), 23);
        assert!(
            event
                .iter()
                .all(|key| key.starts_with("t:{ev:ABCDEFGHIJKLMNOP}:"))
        );
        assert!(check_prefix("app-1:tickets.").is_ok());
        for bad in ["{x}", "a}", "sp ace", &"a".repeat(65)] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
