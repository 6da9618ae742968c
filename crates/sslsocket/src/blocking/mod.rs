//! The blocking driver: `std::net` sockets, `wait_for_*` calls with a timeout.

mod deadline;
pub(crate) mod server;
mod socket;
mod transport;

pub use server::SslServer;
pub use socket::SslSocket;
