//! Outcomes to exit statuses, as the contract numbers them.

use std::process::ExitCode;

use sslsocket::SocketError;

/// The exit status classes of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Encrypted, and any exchange finished.
    Ok,
    /// TLS failed: handshake error, alert, unignored verification errors, refused STARTTLS.
    Tls,
    /// Bad input: options, files, passphrase, key mismatch.
    BadInput,
    /// Network: refused, unreachable, timed out or closed before the handshake finished.
    Network,
}

impl Exit {
    /// The class of a failure with this socket error.
    pub fn of(error: SocketError) -> Exit {
        match error {
            SocketError::SslInvalidUserDataError => Exit::BadInput,
            SocketError::SslHandshakeFailedError
            | SocketError::SslInternalError
            | SocketError::OperationError
            | SocketError::UnknownSocketError => Exit::Tls,
            SocketError::ConnectionRefusedError
            | SocketError::RemoteHostClosedError
            | SocketError::HostNotFoundError
            | SocketError::SocketAccessError
            | SocketError::SocketResourceError
            | SocketError::SocketTimeoutError
            | SocketError::DatagramTooLargeError
            | SocketError::NetworkError
            | SocketError::AddressInUseError
            | SocketError::SocketAddressNotAvailableError
            | SocketError::UnsupportedSocketOperationError
            | SocketError::TemporaryError => Exit::Network,
            // `SocketError` is non-exhaustive: a kind added later counts as a TLS failure,
            // as `UnknownSocketError` does, until it is placed here.
            _ => Exit::Tls,
        }
    }

    /// The number the process exits with.
    pub fn number(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Tls => 1,
            Exit::BadInput => 2,
            Exit::Network => 3,
        }
    }

    /// The worse of two outcomes (`--reconnect`): the higher number, so any failure wins
    /// over success.
    pub fn worse(self, other: Exit) -> Exit {
        if other.number() > self.number() {
            other
        } else {
            self
        }
    }

    /// The process exit code.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self.number())
    }
}

/// Bad input: one line on stderr, exit 2.
pub fn bad_input(error: &anyhow::Error) -> Exit {
    crate::report::error_line(&format!("error: {error:#}"));
    Exit::BadInput
}
