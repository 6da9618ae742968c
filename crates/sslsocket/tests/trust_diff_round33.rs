//! Adversarial review of the round-33 diff (b59f828..HEAD). Every test was a defect found
//! by the review, failing before its fix. Run with
//! `cargo test -p sslsocket --all-features --test trust_diff_round33` and again with
//! `SSLSOCKET_BACKEND=openssl`.
mod support;

use std::sync::{Arc, Mutex};

use rcgen::CustomExtension;
use sslsocket::prelude::*;
use sslsocket::{SslError, SslHooks, Verdict};
use support::chains::*;

fn ext(oid: &[u64], content: Vec<u8>, critical: bool) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid, content);
    e.set_criticality(critical);
    e
}

/// DER TLV with a short or long length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------
// The hooks are asked once per handshake.

/// sbgp-ipAddrBlock (RFC 3779) with IPv4 10.0.0.0/8.
fn ip_addr_block_10_8() -> Vec<u8> {
    let prefix = tlv(0x03, &[0x00, 0x0a]);
    let ranges = tlv(0x30, &prefix);
    let mut family = tlv(0x04, &[0x00, 0x01]);
    family.extend(ranges);
    let family = tlv(0x30, &family);
    tlv(0x30, &family)
}

/// Answers Ignore to ssl_errors; records every call.
struct CountingHooks {
    calls: Mutex<Vec<Vec<SslError>>>,
}

impl SslHooks for CountingHooks {
    fn ssl_errors(&self, errors: &[SslError]) -> Verdict {
        self.calls.lock().map(|mut c| c.push(errors.to_vec())).ok();
        Verdict::Ignore
    }
}

// Was a defect: OpenSSL backend: an error OpenSSL reports after the depth-0 decision that our own rules did not list (RFC 3779 X509_V_ERR_UNNESTED_RESOURCE) makes on_verify decide again, so the ssl_errors hook is called twice in one handshake (first [HostNameMismatch], then both errors); Qt emits sslErrors once and the rustls backend asks once (backend/openssl/verifier.rs on_verify "decide again"; `judged` only covers errors already listed).
#[test]
fn the_ssl_errors_hook_is_asked_once_with_a_late_openssl_error() -> TestResult {
    let root = root("RD33 3779 Root B")?;
    let (leaf_der, key) = leaf(&root, "localhost", |p| {
        p.custom_extensions = vec![ext(
            &[1, 3, 6, 1, 5, 5, 7, 1, 7],
            ip_addr_block_10_8(),
            false,
        )];
    })?;
    let hooks = Arc::new(CountingHooks {
        calls: Mutex::new(Vec::new()),
    });
    let for_socket = Arc::clone(&hooks);
    let outcome = handshake(&[&root.der], vec![leaf_der], &key, "other.test", move |s| {
        s.set_hooks(for_socket);
    })?;
    let calls = hooks.calls.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(
        calls.len(),
        1,
        "ssl_errors asked {} times: {:?} (final errors {:?}, encrypted {})",
        calls.len(),
        calls.iter().map(|c| kinds_on(c)).collect::<Vec<_>>(),
        kinds_on(&outcome.errors),
        outcome.encrypted
    );
    Ok(())
}
