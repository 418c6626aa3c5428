//! Identifiers: validated, immutable, cheap to clone.
//!
//! Every id is 1 to [`ID_LENGTH_MAX`] bytes of `A-Z a-z 0-9 - _ . : @ | +`. The restricted
//! alphabet keeps ids safe in URLs, SQL, Redis keys and log lines without escaping; it is
//! checked once, here, when an id is made from text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::sync::SharedStr;

/// The longest id, in bytes.
pub const ID_LENGTH_MAX: usize = 64;
const _: () = assert!(ID_LENGTH_MAX <= u8::MAX as usize);

/// Whether `byte` may appear in an id.
pub(crate) const fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':' | b'@' | b'|' | b'+')
}

/// Checks `text` as an id for the request field `field`.
pub(crate) fn check_id(field: &'static str, text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if text.len() > ID_LENGTH_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {ID_LENGTH_MAX} bytes, got {}", text.len()),
        ));
    }
    if let Some(bad) = text.bytes().find(|b| !is_id_byte(*b)) {
        let shown = if bad.is_ascii_graphic() {
            format!("'{}'", bad as char)
        } else {
            format!("byte 0x{bad:02x}")
        };
        return Err(Error::invalid(
            field,
            format!("contains {shown}; allowed are A-Z a-z 0-9 - _ . : @ | +"),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(SharedStr);

        impl $name {
            /// Makes the id from text, checking length and alphabet.
            pub fn new(text: impl AsRef<str>) -> Result<Self> {
                let text = text.as_ref();
                check_id($field, text)?;
                Ok(Self(SharedStr::from(text)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self> {
                Self::new(text)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(text: &str) -> Result<Self> {
                Self::new(text)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(text: String) -> Result<Self> {
                Self::new(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&*text).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// An event (a show, a match, a session): the unit of inventory and of contention.
    EventId, "event_id"
);
string_id!(
    /// An assigned seat within an event's layout.
    SeatId, "seat_id"
);
string_id!(
    /// A general-admission pool: counted capacity, no seat identity.
    PoolId, "pool"
);
string_id!(
    /// Whoever reserves and owns tickets: a user, an account, a box office.
    HolderId, "holder"
);
string_id!(
    /// A reservation's id, made by the store.
    ReservationId, "reservation_id"
);
string_id!(
    /// The client's own id for a reservation request; repeating it repeats nothing
    /// (the first outcome is returned).
    ClientReservationId, "client_reservation_id"
);
string_id!(
    /// The client's key for a commit; repeating it returns the first outcome.
    IdempotencyKey, "idempotency_key"
);
string_id!(
    /// The application's payment reference, recorded on the order.
    PaymentId, "payment_id"
);
string_id!(
    /// An order, made by committing a reservation.
    OrderId, "order_id"
);
string_id!(
    /// A ticket: one seat or one GA unit of an order.
    TicketId, "ticket_id"
);
string_id!(
    /// The unguessable code printed on a ticket and scanned at the gate.
    TicketCode, "code"
);
string_id!(
    /// A visitor's place in a waiting room, made by the room: what the visitor polls with.
    QueueTicketId, "ticket"
);
string_id!(
    /// A holder's entry on an event's waitlist, made by the store.
    WaitlistEntryId, "entry"
);

/// Prefixes of the ids a store makes, so a person reading a log knows what an id names.
pub(crate) mod prefix {
    pub(crate) const RESERVATION: &str = "rsv_";
    pub(crate) const ORDER: &str = "ord_";
    pub(crate) const TICKET: &str = "tkt_";
    pub(crate) const QUEUE_TICKET: &str = "q_";
    pub(crate) const WAITLIST_ENTRY: &str = "w_";
}

fn generated(prefix: &str, at: crate::time::Timestamp) -> SharedStr {
    // A ULID: time-ordered (ids sort by creation, good for B-trees and logs) with 80 random
    // bits, so ids reveal nothing about sales volume. Built on the stack: one allocation.
    let ulid = ulid::Ulid::from_parts(at.as_millis(), rand::random::<u128>());
    let mut text = [0u8; GENERATED_ID_LENGTH_MAX];
    let prefix_length = prefix.len().min(GENERATED_ID_LENGTH_MAX - ulid::ULID_LEN);
    text[..prefix_length].copy_from_slice(&prefix.as_bytes()[..prefix_length]);
    let mut encoded = [0u8; ulid::ULID_LEN];
    let encoded = ulid.array_to_str(&mut encoded);
    let length = prefix_length + encoded.len();
    text[prefix_length..length].copy_from_slice(encoded.as_bytes());
    match std::str::from_utf8(&text[..length]) {
        Ok(text) => SharedStr::from(text),
        Err(_) => unreachable!("a prefix and a ULID are ASCII"),
    }
}

/// A store-made id: a short prefix and a 26-character ULID.
const GENERATED_ID_LENGTH_MAX: usize = 32;
const _: () = assert!(GENERATED_ID_LENGTH_MAX <= ID_LENGTH_MAX);

impl ReservationId {
    /// A fresh reservation id made at `at` (`rsv_` and a ULID).
    pub fn generate(at: crate::time::Timestamp) -> Self {
        Self(generated(prefix::RESERVATION, at))
    }
}

impl OrderId {
    /// A fresh order id made at `at` (`ord_` and a ULID).
    pub fn generate(at: crate::time::Timestamp) -> Self {
        Self(generated(prefix::ORDER, at))
    }
}

impl TicketId {
    /// A fresh ticket id made at `at` (`tkt_` and a ULID).
    pub fn generate(at: crate::time::Timestamp) -> Self {
        Self(generated(prefix::TICKET, at))
    }
}

impl QueueTicketId {
    /// A fresh queue ticket id made at `at` (`q_` and a ULID: 80 random bits, unguessable).
    pub fn generate(at: crate::time::Timestamp) -> Self {
        Self(generated(prefix::QUEUE_TICKET, at))
    }
}

impl WaitlistEntryId {
    /// A fresh waitlist entry id made at `at` (`w_` and a ULID).
    pub fn generate(at: crate::time::Timestamp) -> Self {
        Self(generated(prefix::WAITLIST_ENTRY, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_alphabet_and_reject_the_rest() {
        assert!(EventId::new("ev-2026.finals:A@b|c+d_e").is_ok());
        assert!(EventId::new("a".repeat(ID_LENGTH_MAX)).is_ok());
        for (bad, what) in [
            ("", "empty"),
            ("has space", "space"),
            ("{tag}", "brace"),
            ("semi;colon", "semicolon"),
            ("quote'", "quote"),
            ("ctrl\u{7}", "control"),
            ("unicodé", "non-ascii"),
            ("slash/", "slash"),
        ] {
            let error = EventId::new(bad).unwrap_err();
            assert_eq!(error.code(), "invalid_request", "{what}");
        }
        let long = "a".repeat(ID_LENGTH_MAX + 1);
        assert_eq!(EventId::new(&long).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn ids_round_trip_through_serde_and_reject_bad_text() {
        let id = SeatId::new("A-1-7").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"A-1-7\"");
        assert_eq!(serde_json::from_str::<SeatId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SeatId>("\"bad id\"").is_err());
    }
}
