//! Adversarial review of round 37's own new code outside the verifier (review L2):
//! `from_path` character classes, `escape_controls`, the tokio `Incoming`'s hold on the
//! shutdown channel. Both backends (`SSLSOCKET_BACKEND=openssl`); every wait is bounded;
//! 127.0.0.1 only; certificates made at test time (rcgen).
//! `cargo test -q -p sslsocket --all-features --test last_round37b`
mod support;

use std::time::{Duration, Instant};

use sslsocket::tokio::SslServer;
use sslsocket::{SslCertificate, SslConfiguration, SslKey};
use support::Pki;
use tokio::time::timeout;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const STEP: Duration = Duration::from_secs(10);

/// A self-signed certificate (rcgen, ECDSA P-256) for `name`.
fn certificate(name: &str) -> Result<SslCertificate, BoxError> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec![name.to_string()])?;
    let cert = params.self_signed(&key)?;
    Ok(SslCertificate::from_der(cert.der())?)
}

/// `ca1.pem`, `ca3.pem` and `ca].pem` in a fresh directory, with their certificates.
fn three_files() -> Result<(tempfile::TempDir, [SslCertificate; 3]), BoxError> {
    let dir = tempfile::tempdir()?;
    let one = certificate("one.example")?;
    let three = certificate("three.example")?;
    let bracket = certificate("bracket.example")?;
    std::fs::write(dir.path().join("ca1.pem"), one.to_pem())?;
    std::fs::write(dir.path().join("ca3.pem"), three.to_pem())?;
    std::fs::write(dir.path().join("ca].pem"), bracket.to_pem())?;
    Ok((dir, [one, three, bracket]))
}

// Was a defect (round 37): a `]` right after `[` (or `[!`) is a member of the class in Qt's wildcard syntax (wildcardToRegularExpression copies it into the class, as POSIX globs do), but `from_path` takes it for the class's end: `ca[]1].pem` (Qt: ca1.pem and ca].pem) and `ca[!]1].pem` (Qt: ca3.pem) match nothing; and `[^3]`, which Qt copies into the expression as a negation, is read as the set of `^` and `3` (ca3.pem only, the very file excluded).
#[test]
fn from_path_reads_a_leading_close_bracket_as_a_class_member_as_qt_does() -> TestResult {
    let (dir, [one, three, bracket]) = three_files()?;
    let d = dir.path();
    assert_eq!(
        SslCertificate::from_path(d.join("ca[]1].pem"))?,
        vec![one.clone(), bracket.clone()],
        "`ca[]1].pem`: Qt reads one of `]` and `1`"
    );
    assert_eq!(
        SslCertificate::from_path(d.join("ca[!]1].pem"))?,
        vec![three],
        "`ca[!]1].pem`: Qt reads any character but `]` and `1`"
    );
    assert_eq!(
        SslCertificate::from_path(d.join("ca[^3].pem"))?,
        vec![one, bracket],
        "`ca[^3].pem`: Qt copies `^` into the expression, where it negates"
    );
    Ok(())
}

// Was a defect (round 37): a negated class with a reversed range (`ca[!z-a].pem`) matches every file (the empty range negated), where Qt's expression is invalid (PCRE2: range out of order) and matches none: a malformed pattern must not widen to everything.
#[test]
fn from_path_a_reversed_range_matches_no_file() -> TestResult {
    let (dir, _) = three_files()?;
    let d = dir.path();
    assert!(SslCertificate::from_path(d.join("ca[z-a].pem"))?.is_empty());
    assert!(
        SslCertificate::from_path(d.join("ca[!z-a].pem"))?.is_empty(),
        "a reversed range, negated, matched every file"
    );
    Ok(())
}

// Was a defect (round 37): `from_path` tokenizes the pattern again for every directory entry, and each unclosed `[` scans the rest of the pattern for its `]`: a long pattern of `[` costs O(pattern²) per file (seconds for a 20 000-character pattern and a handful of files), though matching is documented as O(pattern × name).
#[test]
fn from_path_with_a_long_pattern_of_open_brackets_stays_fast() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cert = certificate("one.example")?;
    for i in 0..8 {
        std::fs::write(dir.path().join(format!("ca{i}.pem")), cert.to_pem())?;
    }
    let pattern = format!("{}*", "[".repeat(20_000));
    let (done, finished) = std::sync::mpsc::channel();
    let path = dir.path().join(pattern);
    std::thread::spawn(move || {
        let started = Instant::now();
        let result = SslCertificate::from_path(path).map(|certs| certs.len());
        let _ = done.send((result, started.elapsed()));
    });
    let (result, took) = finished.recv_timeout(Duration::from_secs(120))?;
    assert_eq!(result?, 0);
    assert!(
        took < Duration::from_secs(1),
        "from_path took {took:?} for a 20 001-character pattern over 8 files"
    );
    Ok(())
}

