//! Our client against `openssl s_server` serving each certificate of the test PKI: the
//! handshake fails with exactly the expected set of errors, each on the right certificate
//! (the contract's OpenSSL conventions); ignoring them all, or exactly these errors on these
//! certificates, lets it through, the same kinds on another certificate do not; and
//! OpenSSL's own client, verifying the same chain from the same server, reports the same
//! set.

mod support;

use std::collections::BTreeSet;

use sslsocket::blocking::SslSocket;
use sslsocket::prelude::*;
use sslsocket::SslErrorKind::*;
use sslsocket::{SocketError, SslError, SslErrorKind};

use support::trust::{
    by_subject, certificate, certificates, client_to, error_set, expect, openssl_client_errors,
    serve, trusting, ErrorOn, HANDSHAKE_TIMEOUT,
};
use support::{Issued, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One server certificate, how it is served, and what a client verifying it for `peer_name`
/// must report.
struct Scenario<'a> {
    pki: &'a Pki,
    issued: &'a Issued,
    /// Whether the server sends the certificates after the leaf.
    with_intermediates: bool,
    peer_name: &'a str,
    expected: BTreeSet<ErrorOn>,
}

impl Scenario<'_> {
    /// Our client to `server`, trusting the root, verifying for the peer name.
    fn client(&self, server: &OpensslServer) -> Result<SslSocket, support::SupportError> {
        Ok(client_to(
            trusting(self.pki.root_pem())?,
            server.port(),
            self.peer_name,
        ))
    }

    /// Runs our client twice (verifying, then ignoring everything) and OpenSSL's client
    /// once against one `openssl s_server`, and checks all three.
    fn check(&self) -> TestResult {
        let server = serve(self.issued, self.with_intermediates, &[])?;
        let sent = if self.with_intermediates {
            certificates(&self.issued.chain_der)?
        } else {
            certificates(&self.issued.chain_der[..1])?
        };

        let mut client = self.client(&server)?;
        let result = client.wait_for_encrypted(HANDSHAKE_TIMEOUT);
        let listed = client.ssl_handshake_errors().to_vec();
        let found = error_set(&listed);
        assert_eq!(
            found,
            self.expected,
            "errors of the verifying client; the list was {:?}",
            client.ssl_handshake_errors()
        );
        assert_eq!(client.peer_certificate_chain(), sent.as_slice());
        if self.expected.is_empty() {
            assert!(result.is_ok(), "{result:?}");
            assert!(client.is_encrypted());
        } else {
            let error = result.err().ok_or("the handshake should fail")?;
            assert_eq!(error.socket_error(), SocketError::SslHandshakeFailedError);
            assert!(!client.is_encrypted());
            assert_eq!(client.error(), SocketError::SslHandshakeFailedError);
        }
        drop(client);

        if !self.expected.is_empty() {
            // Ignoring everything lets it through; the errors are still listed.
            let mut client = self.client(&server)?;
            client.ignore_ssl_errors();
            client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
            assert!(client.is_encrypted());
            assert_eq!(error_set(client.ssl_handshake_errors()), self.expected);
            client.close()?;

            // Ignoring exactly these errors, each on its certificate, lets it through.
            let mut client = self.client(&server)?;
            client.ignore_ssl_errors_list(&listed);
            client.wait_for_encrypted(HANDSHAKE_TIMEOUT)?;
            client.close()?;

            // The same kinds bound to another certificate (the trusted root, which no
            // scenario reports) do not.
            let root = certificate(self.pki.root_der())?;
            let rebound: Vec<SslError> = listed
                .iter()
                .map(|e| SslError::with_certificate(e.error(), root.clone()))
                .collect();
            let mut client = self.client(&server)?;
            client.ignore_ssl_errors_list(&rebound);
            assert!(client.wait_for_encrypted(HANDSHAKE_TIMEOUT).is_err());
        }

        let openssl = openssl_client_errors(
            server.port(),
            self.pki.root_pem(),
            Some(self.peer_name),
            &[],
        )?;
        assert_eq!(
            openssl,
            by_subject(&self.expected),
            "OpenSSL's client verifying the same chain disagrees"
        );
        Ok(())
    }
}

fn pairs(pairs: &[(SslErrorKind, &[u8])]) -> Result<BTreeSet<ErrorOn>, support::SupportError> {
    expect(pairs)
}

#[test]
fn good_leaf_sent_with_its_intermediate_verifies_without_errors() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: BTreeSet::new(),
    }
    .check()
}

