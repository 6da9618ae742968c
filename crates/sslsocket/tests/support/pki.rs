//! A PKI made at test time with rcgen: a trusted root, an intermediate, an untrusted root,
//! and leaves (valid or deliberately broken) written as PEM files into a temp dir.
//!
//! Every leaf goes through [`Pki::issue`] with a [`LeafSpec`]; the named methods
//! (`leaf`, `expired_leaf`, …) are one-line presets of it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

use super::{openssl_run, os_args, RunOutput, SupportError, SupportResult};

/// Files and bytes of one issued end-entity certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The leaf alone (PEM).
    pub cert_pem: PathBuf,
    /// Its private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`).
    pub key_pem: PathBuf,
    /// Leaf followed by the certificates a server sends after it (intermediates; for the
    /// untrusted leaf, the untrusted root). For a self-signed leaf: the leaf alone.
    pub chain_pem: PathBuf,
    /// The certificates after the leaf (PEM), `None` when there are none. This is what
    /// `openssl s_server -cert_chain` wants (it must not repeat the leaf).
    pub intermediates_pem: Option<PathBuf>,
    /// The leaf (DER).
    pub cert_der: Vec<u8>,
    /// Its private key (PKCS#8 DER).
    pub key_der: Vec<u8>,
    /// Leaf first, then the certificates after it (DER), as in `chain_pem`.
    pub chain_der: Vec<Vec<u8>>,
}

impl Issued {
    /// `-cert <leaf> -key <key> [-cert_chain <intermediates>]`, for `openssl s_server` or
    /// `openssl s_client`.
    pub fn openssl_args(&self) -> Vec<OsString> {
        let mut args = vec![
            OsString::from("-cert"),
            self.cert_pem.clone().into_os_string(),
            OsString::from("-key"),
            self.key_pem.clone().into_os_string(),
        ];
        if let Some(intermediates) = &self.intermediates_pem {
            args.push(OsString::from("-cert_chain"));
            args.push(intermediates.clone().into_os_string());
        }
        args
    }
}

/// Validity window of a leaf, relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// now - 1 day .. now + 30 days.
    Current,
    /// now - 30 days .. now - 1 day.
    Expired,
    /// now + 1 day .. now + 30 days.
    NotYetValid,
}

/// Extended key usage of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eku {
    ServerAndClient,
    ServerOnly,
    ClientOnly,
    /// No EKU extension at all (any purpose).
    Absent,
}

/// Key algorithm of a leaf. CAs are always ECDSA P-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

/// Who signs a leaf, and so which chain comes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuedBy {
    /// The trusted intermediate: chain = leaf, intermediate.
    Intermediate,
    /// The trusted root directly: chain = leaf.
    Root,
    /// Itself: chain = leaf.
    SelfSigned,
    /// A second root nobody trusts: chain = leaf, untrusted root.
    UntrustedRoot,
    /// A fresh intermediate under the trusted root that has `CA:FALSE` (but keyCertSign):
    /// chain = leaf, that intermediate.
    NonCaIntermediate,
    /// root → intermediate with pathlen 0 → sub-intermediate → leaf:
    /// chain = leaf, sub-intermediate, pathlen-0 intermediate.
    PathlenViolation,
    /// root → the trusted intermediate → a sub-intermediate → leaf, all valid:
    /// chain = leaf, sub-intermediate, intermediate (two CAs between leaf and root).
    SubIntermediate,
}

/// Everything that varies between the leaves the tests need.
#[derive(Debug, Clone, Copy)]
pub struct LeafSpec<'a> {
    /// Subject CN.
    pub common_name: &'a str,
    /// SAN entries: IP literals become IP SANs, everything else DNS SANs. Empty: no SAN
    /// extension.
    pub sans: &'a [&'a str],
    pub validity: Validity,
    pub eku: Eku,
    pub key: KeyAlg,
    pub issued_by: IssuedBy,
}

