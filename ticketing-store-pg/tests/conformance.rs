//! The whole conformance kit of `ticketing_core::testkit` against a real PostgreSQL server:
//! every scripted scenario, the model check and the stress run, each on a schema of its own.
#![allow(missing_docs)]

ticketing_core::conformance_suite!(ticketing_store_pg::testkit::pg_store_for_test);
