//! Path building: from the leaf, through the certificates the peer sent and the trust store,
//! to a trust anchor, the way OpenSSL's `build_chain` does (trusted issuers first).

use crate::verify::checks::CertInfo;
use crate::verify::signature::{verify_link, SignatureCheck};
use crate::verify::store::TrustStore;

/// At most this many candidate issuers of one source are tried per step, so a peer that
/// sends many certificates with the same name cannot make us verify signatures without end.
const MAX_CANDIDATES: usize = 16;

/// How the built path ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Top {
    /// The last certificate is trusted: in the store, or a store certificate appended as
    /// the issuer of the one before it.
    Anchored,
    /// The last certificate is self-issued and untrusted; the value is the check of its
    /// signature with its own key.
    SelfSigned(SignatureCheck),
    /// No issuer of the last certificate is known.
    NoIssuer,
    /// The last certificate has an issuer, but taking it would go past the depth limit.
    TooLong,
}

/// One certificate of the path.
pub(super) struct PathNode<'a> {
    /// The certificate.
    pub(super) info: CertInfo<'a>,
    /// The check of its signature with the key of the next certificate of the path
    /// (`None` for the last one).
    pub(super) signature: Option<SignatureCheck>,
}

/// A built path, leaf first.
pub(super) struct Path<'a> {
    /// The certificates, leaf first; never empty.
    pub(super) nodes: Vec<PathNode<'a>>,
    /// How it ends.
    pub(super) top: Top,
}

/// Builds the path from `leaf` using the other certificates the peer sent (`pool`; each
/// is used at most once, which also rules out loops) and the trust store. The path holds
/// at most `max_nodes` certificates; an issuer beyond that gives [`Top::TooLong`].
/// Between issuers that are otherwise equal, one valid at `now_unix` is preferred (as
/// OpenSSL's `find_issuer` and `X509_STORE_CTX_get1_issuer` do), else the one that expires
/// last: an expired copy of an intermediate or root next to its re-issue adds no error.
pub(super) fn build<'a>(
    leaf: CertInfo<'a>,
    mut pool: Vec<Option<CertInfo<'a>>>,
    store: &'a TrustStore,
    max_nodes: usize,
    now_unix: i64,
) -> Path<'a> {
    let mut nodes = vec![PathNode {
        info: leaf,
        signature: None,
    }];
    let top = loop {
        let Some(last) = nodes.last() else {
            break Top::NoIssuer;
        };
        if store.contains(last.info.cert()) {
            break Top::Anchored;
        }
        let (issuer, check, anchored) =
            match next_issuer(&last.info, &nodes, &mut pool, store, now_unix) {
                Step::SelfSigned(check) => break Top::SelfSigned(check),
                Step::NoIssuer => break Top::NoIssuer,
                Step::Issuer {
                    info,
                    check,
                    anchored,
                } => (info, check, anchored),
            };
        if nodes.len() >= max_nodes {
            break Top::TooLong;
        }
        if let Some(last) = nodes.last_mut() {
            last.signature = Some(check);
        }
        nodes.push(PathNode {
            info: *issuer,
            signature: None,
        });
        if anchored {
            break Top::Anchored;
        }
    };
    Path { nodes, top }
}

/// What follows a certificate in the path.
enum Step<'a> {
    /// It is its own issuer (and not trusted).
    SelfSigned(SignatureCheck),
    /// This issuer, with the check of the certificate's signature; `anchored` when it
    /// comes from the trust store.
    Issuer {
        info: Box<CertInfo<'a>>,
        check: SignatureCheck,
        anchored: bool,
    },
    /// No issuer is known.
    NoIssuer,
}

/// A possible issuer.
struct Candidate<'a> {
    source: Source<'a>,
    rating: Rating,
}

/// How a certificate fares as the issuer of another.
struct Rating {
    check: SignatureCheck,
    ids_match: bool,
    /// Its validity period holds `now` (else its notAfter ranks it).
    valid_now: bool,
    not_after: i64,
}

impl Rating {
    /// `issuer` as the issuer of `child` at `now`.
    fn of(child: &CertInfo<'_>, issuer: &CertInfo<'_>, now: i64) -> Rating {
        let (not_before, not_after) = issuer.validity();
        Rating {
            check: verify_link(child.cert().der(), issuer.spki_raw()),
            ids_match: child.key_ids_match(issuer),
            valid_now: not_before <= now && now <= not_after,
            not_after,
        }
    }
}

