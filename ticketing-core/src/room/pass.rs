//! Admission passes: signed, expiring, checked without a store round trip.
//!
//! A pass is `v1.<expires_at ms>.<MAC>`, the MAC an HMAC-SHA-256 under the application's
//! key over the event, the visitor and the expiry. Any instance holding the key verifies
//! it; it cannot be forged, moved to another visitor or event, or extended. A pass stays
//! valid until it expires even if the visitor leaves the room: verification is stateless
//! by design, and passes are short.

use std::fmt;

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::id::{EventId, HolderId};
use crate::time::Timestamp;

/// The shortest key [`PassKey::new`] accepts, in bytes.
pub const PASS_KEY_BYTES_MIN: usize = 32;

const VERSION: &str = "v1";
/// Separates the MAC's inputs, which cannot contain it (ids are printable ASCII).
const DOMAIN: &[u8] = b"ticketing-pass-v1\0";

/// A signed admission pass, as handed to the visitor.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pass(String);

impl Pass {
    /// A pass from the text a visitor sent (checked only by [`PassKey::verify`]).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The pass as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Passes are credentials: never printed whole.
impl fmt::Debug for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pass(..)")
    }
}

/// Why a pass was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// No pass was presented.
    #[error("this event is gated by a waiting room: an admission pass is required")]
    Missing,
    /// Not a pass: wrong shape or encoding.
    #[error("malformed admission pass")]
    Malformed,
    /// The signature does not match: forged, or for another visitor or event.
    #[error("admission pass is not valid for this visitor and event")]
    Forged,
    /// The pass lapsed.
    #[error("admission pass expired at {expired_at}")]
    Expired {
        /// When it lapsed.
        expired_at: Timestamp,
    },
}

impl PassError {
    /// A stable snake_case code: `pass_required`, `invalid_pass` or `pass_expired`.
    pub fn code(&self) -> &'static str {
        match self {
            PassError::Missing => "pass_required",
            PassError::Malformed | PassError::Forged => "invalid_pass",
            PassError::Expired { .. } => "pass_expired",
        }
    }
}

/// The application's key for signing and verifying passes.
#[derive(Clone)]
pub struct PassKey {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PassKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassKey(..)")
    }
}

