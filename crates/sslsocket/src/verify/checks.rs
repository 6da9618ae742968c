//! Properties of one certificate, read the way OpenSSL's `X509_check_ca` and
//! `X509_check_purpose` read them.

use std::borrow::Cow;

use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::oid;
use x509_parser::extensions::{ExtendedKeyUsage, KeyUsage, ParsedExtension};
use x509_parser::oid_registry::{
    Oid, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_CRL_DISTRIBUTION_POINTS, OID_X509_EXT_EXTENDED_KEY_USAGE,
    OID_X509_EXT_ISSUER_ALT_NAME, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_NAME_CONSTRAINTS,
    OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
};
use x509_parser::prelude::FromDer;

use crate::cert::SslCertificate;
use crate::verify::{strict_der, Purpose};

/// Extensions whose content we rely on: one that is malformed or repeated makes the
/// certificate unusable (OpenSSL marks it `EXFLAG_INVALID`).
const RELIED_ON: [&Oid<'static>; 8] = [
    &NS_CERT_TYPE,
    &OID_X509_EXT_BASIC_CONSTRAINTS,
    &OID_X509_EXT_NAME_CONSTRAINTS,
    &OID_X509_EXT_KEY_USAGE,
    &OID_X509_EXT_EXTENDED_KEY_USAGE,
    &OID_X509_EXT_SUBJECT_ALT_NAME,
    &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
    &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
];

/// The extensions webpki reads whatever their criticality (its `remember_extension`),
/// refusing any byte after their value.
const WEBPKI_READS: [Oid<'static>; 6] = [
    oid!(2.5.29 .15), // keyUsage
    oid!(2.5.29 .17), // subjectAltName
    oid!(2.5.29 .19), // basicConstraints
    oid!(2.5.29 .30), // nameConstraints
    oid!(2.5.29 .31), // cRLDistributionPoints
    oid!(2.5.29 .37), // extKeyUsage
];

/// Netscape's certificate type, which OpenSSL's purpose checks still read.
const NS_CERT_TYPE: Oid<'static> = oid!(2.16.840 .1 .113730 .1 .1);

/// Extensions that may be critical: OpenSSL's `X509_supported_extension` list. Any other
/// critical extension is `X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION` (Qt: `UnspecifiedError`).
const CRITICAL_OK: [Oid<'static>; 15] = [
    oid!(2.16.840 .1 .113730 .1 .1),   // nsCertType
    oid!(2.5.29 .15),                  // keyUsage
    oid!(2.5.29 .17),                  // subjectAltName
    oid!(2.5.29 .19),                  // basicConstraints
    oid!(2.5.29 .32),                  // certificatePolicies
    oid!(2.5.29 .31),                  // cRLDistributionPoints
    oid!(2.5.29 .37),                  // extKeyUsage
    oid!(1.3.6 .1 .5 .5 .7 .1 .7),     // sbgp-ipAddrBlock
    oid!(1.3.6 .1 .5 .5 .7 .1 .8),     // sbgp-autonomousSysNum
    oid!(1.3.6 .1 .5 .5 .7 .48 .1 .5), // id-pkix-OCSP-noCheck
    oid!(2.5.29 .36),                  // policyConstraints
    oid!(1.3.6 .1 .5 .5 .7 .1 .14),    // proxyCertInfo
    oid!(2.5.29 .30),                  // nameConstraints
    oid!(2.5.29 .33),                  // policyMappings
    oid!(2.5.29 .54),                  // inhibitAnyPolicy
];

/// RFC 3779's sbgp-ipAddrBlock and sbgp-autonomousSysNum.
const RFC_3779: [Oid<'static>; 2] = [oid!(1.3.6 .1 .5 .5 .7 .1 .7), oid!(1.3.6 .1 .5 .5 .7 .1 .8)];

/// id-pkix-OCSP-noCheck, whose value is a NULL.
const OCSP_NO_CHECK: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .48 .1 .5);

/// proxyCertInfo (RFC 3820).
const PROXY_CERT_INFO: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .1 .14);