impl<'a> LeafSpec<'a> {
    /// A valid server+client leaf under the intermediate, ECDSA P-256.
    pub fn new(common_name: &'a str, sans: &'a [&'a str]) -> Self {
        Self {
            common_name,
            sans,
            validity: Validity::Current,
            eku: Eku::ServerAndClient,
            key: KeyAlg::EcdsaP256,
            issued_by: IssuedBy::Intermediate,
        }
    }
}

/// The test PKI. Dropping it deletes every file it wrote.
pub struct Pki {
    /// The temp dir holding all files.
    pub dir: TempDir,
    root: Authority,
    intermediate: Authority,
    untrusted_root: Authority,
    root_pem: PathBuf,
    intermediate_pem: PathBuf,
    intermediate_key_pem: PathBuf,
    ca_bundle_pem: PathBuf,
    untrusted_root_pem: PathBuf,
    counter: AtomicUsize,
}

impl Pki {
    /// Creates the root ("CN=Test Root CA"), the intermediate ("CN=Test Intermediate CA",
    /// CA:TRUE, unconstrained) and an untrusted root ("CN=Untrusted Root CA"), and writes
    /// `root.pem`, `intermediate.pem`, `intermediate.key.pem`, `ca-bundle.pem` (root +
    /// intermediate) and `untrusted-root.pem`.
    pub fn new() -> SupportResult<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sslsocket-pki-")
            .tempdir()?;
        let root = Authority::root("Test Root CA")?;
        let intermediate = root.sub_ca("Test Intermediate CA", BasicConstraints::Unconstrained)?;
        let untrusted_root = Authority::root("Untrusted Root CA")?;

        let root_pem = write(dir.path(), "root.pem", &root.cert_pem)?;
        let intermediate_pem = write(dir.path(), "intermediate.pem", &intermediate.cert_pem)?;
        let intermediate_key_pem = write(
            dir.path(),
            "intermediate.key.pem",
            &intermediate.issuer.key().serialize_pem(),
        )?;
        let bundle = format!("{}{}", root.cert_pem, intermediate.cert_pem);
        let ca_bundle_pem = write(dir.path(), "ca-bundle.pem", &bundle)?;
        let untrusted_root_pem = write(dir.path(), "untrusted-root.pem", &untrusted_root.cert_pem)?;

        Ok(Self {
            dir,
            root,
            intermediate,
            untrusted_root,
            root_pem,
            intermediate_pem,
            intermediate_key_pem,
            ca_bundle_pem,
            untrusted_root_pem,
            counter: AtomicUsize::new(0),
        })
    }

    /// The trusted root (PEM file).
    pub fn root_pem(&self) -> &Path {
        &self.root_pem
    }

    /// The trusted root (DER), for building root stores in memory.
    pub fn root_der(&self) -> &[u8] {
        &self.root.cert_der
    }

    /// The intermediate (PEM file).
    pub fn intermediate_pem(&self) -> &Path {
        &self.intermediate_pem
    }

