//! Two `SslCore`s (client and server) wired in memory, driven by the input: each byte picks
//! an action (pump either way, tamper with the bytes in transit, ignore all errors or a
//! list or a kind, pause, resume, abort, write, read, reconnect). The first byte picks the client's trust (the
//! right CA or nothing) and the name it asks for.
//!
//! Invariants, checked after every step:
//! - when the client cannot trust the server (it trusts nothing, or asks for another name),
//!   it is encrypted only with a non-empty error list it accepted on this connection (a
//!   resumed session included: its errors are reported and judged again);
//! - a client that becomes encrypted has no handshake error the application did not
//!   accept: the list is empty, or `ignore_ssl_errors()` was called on this connection, or
//!   the ignore rules set on this connection (or while the client was unconnected before
//!   it: Qt keeps a list given before connecting) cover every error;
//! - the server is encrypted only once the client accepted it on this connection (its
//!   Finished never leaves a paused or refusing client, after a read or during one:
//!   `read_from_duplex` lets OpenSSL send straight to the wire);
//! - until the client was encrypted on this connection (so in particular while its errors
//!   are not all accepted) no plaintext can be read (`bytes_available() == 0`, `read`
//!   returns 0, and input fed with `read_from_into` puts nothing into the reader's buffer).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sslsocket::core::SslCore;
use sslsocket::{
    IgnoreRule, PauseMode, SocketState, SslCertificate, SslConfiguration, SslKey, SslMode,
};
use sslsocket_fuzz::small_pki;

/// Steps per input: a handshake takes about ten, the rest is room for mischief.
const MAX_STEPS: usize = 64;

struct Configs {
    server: SslConfiguration,
    client_trusting_ca: SslConfiguration,
    client_trusting_nothing: SslConfiguration,
}

fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(make_configs)
}

fn make_configs() -> Configs {
    let pki = small_pki();
    let leaf_der = &pki.leaf_der;
    let ca_der = &pki.ca_der;
    let mut server = SslConfiguration::default();
    server
        .set_local_certificate_chain(vec![SslCertificate::from_der(leaf_der).expect("leaf")])
        .set_private_key(SslKey::from_der(&pki.leaf_key_der).expect("leaf key"));
    let mut client_trusting_ca = SslConfiguration::default();
    client_trusting_ca.set_ca_certificates(vec![SslCertificate::from_der(ca_der).expect("CA")]);
    let mut client_trusting_nothing = SslConfiguration::default();
    client_trusting_nothing.set_ca_certificates(Vec::new());
    Configs {
        server,
        client_trusting_ca,
        client_trusting_nothing,
    }
}

struct Harness<'a> {
    client: SslCore,
    server: SslCore,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    peer_name: &'a str,
    /// `ignore_ssl_errors()` was called since the connection was (re)made.
    ignored: bool,
    /// The ignore rules set since the connection was (re)made (a later call replaces them).
    rules: Vec<IgnoreRule>,
    /// Rules set while the client was unconnected (after an abort): they are for the next
    /// connection (Qt keeps a list given before connecting), unlike `ignore_ssl_errors()`,
    /// which the next connection drops.
    next_rules: Option<Vec<IgnoreRule>>,
    /// The client was seen encrypted on this connection: the policy was checked when it
    /// became so (a narrower ignore list set afterwards does not undo the acceptance).
    accepted: bool,
    /// The client's verification must fail (it trusts nothing, or asks for another name),
    /// on every connection, resumed or not.
    must_fail: bool,
    /// Input bytes not used yet (tampering takes its parameters from here).
    input: std::slice::Iter<'a, u8>,
}

