//! Differential chain verification: structurally mutated chains through our
//! `ChainVerifier` and webpki's `verify_for_usage`, with the same anchors, name and time.
//!
//! A small PKI is made once (rcgen): root, intermediate, leaves for "localhost" under
//! each, a self-signed `CA:FALSE` leaf, a keyCertSign-only intermediate and its leaf, a
//! second root with a leaf, and a name-constrained intermediate (localhost and
//! 127.0.0.0/8, not sub.localhost) with leaves inside, outside and excluded, and one with
//! a common name only. The input picks the anchors, the chain (which certificates,
//! in which order, duplicates), the host name, the time, and mutations of one certificate:
//! DER-tree edits (delete, duplicate or transplant a TLV, change a tag or contents) that
//! are then re-signed (by the real issuer's key or another one) or not, and raw byte edits.
//!
//! Invariants:
//! - a verifier that kept the parses of certificates it read before (the unmutated PKI,
//!   or this chain) reports exactly what a fresh one reports;
//! - we report no error => webpki accepts the chain for serverAuth at that time, and the
//!   name when one is given and the leaf has subject alternative names (without any, we
//!   fall back to the common name as Qt and OpenSSL do; webpki never does). The exception
//!   is a leaf that is itself a trust anchor: trusted directly, as OpenSSL does.
//! - a chain holding a certificate we cannot parse is never accepted (fail closed).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SigningKey,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sslsocket::verify::{ChainVerifier, Purpose};
use sslsocket::SslCertificate;
use sslsocket_fuzz::der::{self, Body, Node};
// The input moves the clock by up to about 21 years either way from BASE_TIME.
use sslsocket_fuzz::BASE_TIME;

/// Chains we accepted (so compared with webpki), reported with FUZZ_VERBOSE set.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

struct Pki {
    /// Every certificate, with the index in `keys` of the key that signed it.
    certs: Vec<(Vec<u8>, usize)>,
    keys: Vec<KeyPair>,
    /// The parsed form of each certificate's DER (donors for transplants).
    trees: Vec<Vec<Node>>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(make_pki)
}

fn params(cn: &str, is_ca: IsCa, sans: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = is_ca;
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    p.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().expect("DNS name")),
        })
        .collect();
    if matches!(p.is_ca, IsCa::Ca(_)) {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    } else {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    }
    p.use_authority_key_identifier_extension = true;
    p
}

fn make_pki() -> Pki {
    let ca = || IsCa::Ca(BasicConstraints::Unconstrained);
    let key = || KeyPair::generate().expect("key");
    // Keys: 0 root, 1 intermediate, 2 leaves, 3 self-signed leaf, 4 keyCertSign-only
    // intermediate, 5 second root, 6 name-constrained intermediate.
    let keys: Vec<KeyPair> = (0..7).map(|_| key()).collect();
    let root_p = params("Fuzz Root CA", ca(), &[]);
    let inter_p = params("Fuzz Intermediate CA", ca(), &[]);
    let mut kcs_p = params("Fuzz KeyCertSign-only CA", ca(), &[]);
    kcs_p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let other_p = params("Fuzz Other Root CA", ca(), &[]);
    let leaf_p = params("localhost", IsCa::NoCa, &["localhost", "127.0.0.1"]);
    let mut self_p = params("localhost", IsCa::ExplicitNoCa, &["localhost"]);
    self_p.use_authority_key_identifier_extension = false;
    let no_san_p = params("localhost", IsCa::NoCa, &[]);
    // Permitted: localhost (and below) and 127.0.0.0/8; excluded: sub.localhost.
    let mut nc_p = params("Fuzz Constrained CA", ca(), &[]);
    nc_p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![
            rcgen::GeneralSubtree::DnsName("localhost".into()),
            rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
        ],
        excluded_subtrees: vec![rcgen::GeneralSubtree::DnsName("sub.localhost".into())],
    });
    let outside_p = params("wrong.example", IsCa::NoCa, &["wrong.example", "localhost"]);
    let excluded_p = params("sub.localhost", IsCa::NoCa, &["sub.localhost"]);

    let issuer = |p: &CertificateParams, k: usize| {
        let der = KeyPair::from_der_and_sign_algo(
            &rustls_pki_types::PrivateKeyDer::Pkcs8(keys[k].serialize_der().into()),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
        .expect("key copy");
        rcgen::Issuer::new(p.clone(), der)
    };
    let root_i = issuer(&root_p, 0);
    let inter_i = issuer(&inter_p, 1);
    let kcs_i = issuer(&kcs_p, 4);
    let other_i = issuer(&other_p, 5);
    let nc_i = issuer(&nc_p, 6);
    let signed = |p: &CertificateParams, k: usize, by: &rcgen::Issuer<'_, KeyPair>| {
        p.signed_by(&keys[k], by)
            .expect("certificate")
            .der()
            .to_vec()
    };
    let certs = vec![
        (
            root_p.self_signed(&keys[0]).expect("root").der().to_vec(),
            0,
        ),
        (signed(&inter_p, 1, &root_i), 0),
        (signed(&leaf_p, 2, &inter_i), 1),
        (signed(&leaf_p, 2, &root_i), 0),
        (
            self_p
                .self_signed(&keys[3])
                .expect("self-signed")
                .der()
                .to_vec(),
            3,
        ),
        (signed(&kcs_p, 4, &root_i), 0),
        (signed(&leaf_p, 2, &kcs_i), 4),
        (
            other_p
                .self_signed(&keys[5])
                .expect("other root")
                .der()
                .to_vec(),
            5,
        ),
        (signed(&leaf_p, 2, &other_i), 5),
        (signed(&no_san_p, 2, &inter_i), 1),
        (signed(&nc_p, 6, &root_i), 0),
        (signed(&leaf_p, 2, &nc_i), 6),
        (signed(&outside_p, 2, &nc_i), 6),
        (signed(&excluded_p, 2, &nc_i), 6),
        (signed(&no_san_p, 2, &nc_i), 6),
    ];
    let trees = certs
        .iter()
        .map(|(d, _)| der::parse(d).expect("rcgen makes DER"))
        .collect();
    Pki { certs, keys, trees }
}

