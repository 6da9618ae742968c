//! Review of the trust decisions of the less-travelled features, on the active backend
//! (`SSLSOCKET_BACKEND`): OCSP stapling with responses made by `openssl ocsp` at test
//! time and stapled by `openssl s_server -status_file`, server-side SNI with session
//! resumption, pre-shared keys and STARTTLS.

mod support;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sslsocket::blocking::{SslServer, SslSocket};
use sslsocket::prelude::*;
use sslsocket::{
    OcspCertificateStatus, PeerVerifyMode, PreSharedKeyAuthenticator, SslCertificate,
    SslConfiguration, SslErrorKind, SslHooks, SslIdentity, SslKey,
};
use support::{openssl_run, os_args, serving, trusting, Issued, OpensslClient, OpensslServer, Pki};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(10);

// ----- OCSP helpers ------------------------------------------------------------------------

fn openssl_ok(args: &[OsString]) -> TestResult {
    let out = openssl_run(args, b"", WAIT)?;
    if !out.success() {
        return Err(format!("openssl {args:?}: {}", out.combined()).into());
    }
    Ok(())
}

fn serial_of(cert_pem: &Path) -> BoxResult<String> {
    let out = openssl_run(
        &os_args!["x509", "-noout", "-serial", "-in", cert_pem],
        b"",
        WAIT,
    )?;
    Ok(out.stdout.trim().trim_start_matches("serial=").to_string())
}

/// A CA nobody trusts, made by openssl: (certificate PEM, key PEM).
fn foreign_ca(dir: &Path, name: &str) -> BoxResult<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}.ca.pem"));
    let key = dir.join(format!("{name}.ca.key"));
    openssl_ok(&os_args![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-subj",
        format!("/CN={name}"),
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign"
    ])?;
    Ok((cert, key))
}

/// A responder certificate issued by `ca` (with `ocsp_signing`: the id-kp-OCSPSigning
/// extended key usage, else serverAuth only): (certificate PEM, key PEM).
fn responder(
    dir: &Path,
    name: &str,
    ca: (&Path, &Path),
    ocsp_signing: bool,
) -> BoxResult<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}.resp.pem"));
    let key = dir.join(format!("{name}.resp.key"));
    let csr = dir.join(format!("{name}.resp.csr"));
    let ext = dir.join(format!("{name}.resp.ext"));
    let eku = if ocsp_signing {
        "OCSPSigning"
    } else {
        "serverAuth"
    };
    std::fs::write(
        &ext,
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage={eku}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        ),
    )?;
    openssl_ok(&os_args![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        format!("/CN={name}")
    ])?;
    openssl_ok(&os_args![
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        ca.0,
        "-CAkey",
        ca.1,
        "-set_serial",
        "4242",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        &ext,
        "-out",
        &cert
    ])?;
    Ok((cert, key))
}

/// One line of an `openssl ca` index: valid, revoked or absent (`None`: a line for
/// another serial, so the responder answers `unknown`).
fn index_line(serial: &str, revoked: bool) -> String {
    if revoked {
        format!("R\t301231235959Z\t250101000000Z,keyCompromise\t{serial}\tunknown\t/CN=x\n")
    } else {
        format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN=x\n")
    }
}

/// What `openssl ocsp` is asked to make.
struct Making<'a> {
    /// The index lines.
    index: String,
    /// `-CA`: the CA the responder answers for (its CertIDs).
    ca: &'a Path,
    /// `-issuer`: the issuer the request's CertIDs name.
    issuer: &'a Path,
    /// The certificates asked about, in order.
    certs: Vec<&'a Path>,
    /// The signer.
    signer: (&'a Path, &'a Path),
    /// More arguments (`-resp_no_certs`, `-resp_key_id`, ...).
    extra: Vec<&'a str>,
}