    /// The intermediate (DER).
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate.cert_der
    }

    /// Root followed by intermediate (PEM file).
    pub fn ca_bundle_pem(&self) -> &Path {
        &self.ca_bundle_pem
    }

    /// The untrusted root (PEM file), e.g. to trust it explicitly in a test.
    pub fn untrusted_root_pem(&self) -> &Path {
        &self.untrusted_root_pem
    }

    /// The untrusted root (DER).
    pub fn untrusted_root_der(&self) -> &[u8] {
        &self.untrusted_root.cert_der
    }

    /// Issues a leaf as described by `spec` and writes its files.
    pub fn issue(&self, spec: &LeafSpec<'_>) -> SupportResult<Issued> {
        let key = KeyPair::generate_for(spec.key.algorithm())?;
        let params = leaf_params(spec)?;

        let (cert_der, chain) = match spec.issued_by {
            IssuedBy::SelfSigned => (params.self_signed(&key)?.der().to_vec(), Vec::new()),
            IssuedBy::Root => (self.root.sign(&params, &key)?, Vec::new()),
            IssuedBy::Intermediate => (
                self.intermediate.sign(&params, &key)?,
                self.intermediate.chain.clone(),
            ),
            IssuedBy::UntrustedRoot => (
                self.untrusted_root.sign(&params, &key)?,
                vec![self.untrusted_root.cert_der.clone()],
            ),
            IssuedBy::NonCaIntermediate => {
                let not_ca = self.root.not_ca_intermediate("Test Non-CA Intermediate")?;
                (not_ca.sign(&params, &key)?, not_ca.chain)
            }
            IssuedBy::PathlenViolation => {
                let pathlen0 = self.root.sub_ca(
                    "Test Pathlen0 Intermediate CA",
                    BasicConstraints::Constrained(0),
                )?;
                let sub =
                    pathlen0.sub_ca("Test Sub Intermediate CA", BasicConstraints::Unconstrained)?;
                (sub.sign(&params, &key)?, sub.chain)
            }
            IssuedBy::SubIntermediate => {
                let sub = self
                    .intermediate
                    .sub_ca("Test Sub Intermediate CA", BasicConstraints::Unconstrained)?;
                (sub.sign(&params, &key)?, sub.chain)
            }
        };

        self.write_issued(spec.common_name, cert_der, key.serialize_der(), chain)
    }

    /// Signs `params` for `key` with the trusted intermediate (a leaf with properties no
    /// [`LeafSpec`] describes); the chain to send is the result, then the intermediate.
    pub fn sign_with_intermediate(
        &self,
        params: &CertificateParams,
        key: &KeyPair,
    ) -> SupportResult<Vec<Vec<u8>>> {
        let mut chain = vec![self.intermediate.sign(params, key)?];
        chain.extend(self.intermediate.chain.iter().cloned());
        Ok(chain)
    }

    /// Valid leaf under the intermediate; EKU serverAuth+clientAuth.
    pub fn leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        self.issue(&LeafSpec::new(name, sans))
    }

    /// Like [`Pki::leaf`] but expired yesterday.
    pub fn expired_leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            validity: Validity::Expired,
            ..LeafSpec::new(name, sans)
        })
    }

    /// Like [`Pki::leaf`] but valid from tomorrow.
    pub fn not_yet_valid_leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            validity: Validity::NotYetValid,
            ..LeafSpec::new(name, sans)
        })
    }

    /// Self-signed (CA:FALSE) leaf; CN is the first SAN (or "Self Signed").
    pub fn self_signed_leaf(&self, sans: &[&str], expired: bool) -> SupportResult<Issued> {
        let cn = sans.first().copied().unwrap_or("Self Signed");
        self.issue(&LeafSpec {
            validity: if expired {
                Validity::Expired
            } else {
                Validity::Current
            },
            issued_by: IssuedBy::SelfSigned,
            ..LeafSpec::new(cn, sans)
        })
    }

    /// Leaf issued by the untrusted root; its chain file includes that root.
    pub fn untrusted_leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            issued_by: IssuedBy::UntrustedRoot,
            ..LeafSpec::new(name, sans)
        })
    }

    /// Leaf with the name only in the subject CN, no SAN extension.
    pub fn leaf_without_san(&self, cn: &str) -> SupportResult<Issued> {
        self.leaf(cn, &[])
    }

    /// Leaf whose CN and only DNS SAN is `pattern`, e.g. `"*.example.test"`.
    pub fn wildcard_leaf(&self, pattern: &str) -> SupportResult<Issued> {
        self.leaf(pattern, &[pattern])
    }

    /// Leaf whose only SAN is the IP address `ip`; the CN ("IP Only Leaf") matches nothing.
    pub fn ip_only_leaf(&self, ip: &str) -> SupportResult<Issued> {
        self.leaf("IP Only Leaf", &[ip])
    }

    /// Leaf with EKU clientAuth only (wrong for a server).
    pub fn wrong_eku_leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            eku: Eku::ClientOnly,
            ..LeafSpec::new(name, sans)
        })
    }

    /// Leaf under an intermediate that lacks CA:TRUE.
    pub fn leaf_under_non_ca_intermediate(
        &self,
        name: &str,
        sans: &[&str],
    ) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            issued_by: IssuedBy::NonCaIntermediate,
            ..LeafSpec::new(name, sans)
        })
    }

    /// root → intermediate (pathlen 0) → sub-intermediate → leaf.
    pub fn pathlen_violation_leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            issued_by: IssuedBy::PathlenViolation,
            ..LeafSpec::new(name, sans)
        })
    }

    /// Client certificate "CN=Test Client", EKU clientAuth, no SAN; under the intermediate
    /// when `trusted`, else under the untrusted root.
    pub fn client_cert(&self, trusted: bool) -> SupportResult<Issued> {
        self.issue(&LeafSpec {
            eku: Eku::ClientOnly,
            issued_by: if trusted {
                IssuedBy::Intermediate
            } else {
                IssuedBy::UntrustedRoot
            },
            ..LeafSpec::new("Test Client", &[])
        })
    }

    /// RSA-2048 leaf under the intermediate, made with the `openssl` CLI (`openssl req` +
    /// `openssl x509 -req`): EKU serverAuth+clientAuth, valid from now for 30 days.
    pub fn rsa_leaf(&self, name: &str, sans: &[&str]) -> SupportResult<Issued> {
        let stem = self.next_stem(name);
        let key_path = self.dir.path().join(format!("{stem}.rsa-key.pem"));
        let csr_path = self.dir.path().join(format!("{stem}.csr"));
        let crt_path = self.dir.path().join(format!("{stem}.rsa-cert.pem"));
        let ext_path = self.dir.path().join(format!("{stem}.ext.cnf"));

        let mut ext = String::from(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             subjectKeyIdentifier=hash\n\
             authorityKeyIdentifier=keyid\n",
        );
        if !sans.is_empty() {
            let entries: Vec<String> = sans
                .iter()
                .map(|s| match s.parse::<std::net::IpAddr>() {
                    Ok(_) => format!("IP:{s}"),
                    Err(_) => format!("DNS:{s}"),
                })
                .collect();
            ext.push_str(&format!("subjectAltName={}\n", entries.join(",")));
        }
        fs::write(&ext_path, ext)?;

        let subject = format!("/CN={name}");
        let req = os_args![
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key_path, "-subj", subject,
            "-out", csr_path,
        ];
        openssl_ok(&req)?;
        let serial = format!("{}", 1000 + self.counter.load(Ordering::Relaxed));
        let sign = os_args![
            "x509",
            "-req",
            "-in",
            csr_path,
            "-CA",
            self.intermediate_pem,
            "-CAkey",
            self.intermediate_key_pem,
            "-set_serial",
            serial,
            "-days",
            "30",
            "-sha256",
            "-extfile",
            ext_path,
            "-out",
            crt_path,
        ];
        openssl_ok(&sign)?;

        let cert_der = pem::parse(fs::read(&crt_path)?)?.into_contents();
        let key_der = pem::parse(fs::read(&key_path)?)?.into_contents();
        self.write_issued(name, cert_der, key_der, self.intermediate.chain.clone())
    }

    /// `openssl verify -CAfile <root> [-untrusted <certs after the leaf>] <extra> <leaf>`,
    /// bounded to 10 s. `extra` e.g. `["-purpose", "sslserver", "-verify_hostname", "x"]`.
    pub fn openssl_verify(&self, issued: &Issued, extra: &[&str]) -> SupportResult<RunOutput> {
        let mut args = os_args!["verify", "-CAfile", self.root_pem];
        if let Some(intermediates) = &issued.intermediates_pem {
            args.extend(os_args!["-untrusted", intermediates]);
        }
        args.extend(extra.iter().map(OsString::from));
        args.push(issued.cert_pem.clone().into_os_string());
        openssl_run(&args, b"", std::time::Duration::from_secs(10))
    }

    fn next_stem(&self, name: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{n:03}-{clean}")
    }

    fn write_issued(
        &self,
        name: &str,
        cert_der: Vec<u8>,
        key_der: Vec<u8>,
        after_leaf: Vec<Vec<u8>>,
    ) -> SupportResult<Issued> {
        let stem = self.next_stem(name);
        let dir = self.dir.path();
        let cert_text = cert_pem_text(&cert_der);
        let after_text: String = after_leaf.iter().map(|d| cert_pem_text(d)).collect();
        let key_text = pem::encode(&pem::Pem::new("PRIVATE KEY", key_der.clone()));

        let cert_pem = write(dir, &format!("{stem}.cert.pem"), &cert_text)?;
        let key_pem = write(dir, &format!("{stem}.key.pem"), &key_text)?;
        let chain_pem = write(
            dir,
            &format!("{stem}.chain.pem"),
            &format!("{cert_text}{after_text}"),
        )?;
        let intermediates_pem = if after_leaf.is_empty() {
            None
        } else {
            Some(write(
                dir,
                &format!("{stem}.intermediates.pem"),
                &after_text,
            )?)
        };

        let mut chain_der = vec![cert_der.clone()];
        chain_der.extend(after_leaf);
        Ok(Issued {
            cert_pem,
            key_pem,
            chain_pem,
            intermediates_pem,
            cert_der,
            key_der,
            chain_der,
        })
    }
}