impl Harness<'_> {
    fn next(&mut self) -> u8 {
        self.input.next().copied().unwrap_or(0)
    }

    fn connect(&mut self) {
        self.to_server.clear();
        self.to_client.clear();
        self.ignored = false;
        self.rules = self.next_rules.take().unwrap_or_default();
        self.accepted = false;
        self.client.handle_state(SocketState::ConnectedState);
        self.server.handle_state(SocketState::ConnectedState);
        let _ = self.client.start_client_encryption(self.peer_name);
        let _ = self.server.start_server_encryption();
        self.drain_events();
    }

    fn reconnect(&mut self) {
        self.client.handle_state(SocketState::UnconnectedState);
        self.server.handle_state(SocketState::UnconnectedState);
        self.connect();
    }

    fn drain_events(&mut self) {
        for _ in 0..1024 {
            if self.client.poll_event().is_none() {
                break;
            }
        }
        for _ in 0..1024 {
            if self.server.poll_event().is_none() {
                break;
            }
        }
    }

    fn pump_to_server(&mut self) {
        self.client.poll_transmit(&mut self.to_server);
        match self.server.handle_tls(&self.to_server) {
            Ok(taken) => drop(self.to_server.drain(..taken.min(self.to_server.len()))),
            Err(_) => self.to_server.clear(),
        }
    }

    fn pump_to_client(&mut self) {
        self.server.poll_transmit(&mut self.to_client);
        // (Not with nothing in transit: a socket would say `WouldBlock`, an empty slice says
        // end of stream.)
        if self.next() & 1 == 1 && !self.to_client.is_empty() {
            // A reader waiting with its buffer: what arrives may be decrypted straight into
            // it, under the same guard as `read`.
            let guarded = self.guarded();
            let mut buf = [0u8; 256];
            let mut wire = self.to_client.as_slice();
            match self.client.read_from_into(&mut wire, &mut buf) {
                Ok((_, delivered)) => {
                    assert!(
                        !guarded || delivered == 0,
                        "client got {delivered} plaintext bytes straight before it was encrypted (errors {:?})",
                        self.client.ssl_handshake_errors()
                    );
                    let taken = self.to_client.len() - wire.len();
                    drop(self.to_client.drain(..taken));
                }
                Err(_) => self.to_client.clear(),
            }
            return;
        }
        if self.next() & 1 == 1 && !self.to_client.is_empty() {
            // The socket's both sides at hand: what the client answers while it reads may go
            // straight to the server (OpenSSL), where nothing can withhold it.
            let mut socket = Duplex {
                input: self.to_client.as_slice(),
                output: &mut self.to_server,
            };
            let result = self.client.read_from_duplex(&mut socket);
            let taken = self.to_client.len() - socket.input.len();
            match result {
                Ok(_) => drop(self.to_client.drain(..taken)),
                Err(_) => self.to_client.clear(),
            }
            return;
        }
        match self.client.handle_tls(&self.to_client) {
            Ok(taken) => drop(self.to_client.drain(..taken.min(self.to_client.len()))),
            Err(_) => self.to_client.clear(),
        }
    }

    /// The attacker on the wire: flip, truncate or inject in one direction.
    fn tamper(&mut self) {
        let how = self.next();
        let at = usize::from(self.next()) | (usize::from(self.next()) << 8);
        let value = self.next();
        // Make sure the latest flight is on the wire, so there is something to tamper with.
        if how & 1 == 0 {
            self.client.poll_transmit(&mut self.to_server);
        } else {
            self.server.poll_transmit(&mut self.to_client);
        }
        let wire = if how & 1 == 0 {
            &mut self.to_server
        } else {
            &mut self.to_client
        };
        match (how >> 1) % 4 {
            0 => {
                if !wire.is_empty() {
                    let i = at % wire.len();
                    wire[i] ^= value | 1;
                }
            }
            1 => wire.truncate(at % (wire.len() + 1)),
            2 => {
                let i = at % (wire.len() + 1);
                wire.insert(i, value);
            }
            _ => {
                if !wire.is_empty() {
                    let i = at % wire.len();
                    wire.remove(i);
                }
            }
        }
    }

    fn step(&mut self, action: u8) {
        match action % 16 {
            0 => self.pump_to_server(),
            1 => self.pump_to_client(),
            2 | 3 => {
                // Both ways, a few rounds: most handshakes need this to finish at all.
                for _ in 0..4 {
                    self.pump_to_server();
                    self.pump_to_client();
                }
            }
            4 => self.tamper(),
            5 => {
                self.client.ignore_ssl_errors();
                self.ignored = true;
            }
            6 => {
                let _ = self.client.resume();
            }
            7 => self.client.abort(),
            8 => self.client.set_pause_mode(PauseMode::PauseOnSslErrors),
            9 => {
                let _ = self.client.write(b"GET / HTTP/1.0\r\n\r\n");
            }
            10 => {
                let _ = self.server.write(b"secret from the server");
            }
            11 => {
                let mut buf = [0u8; 256];
                let _ = self.server.read(&mut buf);
                self.read_client();
            }
            12 => self.reconnect(),
            13 => self.server.abort(),
            14 => {
                // Qt's ignoreSslErrors(list) with exactly the errors reported so far.
                let errors = self.client.ssl_handshake_errors().to_vec();
                self.client.ignore_ssl_errors_list(&errors);
                self.set_rules(errors.into_iter().map(IgnoreRule::Exact).collect());
            }
            _ => {
                // One error kind on any certificate: may leave other errors uncovered.
                let pick = usize::from(self.next());
                let errors = self.client.ssl_handshake_errors();
                let rules: Vec<IgnoreRule> = errors
                    .get(pick % errors.len().max(1))
                    .map(|e| IgnoreRule::AnyCertificate(e.error()))
                    .into_iter()
                    .collect();
                self.client.ignore_ssl_error_rules(rules.clone());
                self.set_rules(rules);
            }
        }
        self.drain_events();
        if std::env::var_os("FUZZ_VERBOSE").is_some() {
            eprintln!(
                "step {action}: client encrypted {} state {:?} available {} accepted {} errors {:?}; server encrypted {} to_client {} to_server {}",
                self.client.is_encrypted(),
                self.client.state(),
                self.client.bytes_available(),
                self.accepted,
                self.client.ssl_handshake_errors(),
                self.server.is_encrypted(),
                self.to_client.len(),
                self.to_server.len()
            );
        }
        self.check();
    }

    /// Records rules just given: this connection's, or, while the client is unconnected,
    /// the next one's.
    fn set_rules(&mut self, rules: Vec<IgnoreRule>) {
        if self.client.state() == SocketState::UnconnectedState {
            self.next_rules = Some(rules);
        } else {
            self.rules = rules;
        }
    }

    fn covered(&self) -> bool {
        let errors = self.client.ssl_handshake_errors();
        errors.is_empty()
            || self.ignored
            || errors
                .iter()
                .all(|e| self.rules.iter().any(|rule| rule.covers(e)))
    }

    /// Before the client was ever encrypted on this connection nothing is readable, errors
    /// or not (the brief's rule is the errors-not-accepted half of this).
    fn guarded(&self) -> bool {
        self.client.mode() == SslMode::SslClientMode
            && !self.client.is_encrypted()
            && !self.accepted
    }

    fn read_client(&mut self) {
        let guarded = self.guarded();
        let mut buf = [0u8; 256];
        let n = self.client.read(&mut buf);
        assert!(
            !guarded || n == 0,
            "client read {n} plaintext bytes before it was encrypted (errors {:?})",
            self.client.ssl_handshake_errors()
        );
    }

    fn check(&mut self) {
        let newly_encrypted = self.client.is_encrypted() && !self.accepted;
        if self.must_fail && newly_encrypted {
            assert!(
                self.covered() && !self.client.ssl_handshake_errors().is_empty(),
                "client encrypted with a peer it cannot trust: errors {:?}, ignored {}, resumed {}",
                self.client.ssl_handshake_errors(),
                self.ignored,
                self.client.is_session_resumed()
            );
        }
        if newly_encrypted {
            self.accepted = true;
            assert!(
                self.covered(),
                "client encrypted with unaccepted errors {:?} (mode {:?})",
                self.client.ssl_handshake_errors(),
                self.client.mode()
            );
        }
        if self.client.mode() == SslMode::SslClientMode
            && !self.client.is_encrypted()
            && !self.accepted
        {
            assert_eq!(
                self.client.bytes_available(),
                0,
                "plaintext available before the client was encrypted (errors {:?})",
                self.client.ssl_handshake_errors()
            );
            self.read_client();
        }
        // The server completes its handshake only on the client's Finished, which must never
        // leave a client that has not accepted the server (paused, refused, errors not
        // covered), whether it is sent after the read or during it.
        assert!(
            !self.server.is_encrypted() || self.accepted || self.client.was_encrypted(),
            "the server completed a handshake the client did not accept (client errors {:?}, paused {})",
            self.client.ssl_handshake_errors(),
            self.client.is_paused()
        );
    }
}