fn make_response(dir: &Path, name: &str, making: &Making<'_>) -> BoxResult<PathBuf> {
    let index = dir.join(format!("{name}.index.txt"));
    std::fs::write(&index, &making.index)?;
    let out = dir.join(format!("{name}.der"));
    let mut args = os_args![
        "ocsp",
        "-ndays",
        "1",
        "-index",
        &index,
        "-CA",
        making.ca,
        "-rsigner",
        making.signer.0,
        "-rkey",
        making.signer.1,
        "-issuer",
        making.issuer
    ];
    for cert in &making.certs {
        args.extend(os_args!["-cert", cert]);
    }
    args.extend(making.extra.iter().map(OsString::from));
    args.extend(os_args!["-respout", &out]);
    openssl_ok(&args)?;
    Ok(out)
}

fn stapling_client(pki: &Pki) -> BoxResult<SslConfiguration> {
    let mut configuration = trusting(pki)?;
    configuration.set_ocsp_stapling_enabled(true);
    Ok(configuration)
}

fn staple_and_connect(pki: &Pki, leaf: &Issued, staple: &Path) -> BoxResult<SslSocket> {
    let mut args = leaf.openssl_args();
    args.extend(os_args!["-status_file", staple, "-quiet"]);
    let server = OpensslServer::start(&args)?;
    let mut socket = SslSocket::with_configuration(stapling_client(pki)?);
    socket.connect_to_host_encrypted("localhost", server.port());
    let _ = socket.wait_for_encrypted(WAIT);
    Ok(socket)
}

/// The handshake's errors as (kind, whether tied to the leaf).
fn errors_on_leaf(socket: &SslSocket, leaf: &Issued) -> Vec<(SslErrorKind, bool)> {
    socket
        .ssl_handshake_errors()
        .iter()
        .map(|e| {
            (
                e.error(),
                e.certificate().is_some_and(|c| c.der() == leaf.cert_der),
            )
        })
        .collect()
}

// ----- OCSP: responders -------------------------------------------------------------------

#[test]
fn ocsp_a_delegated_responder_of_the_issuer_with_ocsp_signing_is_trusted() -> TestResult {
    // Pins the positive case of RFC 6960 4.2.2.2 end to end: a responder certificate
    // issued by the leaf's issuer with id-kp-OCSPSigning, sent in the response.
    let pki = Pki::new()?;
    let dir = pki.dir.path();
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let inter_key = dir.join("intermediate.key.pem");
    let (rcert, rkey) = responder(dir, "delegate", (pki.intermediate_pem(), &inter_key), true)?;
    let staple = make_response(
        dir,
        "delegated",
        &Making {
            index: index_line(&serial_of(&leaf.cert_pem)?, false),
            ca: pki.intermediate_pem(),
            issuer: pki.intermediate_pem(),
            certs: vec![&leaf.cert_pem],
            signer: (&rcert, &rkey),
            extra: vec![],
        },
    )?;
    let socket = staple_and_connect(&pki, &leaf, &staple)?;
    assert!(
        socket.is_encrypted(),
        "{}: {:?}",
        socket.error_string(),
        socket.ssl_handshake_errors()
    );
    let responses = socket.ocsp_responses();
    assert_eq!(responses.len(), 1);
    assert_eq!(
        responses[0].certificate_status(),
        OcspCertificateStatus::Good
    );
    let delegate = SslCertificate::from_file(&rcert)?;
    assert_eq!(responses[0].responder().as_ref(), delegate.first());
    Ok(())
}

