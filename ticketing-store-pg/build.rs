//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time, and the compiler only watches the files it saw.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