/// Server-gated cryptography EKUs, which OpenSSL accepts in place of serverAuth.
const SGC_OIDS: [Oid<'static>; 2] = [
    oid!(2.16.840 .1 .113730 .4 .1),
    oid!(1.3.6 .1 .4 .1 .311 .10 .3 .3),
];

/// How a certificate qualifies as a CA (the return values of OpenSSL's `check_ca`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CaKind {
    /// Not a CA: basicConstraints says no, or nothing says yes, or keyUsage lacks keyCertSign.
    No,
    /// basicConstraints `CA:TRUE`.
    Yes,
    /// A version 1 self-issued certificate (tolerated as a root only).
    V1Root,
    /// No basicConstraints, but a keyUsage with keyCertSign (tolerated as a root only).
    KeyUsageOnly,
}

/// A certificate parsed once, with the accessors verification needs.
pub(super) struct CertInfo<'a> {
    cert: &'a SslCertificate,
    /// Its own parse, or one kept elsewhere from the same DER (a sent certificate's, a
    /// configured CA's [`ParsedCertificate`]).
    x509: Cow<'a, X509Certificate<'a>>,
}

self_cell::self_cell!(
    /// A certificate kept with its parse, which borrows its DER: a configured CA is parsed
    /// once per configuration, not once per handshake whose path ends at it.
    pub(super) struct ParsedCertificate {
        owner: SslCertificate,
        #[covariant]
        dependent: X509Certificate,
    }
);

impl ParsedCertificate {
    /// `cert` with its parse; `None` if it does not parse.
    pub(super) fn parse(cert: SslCertificate) -> Option<ParsedCertificate> {
        ParsedCertificate::try_new(cert, |cert| {
            X509Certificate::from_der(cert.der()).map(|(_, x509)| x509)
        })
        .ok()
    }

    /// A certificate a peer sent, with its parse; `None` unless `der` is one DER
    /// certificate and nothing else (as `SslCertificate::from_der` requires).
    pub(crate) fn parse_peer(der: &[u8]) -> Option<ParsedCertificate> {
        ParsedCertificate::try_new(SslCertificate::readable_if_parsed(der), |cert| {
            SslCertificate::parse_der(cert.der())
        })
        .ok()
    }

    /// The certificate.
    pub(crate) fn cert(&self) -> &SslCertificate {
        self.borrow_owner()
    }

    /// Its parse.
    pub(super) fn x509(&self) -> &X509Certificate<'_> {
        self.borrow_dependent()
    }
}

/// Whether `cert` does not parse, or has an extension problem (see
/// [`CertInfo::has_extension_problem`]): for certificates judged outside a chain, such as
/// an OCSP responder's, which OpenSSL verifies as any other.
pub(crate) fn unusable(cert: &SslCertificate) -> bool {
    CertInfo::parse(cert).is_none_or(|info| info.has_extension_problem())
}

/// `UnspecifiedError` on each certificate the peer sent, on the path or not, whose
/// extensions cannot be read with confidence ([`CertInfo::has_extension_problem`]), as one
/// that does not parse at all is: fail closed, never skipped because no path used it
/// (round 36: an appended or unusable certificate with a malformed extension passed
/// unnoticed, and on the OpenSSL backend one on the path too).
pub(crate) fn sent_extension_errors(
    peers: &crate::verify::kept::PeerParses,
    sent: &[SslCertificate],
) -> Vec<crate::ssl_error::SslError> {
    sent.iter()
        .filter(|cert| {
            peers.parse(cert.der()).is_some_and(|parsed| {
                CertInfo::lent(parsed.cert(), parsed.x509()).has_extension_problem()
            })
        })
        .map(|cert| {
            crate::ssl_error::SslError::with_certificate(
                crate::ssl_error::SslErrorKind::UnspecifiedError,
                cert.clone(),
            )
        })
        .collect()
}