struct Input<'a>(std::slice::Iter<'a, u8>);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> usize {
        usize::from(self.byte()) | (usize::from(self.byte()) << 8)
    }
}

/// Applies tree mutations, optionally re-signs, then raw byte mutations.
fn mutate(pki: &Pki, index: usize, input: &mut Input<'_>) -> Vec<u8> {
    let (original, issuer_key) = &pki.certs[index];
    let mut tree = pki.trees[index].clone();
    let tree_ops = input.byte() % 4;
    for _ in 0..tree_ops {
        let (op, a, b, c) = (input.byte(), input.u16(), input.u16(), input.byte());
        let paths = der::paths(&tree);
        let Some(path) = paths.get(a % paths.len().max(1)) else {
            break; // everything was deleted
        };
        let Some((list, i)) = der::parent_mut(&mut tree, path) else {
            continue;
        };
        match op % 7 {
            0 => drop(list.remove(i)),
            1 => {
                let copy = list[i].clone();
                list.insert(i, copy);
            }
            2 => {
                // Transplant a TLV of another certificate (same position kind).
                let donor = &pki.trees[usize::from(c) % pki.trees.len()];
                let donor_paths = der::paths(donor);
                if let Some(node) = der::get(donor, &donor_paths[b % donor_paths.len()]) {
                    list[i] = node.clone();
                }
            }
            3 => list[i].tag = c,
            4 => match &mut list[i].body {
                Body::Primitive(bytes) if !bytes.is_empty() => {
                    let at = b % bytes.len();
                    bytes[at] ^= c | 1;
                }
                Body::Constructed(children)
                | Body::Wrapped {
                    inner: children, ..
                } if children.len() > 1 => {
                    let j = b % children.len();
                    children.swap(0, j);
                }
                _ => {}
            },
            5 => match &mut list[i].body {
                Body::Primitive(bytes) => match c % 3 {
                    0 => bytes.truncate(b % (bytes.len() + 1)),
                    1 => bytes.push(c),
                    _ => *bytes = vec![c],
                },
                _ => list[i].body = Body::Primitive(vec![c]),
            },
            _ => {
                // Move a node to the end of its list (reorders extensions, RDNs, fields).
                let node = list.remove(i);
                list.push(node);
            }
        }
    }
    let resign = input.byte() % 4;
    if resign != 0 {
        let key = if resign == 1 {
            &pki.keys[*issuer_key]
        } else {
            &pki.keys[usize::from(input.byte()) % pki.keys.len()]
        };
        if let Some(Node {
            body: Body::Constructed(parts),
            ..
        }) = tree.first_mut()
        {
            if parts.len() == 3 {
                if let Ok(signature) = key.sign(&der::encode(&parts[0])) {
                    let mut bits = vec![0];
                    bits.extend(signature);
                    parts[2] = Node {
                        tag: 0x03,
                        body: Body::Primitive(bits),
                    };
                }
            }
        }
    }
    let mut bytes = der::encode_all(&tree);
    if tree_ops == 0 && resign == 0 {
        bytes = original.clone();
    }
    let raw_ops = input.byte() % 3;
    for _ in 0..raw_ops {
        let (op, at, value) = (input.byte(), input.u16(), input.byte());
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match op % 3 {
            0 => bytes[at] ^= value | 1,
            1 => bytes.truncate(at),
            _ => bytes.insert(at, value),
        }
    }
    bytes
}

