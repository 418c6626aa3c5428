//! Secrets: reservation tokens and ticket codes.

use std::fmt;

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::id::TicketCode;

/// Bytes of entropy in a token or ticket code: 128 bits, beyond guessing.
const SECRET_BYTES: usize = 16;
/// Length of a token's text form (base64url without padding).
const TOKEN_TEXT_LENGTH: usize = 22;

/// The secret that proves a caller made a reservation: commit, extend and cancel require it.
///
/// Compared in constant time; its `Debug` output is redacted so it never reaches a log.
#[derive(Clone)]
pub struct ReservationToken([u8; SECRET_BYTES]);

impl ReservationToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads a token from its text form; anything else is [`Error::InvalidToken`].
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() != TOKEN_TEXT_LENGTH {
            return Err(Error::InvalidToken);
        }
        let decoded = BASE64URL_NOPAD
            .decode(text.as_bytes())
            .map_err(|_| Error::InvalidToken)?;
        let bytes: [u8; SECRET_BYTES] = decoded.try_into().map_err(|_| Error::InvalidToken)?;
        Ok(Self(bytes))
    }

    /// The token's text form (base64url, 22 characters): what the client sends back.
    pub fn expose(&self) -> String {
        BASE64URL_NOPAD.encode(&self.0)
    }

    /// The raw secret, for backends that store a hash of it.
    pub fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }

    /// SHA-256 of the secret: what backends send and store instead of the token, so the
    /// secret itself never leaves the process (nor reaches a database log). A digest cannot
    /// be turned back into a token, and only a token is accepted from callers.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }

    /// Whether `other` is this token, in time independent of where they differ.
    pub fn matches(&self, other: &ReservationToken) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for ReservationToken {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for ReservationToken {}

impl fmt::Debug for ReservationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReservationToken(<redacted>)")
    }
}

impl std::str::FromStr for ReservationToken {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl Serialize for ReservationToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> Deserialize<'de> for ReservationToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl TicketCode {
    /// A fresh unguessable gate code: 128 random bits as 26 base32 characters.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let text = BASE32_NOPAD.encode(&bytes);
        match TicketCode::new(&text) {
            Ok(code) => code,
            // Base32 output is always inside the id alphabet and length.
            Err(_) => unreachable!("base32 text is a valid id"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_unique() {
        let token = ReservationToken::generate();
        let text = token.expose();
        assert_eq!(text.len(), TOKEN_TEXT_LENGTH);
        assert_eq!(ReservationToken::parse(&text).unwrap(), token);
        assert_ne!(ReservationToken::generate(), token);
        assert_eq!(format!("{token:?}"), "ReservationToken(<redacted>)");
    }

    #[test]
    fn malformed_tokens_are_invalid_token() {
        for bad in [
            "",
            "short",
            &"A".repeat(23),
            "!!!!!!!!!!!!!!!!!!!!!!",
            "ÄÄÄÄÄÄÄÄÄÄÄ",
        ] {
            assert_eq!(
                ReservationToken::parse(bad).unwrap_err(),
                Error::InvalidToken,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ticket_codes_are_long_and_unique() {
        let code = TicketCode::generate();
        assert_eq!(code.as_str().len(), 26);
        assert_ne!(TicketCode::generate(), code);
    }
}
