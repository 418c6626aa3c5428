//! Backend failures, described without SQL text or parameters.

use std::fmt;

use ticketing_core::Error;

/// What went wrong talking to PostgreSQL: the operation, and the server's SQLSTATE and
/// message when it answered. Never the statement or its parameters.
#[derive(Debug)]
pub struct PgFailure {
    /// The store operation that failed ("reserve", "migrate", …).
    pub operation: &'static str,
    /// The SQLSTATE code, when the server reported an error.
    pub sqlstate: Option<String>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for PgFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{}: {} (SQLSTATE {code})", self.operation, self.message),
            None => write!(f, "{}: {}", self.operation, self.message),
        }
    }
}

impl std::error::Error for PgFailure {}

impl PgFailure {
    fn from_sqlx(operation: &'static str, error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::Database(database) => Self {
                operation,
                sqlstate: database.code().map(|code| code.into_owned()),
                message: database.message().to_owned(),
            },
            // Pool timeouts, I/O, TLS, protocol: sqlx's description names no SQL.
            other => Self {
                operation,
                sqlstate: None,
                message: other.to_string(),
            },
        }
    }
}

/// Maps a sqlx error of `operation` to the core's `backend` error.
pub(crate) fn backend<E: Into<SqlxOrMigrate>>(operation: &'static str) -> impl Fn(E) -> Error {
    move |error| {
        let failure = match error.into() {
            SqlxOrMigrate::Sqlx(error) => PgFailure::from_sqlx(operation, &error),
            SqlxOrMigrate::Migrate(sqlx::migrate::MigrateError::Execute(error)) => {
                PgFailure::from_sqlx(operation, &error)
            }
            SqlxOrMigrate::Migrate(error) => PgFailure {
                operation,
                sqlstate: None,
                message: error.to_string(),
            },
        };
        Error::backend("postgres", failure)
    }
}

/// The two error types sqlx hands back.
pub(crate) enum SqlxOrMigrate {
    Sqlx(sqlx::Error),
    Migrate(sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for SqlxOrMigrate {
    fn from(error: sqlx::Error) -> Self {
        Self::Sqlx(error)
    }
}

impl From<sqlx::migrate::MigrateError> for SqlxOrMigrate {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}
