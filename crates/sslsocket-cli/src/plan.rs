//! Arguments validated into plans: files read, names checked, the configuration built and
//! tried once without a connection, so that every input problem is found before the
//! network is touched (exit 2).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sslsocket::core::SslCore;
use sslsocket::{
    backend, IgnoreRule, PeerVerifyMode, ServerCredentials, SocketState, SslCertificate,
    SslConfiguration, SslError, SslErrorKind, SslIdentity, SslKey, SslProtocol, TlsVersion,
};

use crate::args::{ConnectArgs, ServeArgs, StartTlsArg, TlsArgs};
use crate::psk::{self, Psk};
use crate::secret::{self, os_bytes, os_path};
use crate::selfsigned;

/// Everything `connect` needs, checked.
#[derive(Debug)]
pub struct ConnectPlan {
    /// Host to connect to.
    pub host: String,
    /// Port to connect to.
    pub port: u16,
    /// The name to verify instead of `host`.
    pub peer_name: Option<String>,
    /// The TLS configuration.
    pub configuration: SslConfiguration,
    /// `--ignore-all-errors`.
    pub ignore_all: bool,
    /// `--ignore` rules.
    pub ignore_rules: Vec<IgnoreRule>,
    /// `--starttls`.
    pub starttls: Option<StartTlsArg>,
    /// `--send`, escapes resolved.
    pub send: Option<Vec<u8>>,
    /// `--psk-identity` and `--psk-key`.
    pub psk: Option<Arc<Psk>>,
    /// `--reconnect`.
    pub reconnect: bool,
    /// `--timeout` (for each connection when `--reconnect` makes two).
    pub timeout: Duration,
    /// `--json`.
    pub json: bool,
}

/// Everything `serve` needs, checked.
#[derive(Debug)]
pub struct ServePlan {
    /// Host part of `--listen`.
    pub host: String,
    /// Port part of `--listen`.
    pub port: u16,
    /// The TLS configuration, with a certificate and key.
    pub configuration: SslConfiguration,
    /// The SHA-256 of the generated certificate, when none was given.
    pub generated_sha256: Option<String>,
    /// Where the certificates, keys and staple come from, read again on SIGHUP.
    pub credentials: CredentialSources,
    /// `--starttls`.
    pub starttls: Option<StartTlsArg>,
    /// `--psk-identity` and `--psk-key`.
    pub psk: Option<Psk>,
    /// Lines for stderr before listening: options accepted but without effect.
    pub warnings: Vec<String>,
    /// `--echo`.
    pub echo: bool,
    /// `--once`.
    pub once: bool,
    /// `--handshake-timeout`.
    pub handshake_timeout: Duration,
    /// `--json`.
    pub json: bool,
}

/// Validates `connect`'s arguments.
pub fn connect(args: ConnectArgs) -> Result<ConnectPlan> {
    let psk_key = secret_key(args.psk_key.as_deref())?;
    let psk = Psk::from_options(
        args.psk_identity.as_deref(),
        psk_key.as_deref().map(|k| k.as_str()),
    )?;
    select_backend(args.tls.backend.as_deref())?;
    if psk.is_some() {
        psk::require_support()?;
    }

    let (host, port) = host_port(&args.target, false)?;
    if let Some(name) = &args.peer_name {
        if name.is_empty() {
            bail!("--peer-name: the name is empty");
        }
    }
    let mut configuration = tls_configuration(&args.tls)?;
    if let Some(depth) = args.verify_depth {
        configuration.set_peer_verify_depth(depth);
    }
    if args.ocsp {
        configuration.set_ocsp_stapling_enabled(true);
    }
    if psk.is_some() {
        // The contract: "when a pre-shared-key cipher suite was negotiated the peer is
        // authenticated by the key, and no certificate is required of it" (the library,
        // like Qt, otherwise reports `NoPeerCertificate` in `VerifyPeer` mode).
        configuration.set_pre_shared_key_authenticates_peer(true);
    }
    if !args.pin.is_empty() {
        let pins = args
            .pin
            .iter()
            .map(|pin| parse_pin(pin))
            .collect::<Result<Vec<_>>>()?;
        configuration.set_pinned_public_keys(pins);
    }
    let ignore_rules = args
        .ignore
        .iter()
        .map(|spec| ignore_rules(spec))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let send = args.send.as_deref().map(unescape);

    let peer = args.peer_name.clone().unwrap_or_else(|| host.clone());
    try_session(&configuration, Some(&peer))?;

    Ok(ConnectPlan {
        host,
        port,
        peer_name: args.peer_name,
        configuration,
        ignore_all: args.ignore_all_errors,
        ignore_rules,
        starttls: args.starttls,
        send,
        psk: psk.map(Arc::new),
        reconnect: args.reconnect,
        timeout: Duration::from_millis(args.timeout),
        json: args.tls.json,
    })
}