/// The wire as a socket: reads what is in transit to the client, writes go to the server.
struct Duplex<'a> {
    input: &'a [u8],
    output: &'a mut Vec<u8>,
}

impl std::io::Read for Duplex<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.input.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        std::io::Read::read(&mut self.input, buf)
    }
}

impl std::io::Write for Duplex<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&setup, actions)) = data.split_first() else {
        return;
    };
    let configs = configs();
    let client_config = if setup & 1 == 0 {
        &configs.client_trusting_ca
    } else {
        &configs.client_trusting_nothing
    };
    let mut harness = Harness {
        client: SslCore::new(client_config.clone()),
        server: SslCore::new(configs.server.clone()),
        to_server: Vec::new(),
        to_client: Vec::new(),
        peer_name: if setup & 2 == 0 {
            "localhost"
        } else {
            "wrong.example"
        },
        ignored: false,
        rules: Vec::new(),
        next_rules: None,
        accepted: false,
        must_fail: setup & 3 != 0,
        input: actions.iter(),
    };
    if setup & 4 != 0 {
        harness.client.set_pause_mode(PauseMode::PauseOnSslErrors);
    }
    harness.connect();
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        eprintln!("core_pair: backend {:?}", harness.client.backend_name());
    }
    for _ in 0..MAX_STEPS {
        let Some(&action) = harness.input.next() else {
            break;
        };
        harness.step(action);
    }
});