#[test]
fn ocsp_unauthorized_signers_are_never_trusted() -> TestResult {
    // RFC 6960 4.2.2.2 / OpenSSL's ocsp_check_issuer: only the issuer itself or a
    // certificate it issued with id-kp-OCSPSigning may sign. Each of these must give
    // OcspResponseCannotBeTrusted and fail the handshake (Qt: untrustedResponder).
    let pki = Pki::new()?;
    let dir = pki.dir.path();
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let inter_key = dir.join("intermediate.key.pem");
    let (no_eku, no_eku_key) =
        responder(dir, "noeku", (pki.intermediate_pem(), &inter_key), false)?;
    let (fca, fca_key) = foreign_ca(dir, "Foreign CA")?;
    let (foreign, foreign_key) = responder(dir, "foreign", (&fca, &fca_key), true)?;
    let serial = serial_of(&leaf.cert_pem)?;
    let leaf_key = leaf.key_pem.clone();
    let cases: Vec<(&str, (&Path, &Path))> = vec![
        ("delegate without OCSPSigning", (&no_eku, &no_eku_key)),
        ("delegate of another CA", (&foreign, &foreign_key)),
        // The server's own (say compromised) key vouching for itself.
        ("the leaf's own key", (&leaf.cert_pem, &leaf_key)),
        ("an unrelated CA's own key", (&fca, &fca_key)),
    ];
    for (i, (what, signer)) in cases.into_iter().enumerate() {
        let staple = make_response(
            dir,
            &format!("unauthorized{i}"),
            &Making {
                index: index_line(&serial, false),
                ca: pki.intermediate_pem(),
                issuer: pki.intermediate_pem(),
                certs: vec![&leaf.cert_pem],
                signer,
                extra: vec![],
            },
        )?;
        let socket = staple_and_connect(&pki, &leaf, &staple)?;
        assert!(!socket.is_encrypted(), "{what}: accepted");
        let kinds: Vec<SslErrorKind> = socket
            .ssl_handshake_errors()
            .iter()
            .map(|e| e.error())
            .collect();
        assert_eq!(
            kinds,
            vec![SslErrorKind::OcspResponseCannotBeTrusted],
            "{what}"
        );
    }
    Ok(())
}

// ----- OCSP: what the response is about -------------------------------------------------------

#[test]
fn ocsp_a_response_for_the_leafs_serial_under_another_issuer_is_cert_id_unknown() -> TestResult {
    // The CertID names the leaf's serial but the root as issuer (hashes of another name
    // and key), signed by the leaf's real issuer: not about this certificate (Qt:
    // wrongCertificateInResponse, "wrong CA").
    let pki = Pki::new()?;
    let dir = pki.dir.path();
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let inter_key = dir.join("intermediate.key.pem");
    let staple = make_response(
        dir,
        "otherissuer",
        &Making {
            index: index_line(&serial_of(&leaf.cert_pem)?, false),
            ca: pki.root_pem(),
            issuer: pki.root_pem(),
            certs: vec![&leaf.cert_pem],
            signer: (pki.intermediate_pem(), &inter_key),
            extra: vec![],
        },
    )?;
    let socket = staple_and_connect(&pki, &leaf, &staple)?;
    assert!(!socket.is_encrypted());
    // (`openssl ocsp` answers `unknown` for a CertID of another issuer, hence the second.)
    assert_eq!(
        errors_on_leaf(&socket, &leaf),
        vec![
            (SslErrorKind::OcspResponseCertIdUnknown, true),
            (SslErrorKind::OcspStatusUnknown, true)
        ]
    );
    Ok(())
}