// Was a defect (round 37): `escape_controls` (certificate names and SANs on the terminal, the CLI's report) escapes C0/C1 controls and the bidirectional controls but prints the other invisible format characters and separators raw: zero-width space/joiners, word joiner, BOM, soft hyphen, the Unicode tag characters (invisible ASCII look-alikes) and U+2028/U+2029, so a peer's `localhost\u{200B}` shows exactly as `localhost`.
#[test]
fn escape_controls_escapes_invisible_format_characters_and_separators() -> TestResult {
    for c in [
        '\u{00AD}',
        '\u{180E}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2028}',
        '\u{2029}',
        '\u{2060}',
        '\u{2064}',
        '\u{FEFF}',
        '\u{E0001}',
        '\u{E0041}',
        '\u{E007F}',
    ] {
        let text = format!("localhost{c}");
        let shown = sslsocket::cert::escape_controls(&text);
        assert!(
            !shown.contains(c) && shown.starts_with("localhost\\"),
            "U+{:04X} printed raw: {shown:?}",
            c as u32
        );
    }
    // Ordinary non-ASCII text stays as it is.
    assert_eq!(
        sslsocket::cert::escape_controls("Zürich ☃ 東京"),
        "Zürich ☃ 東京"
    );
    Ok(())
}

fn server_configuration(pki: &Pki) -> Result<SslConfiguration, BoxError> {
    let leaf = pki.leaf("localhost", &["localhost", "127.0.0.1"])?;
    let chain = leaf
        .chain_der
        .iter()
        .map(|der| SslCertificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let mut configuration = SslConfiguration::default();
    configuration
        .set_local_certificate_chain(chain)
        .set_private_key(SslKey::from_der(&leaf.key_der)?)
        .set_system_ca_on_demand(false);
    Ok(configuration)
}

// Was a defect (round 37): `Incoming` now holds the shutdown channel (`_alive`) until it is dropped, also after it ended (`next()` gave `None`): the pattern of `SslServer::incoming`'s own documentation (`while let Some(c) = incoming.next().await {..}` then `wait_for_connections` with `incoming` still in scope) always waits the whole deadline and reports `false` though no connection is left.
#[tokio::test]
async fn wait_for_connections_does_not_wait_for_an_incoming_that_ended() -> TestResult {
    let pki = Pki::new()?;
    let server = SslServer::bind("127.0.0.1:0", server_configuration(&pki)?).await?;
    let shutdown = server.shutdown_handle();
    let mut incoming = server.incoming();
    shutdown.shutdown();
    let mut handed_out = 0;
    while let Some(_connection) = timeout(STEP, incoming.next()).await? {
        handed_out += 1;
    }
    assert_eq!(handed_out, 0);
    // `incoming` ended but is still in scope, as in the documented example.
    let started = Instant::now();
    let all_gone = shutdown.wait_for_connections(Duration::from_secs(2)).await;
    assert!(
        all_gone,
        "wait_for_connections waited {:?} and said connections remain, with none left and the stream ended",
        started.elapsed()
    );
    drop(incoming);
    Ok(())
}

/// A 10,000-bit prime (`openssl prime -generate -bits 10000 -hex`, round 37 review L2):
/// p of DH parameters at the new upper limit; (p-1)/2 is not prime.
const PRIME_10000_HEX: &str = concat!(
    "E778C0A053BCAEA249506E3D6198780564174560124EAD0C47A7FF96DD1D750EDFB0D249FDE4A247",
    "51EB3A38AA4153854DE6162F1863C85716177EC27980A954F489BECCF1353E1C5862CFD29B5AD622",
    "8A7D56B07F52A163CAC497928EF68D1219DDAD2D4ED6A0C5D61092EFE89B3DE7F9D11BBD6DA048F5",
    "31927036237228D59A86D9AC3463F5370A75168850E6C744CB932E0DC605D2E64FAF3A09314E62DB",
    "90FB1611BF45156BC90F40CB083B9CD4026F88119210F12E8236212FCAEB2853843D3156A2167F51",
    "8958254F93E2FA023B8ABF6B4135CF1E9B2DD1C8E6D982FB77EA1D225E48040BD9D58AC59C72BB5E",
    "FDC1258C15E4CE16ADC0DB59EF196AC23BD77FE5F3BEA11CDE5041733EA2EC366044C1433CCEA5BA",
    "2D1831F1BD9CC5FFB3BD10E5EFA21322DC552DC3D93938A46F2600338289F741825C4D6CC99AACCA",
    "10EFB3E61C67A1ADD09E1CF41D62268CB6787DDB839593791BEF3E594EDABC131A0D66D60C08CCB1",
    "3A561B2060841442D4357F148CC8140F3224D32573E3182FADC9883EC7342641196C7CB7177B48CA",
    "0E10A240EF1032D261F7173F251982F27252A2A37011C73F1F5F1FAAB1CD9EADF5B34FF7AA481604",
    "9463EBDFE8AE7ED72EB89F18E6B6FF7CC29B77F9FE3B069ED8A5DC512EE288657B2B694949FB75C2",
    "32832A080FF48DE693294D2ACBE6F4E3391857A26D9912DCC7D960285AF0F248CA0DE52E16401E1E",
    "BC6D13F6DED7B9C6A5A619BCBEB5BA8764A6298FC1A2FD23834B8DD6BB6F6A302C5D4E73E79BCF6F",
    "1F13A83365A3BA01C2863B0E03B83268D61F4AF54D6A0C40BFF0CCC19D4EA86FEDACEB8156680B0A",
    "F43D8EA783952AA5769A5FA2B2B753536075C4FCB7D975853A5C887173AFF0FC2F75BF29587B52D4",
    "B34480862FA279818085546F65247B5FEF74756D3EB17DB8A0EE83999B5356FDC708AE3539A8CBF3",
    "42A4932A0BC77E7512082C03189D7F7782329D21E1DC008B7BFDD7EFB87A81B54AEF1317584E8F71",
    "DB6BCA53C3EE3D1CB363F7EB132A836555E4B71F957E677B16009666EFE93F673CE0B9108F4F169D",
    "11F70EA80FED8BE337743D51432487E7DA0189CE92FD1F46B66F18B182B85E50A6A4751DCDA0D0B4",
    "BDE10620245ECDAE8C50F086501B33B4865BE6C9A755757F6CA571140640712DE462B908D4265091",
    "2C274619512A6BDEF5423E3BE97F85182FD66CB93A4EEFB780F6AF6D1BCFCB79187E5C0A79908C1C",
    "6FB6DF8BE04F71D751631F86F7D41F8D0563A448DCCA81677B763AEF8F01A4D61584FEC91B26DFCE",
    "54A7BC9CE5E5E5B2B5D353BEAAE537787893F8FDA89E20CA243691C901A87A8ABF98688D79887E42",
    "4C2A234E8F35A69520251663720E4AB6D9D9A53FBA34C48688CFBC3BE492A6FE3BC1AFBBF7145524",
    "EF27A9E947833B93B88B57FB35080218067E5ED3F66DC7265FA32A181990F03C54D85148F493BD6C",
    "D5336D2BDE349E6E87AFD919C01787107004145A5A58AAFF4AD58A308F86B35F92CAC10031370E09",
    "0571E1533C34F03F3D96B757C19BEF492D3076A591C1519F26879DFB04D2817E7282A23618654376",
    "D565E0DDC1F89498707FC93575F958D509EAF87A41A26FF48F67B078D0A9905C4A23FA4B7AE0F6BA",
    "27F79AE15FC8C68CDB95AF21138BBF2537B1CE881AFFA9A4110347F07415770D4DA242278B0F6F6E",
    "C9378F2C7D5AD085ADA984B92B3050CB1D655F0B06D42ACD09C95222726E946F606FC5D05C20970E",
    "411111930433A1113929",
);

/// A DER length.
fn der_length(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

/// PKCS#3 `DHParameter` DER: `SEQUENCE { p INTEGER, g INTEGER }` (g = 2).
fn dh_parameters_der(p_hex: &str) -> Result<Vec<u8>, BoxError> {
    let mut p = vec![0u8]; // the top bit of p is set: a leading zero keeps it positive
    for pair in p_hex.as_bytes().chunks(2) {
        p.push(u8::from_str_radix(std::str::from_utf8(pair)?, 16)?);
    }
    let mut body = vec![0x02];
    body.extend(der_length(p.len()));
    body.extend(p);
    body.extend([0x02, 0x01, 0x02]);
    let mut der = vec![0x30];
    der.extend(der_length(body.len()));
    der.extend(body);
    Ok(der)
}

// Was a defect (round 37): the new 10,000-bit limit on DH primes does not bound what it was added for (OpenSSL's `DH_check` cost, "a 4 KiB file asked for 7-15 s"): a 1.3 KiB `DHParameter` whose p is a 10,000-bit prime (not a safe prime) is accepted for checking and `from_encoded` spends about a minute of CPU in `DH_check` (MR rounds on a prime p), longer than the composite 32,768-bit p the limit refuses. (Qt has no limit at all; the cost is the point of the project's own limit.)
#[test]
fn dh_parameters_at_the_new_upper_limit_are_judged_in_bounded_time() -> TestResult {
    let der = dh_parameters_der(PRIME_10000_HEX)?;
    assert!(der.len() < 1300);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let dh = sslsocket::SslDiffieHellmanParameters::from_encoded(&der);
        let _ = done.send((dh.error(), started.elapsed()));
    });
    match finished.recv_timeout(Duration::from_secs(10)) {
        Ok((error, took)) => {
            eprintln!("from_encoded: {error:?} after {took:?}");
            Ok(())
        }
        Err(_) => Err(
            "SslDiffieHellmanParameters::from_encoded of 1.3 KiB (a 10,000-bit prime p) \
             took more than 10 s"
                .into(),
        ),
    }
}