/// A CA that can sign: its issuer (params + key), its certificate, and the chain a leaf it
/// signs should carry (itself and the CAs above it, excluding the trusted root).
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    cert_pem: String,
    chain: Vec<Vec<u8>>,
}

impl Authority {
    fn root(cn: &str) -> SupportResult<Self> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(cn, IsCa::Ca(BasicConstraints::Unconstrained));
        let cert_der = params.self_signed(&key)?.der().to_vec();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert_pem_text(&cert_der),
            cert_der,
            chain: Vec::new(),
        })
    }

    /// A CA under this one.
    fn sub_ca(&self, cn: &str, constraints: BasicConstraints) -> SupportResult<Self> {
        self.child_ca(ca_params(cn, IsCa::Ca(constraints)))
    }

    /// A would-be CA under this one with `CA:FALSE` (and keyCertSign, so the basic
    /// constraint is the only defect).
    fn not_ca_intermediate(&self, cn: &str) -> SupportResult<Self> {
        self.child_ca(ca_params(cn, IsCa::ExplicitNoCa))
    }

    fn child_ca(&self, params: CertificateParams) -> SupportResult<Self> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert_der = params.signed_by(&key, &self.issuer)?.der().to_vec();
        let mut chain = vec![cert_der.clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert_pem_text(&cert_der),
            cert_der,
            chain,
        })
    }

    fn sign(&self, params: &CertificateParams, key: &KeyPair) -> SupportResult<Vec<u8>> {
        Ok(params.signed_by(key, &self.issuer)?.der().to_vec())
    }
}