impl PassKey {
    /// A key from secret bytes, at least [`PASS_KEY_BYTES_MIN`] of them.
    ///
    /// Errors: `invalid_request` for a shorter key.
    pub fn new(secret: &[u8]) -> crate::Result<Self> {
        if secret.len() < PASS_KEY_BYTES_MIN {
            return Err(crate::Error::invalid(
                "pass_key",
                format!(
                    "must be at least {PASS_KEY_BYTES_MIN} bytes, got {}",
                    secret.len()
                ),
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| crate::Error::invalid("pass_key", "rejected by HMAC"))?;
        Ok(Self { mac })
    }

    /// A fresh random key (for a single instance, or tests).
    pub fn random() -> Self {
        let secret: [u8; 32] = rand::random();
        match Self::new(&secret) {
            Ok(key) => key,
            Err(_) => unreachable!("32 bytes is a valid HMAC key"),
        }
    }

    fn tag(&self, event: &EventId, visitor: &HolderId, expires_at: Timestamp) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(event.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(visitor.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(&expires_at.as_millis().to_be_bytes());
        mac
    }

    /// The pass admitting `visitor` to `event` until `expires_at`.
    pub fn sign(&self, event: &EventId, visitor: &HolderId, expires_at: Timestamp) -> Pass {
        let tag = self.tag(event, visitor, expires_at).finalize().into_bytes();
        Pass(format!(
            "{VERSION}.{}.{}",
            expires_at.as_millis(),
            BASE64URL_NOPAD.encode(&tag)
        ))
    }

    /// Checks that `pass` admits `visitor` to `event` at `now`; returns when it expires.
    pub fn verify(
        &self,
        pass: &Pass,
        event: &EventId,
        visitor: &HolderId,
        now: Timestamp,
    ) -> Result<Timestamp, PassError> {
        let mut parts = pass.as_str().splitn(3, '.');
        let (Some(VERSION), Some(expires), Some(tag)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(PassError::Malformed);
        };
        // Digits only: `u64::from_str` would also take a leading '+', and one pass has one
        // spelling.
        if expires.is_empty() || expires.len() > 20 || !expires.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PassError::Malformed);
        }
        let expires_at = expires
            .parse::<u64>()
            .map(Timestamp::from_millis)
            .map_err(|_| PassError::Malformed)?;
        let tag = BASE64URL_NOPAD
            .decode(tag.as_bytes())
            .map_err(|_| PassError::Malformed)?;
        self.tag(event, visitor, expires_at)
            .verify_slice(&tag)
            .map_err(|_| PassError::Forged)?;
        if now >= expires_at {
            return Err(PassError::Expired {
                expired_at: expires_at,
            });
        }
        Ok(expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (EventId, HolderId) {
        (
            EventId::new("final").unwrap(),
            HolderId::new("alice").unwrap(),
        )
    }

    #[test]
    fn a_pass_verifies_until_it_expires() {
        let key = PassKey::random();
        let (event, alice) = ids();
        let expires = Timestamp::from_millis(10_000);
        let pass = key.sign(&event, &alice, expires);
        assert_eq!(
            key.verify(&pass, &event, &alice, Timestamp::from_millis(9_999)),
            Ok(expires)
        );
        assert_eq!(
            key.verify(&pass, &event, &alice, expires),
            Err(PassError::Expired {
                expired_at: expires
            })
        );
    }

    #[test]
    fn a_pass_cannot_be_moved_forged_or_extended() {
        let key = PassKey::random();
        let (event, alice) = ids();
        let now = Timestamp::from_millis(1);
        let expires = Timestamp::from_millis(10_000);
        let pass = key.sign(&event, &alice, expires);
        let bob = HolderId::new("bob").unwrap();
        let other = EventId::new("semi").unwrap();
        assert_eq!(key.verify(&pass, &event, &bob, now), Err(PassError::Forged));
        assert_eq!(
            key.verify(&pass, &other, &alice, now),
            Err(PassError::Forged)
        );
        let extended = Pass::from_text(pass.as_str().replace("10000", "99999"));
        assert_eq!(
            key.verify(&extended, &event, &alice, now),
            Err(PassError::Forged)
        );
        let other_key = PassKey::random();
        assert_eq!(
            other_key.verify(&pass, &event, &alice, now),
            Err(PassError::Forged)
        );
        // Ids cannot be shifted between fields: "a" + "lice" is not "al" + "ice".
        let split = key.sign(
            &EventId::new("finala").unwrap(),
            &HolderId::new("lice").unwrap(),
            expires,
        );
        assert_eq!(
            key.verify(&split, &event, &alice, now),
            Err(PassError::Forged)
        );
    }

    #[test]
    fn malformed_passes_are_refused() {
        let key = PassKey::random();
        let (event, alice) = ids();
        let now = Timestamp::from_millis(1);
        for text in [
            "",
            "v1",
            "v1.10",
            "v2.10.AAAA",
            "v1.+10.AAAA",
            "v1..AAAA",
            "v1.99999999999999999999999.AAAA",
            "v1.10.not base64!",
        ] {
            assert_eq!(
                key.verify(&Pass::from_text(text), &event, &alice, now),
                Err(PassError::Malformed),
                "{text:?}"
            );
        }
        assert_eq!(
            key.verify(&Pass::from_text("v1.10.AAAA"), &event, &alice, now),
            Err(PassError::Forged)
        );
    }

    #[test]
    fn short_keys_are_refused_and_keys_do_not_print() {
        assert_eq!(
            PassKey::new(&[0u8; 31]).unwrap_err().code(),
            "invalid_request"
        );
        let key = PassKey::new(&[7u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "PassKey(..)");
        let (event, alice) = ids();
        let pass = key.sign(&event, &alice, Timestamp::from_millis(5));
        assert_eq!(format!("{pass:?}"), "Pass(..)");
        assert_eq!(PassError::Missing.code(), "pass_required");
    }
}