/// What our rules find on a path another verifier built (the OpenSSL backend's), leaf
/// first, each certificate looked up once among the kept parses (see [`path_checks`]).
#[cfg(feature = "openssl")]
pub(crate) struct PathChecks {
    /// `UnspecifiedError` on each certificate our rules find unusable
    /// ([`CertInfo::has_extension_problem`], or RFC 3779 resources, which our collector
    /// refuses too): OpenSSL skips what it does not check (a malformed critical policy
    /// extension without policy checking) or reports an unusable certificate as one whose
    /// issuer is unknown. A certificate that does not parse is reported elsewhere.
    pub(crate) errors: Vec<crate::ssl_error::SslError>,
    /// The earliest `notAfter` not before `now_unix` (an expiry already passed is among
    /// the verification's errors; see `Outcome::valid_until`).
    pub(crate) valid_until: Option<i64>,
}

/// [`PathChecks`] of `path` at `now_unix`.
#[cfg(feature = "openssl")]
pub(crate) fn path_checks(
    peers: &crate::verify::kept::PeerParses,
    path: &[SslCertificate],
    now_unix: i64,
) -> PathChecks {
    let mut checks = PathChecks {
        errors: Vec::new(),
        valid_until: None,
    };
    for cert in path {
        let Some(parsed) = peers.parse(cert.der()) else {
            continue;
        };
        let info = CertInfo::lent(parsed.cert(), parsed.x509());
        if info.carries_rfc_3779_resources() || info.has_extension_problem() {
            checks
                .errors
                .push(crate::ssl_error::SslError::with_certificate(
                    crate::ssl_error::SslErrorKind::UnspecifiedError,
                    cert.clone(),
                ));
        }
        let until = parsed.x509().validity().not_after.timestamp();
        if until >= now_unix {
            checks.valid_until = Some(checks.valid_until.map_or(until, |u| u.min(until)));
        }
    }
    checks
}

impl<'a> CertInfo<'a> {
    /// Parses `cert`; `None` if it is not a DER certificate (cannot happen for a value made
    /// by `SslCertificate::from_der`, but the bytes came from a peer).
    pub(super) fn parse(cert: &'a SslCertificate) -> Option<CertInfo<'a>> {
        X509Certificate::from_der(cert.der())
            .ok()
            .map(|(_, x509)| CertInfo {
                cert,
                x509: Cow::Owned(x509),
            })
    }

    /// `cert` with its parse (made from the same DER already), lent.
    pub(super) fn lent(cert: &'a SslCertificate, x509: &'a X509Certificate<'a>) -> CertInfo<'a> {
        CertInfo {
            cert,
            x509: Cow::Borrowed(x509),
        }
    }

    /// The certificate.
    pub(crate) fn cert(&self) -> &'a SslCertificate {
        self.cert
    }

    /// The parsed certificate.
    pub(super) fn x509(&self) -> &X509Certificate<'a> {
        &self.x509
    }

    /// The issuer name in OpenSSL's canonical form, as the trust store is keyed.
    pub(super) fn issuer_key(&self) -> Vec<u8> {
        crate::cert::name::canonical(&self.x509().tbs_certificate.issuer)
    }

