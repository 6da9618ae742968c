//! The tokio `SslSocket`'s settings: configuration before the handshake, the ignore
//! policy, hooks, the read buffer, TCP options (Qt's setters on `QSslSocket`).

use std::io;
use std::sync::Arc;

use ::tokio::net::TcpStream;

use crate::config::SslConfiguration;
use crate::core::SslHooks;
use crate::enums::SocketOption;
use crate::error::{ApiMisuse, Error};
use crate::ssl_error::{IgnoreRule, SslError};
use crate::tokio::SslSocket;

impl SslSocket {
    /// The configuration (Qt's `sslConfiguration`).
    pub fn ssl_configuration(&self) -> &SslConfiguration {
        self.core.configuration()
    }

    /// Replaces the configuration before the handshake (Qt's `setSslConfiguration`).
    pub fn set_ssl_configuration(&mut self, configuration: SslConfiguration) -> Result<(), Error> {
        self.core.set_configuration(configuration)
    }

    /// Changes the configuration before the handshake.
    pub fn configuration_mut(&mut self) -> Result<&mut SslConfiguration, Error> {
        self.core.configuration_mut()
    }

    /// Sets the name the peer's certificate is verified against, and the SNI sent (Qt's
    /// `setPeerVerifyName`); before the handshake.
    pub fn set_peer_verify_name(&mut self, name: impl Into<String>) {
        self.core.set_peer_verify_name(name);
    }

    /// The name set with [`set_peer_verify_name`](Self::set_peer_verify_name) (Qt's
    /// `peerVerifyName`).
    pub fn peer_verify_name(&self) -> Option<&str> {
        self.core.peer_verify_name()
    }

    /// Installs hooks called inside the handshake (Qt's `sslErrors` slot and friends).
    pub fn set_hooks(&mut self, hooks: Arc<dyn SslHooks>) {
        self.core.set_hooks(hooks);
    }

    /// Dangerous: accept every verification error of the handshake (Qt's
    /// `ignoreSslErrors()`); call it before the handshake starts. The errors are still
    /// collected and reported by [`ssl_handshake_errors`](Self::ssl_handshake_errors).
    pub fn ignore_ssl_errors(&mut self) {
        self.core.ignore_ssl_errors();
    }

    /// Accept exactly these errors, kind and certificate (Qt's `ignoreSslErrors(list)`).
    pub fn ignore_ssl_errors_list(&mut self, errors: &[SslError]) {
        self.core.ignore_ssl_errors_list(errors);
    }

    /// Accept the errors these rules cover; a later call replaces them.
    pub fn ignore_ssl_error_rules(&mut self, rules: Vec<IgnoreRule>) {
        self.core.ignore_ssl_error_rules(rules);
    }

    /// Caps the decrypted bytes buffered (Qt's `setReadBufferSize`; 0 = the core's bound).
    /// A full buffer stops reading from the socket, which pushes back on the peer.
    pub fn set_read_buffer_size(&mut self, size: usize) {
        self.core.set_read_buffer_size(size);
    }

    /// The read buffer size (Qt's `readBufferSize`).
    pub fn read_buffer_size(&self) -> usize {
        self.core.read_buffer_size()
    }

    /// Sets a TCP option (Qt's `setSocketOption`).
    pub fn set_socket_option(&mut self, option: SocketOption, on: bool) -> Result<(), Error> {
        let stream = self.connected_stream()?;
        let result = match option {
            SocketOption::LowDelayOption => stream.set_nodelay(on),
            SocketOption::KeepAliveOption => {
                rustix::net::sockopt::set_socket_keepalive(stream, on).map_err(io::Error::from)
            }
        };
        result.map_err(|e| Error::io("setting a socket option", e))
    }

    /// Reads a TCP option back (Qt's `socketOption`).
    pub fn socket_option(&self, option: SocketOption) -> Result<bool, Error> {
        let stream = self.connected_stream()?;
        let result = match option {
            SocketOption::LowDelayOption => stream.nodelay(),
            SocketOption::KeepAliveOption => {
                rustix::net::sockopt::socket_keepalive(stream).map_err(io::Error::from)
            }
        };
        result.map_err(|e| Error::io("reading a socket option", e))
    }

    fn connected_stream(&self) -> Result<&TcpStream, Error> {
        self.stream
            .as_ref()
            .ok_or_else(|| ApiMisuse("the socket is not connected".into()).into())
    }
}
