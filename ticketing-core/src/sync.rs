//! The one place that names the synchronization primitives.
//!
//! Under `--cfg loom` every lock and atomic comes from loom so the model checker can explore
//! interleavings; otherwise from parking_lot and std. Poisoning is hidden: a panic while a
//! lock is held is a bug the process does not survive meaningfully anyway, and parking_lot
//! has no poisoning either.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
    pub(crate) type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    pub(crate) type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    /// A mutual-exclusion lock without poisoning.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A reader-writer lock without poisoning.
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(parking_lot::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::RwLock::new(value))
        }
        pub(crate) fn read(&self) -> parking_lot::RwLockReadGuard<'_, T> {
            self.0.read()
        }
        pub(crate) fn write(&self) -> parking_lot::RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::Arc;
    pub(crate) use std::sync::atomic::Ordering;

    /// A 64-bit word with the atomic API, modelled as a loom mutex: loom 0.7's atomic
    /// history check trips on its own internal assertion ("TODO: this sometimes fails")
    /// for words stored as often as our expiry hint and free-seat bitmap. Every operation here is
    /// sequentially consistent, so loom still explores every interleaving of them.
    #[derive(Debug)]
    pub(crate) struct AtomicU64(loom::sync::Mutex<u64>);

    impl AtomicU64 {
        pub(crate) fn new(value: u64) -> Self {
            Self(loom::sync::Mutex::new(value))
        }
        fn word(&self) -> loom::sync::MutexGuard<'_, u64> {
            match self.0.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            }
        }
        pub(crate) fn load(&self, _: Ordering) -> u64 {
            *self.word()
        }
        pub(crate) fn store(&self, value: u64, _: Ordering) {
            *self.word() = value;
        }
        pub(crate) fn fetch_add(&self, value: u64, _: Ordering) -> u64 {
            let mut word = self.word();
            let previous = *word;
            *word = previous.wrapping_add(value);
            previous
        }
        pub(crate) fn fetch_sub(&self, value: u64, _: Ordering) -> u64 {
            let mut word = self.word();
            let previous = *word;
            *word = previous.wrapping_sub(value);
            previous
        }
    }

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    pub(crate) type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
    pub(crate) type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

    /// A mutual-exclusion lock without poisoning (loom's, under the model checker).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            match self.0.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            }
        }
    }

    /// A reader-writer lock without poisoning (loom's, under the model checker).
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }
        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            match self.0.read() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            }
        }
        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            match self.0.write() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            }
        }
    }
}

pub(crate) use imp::*;

/// The standard `Arc`, for what the public API shares (clocks, stores): loom's `Arc` cannot
/// hold unsized values such as `dyn Clock`.
pub(crate) use std::sync::Arc as StdArc;

/// Immutable shared text, cheap to clone (ids are cloned into reservations, changes and
/// tickets). Not a synchronization primitive, so loom does not replace it.
pub(crate) type SharedStr = std::sync::Arc<str>;