#[test]
fn ocsp_unknown_status_and_several_single_responses_fail() -> TestResult {
    let pki = Pki::new()?;
    let dir = pki.dir.path();
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let other = pki.leaf("other", &["other.test"])?;
    let inter_key = dir.join("intermediate.key.pem");
    let serial = serial_of(&leaf.cert_pem)?;
    let other_serial = serial_of(&other.cert_pem)?;

    // Unknown to the responder: OcspStatusUnknown on the leaf (Qt: badStatus).
    let unknown = make_response(
        dir,
        "unknown",
        &Making {
            index: index_line("01", false),
            ca: pki.intermediate_pem(),
            issuer: pki.intermediate_pem(),
            certs: vec![&leaf.cert_pem],
            signer: (pki.intermediate_pem(), &inter_key),
            extra: vec![],
        },
    )?;
    let socket = staple_and_connect(&pki, &leaf, &unknown)?;
    assert!(!socket.is_encrypted());
    assert_eq!(
        errors_on_leaf(&socket, &leaf),
        vec![(SslErrorKind::OcspStatusUnknown, true)]
    );
    assert_eq!(
        socket.ocsp_responses()[0].certificate_status(),
        OcspCertificateStatus::Unknown
    );

    // Two SingleResponses, one (good) about the leaf, one about a revoked other leaf,
    // in both orders: Qt's multipleSingleResponses gives OcspMalformedResponse.
    let index = format!(
        "{}{}",
        index_line(&serial, false),
        index_line(&other_serial, true)
    );
    for (name, certs) in [
        (
            "two_leaf_first",
            vec![leaf.cert_pem.as_path(), other.cert_pem.as_path()],
        ),
        (
            "two_other_first",
            vec![other.cert_pem.as_path(), leaf.cert_pem.as_path()],
        ),
    ] {
        let staple = make_response(
            dir,
            name,
            &Making {
                index: index.clone(),
                ca: pki.intermediate_pem(),
                issuer: pki.intermediate_pem(),
                certs,
                signer: (pki.intermediate_pem(), &inter_key),
                extra: vec![],
            },
        )?;
        let socket = staple_and_connect(&pki, &leaf, &staple)?;
        assert!(!socket.is_encrypted(), "{name}");
        let kinds: Vec<SslErrorKind> = socket
            .ssl_handshake_errors()
            .iter()
            .map(|e| e.error())
            .collect();
        assert_eq!(kinds, vec![SslErrorKind::OcspMalformedResponse], "{name}");
        assert!(socket.ocsp_responses().is_empty(), "{name}");
    }
    Ok(())
}

// ----- OCSP: time window ------------------------------------------------------------------------

/// `der` (an `openssl ocsp` response signed with `key_pem`, ECDSA P-256 with SHA-256)
/// with its one SingleResponse's thisUpdate and nextUpdate moved to now + the offsets
/// (seconds), signed again with `key_pem`.
fn retimed(dir: &Path, der: &[u8], key_pem: &Path, this: i64, next: i64) -> BoxResult<Vec<u8>> {
    use der::asn1::{BitString, GeneralizedTime, OctetString};
    use der::{Decode, Encode};
    use x509_ocsp::{BasicOcspResponse, OcspGeneralizedTime, OcspResponse};
    let at = |offset: i64| -> BoxResult<OcspGeneralizedTime> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let secs = u64::try_from(i64::try_from(now.as_secs())? + offset)?;
        Ok(OcspGeneralizedTime(GeneralizedTime::from_unix_duration(
            Duration::from_secs(secs),
        )?))
    };
    let mut outer = OcspResponse::from_der(der)?;
    let bytes = outer.response_bytes.as_mut().ok_or("no response bytes")?;
    let mut basic = BasicOcspResponse::from_der(bytes.response.as_bytes())?;
    let single = basic
        .tbs_response_data
        .responses
        .first_mut()
        .ok_or("no SingleResponse")?;
    single.this_update = at(this)?;
    single.next_update = Some(at(next)?);
    let tbs = basic.tbs_response_data.to_der()?;
    let tbs_path = dir.join("retimed.tbs");
    let sig_path = dir.join("retimed.sig");
    std::fs::write(&tbs_path, &tbs)?;
    openssl_ok(&os_args![
        "dgst", "-sha256", "-sign", key_pem, "-out", &sig_path, &tbs_path
    ])?;
    basic.signature = BitString::from_bytes(&std::fs::read(&sig_path)?)?;
    bytes.response = OctetString::new(basic.to_der()?)?;
    Ok(outer.to_der()?)
}