impl KeyAlg {
    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlg::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlg::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlg::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

fn ca_params(cn: &str, is_ca: IsCa) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = is_ca;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(2);
    params.not_after = now + Duration::days(365);
    params.use_authority_key_identifier_extension = true;
    params
}

fn leaf_params(spec: &LeafSpec<'_>) -> SupportResult<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, spec.common_name);
    params.subject_alt_names = spec
        .sans
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName((*s).try_into()?)),
        })
        .collect::<Result<Vec<_>, rcgen::Error>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match spec.eku {
        Eku::ServerAndClient => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Eku::ServerOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Eku::ClientOnly => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Eku::Absent => Vec::new(),
    };
    (params.not_before, params.not_after) = match spec.validity {
        Validity::Current => (now - Duration::days(1), now + Duration::days(30)),
        Validity::Expired => (now - Duration::days(30), now - Duration::days(1)),
        Validity::NotYetValid => (now + Duration::days(1), now + Duration::days(30)),
    };
    params.use_authority_key_identifier_extension = spec.issued_by != IssuedBy::SelfSigned;
    Ok(params)
}

fn cert_pem_text(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn write(dir: &Path, name: &str, contents: &str) -> SupportResult<PathBuf> {
    let path = dir.join(name);
    fs::write(&path, contents)?;
    Ok(path)
}

/// Runs a short, non-interactive `openssl` command; fails with its output if it fails.
fn openssl_ok(args: &[OsString]) -> SupportResult<()> {
    let out = openssl_run(args, b"", std::time::Duration::from_secs(20))?;
    if out.success() {
        Ok(())
    } else {
        Err(SupportError::new(format!("openssl {args:?} failed: {out}")))
    }
}