/// Where a candidate issuer comes from.
enum Source<'a> {
    /// The trust store.
    Store(Box<CertInfo<'a>>),
    /// The certificates the peer sent, at this index of the pool.
    Pool(usize),
}

/// Chooses the issuer of `child`, in this order of preference: a trusted issuer whose
/// signature verifies; the certificate itself when it is self-signed; an issuer the peer
/// sent whose signature verifies; then, so that the failure is reported on the right
/// certificate, a trusted or sent issuer by name whose signature does not verify; then a
/// self-issued certificate whose own signature does not verify. Within each class an
/// authorityKeyIdentifier/subjectKeyIdentifier match comes first, then a certificate valid
/// at `now`, then the one that expires last.
fn next_issuer<'a>(
    child: &CertInfo<'a>,
    path: &[PathNode<'a>],
    pool: &mut [Option<CertInfo<'a>>],
    store: &'a TrustStore,
    now: i64,
) -> Step<'a> {
    let trusted: Vec<Candidate<'a>> = store
        .by_subject(&child.issuer_key())
        .filter(|cert| *cert != child.cert())
        .filter_map(CertInfo::parse)
        .filter(|info| child.may_be_issued_by(info))
        .take(MAX_CANDIDATES)
        .map(|info| Candidate {
            rating: Rating::of(child, &info, now),
            source: Source::Store(Box::new(info)),
        })
        .collect();
    let own = child
        .is_self_issued()
        .then(|| verify_link(child.cert().der(), child.spki_raw()));

    if let Some(best) = best(&trusted, true) {
        return take(trusted, best, pool);
    }
    if own == Some(SignatureCheck::Valid) {
        return Step::SelfSigned(SignatureCheck::Valid);
    }
    let sent: Vec<Candidate<'a>> = pool
        .iter()
        .enumerate()
        .filter_map(|(index, slot)| slot.as_ref().map(|info| (index, info)))
        .filter(|(_, info)| info.cert() != child.cert() && child.may_be_issued_by(info))
        .filter(|(_, info)| !path.iter().any(|node| node.info.cert() == info.cert()))
        .take(MAX_CANDIDATES)
        .map(|(index, info)| Candidate {
            rating: Rating::of(child, info, now),
            source: Source::Pool(index),
        })
        .collect();
    if let Some(best) = best(&sent, true) {
        return take(sent, best, pool);
    }
    if let Some(best) = best(&trusted, false) {
        return take(trusted, best, pool);
    }
    if let Some(best) = best(&sent, false) {
        return take(sent, best, pool);
    }
    match own {
        Some(check) => Step::SelfSigned(check),
        None => Step::NoIssuer,
    }
}

/// The index of the preferred candidate whose signature check is (`valid`) or is not
/// (`!valid`) `Valid`: matching key identifiers first, then valid now, then the latest
/// notAfter; the first of equals.
fn best(candidates: &[Candidate<'_>], valid: bool) -> Option<usize> {
    let rank = |c: &Candidate<'_>| {
        (
            c.rating.ids_match,
            c.rating.valid_now,
            if c.rating.valid_now {
                0
            } else {
                c.rating.not_after
            },
        )
    };
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| (c.rating.check == SignatureCheck::Valid) == valid)
        .fold(
            None,
            |chosen: Option<(usize, &Candidate<'_>)>, (index, c)| match chosen {
                Some((_, best)) if rank(best) >= rank(c) => chosen,
                _ => Some((index, c)),
            },
        )
        .map(|(index, _)| index)
}

/// Takes candidate `index` out of `candidates` (and, for a sent one, out of the pool, so
/// it is used once).
fn take<'a>(
    candidates: Vec<Candidate<'a>>,
    index: usize,
    pool: &mut [Option<CertInfo<'a>>],
) -> Step<'a> {
    let Some(chosen) = candidates.into_iter().nth(index) else {
        return Step::NoIssuer;
    };
    let (info, anchored) = match chosen.source {
        Source::Store(info) => (Some(info), true),
        Source::Pool(i) => (pool.get_mut(i).and_then(Option::take).map(Box::new), false),
    };
    match info {
        Some(info) => Step::Issuer {
            info,
            check: chosen.rating.check,
            anchored,
        },
        None => Step::NoIssuer,
    }
}