#[test]
fn ocsp_the_time_window_has_qts_one_minute_of_slack() -> TestResult {
    // Qt's checkOcspStatus: `q_OCSP_check_validity(thisUpdate, nextUpdate, 60, -1)`, 60 s
    // of slack each way (OpenSSL's `openssl ocsp` default -validity_period is 300 s, but Qt
    // passes 60). src/ocsp/check.rs has CLOCK_SKEW = 5 * 60 and says it follows Qt: a
    // response whose nextUpdate passed 150 s ago, or whose thisUpdate is 150 s ahead, is
    // accepted where Qt reports OcspResponseExpired (qt-behaviors.md §8 expiredResponse).
    let pki = Pki::new()?;
    let dir = pki.dir.path();
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let inter_key = dir.join("intermediate.key.pem");
    let fresh = std::fs::read(make_response(
        dir,
        "fresh",
        &Making {
            index: index_line(&serial_of(&leaf.cert_pem)?, false),
            ca: pki.intermediate_pem(),
            issuer: pki.intermediate_pem(),
            certs: vec![&leaf.cert_pem],
            signer: (pki.intermediate_pem(), &inter_key),
            extra: vec![],
        },
    )?)?;
    let mut wrong = Vec::new();
    for (what, this, next, expired) in [
        ("re-signed, current", -3600, 86400, false),
        ("nextUpdate 10 min ago", -7200, -600, true),
        ("nextUpdate 150 s ago", -7200, -150, true),
        ("thisUpdate 150 s ahead", 150, 86400, true),
        ("thisUpdate 10 min ahead", 600, 86400, true),
    ] {
        let staple = dir.join(format!("retimed{this}_{next}.der"));
        std::fs::write(&staple, retimed(dir, &fresh, &inter_key, this, next)?)?;
        let socket = staple_and_connect(&pki, &leaf, &staple)?;
        let got = errors_on_leaf(&socket, &leaf);
        let want = if expired {
            vec![(SslErrorKind::OcspResponseExpired, true)]
        } else {
            vec![]
        };
        if got != want || socket.is_encrypted() == expired {
            wrong.push(format!(
                "{what}: errors {got:?}, encrypted {}",
                socket.is_encrypted()
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

// ----- SNI ------------------------------------------------------------------------------------

fn identity(issued: &Issued) -> BoxResult<SslIdentity> {
    let chain = issued
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SslIdentity::new(chain, SslKey::from_der(&issued.key_der)?)?)
}

struct Sites {
    pki: Pki,
    default: Issued,
    api: Issued,
    other: Issued,
}

fn sites() -> BoxResult<Sites> {
    let pki = Pki::new()?;
    Ok(Sites {
        default: pki.leaf("localhost", &["localhost"])?,
        api: pki.leaf("api.example.com", &["api.example.com"])?,
        other: pki.leaf("other.example.com", &["other.example.com"])?,
        pki,
    })
}

fn sni_configuration(sites: &Sites) -> BoxResult<SslConfiguration> {
    let mut configuration = serving(&sites.default)?;
    configuration
        .add_server_name_certificate("api.example.com", identity(&sites.api)?)?
        .add_server_name_certificate("other.example.com", identity(&sites.other)?)?;
    Ok(configuration)
}

/// What our server saw of one connection: (name asked for, resumed).
type Seen = (Option<String>, bool);

/// Our server with the SNI map, accepting until nobody connects for 3 s; reports each
/// accepted connection.
fn sni_server(sites: &Sites) -> BoxResult<(u16, mpsc::Receiver<Seen>)> {
    let listener = SslServer::listen("127.0.0.1:0", sni_configuration(sites)?)?;
    let port = listener.local_addr().port();
    let (tell, seen) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(result) = listener.next_connection(Duration::from_secs(3)) {
            if let Ok(mut socket) = result {
                let _ = tell.send((
                    socket.requested_server_name().map(str::to_string),
                    socket.is_session_resumed(),
                ));
                let _ = socket.wait_for_ready_read(Duration::from_millis(300));
                let _ = socket.close();
            }
        }
    });
    Ok((port, seen))
}

#[test]
fn sni_a_session_made_for_one_name_is_not_resumed_under_another() -> TestResult {
    // RFC 6066 section 3: "A server that implements this extension MUST NOT accept the
    // request to resume the session if the server_name extension contains a different
    // name. Instead, it proceeds with a full handshake". RFC 8446 4.6.1 / 4.2.11 tie a
    // TLS 1.3 ticket to the SNI too (the server certificate it authenticated). rustls's
    // server refuses such a resumption (`can_resume` compares the SNI). Otherwise a client
    // authenticated with api.example.com's certificate continues as other.example.com
    // (virtual-host confusion): the server records other.example.com as the name asked
    // for, but the client never saw other.example.com's certificate.
    let sites = sites()?;
    let (port, seen) = sni_server(&sites)?;
    let mut wrong = Vec::new();
    for protocol in ["-tls1_2", "-tls1_3"] {
        let session = sites.pki.dir.path().join(format!("session{protocol}.pem"));
        let first = OpensslClient::run(
            port,
            &os_args![
                "-CAfile",
                sites.pki.root_pem(),
                protocol,
                "-servername",
                "api.example.com",
                "-sess_out",
                &session,
                "-ign_eof"
            ],
            b"x\n",
            WAIT,
        )?;
        assert!(first.combined().contains("New, TLSv1."), "{first}");
        let _ = seen.recv_timeout(WAIT)?;
        // Same name: resumed (the test is meaningful).
        let same = OpensslClient::run(
            port,
            &os_args![
                "-CAfile",
                sites.pki.root_pem(),
                protocol,
                "-servername",
                "api.example.com",
                "-sess_in",
                &session
            ],
            b"",
            WAIT,
        )?;
        assert!(
            same.combined().contains("Reused, TLSv1."),
            "{protocol}: {same}"
        );
        let _ = seen.recv_timeout(WAIT)?;
        // Another name: a full handshake with other.example.com's certificate.
        let other = OpensslClient::run(
            port,
            &os_args![
                "-CAfile",
                sites.pki.root_pem(),
                protocol,
                "-servername",
                "other.example.com",
                "-sess_in",
                &session
            ],
            b"",
            WAIT,
        )?;
        let (name, resumed) = seen.recv_timeout(WAIT)?;
        let text = other.combined();
        let client_resumed = text.contains("Reused, TLSv1.");
        if resumed || client_resumed || name.as_deref() != Some("other.example.com") {
            wrong.push(format!(
                "{protocol}: client sent other.example.com with api.example.com's session: \
                 server resumed={resumed}, s_client reused={client_resumed}, \
                 server's requested_server_name={name:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

#[test]
fn sni_case_trailing_dot_and_odd_names_pick_safely() -> TestResult {
    // The map matches case-insensitively and without a trailing dot (NamePattern); an odd
    // name gets the default certificate, never a crash; the server keeps serving.
    let sites = sites()?;
    let (port, seen) = sni_server(&sites)?;
    let long = format!("{}.example.com", "a".repeat(63));
    for (sent, expected) in [
        ("API.EXAMPLE.COM", Some(&sites.api)),
        ("api.example.com.", Some(&sites.api)),
        ("xapi.example.com", Some(&sites.default)),
        ("api.example.com.evil", Some(&sites.default)),
        (long.as_str(), Some(&sites.default)),
        ("under_score.example.com", Some(&sites.default)),
    ] {
        let out = OpensslClient::run(
            port,
            &os_args![
                "-CAfile",
                sites.pki.root_pem(),
                "-servername",
                sent,
                "-showcerts"
            ],
            b"",
            WAIT,
        )?;
        let text = out.combined();
        if let Some(expected) = expected {
            let cn = match expected {
                e if e.cert_der == sites.api.cert_der => "CN = api.example.com",
                e if e.cert_der == sites.other.cert_der => "CN = other.example.com",
                _ => "CN = localhost",
            };
            assert!(
                text.contains(&format!("0 s:{cn}")),
                "for {sent:?}, wanted {cn}: {text}"
            );
            let _ = seen.recv_timeout(WAIT)?;
        }
    }
    // Still serving.
    let out = OpensslClient::run(
        port,
        &os_args![
            "-CAfile",
            sites.pki.root_pem(),
            "-servername",
            "other.example.com"
        ],
        b"",
        WAIT,
    )?;
    assert!(
        out.combined().contains("0 s:CN = other.example.com"),
        "{out}"
    );
    Ok(())
}

// ----- PSK --------------------------------------------------------------------------------

/// What the server's hook was asked: hint, identity, max identity length, max key length.
type Asked = (Vec<u8>, Vec<u8>, usize, usize);

/// Records what the server's hook was asked.
#[derive(Default)]
struct RecordingPsk {
    asked: std::sync::Mutex<Vec<Asked>>,
    key: Vec<u8>,
}

impl SslHooks for RecordingPsk {
    fn pre_shared_key(&self, request: &mut PreSharedKeyAuthenticator) {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((
                request.identity_hint().to_vec(),
                request.identity().to_vec(),
                request.maximum_identity_length(),
                request.maximum_pre_shared_key_length(),
            ));
        }
        request.set_pre_shared_key(&self.key);
    }
}

#[test]
fn psk_the_server_hook_sees_its_own_hint_and_no_identity_room() -> TestResult {
    // Qt's TlsCryptographOpenSSL::tlsPskServerCallback fills the server's authenticator
    // with identityHint = the configuration's preSharedKeyIdentityHint(), identity = the
    // client's, and maximumIdentityLength = 0 ("user cannot set an identity");
    // qt-behaviors.md §10 pskServer: "server max identity length 0". Here the server is
    // asked with an empty hint and a maximum identity length equal to the client's
    // identity length.
    if support::lacks(sslsocket::backend::SupportedFeature::Psk) {
        return Ok(());
    }
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let mut configuration = serving(&leaf)?;
    configuration.set_pre_shared_key_identity_hint(b"Server Y".to_vec());
    let hooks = std::sync::Arc::new(RecordingPsk {
        asked: Default::default(),
        key: support::PSK.to_vec(),
    });
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = tcp.local_addr()?.port();
    let server_hooks = hooks.clone();
    let served = thread::spawn(move || -> Result<(), String> {
        let (stream, _) = tcp.accept().map_err(|e| e.to_string())?;
        let mut socket =
            SslSocket::from_tcp_stream(stream, configuration).map_err(|e| e.to_string())?;
        socket.set_hooks(server_hooks);
        socket
            .start_server_encryption()
            .map_err(|e| e.to_string())?;
        socket.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        let _ = socket.wait_for_ready_read(WAIT);
        let _ = socket.close();
        Ok(())
    });
    let out = OpensslClient::run(
        port,
        &os_args![
            "-psk",
            support::PSK_HEX,
            "-psk_identity",
            "Client X",
            "-tls1_2",
            "-cipher",
            "PSK-AES128-GCM-SHA256"
        ],
        b"hello\n",
        WAIT,
    )?;
    served
        .join()
        .map_err(|_| "server thread panicked")?
        .map_err(|e| format!("{e}; s_client: {}", out.combined()))?;
    let asked = hooks.asked.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let (hint, identity, max_identity, max_key) = &asked[0];
    assert_eq!(identity.as_slice(), b"Client X");
    assert!(*max_key > 0);
    assert_eq!(
        (hint.as_slice(), *max_identity),
        (&b"Server Y"[..], 0),
        "the server's authenticator: (identity hint, maximum identity length)"
    );
    Ok(())
}

// ----- STARTTLS -------------------------------------------------------------------------

#[test]
fn starttls_plaintext_arriving_with_the_servers_hello_is_never_read_as_encrypted() -> TestResult {
    // CVE-2011-0411 class, the other direction from starttls.rs: the attacker appends
    // plaintext right after "220 go ahead" in the same segment, the client reads only the
    // line then starts TLS; the rest must never be readable, and after the handshake only
    // the server's encrypted bytes are.
    let pki = Pki::new()?;
    let leaf = pki.leaf("localhost", &["localhost"])?;
    let config = serving(&leaf)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let served = thread::spawn(move || -> Result<(), String> {
        let (mut stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut line = [0u8; 10];
        stream.read_exact(&mut line).map_err(|e| e.to_string())?;
        stream
            .write_all(b"220 go ahead\r\n250 INJECTED\r\n")
            .map_err(|e| e.to_string())?;
        let mut tls = SslSocket::from_tcp_stream(stream, config).map_err(|e| e.to_string())?;
        tls.start_server_encryption().map_err(|e| e.to_string())?;
        tls.wait_for_encrypted(WAIT).map_err(|e| e.to_string())?;
        tls.write_all(b"250 real\r\n").map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        tls.close().map_err(|e| e.to_string())
    });
    let mut client = SslSocket::with_configuration(trusting(&pki)?);
    client.set_io_timeout(Some(WAIT));
    client.connect_to_host("localhost", port);
    client.wait_for_connected(WAIT)?;
    client.write_all(b"STARTTLS\r\n")?;
    client.flush()?;
    while !client.can_read_line() {
        client.wait_for_ready_read(WAIT)?;
    }
    assert_eq!(client.read_line(0), b"220 go ahead\r\n");
    client.start_client_encryption()?;
    assert!(!client.can_read_line());
    assert_eq!(client.bytes_available(), 0);
    client.wait_for_encrypted(WAIT)?;
    let mut after = Vec::new();
    client.read_to_end(&mut after)?;
    assert_eq!(after, b"250 real\r\n");
    served.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

#[test]
fn sni_a_name_mapped_certificate_keeps_the_servers_client_verification() -> TestResult {
    // Switching the certificate by SNI (OpenSSL: `SSL_set_SSL_CTX` to the name's context)
    // must not switch off the server's demand for a client certificate, nor trust
    // another CA: a client without a certificate, or with one of an untrusted CA, is
    // refused under every name.
    let sites = sites()?;
    let mut configuration = sni_configuration(&sites)?;
    configuration
        .set_peer_verify_mode(PeerVerifyMode::VerifyPeer)
        .set_ca_certificates(SslCertificate::from_file(sites.pki.root_pem())?);
    let listener = SslServer::listen("127.0.0.1:0", configuration)?;
    let port = listener.local_addr().port();
    let untrusted = sites.pki.client_cert(false)?;
    let mut wrong = Vec::new();
    for name in [
        "api.example.com",
        "other.example.com",
        "localhost",
        "nothing.test",
    ] {
        for with_cert in [false, true] {
            let mut args = os_args![
                "-CAfile",
                sites.pki.root_pem(),
                "-servername",
                name,
                "-tls1_3"
            ];
            if with_cert {
                args.extend(untrusted.openssl_args());
            }
            let client = OpensslClient::spawn(port, &args)?;
            if let Ok(socket) = listener.next_connection(WAIT)? {
                wrong.push(format!(
                    "{name}, client certificate {with_cert}: accepted (peer {:?})",
                    socket.peer_certificate().map(|c| c.subject_display_name())
                ));
            }
            drop(client);
        }
    }
    // The control: a client certificate of the trusted CA is accepted under a mapped name.
    let trusted = sites.pki.client_cert(true)?;
    let mut args = os_args![
        "-CAfile",
        sites.pki.root_pem(),
        "-servername",
        "api.example.com",
        "-tls1_3"
    ];
    args.extend(trusted.openssl_args());
    let _client = OpensslClient::spawn(port, &args)?;
    let accepted = listener.next_connection(WAIT)?;
    assert!(
        accepted
            .as_ref()
            .is_ok_and(|s| s.peer_certificate().is_some()),
        "control refused: {:?}",
        accepted.err().map(|s| s.ssl_handshake_errors().to_vec())
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}