    /// The whole SubjectPublicKeyInfo, as `verify_signed_by` takes it.
    pub(super) fn spki_raw(&self) -> &'a [u8] {
        self.x509().tbs_certificate.subject_pki.raw
    }

    /// Subject and issuer names are the same, as OpenSSL compares names (its `EXFLAG_SI`).
    pub(super) fn is_self_issued(&self) -> bool {
        let tbs = &self.x509().tbs_certificate;
        crate::cert::name::same_name(&tbs.subject, &tbs.issuer)
    }

    /// The subjectKeyIdentifier, if any.
    pub(super) fn subject_key_id(&self) -> Option<&[u8]> {
        self.x509()
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
                _ => None,
            })
    }

    /// The keyIdentifier of the authorityKeyIdentifier, if any.
    pub(super) fn authority_key_id(&self) -> Option<&[u8]> {
        self.x509()
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0)
                }
                _ => None,
            })
    }

    /// Whether `issuer` may have issued this certificate by name and key identifier
    /// (OpenSSL's `check_issued`: names equal, and AKI/SKI not contradicting each other).
    pub(super) fn may_be_issued_by(&self, issuer: &CertInfo<'_>) -> bool {
        if !crate::cert::name::same_name(
            &self.x509().tbs_certificate.issuer,
            &issuer.x509().tbs_certificate.subject,
        ) {
            return false;
        }
        match (self.authority_key_id(), issuer.subject_key_id()) {
            (Some(aki), Some(ski)) => aki == ski,
            _ => true,
        }
    }

    /// Whether AKI and SKI are both present and equal (a preferred issuer match).
    pub(super) fn key_ids_match(&self, issuer: &CertInfo<'_>) -> bool {
        matches!(
            (self.authority_key_id(), issuer.subject_key_id()),
            (Some(aki), Some(ski)) if aki == ski
        )
    }

    /// The certificate cannot be read with confidence (OpenSSL marks such a certificate
    /// `EXFLAG_INVALID`, or refuses a critical extension it does not handle), fail closed:
    /// - an extension appears twice (RFC 5280 4.2; OpenSSL's `EXFLAG_DUPLICATE`);
    /// - an extension we rely on, or one OpenSSL always reads (cRLDistributionPoints), is
    ///   malformed;
    /// - a critical extension is one OpenSSL does not handle, or one we cannot read
    ///   (malformed, or one our parser does not know beyond OCSP-noCheck's NULL);
    /// - a proxy certificate (RFC 3820), which Qt never allows.
    pub(super) fn has_extension_problem(&self) -> bool {
        if !strict_der::names_and_extensions_are_der(self.cert.der()) {
            // The list, an identifier, a `critical` flag in a BER form webpki refuses
            // and OpenSSL takes (round 36: the backends disagreed, and a malformed
            // identifier made OpenSSL drop the certificate with no error listed).
            return true;
        }
        let extensions = self.x509().extensions();
        for (index, ext) in extensions.iter().enumerate() {
            if ext.oid == PROXY_CERT_INFO {
                // A proxy certificate (RFC 3820): OpenSSL refuses it unless proxy
                // certificates are allowed (`X509_V_FLAG_ALLOW_PROXY_CERTS`), which Qt
                // never sets; webpki does not read it.
                return true;
            }
            if extensions
                .get(..index)
                .is_some_and(|earlier| earlier.iter().any(|e| e.oid == ext.oid))
            {
                return true;
            }
            let parsed = ext.parsed_extension();
            let relied = RELIED_ON.iter().any(|oid| **oid == ext.oid);
            let read = relied || ext.critical || WEBPKI_READS.contains(&ext.oid);
            if read && !strict_der::is_one_value(ext.value) {
                // Bytes after the value (x509-parser and OpenSSL read the value and drop
                // the rest; webpki refuses them): not read with confidence, on both
                // backends alike (round 36: the OpenSSL backend accepted such a chain).
                return true;
            }
            let names_der = if ext.oid == OID_X509_EXT_SUBJECT_ALT_NAME
                || ext.oid == OID_X509_EXT_ISSUER_ALT_NAME
            {
                strict_der::general_names_are_der(ext.value)
            } else if ext.oid == OID_X509_EXT_NAME_CONSTRAINTS {
                strict_der::name_constraints_are_der(ext.value)
            } else {
                true
            };
            if !names_der {
                // A name in a BER form (a constructed dNSName) that a name check or a
                // constraint would not read as it is meant (round 36: a constructed
                // exclusion let its name through).
                return true;
            }
            if relied && (parsed.error().is_some() || parsed.unsupported()) {
                return true;
            }
            if ext.oid == OID_X509_EXT_CRL_DISTRIBUTION_POINTS && parsed.error().is_some() {
                return true;
            }
            if ext.critical {
                if !CRITICAL_OK.contains(&ext.oid) || parsed.error().is_some() {
                    return true;
                }
                let understood = !parsed.unsupported()
                    || RFC_3779.contains(&ext.oid)
                    || (ext.oid == OCSP_NO_CHECK && ext.value == [0x05, 0x00]);
                if !understood {
                    return true;
                }
            }
        }
        false
    }

    /// The certificate carries RFC 3779 IP address or AS number resources, which a chain
    /// must nest (OpenSSL's `X509v3_addr_validate_path`). Our verifier does not read them,
    /// so a chain with any is refused (fail closed) where OpenSSL would check them.
    pub(super) fn carries_rfc_3779_resources(&self) -> bool {
        self.x509()
            .extensions()
            .iter()
            .any(|ext| RFC_3779.contains(&ext.oid))
    }

    fn ns_cert_type(&self) -> Option<&x509_parser::extensions::NSCertType> {
        self.x509()
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::NSCertType(ns) => Some(ns),
                _ => None,
            })
    }

    fn key_usage(&self) -> Option<&KeyUsage> {
        self.x509().key_usage().ok().flatten().map(|ext| ext.value)
    }

    fn extended_key_usage(&self) -> Option<&ExtendedKeyUsage<'_>> {
        self.x509()
            .extended_key_usage()
            .ok()
            .flatten()
            .map(|ext| ext.value)
    }

    /// A keyUsage without keyCertSign: the key may not sign certificates (OpenSSL's
    /// `X509_V_ERR_KEYUSAGE_NO_CERTSIGN` when it signed one; Qt has no name for it).
    pub(super) fn forbids_cert_sign(&self) -> bool {
        self.key_usage().is_some_and(|ku| !ku.key_cert_sign())
    }

    /// OpenSSL's `check_ca`.
    pub(super) fn ca_kind(&self) -> CaKind {
        if self.forbids_cert_sign() {
            return CaKind::No;
        }
        if let Ok(Some(bc)) = self.x509().basic_constraints() {
            return if bc.value.ca { CaKind::Yes } else { CaKind::No };
        }
        if self.x509().version().0 == 0 && self.is_self_issued() {
            CaKind::V1Root
        } else if self.key_usage().is_some() {
            CaKind::KeyUsageOnly
        } else {
            CaKind::No
        }
    }

    /// The pathLenConstraint of a `CA:TRUE` certificate.
    pub(super) fn path_len_constraint(&self) -> Option<u32> {
        match self.x509().basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => bc.value.path_len_constraint,
            _ => None,
        }
    }

    /// OpenSSL's `check_purpose_ssl_server` / `check_purpose_ssl_client`: whether this
    /// certificate may serve `purpose`, as the end entity (`as_ca == false`) or as one of
    /// its CAs. An extendedKeyUsage must name the purpose: anyExtendedKeyUsage alone does
    /// not (OpenSSL's `xku_reject` ignores it, and webpki refuses it too).
    pub(super) fn allows_purpose(&self, purpose: Purpose, as_ca: bool) -> bool {
        if let Some(eku) = self.extended_key_usage() {
            let allowed = match purpose {
                Purpose::ServerAuth => {
                    eku.server_auth || eku.other.iter().any(|oid| SGC_OIDS.contains(oid))
                }
                Purpose::ClientAuth => eku.client_auth,
            };
            if !allowed {
                return false;
            }
        }
        if as_ca {
            return self.ca_kind() != CaKind::No;
        }
        // OpenSSL's `ns_reject`: a Netscape certificate type, if present, must allow the
        // purpose (webpki does not read it).
        if let Some(ns) = self.ns_cert_type() {
            let allowed = match purpose {
                Purpose::ServerAuth => ns.ssl_server(),
                Purpose::ClientAuth => ns.ssl_client(),
            };
            if !allowed {
                return false;
            }
        }
        match self.key_usage() {
            None => true,
            Some(ku) => match purpose {
                Purpose::ServerAuth => {
                    ku.digital_signature() || ku.key_encipherment() || ku.key_agreement()
                }
                Purpose::ClientAuth => ku.digital_signature() || ku.key_agreement(),
            },
        }
    }

    /// Whether `notBefore` and `notAfter` are each written in their DER form (see
    /// [`strict_der::validity_times_are_der`]); one that is not is no time OpenSSL or
    /// webpki reads.
    pub(super) fn validity_times_readable(&self) -> (bool, bool) {
        strict_der::validity_times_are_der(self.cert.der())
    }

    /// `(notBefore, notAfter)` in seconds since the Unix epoch.
    pub(super) fn validity(&self) -> (i64, i64) {
        let validity = self.x509().validity();
        (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        )
    }
}
