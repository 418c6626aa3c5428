//! The expiry sweeper (stub).