fuzz_target!(|data: &[u8]| {
    let pki = pki();
    let mut input = Input(data.iter());
    let n = pki.certs.len();

    let anchor_mask = input.u16();
    let anchor_ders: Vec<&[u8]> = (0..n)
        .filter(|i| anchor_mask & (1 << i) != 0)
        .map(|i| pki.certs[i].0.as_slice())
        .collect();
    let host = match input.byte() % 6 {
        0 => Some("localhost"),
        1 => Some("LocalHost"),
        2 => Some("wrong.example"),
        3 => Some("127.0.0.1"),
        4 => Some("sub.localhost"),
        _ => None,
    };
    let now = BASE_TIME + i64::from(input.byte() as i8) * 60 * 86_400;
    let depth = u32::from(input.byte() % 4);
    let len = usize::from(input.byte() % 5) + 1;
    let mut chain: Vec<Vec<u8>> = (0..len)
        .map(|_| pki.certs[usize::from(input.byte()) % n].0.clone())
        .collect();
    let target = usize::from(input.byte()) % (len + 1);
    if target < len {
        let index = pki
            .certs
            .iter()
            .position(|(d, _)| *d == chain[target])
            .unwrap_or(0);
        chain[target] = mutate(pki, index, &mut input);
    }

    let anchors: Vec<SslCertificate> = anchor_ders
        .iter()
        .map(|d| SslCertificate::from_der(d).expect("PKI certificate parses"))
        .collect();
    let verifier = ChainVerifier::new(anchors.clone(), Purpose::ServerAuth).with_max_depth(depth);
    let refs: Vec<&[u8]> = chain.iter().map(Vec::as_slice).collect();
    let ours = verifier.verify_der(&refs, host, now);

    // The parses a verifier keeps of what peers sent (`verify/kept.rs`): one that has just
    // read the unmutated certificates, or this very chain, answers exactly as a fresh one.
    let warm = ChainVerifier::new(anchors, Purpose::ServerAuth).with_max_depth(depth);
    for (original, _) in &pki.certs {
        let _ = warm.verify_der(&[original.as_slice()], host, now);
    }
    assert_eq!(
        warm.verify_der(&refs, host, now),
        ours,
        "a verifier that kept the parses of the unmutated certificates answered differently"
    );
    assert_eq!(
        verifier.verify_der(&refs, host, now),
        ours,
        "the same chain verified again answered differently"
    );

    let unparsable = chain.iter().any(|d| SslCertificate::from_der(d).is_err());
    assert!(
        !unparsable || !ours.is_empty(),
        "a chain with a certificate we cannot parse was accepted"
    );
    if !ours.is_empty() {
        return;
    }
    let n = ACCEPTED.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() && std::env::var_os("FUZZ_VERBOSE").is_some() {
        eprintln!("verify_differential: {n} chains accepted by us and compared with webpki");
    }
    let leaf = &chain[0];
    if anchor_ders.iter().any(|a| *a == leaf.as_slice()) {
        return; // trusted directly, as OpenSSL does
    }

    let anchor_der: Vec<CertificateDer<'_>> = anchor_ders
        .iter()
        .map(|d| CertificateDer::from(*d))
        .collect();
    let webpki_anchors: Vec<_> = anchor_der
        .iter()
        .map(|d| webpki::anchor_from_trusted_cert(d).expect("PKI anchor"))
        .collect();
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let end_entity = match webpki::EndEntityCert::try_from(&leaf_der) {
        Ok(ee) => ee,
        Err(e) => panic!("we accepted a leaf webpki cannot parse: {e:?}"),
    };
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now as u64));
    if let Err(e) = end_entity.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &webpki_anchors,
        &intermediates,
        time,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    ) {
        panic!("we accepted a chain webpki rejects: {e:?}");
    }
    let has_san = SslCertificate::from_der(leaf).is_ok_and(|c| c.has_subject_alternative_name());
    if let (Some(host), true) = (host, has_san) {
        let name = ServerName::try_from(host).expect("test host names are valid");
        if let Err(e) = end_entity.verify_is_valid_for_subject_name(&name) {
            panic!("we accepted the name {host} webpki rejects: {e:?}");
        }
    }
});
