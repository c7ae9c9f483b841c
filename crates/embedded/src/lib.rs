//! qpost-embedded: the local backend. A SQLite store (one writer thread that
//! group-commits, readers beside it), an in-process timer queue that implements the
//! dispatcher port, and the worker that runs the core delivery step on due messages.
#![forbid(unsafe_code)]

pub mod gate;
pub mod store;
pub mod ticker;
pub mod timer;
pub mod worker;

pub use gate::Gate;
pub use store::SqliteStore;
pub use ticker::Ticker;
pub use timer::Timer;
pub use worker::Worker;