/// Validates `serve`'s arguments; generates the certificate when none is given.
pub fn serve(args: ServeArgs) -> Result<ServePlan> {
    let psk_key = secret_key(args.psk_key.as_deref())?;
    let psk = Psk::from_options(
        args.psk_identity.as_deref(),
        psk_key.as_deref().map(|k| k.as_str()),
    )?;
    if args.psk_identity_hint.is_some() && psk.is_none() {
        bail!("--psk-identity-hint needs --psk-identity and --psk-key");
    }
    select_backend(args.tls.backend.as_deref())?;
    let warnings = Vec::new();
    if psk.is_some() {
        // Refuses a backend without PSK (rustls) before anything else, the hint included.
        psk::require_support()?;
    }

    let (host, port) = host_port(&args.listen, true)?;
    let mut configuration = tls_configuration(&args.tls)?;
    if psk.is_some() && args.tls.ciphers.is_none() {
        psk_server_ciphers(&mut configuration)?;
    }
    if psk.is_some() {
        // The contract: a peer the key authenticated needs no certificate, whatever
        // `--verify` asks of the others.
        configuration.set_pre_shared_key_authenticates_peer(true);
    }
    if let Some(hint) = &args.psk_identity_hint {
        // Sent in the ServerKeyExchange of a TLS 1.2 PSK handshake (RFC 4279); TLS 1.3
        // has no hint. Only backends with PSK get here (`require_support` above).
        configuration.set_pre_shared_key_identity_hint(hint.as_bytes());
    }
    if let Some(file) = &args.ocsp_response {
        configuration.set_ocsp_response(Some(ocsp_file(file)?));
    }
    let mut generated_sha256 = None;
    let mut generated = None;
    if args.tls.cert.is_none() {
        let (certificate, key) = selfsigned::generate()?;
        generated_sha256 = Some(certificate.sha256_hex());
        generated = Some(
            SslIdentity::new(vec![certificate.clone()], key.clone())
                .map_err(|e| anyhow!("the generated certificate: {}", e.message()))?,
        );
        configuration
            .set_local_certificate_chain(vec![certificate])
            .set_private_key(key);
    }
    let credentials = CredentialSources {
        cert: args.tls.cert.clone(),
        key: args.tls.key.clone(),
        // The same passphrase as the first load, its env:/file: form resolved once.
        pass: args
            .tls
            .pass
            .as_deref()
            .map(|pass| secret::resolve(pass, "--pass").map(|p| p.to_vec()))
            .transpose()?,
        ocsp_response: args.ocsp_response.clone(),
        sni: args
            .sni
            .iter()
            .map(|entry| SniSource::parse(entry))
            .collect::<Result<Vec<_>>>()?,
        generated,
    };
    for (name, identity) in credentials.load_server_names()? {
        configuration
            .add_server_name_certificate(&name, identity)
            .map_err(|e| anyhow!("--sni `{name}`: {}", e.message()))?;
    }
    try_session(&configuration, None)?;
    if let Some(file) = &args.write_cert {
        let pem = configuration
            .local_certificate()
            .map(SslCertificate::to_pem)
            .unwrap_or_default();
        std::fs::write(file, pem).map_err(|e| anyhow!("--write-cert `{}`: {e}", file.display()))?;
    }

    Ok(ServePlan {
        host,
        port,
        configuration,
        generated_sha256,
        credentials,
        starttls: args.starttls,
        psk,
        warnings,
        echo: args.echo,
        once: args.once,
        handshake_timeout: Duration::from_millis(args.handshake_timeout),
        json: args.tls.json,
    })
}