#[test]
fn expired_leaf_gives_certificate_expired_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(CertificateExpired, &leaf.cert_der)])?,
    }
    .check()
}

#[test]
fn not_yet_valid_leaf_gives_certificate_not_yet_valid_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.not_yet_valid_leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(CertificateNotYetValid, &leaf.cert_der)])?,
    }
    .check()
}

#[test]
fn leaf_for_another_host_gives_host_name_mismatch_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("wrong.example", &["wrong.example"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(HostNameMismatch, &leaf.cert_der)])?,
    }
    .check()
}

#[test]
fn expired_leaf_for_another_host_gives_both_errors_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.expired_leaf("wrong.example", &["wrong.example"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[
            (CertificateExpired, &leaf.cert_der),
            (HostNameMismatch, &leaf.cert_der),
        ])?,
    }
    .check()
}

#[test]
fn self_signed_leaf_gives_self_signed_certificate_on_it() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["localhost"], false)?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(SelfSignedCertificate, &leaf.cert_der)])?,
    }
    .check()
}

#[test]
fn expired_self_signed_leaf_for_another_host_gives_three_errors_on_it() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.self_signed_leaf(&["wrong.example"], true)?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[
            (SelfSignedCertificate, &leaf.cert_der),
            (CertificateExpired, &leaf.cert_der),
            (HostNameMismatch, &leaf.cert_der),
        ])?,
    }
    .check()
}

#[test]
fn leaf_of_an_untrusted_root_sent_with_that_root_gives_self_signed_in_chain_on_the_root(
) -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(SelfSignedCertificateInChain, pki.untrusted_root_der())])?,
    }
    .check()
}

#[test]
fn leaf_of_an_untrusted_root_sent_alone_gives_both_issuer_errors_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.untrusted_leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: false,
        peer_name: "localhost",
        expected: pairs(&[
            (UnableToGetLocalIssuerCertificate, &leaf.cert_der),
            (UnableToVerifyFirstCertificate, &leaf.cert_der),
        ])?,
    }
    .check()
}

#[test]
fn leaf_served_without_its_intermediate_gives_both_issuer_errors_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: false,
        peer_name: "localhost",
        expected: pairs(&[
            (UnableToGetLocalIssuerCertificate, &leaf.cert_der),
            (UnableToVerifyFirstCertificate, &leaf.cert_der),
        ])?,
    }
    .check()
}

#[test]
fn intermediate_of_an_untrusted_root_sent_without_it_gives_unable_to_get_local_issuer_on_it(
) -> TestResult {
    // Leaf + intermediate, and the client trusts another root: the issuer of the
    // intermediate is unknown.
    let pki = Pki::new()?;
    let other = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &other,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(UnableToGetLocalIssuerCertificate, pki.intermediate_der())])?,
    }
    .check()
}

#[test]
fn leaf_with_client_only_extended_key_usage_gives_invalid_purpose_on_the_leaf() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.wrong_eku_leaf("localhost", &["localhost"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(InvalidPurpose, &leaf.cert_der)])?,
    }
    .check()
}

#[test]
fn intermediate_without_ca_true_gives_invalid_ca_and_invalid_purpose_on_it() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.leaf_under_non_ca_intermediate("localhost", &["localhost"])?;
    let intermediate = &leaf.chain_der[1];
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[
            (InvalidCaCertificate, intermediate),
            (InvalidPurpose, intermediate),
        ])?,
    }
    .check()
}

#[test]
fn path_length_violation_gives_path_length_exceeded_on_the_constraining_intermediate() -> TestResult
{
    let pki = Pki::new()?;
    let leaf = pki.pathlen_violation_leaf("localhost", &["localhost"])?;
    // chain: leaf, sub-intermediate, pathlen-0 intermediate.
    let constraining = &leaf.chain_der[2];
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "localhost",
        expected: pairs(&[(PathLengthExceeded, constraining)])?,
    }
    .check()
}

#[test]
fn rsa_leaf_made_by_openssl_verifies_without_errors() -> TestResult {
    let pki = Pki::new()?;
    let leaf = pki.rsa_leaf("localhost", &["localhost", "127.0.0.1"])?;
    Scenario {
        pki: &pki,
        issued: &leaf,
        with_intermediates: true,
        peer_name: "127.0.0.1",
        expected: BTreeSet::new(),
    }
    .check()
}
