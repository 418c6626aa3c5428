//! The waiting room conformance suite against the in-memory rooms.
#![allow(missing_docs)]

ticketing_core::room_conformance_suite!(ticketing_core::testkit::room::memory_room_for_test);