/// `--psk-key` with its `env:`/`file:` forms resolved (see `secret.rs`).
fn secret_key(key: Option<&OsStr>) -> Result<Option<zeroize::Zeroizing<String>>> {
    key.map(|k| secret::resolve_text(k, "--psk-key"))
        .transpose()
}

/// A DER OCSP response, stapled as is; a garbage file is refused.
fn ocsp_file(file: &Path) -> Result<Vec<u8>> {
    const LIMIT: u64 = 1024 * 1024;
    // Read no more than the limit allows (round 34: `/dev/zero` or a FIFO was read until
    // memory ran out, and the size checked only then).
    let mut der = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, LIMIT + 1), &mut der))
        .map_err(|e| anyhow!("--ocsp-response `{}`: {e}", file.display()))?;
    if der.len() as u64 > LIMIT || der.first() != Some(&0x30) {
        bail!(
            "--ocsp-response `{}`: not a DER OCSP response",
            file.display()
        );
    }
    sslsocket::ocsp::check_response_der(&der)
        .map_err(|e| anyhow!("--ocsp-response `{}`: {e}", file.display()))?;
    Ok(der)
}

/// The files `serve` takes its certificates, keys and OCSP staple from; read at start and
/// again on SIGHUP.
#[derive(Clone, Debug)]
pub struct CredentialSources {
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--pass`, for every key.
    pub pass: Option<Vec<u8>>,
    /// `--ocsp-response`.
    pub ocsp_response: Option<PathBuf>,
    /// `--sni` entries.
    pub sni: Vec<SniSource>,
    /// The generated certificate, when there is no `--cert` (kept over reloads).
    pub generated: Option<SslIdentity>,
}

/// One `--sni NAME=CERTFILE,KEYFILE`.
#[derive(Clone, Debug)]
pub struct SniSource {
    /// The server name or `*.` wildcard.
    pub name: String,
    /// Its certificate chain file.
    pub cert: PathBuf,
    /// Its key file.
    pub key: PathBuf,
}

impl SniSource {
    /// NAME (text) up to the first `=`, then the two files (operating-system paths, any
    /// bytes) split at the first `,` after it.
    fn parse(entry: &OsStr) -> Result<SniSource> {
        let shown = entry.to_string_lossy();
        let malformed = || anyhow!("--sni `{shown}`: expected NAME=CERTFILE,KEYFILE");
        let bytes = os_bytes(entry);
        let split = |bytes: &[u8], at: u8| -> Option<(Vec<u8>, Vec<u8>)> {
            let i = bytes.iter().position(|b| *b == at)?;
            Some((bytes.get(..i)?.to_vec(), bytes.get(i + 1..)?.to_vec()))
        };
        let (name, files) = split(&bytes, b'=').ok_or_else(malformed)?;
        let (cert, key) = split(&files, b',').ok_or_else(malformed)?;
        if name.is_empty() || cert.is_empty() || key.is_empty() {
            return Err(malformed());
        }
        let name = String::from_utf8(name)
            .map_err(|_| anyhow!("--sni `{shown}`: the server name is not text"))?;
        Ok(SniSource {
            name,
            cert: os_path(&cert),
            key: os_path(&key),
        })
    }
}

impl CredentialSources {
    fn identity(&self, cert: &Path, key: &Path, option: &str) -> Result<SslIdentity> {
        let chain = certificates(cert, option)?;
        let key = SslKey::from_file(key, self.pass.as_deref())
            .map_err(|e| anyhow!("{option}: {}", e.message()))?;
        SslIdentity::new(chain, key).map_err(|e| anyhow!("{option}: {}", e.message()))
    }

    /// The `--sni` identities, read from their files.
    fn load_server_names(&self) -> Result<Vec<(String, SslIdentity)>> {
        self.sni
            .iter()
            .map(|entry| {
                let option = format!("--sni `{}`", entry.name);
                Ok((
                    entry.name.clone(),
                    self.identity(&entry.cert, &entry.key, &option)?,
                ))
            })
            .collect()
    }

    /// Every certificate, key and staple, read from the files now.
    pub fn load(&self) -> Result<ServerCredentials> {
        let identity = match (&self.cert, &self.key, &self.generated) {
            (Some(cert), Some(key), _) => self.identity(cert, key, "--cert/--key")?,
            (_, _, Some(generated)) => generated.clone(),
            _ => bail!("no certificate to serve"),
        };
        let staple = self.ocsp_response.as_deref().map(ocsp_file).transpose()?;
        let mut credentials = ServerCredentials::new(identity.with_ocsp_response(staple));
        for (name, identity) in self.load_server_names()? {
            credentials
                .add_server_name(&name, identity)
                .map_err(|e| anyhow!("--sni `{name}`: {}", e.message()))?;
        }
        Ok(credentials)
    }
}

/// Selects the backend, when one is named; the library's refusal says why (unknown name,
/// not compiled in, already in use).
pub fn select_backend(name: Option<&str>) -> Result<()> {
    let Some(name) = name else { return Ok(()) };
    backend::set_active_backend(name).map_err(|e| anyhow!("--backend {name}: {e}"))
}

/// The TLS 1.3 suites of a PSK server, SHA-256 ones first.
const PSK_TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_256_GCM_SHA384",
];

/// The cipher suites of `serve --psk-*` without `--ciphers`. OpenSSL uses a pre-shared key
/// given by callback in TLS 1.3 only with a SHA-256 suite, and a server that has a
/// certificate (ours always has) does not prefer one by itself: it would pick
/// `TLS_AES_256_GCM_SHA384`, ignore the key and fall back to its certificate. So when TLS
/// 1.3 is allowed, the SHA-256 suites come first (the server's preference decides).
///
/// Any cipher list replaces OpenSSL's TLS 1.2 list too, so the TLS 1.2 part is the
/// backend's default kind (ECDHE and DHE with AES-GCM or ChaCha20), then the TLS 1.2 PSK
/// suites, forward-secret AEAD first. A TLS 1.2 client that offers both kinds gets a
/// certificate suite (the server's preference). With TLS 1.2 at most (`--protocol tls1.2`), nothing is set: OpenSSL's own list
/// holds the PSK suites.
fn psk_server_ciphers(configuration: &mut SslConfiguration) -> Result<()> {
    let Some((lowest, highest)) = configuration.protocol().version_range() else {
        return Ok(());
    };
    if highest < TlsVersion::Tls13 {
        return Ok(());
    }
    let mut names: Vec<String> = PSK_TLS13_SUITES.iter().map(ToString::to_string).collect();
    if lowest < TlsVersion::Tls13 {
        // The backend's default kind of TLS 1.2 suite only: forward secrecy and an AEAD
        // cipher, strongest first (round 34: every supported TLS 1.2 suite was appended,
        // in no order, and a certificate client got static RSA with CBC).
        let tls12: Vec<String> = SslConfiguration::supported_ciphers()
            .iter()
            .filter(|c| {
                c.protocol()
                    .version_range()
                    .is_some_and(|(version, _)| version < TlsVersion::Tls13)
            })
            .map(|c| c.name().to_string())
            .filter(|name| !name.contains("_DSS_") && !name.contains("CCM"))
            .collect();
        for (exchange, cipher) in [
            ("TLS_ECDHE_", "_AES_256_GCM_"),
            ("TLS_ECDHE_", "_CHACHA20_POLY1305_"),
            ("TLS_ECDHE_", "_AES_128_GCM_"),
            ("TLS_DHE_", "_AES_256_GCM_"),
            ("TLS_DHE_", "_CHACHA20_POLY1305_"),
            ("TLS_DHE_", "_AES_128_GCM_"),
        ] {
            names.extend(
                tls12
                    .iter()
                    .filter(|name| {
                        name.starts_with(exchange)
                            && name.contains(cipher)
                            && !name.contains("_PSK_")
                    })
                    .cloned(),
            );
        }
        // Then the TLS 1.2 PSK suites, which only a client with the key can use (certificate
        // clients never get them): forward-secret AEAD first, plain PSK with AEAD next, CBC
        // last (Qt's PSK test server insists on `PSK-AES256-CBC-SHA`).
        let psk: Vec<&String> = tls12
            .iter()
            .filter(|name| name.contains("_PSK_") && !name.contains("_RSA_PSK_"))
            .collect();
        let aead = |name: &str| name.contains("_GCM_") || name.contains("_CHACHA20_");
        let forward_secret =
            |name: &str| name.starts_with("TLS_ECDHE_") || name.starts_with("TLS_DHE_");
        for (want_fs, want_aead) in [(true, true), (false, true), (true, false), (false, false)] {
            names.extend(
                psk.iter()
                    .filter(|name| forward_secret(name) == want_fs && aead(name) == want_aead)
                    .map(|name| (*name).clone()),
            );
        }
    }
    configuration
        .set_ciphers_str(&names.join(":"))
        .map_err(|e| anyhow!("the PSK cipher suites: {}", e.message()))?;
    Ok(())
}

/// The configuration from the options both commands share.
fn tls_configuration(tls: &TlsArgs) -> Result<SslConfiguration> {
    let mut configuration = SslConfiguration::default();
    if let Some(protocol) = tls.protocol {
        configuration.set_protocol(protocol_of(protocol)?);
    }
    if let Some(verify) = tls.verify {
        configuration.set_peer_verify_mode(verify);
        // `serve --verify verify` *requires* a client certificate (the contract): a client
        // without one is refused inside the handshake, with an alert it can see.
        configuration.set_missing_certificate_is_fatal(verify == PeerVerifyMode::VerifyPeer);
    }
    for file in &tls.cafile {
        configuration.add_ca_certificates(certificates(file, "--cafile")?);
    }
    if tls.no_system_ca {
        configuration.set_system_ca_on_demand(false);
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "--cert")?;
            let passphrase = match tls.pass.as_deref() {
                Some(pass) => Some(secret::resolve(pass, "--pass")?),
                None => None,
            };
            let key = SslKey::from_file(key, passphrase.as_deref().map(Vec::as_slice))
                .map_err(|e| anyhow!("--key: {}", e.message()))?;
            configuration
                .set_local_certificate_chain(chain)
                .set_private_key(key);
        }
        (Some(_), None) => bail!("--cert needs --key"),
        (None, Some(_)) => bail!("--key needs --cert"),
        (None, None) => {
            if tls.pass.is_some() {
                bail!("--pass needs --key");
            }
        }
    }
    if let Some(list) = &tls.ciphers {
        ciphers(&mut configuration, list)?;
        ciphers_fit_protocol(&configuration)?;
    }
    if let Some(list) = &tls.alpn {
        configuration.set_allowed_next_protocols(alpn(list)?);
    }
    Ok(configuration)
}

/// `--ciphers`: colon-separated names in preference order, every one known to the active
/// backend; an empty entry is a mistake, not something to skip.
fn ciphers(configuration: &mut SslConfiguration, list: &str) -> Result<()> {
    if list.split(':').any(|name| name.trim().is_empty()) {
        bail!(
            "--ciphers `{list}`: expected cipher names separated by `:` (see `sslsocket ciphers`)"
        );
    }
    configuration
        .set_ciphers_str(list)
        .map_err(|e| anyhow!("--ciphers: {} (see `sslsocket ciphers`)", e.message()))?;
    let supported = SslConfiguration::supported_ciphers();
    if let Some(missing) = configuration
        .ciphers()
        .iter()
        .find(|c| !supported.iter().any(|s| s.name() == c.name()))
    {
        bail!(
            "--ciphers: the {} backend does not offer {} (see `sslsocket ciphers`)",
            backend::active_backend().unwrap_or("active"),
            missing.name()
        );
    }
    Ok(())
}

fn protocol_of(chosen: SslProtocol) -> Result<SslProtocol> {
    if !backend::is_protocol_supported(chosen, None) {
        bail!(
            "--protocol: the {} backend does not offer {chosen}",
            backend::active_backend().unwrap_or("active")
        );
    }
    Ok(chosen)
}

/// At least one of the `--ciphers` belongs to a protocol version `--protocol` allows (the
/// backend would refuse the configuration, less clearly, otherwise).
fn ciphers_fit_protocol(configuration: &SslConfiguration) -> Result<()> {
    let protocol = configuration.protocol();
    let Some((lowest, highest)) = protocol.version_range() else {
        return Ok(());
    };
    let supported = SslConfiguration::supported_ciphers();
    // A TLS 1.3 suite works in TLS 1.3 only; an older one from the version it names (the
    // OpenSSL backend's CBC suites say TLS 1.0) up to TLS 1.2.
    let fits = configuration.ciphers().iter().any(|chosen| {
        supported
            .iter()
            .filter(|s| s.name() == chosen.name())
            .filter_map(|s| s.protocol().version_range())
            .any(|(version, _)| {
                if version >= TlsVersion::Tls13 {
                    highest >= TlsVersion::Tls13
                } else {
                    version <= highest && lowest <= TlsVersion::Tls12
                }
            })
    });
    if !fits {
        bail!("--ciphers: none of these ciphers can be used with protocol {protocol}");
    }
    Ok(())
}

/// The certificates of one file, with the option named in the message.
fn certificates(path: &Path, option: &str) -> Result<Vec<SslCertificate>> {
    SslCertificate::from_file(path).map_err(|e| anyhow!("{option}: {}", e.message()))
}

fn alpn(list: &str) -> Result<Vec<Vec<u8>>> {
    let names: Vec<Vec<u8>> = list.split(',').map(|n| n.as_bytes().to_vec()).collect();
    for name in &names {
        if name.is_empty() || name.len() > 255 {
            bail!("--alpn: each protocol name must be 1 to 255 bytes long");
        }
    }
    let encoded: usize = names.iter().map(|name| 1 + name.len()).sum();
    if encoded > sslsocket::config::ALPN_LIST_LIMIT {
        bail!(
            "--alpn: the list is too long ({encoded} bytes encoded; at most {})",
            sslsocket::config::ALPN_LIST_LIMIT
        );
    }
    Ok(names)
}

/// `NAME[@CERTFILE]` into rules: one for any certificate, or one per certificate in
/// CERTFILE.
fn ignore_rules(spec: &OsStr) -> Result<Vec<IgnoreRule>> {
    let bytes = os_bytes(spec);
    let (name, file) = match bytes.iter().position(|b| *b == b'@') {
        Some(at) => (
            bytes.get(..at).unwrap_or_default(),
            Some(bytes.get(at + 1..).unwrap_or_default()),
        ),
        None => (bytes.as_slice(), None),
    };
    let name = std::str::from_utf8(name).map_err(|_| anyhow!("--ignore: the name is not text"))?;
    let kind = SslErrorKind::from_name(name)
        .ok_or_else(|| anyhow!("--ignore {name}: not an error name (e.g. HostNameMismatch)"))?;
    match file {
        None => Ok(vec![IgnoreRule::AnyCertificate(kind)]),
        Some(file) => {
            if file.is_empty() {
                bail!("--ignore {name}@: the certificate file is missing");
            }
            let path = os_path(file);
            Ok(certificates(&path, "--ignore")?
                .into_iter()
                .map(|cert| IgnoreRule::Exact(SslError::with_certificate(kind, cert)))
                .collect())
        }
    }
}

/// `HOST:PORT`, `[V6]:PORT`; port 0 only for listening.
pub fn host_port(text: &str, listening: bool) -> Result<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| anyhow!("`{text}`: expected [ADDRESS]:PORT"))?;
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("`{text}`: expected HOST:PORT"))?;
        if host.contains(':') {
            bail!("`{text}`: write an IPv6 address in brackets, [ADDRESS]:PORT");
        }
        (host, port)
    };
    if host.is_empty() {
        bail!("`{text}`: the host is empty");
    }
    let port: u16 = port
        .parse()
        .with_context(|| format!("`{text}`: the port is not a number from 0 to 65535"))?;
    if port == 0 && !listening {
        bail!("`{text}`: port 0 cannot be connected to");
    }
    Ok((host.to_string(), port))
}

/// `--send` text with `\n`, `\r`, `\t` and `\\` resolved; other backslashes stay.
pub fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.peek() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('\\') => out.push(b'\\'),
            _ => {
                out.push(b'\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// Starts a session on a core that never touches the network, so that configuration
/// problems (a key that does not match its certificate, an invalid peer name, a protocol
/// the backend refuses) are bad input now rather than a failed connection later.
fn try_session(configuration: &SslConfiguration, peer_name: Option<&str>) -> Result<()> {
    let mut core = SslCore::new(configuration.clone());
    core.handle_state(SocketState::ConnectedState);
    let started = match peer_name {
        Some(name) => core.start_client_encryption(name),
        None => core.start_server_encryption(),
    };
    started.map_err(|e| anyhow!("{e}"))
}

/// `sha256/BASE64` (curl's `--pinnedpubkey` form) as the 32-byte SPKI digest.
fn parse_pin(pin: &str) -> Result<[u8; 32]> {
    use base64::Engine as _;
    let Some(encoded) = pin.strip_prefix("sha256/") else {
        bail!("--pin {pin}: expected sha256/BASE64 (the SHA-256 of the SubjectPublicKeyInfo)");
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| anyhow!("--pin {pin}: not base64 ({e})"))?;
    <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| {
        anyhow!(
            "--pin {pin}: a SHA-256 digest has 32 bytes, this has {}",
            digest.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() -> Result<()> {
        assert_eq!(
            host_port("localhost:443", false)?,
            ("localhost".into(), 443)
        );
        assert_eq!(host_port("[::1]:443", false)?, ("::1".into(), 443));
        assert_eq!(host_port("10.0.0.1:1", false)?, ("10.0.0.1".into(), 1));
        assert_eq!(host_port("127.0.0.1:0", true)?, ("127.0.0.1".into(), 0));
        assert!(host_port("::1:443", false).is_err());
        assert!(host_port("localhost", false).is_err());
        assert!(host_port(":443", false).is_err());
        assert!(host_port("h:0", false).is_err());
        assert!(host_port("h:70000", false).is_err());
        assert!(host_port("[::1]443", false).is_err());
        Ok(())
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"a\nb\r\t\\c\x"), b"a\nb\r\t\\c\\x".to_vec());
        assert_eq!(unescape("trailing\\"), b"trailing\\".to_vec());
    }

    #[test]
    fn ignore_names() -> Result<()> {
        let rules = ignore_rules(OsStr::new("HostNameMismatch"))?;
        assert_eq!(
            rules,
            vec![IgnoreRule::AnyCertificate(SslErrorKind::HostNameMismatch)]
        );
        assert!(ignore_rules(OsStr::new("NoSuchError")).is_err());
        assert!(ignore_rules(OsStr::new("HostNameMismatch@/no/such/file")).is_err());
        Ok(())
    }
}
