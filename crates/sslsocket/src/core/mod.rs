//! The sans-IO core: all socket state, no I/O of its own.

mod events;
mod hooks;

pub use events::SslEvent;
pub use hooks::{SslHooks, Verdict};
