//! The whole conformance kit of `ticketing_core::testkit` against a real Redis server: every
//! scripted scenario, the model check and the stress run, each under a key prefix of its own.
#![allow(missing_docs)]

ticketing_core::conformance_suite!(ticketing_store_redis::testkit::redis_store_for_test);
