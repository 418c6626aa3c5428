//! The waitlist conformance kit of `ticketing_core::testkit::waitlist` against a real
//! PostgreSQL server: every scripted scenario, the waitlist model check and the 16-task
//! race, each on a schema of its own.
#![allow(missing_docs)]

ticketing_core::waitlist_conformance_suite!(ticketing_store_pg::testkit::pg_waitlist_for_test);
