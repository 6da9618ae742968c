//! An attacker's TLS server: raw rustls serving whatever certificate DER it is given
//! (malformed, mis-issued, with appended certificates), signing with its own key, and
//! sending a message as soon as it can (0.5-RTT data in TLS 1.3, before the client's
//! Finished), so tests can check that nothing from a refused peer is ever readable.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::{SupportError, SupportResult};

/// The message the attack server sends on every connection.
pub const ATTACK_MESSAGE: &[u8] = b"attacker data\n";

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A server on 127.0.0.1 that serves `chain` (DER, sent as is) with `key_der` (PKCS#8) for
/// at most `connections` connections, each bounded to 5 s; stops by itself.
pub struct AttackServer {
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl AttackServer {
    pub fn start(chain: Vec<Vec<u8>>, key_der: &[u8], connections: usize) -> SupportResult<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| SupportError::new(format!("attack key: {e}")))?;
        let certs: Vec<CertificateDer<'static>> =
            chain.into_iter().map(CertificateDer::from).collect();
        let certified = Arc::new(CertifiedKey::new(certs, signing));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SupportError::new(format!("attack config: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(certified)));
        config.send_half_rtt_data = true;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let thread = std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((mut tcp, _)) = listener.accept() else {
                    return;
                };
                let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
                let Ok(mut conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                    return;
                };
                let _ = conn.writer().write_all(ATTACK_MESSAGE);
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if conn.wants_write() && conn.write_tls(&mut tcp).is_err() {
                        break;
                    }
                    match conn.read_tls(&mut tcp) {
                        Ok(0) => break,
                        Ok(_) => {
                            if conn.process_new_packets().is_err() {
                                let _ = conn.write_tls(&mut tcp);
                                break;
                            }
                            let mut sink = [0u8; 1024];
                            let _ = conn.reader().read(&mut sink);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => break,
                    }
                }
            }
        });
        Ok(Self {
            port,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for AttackServer {
    fn drop(&mut self) {
        // The thread ends by itself (bounded connections, each bounded in time); a client
        // that never came is unblocked by connecting once.
        if let Some(thread) = self.thread.take() {
            if !thread.is_finished() {
                let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
            }
            let _ = thread.join();
        }
    }
}

/// One DER TLV: (tag, header length, content length), or `None` when malformed.
fn tlv(bytes: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *bytes.first()?;
    let first = *bytes.get(1)? as usize;
    if first < 0x80 {
        return Some((tag, 2, first));
    }
    let count = first & 0x7f;
    let mut len = 0usize;
    for i in 0..count {
        len = (len << 8) | *bytes.get(2 + i)? as usize;
    }
    Some((tag, 2 + count, len))
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn malformed() -> SupportError {
    SupportError::new("certificate DER is not as expected")
}

/// A certificate cut into its TBS fields (`[0]` version, serial, signature algorithm,
/// issuer, validity, subject, ...), what follows the TBS (algorithm and signature), and
/// the index of field `n` of a v1 certificate (one more when the version is present).
struct Parts<'a> {
    fields: Vec<&'a [u8]>,
    after_tbs: &'a [u8],
    shift: usize,
}

impl<'a> Parts<'a> {
    fn of(cert: &'a [u8]) -> SupportResult<Parts<'a>> {
        let (_, header, len) = tlv(cert).ok_or_else(malformed)?;
        let body = cert.get(header..header + len).ok_or_else(malformed)?;
        let (_, tbs_header, tbs_len) = tlv(body).ok_or_else(malformed)?;
        let tbs = body
            .get(tbs_header..tbs_header + tbs_len)
            .ok_or_else(malformed)?;
        let after_tbs = body.get(tbs_header + tbs_len..).ok_or_else(malformed)?;
        let mut fields = Vec::new();
        let mut rest = tbs;
        while !rest.is_empty() {
            let (_, h, l) = tlv(rest).ok_or_else(malformed)?;
            fields.push(rest.get(..h + l).ok_or_else(malformed)?);
            rest = rest.get(h + l..).ok_or_else(malformed)?;
        }
        let shift = usize::from(fields.first().and_then(|f| f.first()) == Some(&0xa0));
        Ok(Parts {
            fields,
            after_tbs,
            shift,
        })
    }

    /// The TBS with field `index` (of a v1 certificate) replaced by `new`.
    fn tbs_with(&self, index: usize, new: &[u8]) -> Vec<u8> {
        let mut tbs = Vec::new();
        for (i, field) in self.fields.iter().enumerate() {
            if i == index + self.shift {
                tbs.extend_from_slice(new);
            } else {
                tbs.extend_from_slice(field);
            }
        }
        encode(0x30, &tbs)
    }

    fn field(&self, index: usize) -> SupportResult<&'a [u8]> {
        self.fields
            .get(index + self.shift)
            .copied()
            .ok_or_else(malformed)
    }
}

/// TBS fields of a v1 certificate: validity and subject.
const VALIDITY: usize = 3;
const SUBJECT: usize = 4;

/// The certificate with its Validity replaced by an empty SEQUENCE (`30 00`): webpki still
/// parses it (it reads the validity only when checking a path), x509-parser does not.
pub fn with_empty_validity(cert: &[u8]) -> SupportResult<Vec<u8>> {
    let parts = Parts::of(cert)?;
    let mut body = parts.tbs_with(VALIDITY, &[0x30, 0x00]);
    body.extend_from_slice(parts.after_tbs);
    Ok(encode(0x30, &body))
}

/// The certificate `cert` (signed by `issuer_key`) with its subject Name in BER's
/// indefinite-length form (`30 80 ... 00 00`), signed again by `issuer_key` over those
/// bytes: the signature is valid and OpenSSL reads and verifies the certificate, while
/// x509-parser (and webpki) refuse it. (x509-parser reads a long-form length where DER
/// wants the short one; this it does not.)
pub fn with_indefinite_subject_length(
    cert: &[u8],
    issuer_key: &impl rcgen::SigningKey,
) -> SupportResult<Vec<u8>> {
    let parts = Parts::of(cert)?;
    let (_, alg_header, alg_len) = tlv(parts.after_tbs).ok_or_else(malformed)?;
    let algorithm = parts
        .after_tbs
        .get(..alg_header + alg_len)
        .ok_or_else(malformed)?;
    let subject = parts.field(SUBJECT)?;
    let (tag, 2, len) = tlv(subject).ok_or_else(malformed)? else {
        return Err(malformed());
    };
    let mut indefinite = vec![tag, 0x80];
    indefinite.extend_from_slice(subject.get(2..2 + len).ok_or_else(malformed)?);
    indefinite.extend([0x00, 0x00]);
    let tbs = parts.tbs_with(SUBJECT, &indefinite);
    let signature = issuer_key
        .sign(&tbs)
        .map_err(|e| SupportError::new(format!("signing: {e}")))?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut body = tbs;
    body.extend_from_slice(algorithm);
    body.extend(encode(0x03, &bits));
    Ok(encode(0x30, &body))
}
