//! Finite-field Diffie-Hellman parameters for DHE cipher suites (Qt's
//! `QSslDiffieHellmanParameters`).
//!
//! Only the OpenSSL backend uses them (TLS 1.2 `DHE-*` suites, server side); the rustls
//! backend has no finite-field DHE and refuses a configuration that sets them.

use std::fmt;

use der::asn1::UintRef;
use der::{Decode, Reader, SliceReader};

/// The PEM label of a PKCS#3 `DHParameter`.
const PEM_LABEL: &str = "DH PARAMETERS";

/// Parameters shorter than this are unsafe (Logjam; Qt's own limit is 1024, we follow
/// current guidance).
const MIN_PRIME_BITS: usize = 2048;

/// Parameters longer than this are refused before any primality test: OpenSSL will not
/// use them (`OPENSSL_DH_MAX_MODULUS_BITS`: DH_generate_key refuses a longer p), and its
/// `DH_check` of a 32768-bit p costs seconds (round 37: a 4 KiB file asked for 7-15 s).
const MAX_PRIME_BITS: usize = 10_000;

/// Primes longer than this are taken only when they are a named group's (RFC 7919, RFC
/// 3526), which OpenSSL recognises and does not test: testing a prime of other parameters
/// costs seconds from 4,096 bits on, a minute at 10,000 (round 37: the limit alone did
/// not bound the cost; `openssl dhparam 4096` parameters stay usable).
const TESTED_PRIME_BITS: usize = 4096;

/// The named groups longer than [`TESTED_PRIME_BITS`] (`ffdhe6144`, `ffdhe8192`,
/// `modp_6144`, `modp_8192`), as `openssl genpkey -genparam -algorithm DH -pkeyopt
/// group:NAME` writes them.
const NAMED_LONG_GROUPS: [&str; 4] = [
    "-----BEGIN DH PARAMETERS-----
MIIDCAKCAwEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEfz9zeNVs7ZRkDW7w09N75nAI4YbRvydbmyQd62R0mkff3
7lmMsPrBhtkcrv4TCYUTknC0EwyTvEN5RPT9RFLi103TZPLiHnH1S/9croKrnJ32
nuhtK8UiNjoNq8Uhl5sN6todv5pC1cRITgq80Gv6U93vPBsg7j/VnXwl5B0rZp4e
8W5vUsMWTfT7eTDp5OWIV7asfV9C1p9tGHdjzx1VA0AEh/VbpX4xzHpxNciG77Qx
iu1qHgEtnmgyqQdgCpGBMMRtx3j5ca0AOAkpmaMzy4t6Gh25PXFAADwqTs6p+Y0K
zAqCkc3OyX3Pjsm1Wn+IpGtNtahR9EGC4caKAH5eDdkCC/1ktkUDbHpOZ30sOFMq
OiO6RELK9T6mO7RUMpt2JMiRe91kscD9TLOOjDNMcBw6za0GV/zP7HGbH1w+TkYE
HziBR/tM/bR3pSRx96mpaRC4VTIu22NA2KAO8JI1BRHjCr7B//njom5/sp+MGDAj
w1h+ONoAd9m0dj5OS5Syu8GUxmUed8r5ku6qwCMqKBv2s6c5wSJhFoIK6NtYR6Z8
vvnJCRtGLVOM1ysDdGrnf15iKSwxFWKoRlBdyC24VDOK5J9SNclbkReMzy3Vys70
A+ydGBDGJysEWztx+dxrgNY/3UqOmtseaWKmlSbUMWHBpB1XDXk42tSkDjKc0OQO
Zf//////////AgEC
-----END DH PARAMETERS-----
",
    "-----BEGIN DH PARAMETERS-----
MIIECAKCBAEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEfz9zeNVs7ZRkDW7w09N75nAI4YbRvydbmyQd62R0mkff3
7lmMsPrBhtkcrv4TCYUTknC0EwyTvEN5RPT9RFLi103TZPLiHnH1S/9croKrnJ32
nuhtK8UiNjoNq8Uhl5sN6todv5pC1cRITgq80Gv6U93vPBsg7j/VnXwl5B0rZp4e
8W5vUsMWTfT7eTDp5OWIV7asfV9C1p9tGHdjzx1VA0AEh/VbpX4xzHpxNciG77Qx
iu1qHgEtnmgyqQdgCpGBMMRtx3j5ca0AOAkpmaMzy4t6Gh25PXFAADwqTs6p+Y0K
zAqCkc3OyX3Pjsm1Wn+IpGtNtahR9EGC4caKAH5eDdkCC/1ktkUDbHpOZ30sOFMq
OiO6RELK9T6mO7RUMpt2JMiRe91kscD9TLOOjDNMcBw6za0GV/zP7HGbH1w+TkYE
HziBR/tM/bR3pSRx96mpaRC4VTIu22NA2KAO8JI1BRHjCr7B//njom5/sp+MGDAj
w1h+ONoAd9m0dj5OS5Syu8GUxmUed8r5ku6qwCMqKBv2s6c5wSJhFoIK6NtYR6Z8
vvnJCRtGLVOM1ysDdGrnf15iKSwxFWKoRlBdyC24VDOK5J9SNclbkReMzy3Vys70
A+ydGBDGJysEWztx+dxrgNY/3UqOmtseaWKmlSbUMWHBpB1XDXk42tSkDjKcz/Rq
qjatAEz2AMg4HkJaMdlRrmT9sj/OyVCdQ2h/62nt0cxeC4zDvfZLEO+GtjFCo6uI
KVVbL3R8kyZlyywPHMAb1wIpOIg50q8F5FRQSseLdYKCKEbAujXDX1xZFgzARv2C
UVQfxoychrAiu3CZh2pGDnRRqKkxCXA/7hwhfmw4JuUsUappHg5CPPyZ6eMWUMEh
e2JIFs2tmpX51bgBlIjZwKCh/jB1pXfiMYP4HUo/L6RXHvyM4LqKT+i2hV3+crCm
bt7S+6v75Yow+vq+HF1xqH4vdB74wf6G/qa7/eUwZ38Nl9EdSfeoRD0IIuUGqfRh
TgEeKpSDj/iM1oyLt8XGQkz//////////wIBAg==
-----END DH PARAMETERS-----
",
    "-----BEGIN DH PARAMETERS-----
MIIDCAKCAwEA///////////JD9qiIWjCNMTGYouA3BzRKQJOCIpnzHQCC76mOxOb
IlFKCHmONATd75UZs806QxswKwpt8l8UN0/hNW1tUcJF5IW1dmJefsb0TELppjft
awv/XLb0Brft7jhr+1qJn6WunyQRfEsf5kkoZlHs5Fs9wgB8uKFjvwWY2kg2HFXT
mmkWP6j9JM9fg2VdI9yjrZYcYvNWIIVSu57VKQdwlpZtZww1Tkq8mATxdGwIyhgh
fDKQXkYuNs474553LBgOhgObJ4Oi7Aeij7XFXfBvTFLJ3ivL9pVYFxg5lUl86pVq
5RXSJhiY+gUQFXKOWoqqxC2tMxcNBFB6M6hVIavfHLpk7PuFBFjb7wqK6nFXXQYM
fbOXD4Wm4eTHq/WujNsJM9cejJTgSiVhnc7j0iYa0u5r8S/6BtmKCGTYdgJzPshq
ZFIfKxgXeyAMu+EXV3phXWx3CYjAutlG4gjiT6B05asxQ9tb/OD9EI5LgtEgqSEI
ARpyPBKnh+bXiHGaEL26WyaZwycYavTiPBqUaDS2FQvaJYPpyirUTOjbu8LbBN6O
+S6O/BQfvsqmKHxZR05rwF2ZspZPoJDDoiM7oYZRW+ftH2EpcM7i16+4G912IXBI
HNAGkSfVsFqpk7TqmI2P3cGG/7fckKbAj030Nck0AoSSNsP6tNJ8cCbB1NyyYCZG
3sl1HnY9uje9+P+UBq2eUw7l2zgvQTABrrBqU+2QJ9gxF5cnsIZaiRjaPtvrz5sU
7UTObLrO1Lsb238UR+bMJUszIFFRK9evQm+49AE3jNK/WYPKAcZLkuzwMuoV0XId
A/SC185udP721V5wL0aYDIK1qEAxkAscnlnnyX++x+jzI6l6fjbMiL4PHUW3/1ha
xUvUB7IrQVSqzI9tfr9I4dgUzF7SD4A34KeXFe7ym+MoBqHVi7fF2nb1UKo9ih+/
8OsZzLGjE9Vc2lbJ7C7yljI4f+jXbjwEaAQ+j2Y/SGDuEr8tWwt0dNbmlPkebcxA
JP//////////AgEC
-----END DH PARAMETERS-----
",
    "-----BEGIN DH PARAMETERS-----
MIIECAKCBAEA///////////JD9qiIWjCNMTGYouA3BzRKQJOCIpnzHQCC76mOxOb
IlFKCHmONATd75UZs806QxswKwpt8l8UN0/hNW1tUcJF5IW1dmJefsb0TELppjft
awv/XLb0Brft7jhr+1qJn6WunyQRfEsf5kkoZlHs5Fs9wgB8uKFjvwWY2kg2HFXT
mmkWP6j9JM9fg2VdI9yjrZYcYvNWIIVSu57VKQdwlpZtZww1Tkq8mATxdGwIyhgh
fDKQXkYuNs474553LBgOhgObJ4Oi7Aeij7XFXfBvTFLJ3ivL9pVYFxg5lUl86pVq
5RXSJhiY+gUQFXKOWoqqxC2tMxcNBFB6M6hVIavfHLpk7PuFBFjb7wqK6nFXXQYM
fbOXD4Wm4eTHq/WujNsJM9cejJTgSiVhnc7j0iYa0u5r8S/6BtmKCGTYdgJzPshq
ZFIfKxgXeyAMu+EXV3phXWx3CYjAutlG4gjiT6B05asxQ9tb/OD9EI5LgtEgqSEI
ARpyPBKnh+bXiHGaEL26WyaZwycYavTiPBqUaDS2FQvaJYPpyirUTOjbu8LbBN6O
+S6O/BQfvsqmKHxZR05rwF2ZspZPoJDDoiM7oYZRW+ftH2EpcM7i16+4G912IXBI
HNAGkSfVsFqpk7TqmI2P3cGG/7fckKbAj030Nck0AoSSNsP6tNJ8cCbB1NyyYCZG
3sl1HnY9uje9+P+UBq2eUw7l2zgvQTABrrBqU+2QJ9gxF5cnsIZaiRjaPtvrz5sU
7UTObLrO1Lsb238UR+bMJUszIFFRK9evQm+49AE3jNK/WYPKAcZLkuzwMuoV0XId
A/SC185udP721V5wL0aYDIK1qEAxkAscnlnnyX++x+jzI6l6fjbMiL4PHUW3/1ha
xUvUB7IrQVSqzI9tfr9I4dgUzF7SD4A34KeXFe7ym+MoBqHVi7fF2nb1UKo9ih+/
8OsZzLGjE9Vc2lbJ7C7yljI4f+jXbjwEaAQ+j2Y/SGDuEr8tWwt0dNbmlPkebb4R
WXSjkm8S/uXkOHd8tqky34zYvsTQc7kxujvIMraNndMAdB+nv4r8R+0ldvaTa6Qk
ZjqrY5xa5PVoNCO0dCvxyXgjjxbL451lLeP9uL78hIrZIiIuBKQDfAcT61eoGiPw
xzRz/GRs6jBrS8vIhi+Dhd36nUt/osCH6HloMwPtW906Bis89bOieKZtKhP4P0T4
Ld8xDuB0q2o2RZfomaAlXcFk8xzFCEaFHfmrSBld7X6hsdUQvX7nTXP682vDHs+i
aDWQRvTrh5+SQAlDi0gcbNeImgAu1e44K8kZDab8Am5HlVjkR1Z36aqeMFDidlaU
38gfVuiAuW5xYMmA3Zjt09///////////wIBAg==
-----END DH PARAMETERS-----
",
];

/// RFC 7919 Appendix A.1, `ffdhe2048` (p, g = 2), as OpenSSL writes it with
/// `openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048`.
const FFDHE2048_PEM: &str = "-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
";

/// Why parameters are not valid (Qt's `QSslDiffieHellmanParameters::Error`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhError {
    /// The parameters are valid (or empty).
    NoError,
    /// The input is not PEM or DER of a PKCS#3 `DHParameter`.
    InvalidInputDataError,
    /// The parameters parse but are unsafe to use.
    UnsafeParametersError,
}

/// Finite-field Diffie-Hellman parameters, held as the DER of a PKCS#3 `DHParameter`
/// (Qt's `QSslDiffieHellmanParameters`).
///
/// `Default` is the empty value: no parameters, which a configuration reads as "the
/// backend's default" (valid, `NoError`, as in Qt).
///
/// What [`from_encoded`](Self::from_encoded) checks:
/// - always: the input is PEM (`DH PARAMETERS`) or DER of `SEQUENCE { p INTEGER,
///   g INTEGER, privateValueLength INTEGER OPTIONAL }` with nothing after it, else
///   [`DhError::InvalidInputDataError`]; p has 2048 to 10 000 bits (OpenSSL uses no
///   longer one), more than 4,096 only for a named group's prime (RFC 7919 `ffdhe6144`,
///   `ffdhe8192`, RFC 3526 `modp_6144`, `modp_8192`: testing another costs seconds to
///   a minute), p is odd and
///   `2 <= g < p - 1`, else [`DhError::UnsafeParametersError`];
/// - with the `openssl` feature, additionally OpenSSL's `DH_check` (p prime, safe prime or
///   q-order subgroup, suitable generator), failing which is also `UnsafeParametersError`.
///
/// Without the feature, primality of p is not tested.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SslDiffieHellmanParameters {
    der: Vec<u8>,
    error: DhError,
}

impl Default for SslDiffieHellmanParameters {
    fn default() -> SslDiffieHellmanParameters {
        SslDiffieHellmanParameters {
            der: Vec::new(),
            error: DhError::NoError,
        }
    }
}

impl fmt::Debug for SslDiffieHellmanParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SslDiffieHellmanParameters")
            .field("bytes", &self.der.len())
            .field("error", &self.error)
            .finish()
    }
}

impl SslDiffieHellmanParameters {
    /// Qt's default parameters: the RFC 7919 `ffdhe2048` group.
    pub fn default_parameters() -> SslDiffieHellmanParameters {
        SslDiffieHellmanParameters::from_encoded(FFDHE2048_PEM.as_bytes())
    }

    /// Parses PEM (`-----BEGIN DH PARAMETERS-----`) or DER of a PKCS#3 `DHParameter`
    /// (Qt's `fromEncoded`, with the format detected). The result carries the outcome in
    /// [`error`](Self::error); failed input leaves no parameters.
    pub fn from_encoded(data: &[u8]) -> SslDiffieHellmanParameters {
        let der = match to_der(data) {
            Some(der) => der,
            None => return SslDiffieHellmanParameters::failed(DhError::InvalidInputDataError),
        };
        let error = check(&der);
        if error == DhError::NoError {
            SslDiffieHellmanParameters { der, error }
        } else {
            SslDiffieHellmanParameters::failed(error)
        }
    }

    fn failed(error: DhError) -> SslDiffieHellmanParameters {
        SslDiffieHellmanParameters {
            der: Vec::new(),
            error,
        }
    }

    /// No parameters and no error (Qt's `isEmpty()`).
    pub fn is_empty(&self) -> bool {
        self.der.is_empty() && self.error == DhError::NoError
    }

    /// No error: usable parameters, or empty (Qt's `isValid()`).
    pub fn is_valid(&self) -> bool {
        self.error == DhError::NoError
    }

    /// The outcome of parsing (Qt's `error()`).
    pub fn error(&self) -> DhError {
        self.error
    }

    /// The outcome in words (Qt's `errorString()`).
    pub fn error_string(&self) -> &'static str {
        match self.error {
            DhError::NoError => "No error",
            DhError::InvalidInputDataError => "Invalid input data",
            DhError::UnsafeParametersError => {
                "The given Diffie-Hellman parameters are deemed unsafe"
            }
        }
    }

    /// The DER of the PKCS#3 `DHParameter`; empty when empty or invalid.
    pub fn to_der(&self) -> Vec<u8> {
        self.der.clone()
    }

    /// The PEM (`DH PARAMETERS`, LF line endings); empty when empty or invalid.
    pub fn to_pem(&self) -> String {
        if self.der.is_empty() {
            return String::new();
        }
        pem::encode_config(
            &pem::Pem::new(PEM_LABEL, self.der.clone()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }
}

/// PEM with our label → its DER; anything else is taken as DER.
fn to_der(data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() {
        return None;
    }
    let text = data.trim_ascii_start();
    if text.starts_with(b"-----BEGIN") {
        let block = pem::parse(text).ok()?;
        (block.tag() == PEM_LABEL).then(|| block.into_contents())
    } else {
        Some(data.to_vec())
    }
}

/// p and g of a PKCS#3 `DHParameter`, big-endian without leading zeros.
fn decode(der: &[u8]) -> der::Result<(Vec<u8>, Vec<u8>)> {
    let mut reader = SliceReader::new(der)?;
    let params = reader.sequence(|r| {
        let p = UintRef::decode(r)?.as_bytes().to_vec();
        let g = UintRef::decode(r)?.as_bytes().to_vec();
        let _private_value_length: Option<u32> = r.decode()?;
        Ok((p, g))
    })?;
    reader.finish(params)
}

/// The verdict on parameters in DER.
fn check(der: &[u8]) -> DhError {
    let Ok((p, g)) = decode(der) else {
        return DhError::InvalidInputDataError;
    };
    if !structurally_safe(&p, &g) {
        return DhError::UnsafeParametersError;
    }
    if bits(&p) > TESTED_PRIME_BITS && !named_long_prime(&p) {
        return DhError::UnsafeParametersError;
    }
    openssl_check(der)
}

/// Whether `p` is the prime of one of [`NAMED_LONG_GROUPS`].
fn named_long_prime(p: &[u8]) -> bool {
    static PRIMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    PRIMES
        .get_or_init(|| {
            NAMED_LONG_GROUPS
                .iter()
                .filter_map(|pem| decode(&to_der(pem.as_bytes())?).ok())
                .map(|(p, _)| p)
                .collect()
        })
        .iter()
        .any(|named| named.as_slice() == p)
}

fn bits(n: &[u8]) -> usize {
    match n.first() {
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// p long enough but not too long, and odd, 2 <= g < p - 1 (numbers big-endian, no
/// leading zeros).
fn structurally_safe(p: &[u8], g: &[u8]) -> bool {
    if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits(p))
        || p.last().is_none_or(|last| last.is_multiple_of(2))
    {
        return false;
    }
    if bits(g) < 2 {
        return false; // g is 0 or 1
    }
    // p is odd, so p - 1 only clears the lowest bit and keeps its length.
    let mut p_minus_1 = p.to_vec();
    if let Some(last) = p_minus_1.last_mut() {
        *last -= 1;
    }
    g.len() < p_minus_1.len() || (g.len() == p_minus_1.len() && g < p_minus_1.as_slice())
}

#[cfg(feature = "openssl")]
fn openssl_check(der: &[u8]) -> DhError {
    match openssl::dh::Dh::params_from_der(der) {
        Ok(dh) => match dh.check_key() {
            Ok(true) => DhError::NoError,
            _ => DhError::UnsafeParametersError,
        },
        Err(_) => DhError::InvalidInputDataError,
    }
}

#[cfg(not(feature = "openssl"))]
fn openssl_check(_der: &[u8]) -> DhError {
    DhError::NoError
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::test_openssl::{TestResult, Workdir};

    /// 1024 bits, made with `openssl genpkey -genparam -algorithm DH
    /// -pkeyopt dh_paramgen_prime_len:1024 -pkeyopt dh_paramgen_type:0`.
    const DH1024_PEM: &str = "-----BEGIN DH PARAMETERS-----
MIGHAoGBAMF2rEcBPEI208qr9GksPOhBrmv+9KC6oYrpwFTZYbh8ExF0WEl4OUUZ
G4+0CU/8Srs7ZiabYwAM0rsgOMc9AtLlFObM0kMZa7i4OrNVcHgN8InvyDP9+UEE
KlgqHXfZ2Kzuu1c1Al4O3UtgwajIYJoyTJntP25u5G/w/Slc6nS/AgEC
-----END DH PARAMETERS-----
";

    #[test]
    fn the_empty_value_is_empty_and_valid() {
        let dh = SslDiffieHellmanParameters::default();
        assert!(dh.is_empty());
        assert!(dh.is_valid());
        assert_eq!(dh.error(), DhError::NoError);
        assert_eq!(dh.error_string(), "No error");
        assert!(dh.to_pem().is_empty());
    }

    #[test]
    fn the_default_parameters_are_ffdhe2048_and_valid() -> TestResult {
        let dh = SslDiffieHellmanParameters::default_parameters();
        assert!(dh.is_valid(), "{}", dh.error_string());
        assert!(!dh.is_empty());
        let (p, g) = decode(&dh.to_der())?;
        assert_eq!(bits(&p), 2048);
        assert_eq!(g, [2]);
        // RFC 7919 A.1: p begins and ends with 64 one bits.
        assert_eq!(p[..8], [0xff; 8]);
        assert_eq!(p[p.len() - 8..], [0xff; 8]);
        Ok(())
    }

    #[test]
    fn the_default_parameters_are_what_openssl_makes() -> TestResult {
        let work = Workdir::new()?;
        work.openssl(&[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            "ff.pem",
        ])?;
        work.openssl(&[
            "dhparam", "-in", "ff.pem", "-outform", "DER", "-out", "ff.der",
        ])?;
        let theirs = std::fs::read(work.path("ff.der"))?;
        assert_eq!(
            SslDiffieHellmanParameters::default_parameters().to_der(),
            theirs
        );
        Ok(())
    }

    #[test]
    fn pem_and_der_round_trip() {
        let dh = SslDiffieHellmanParameters::default_parameters();
        let from_der = SslDiffieHellmanParameters::from_encoded(&dh.to_der());
        assert_eq!(from_der, dh);
        assert_eq!(dh.to_pem(), FFDHE2048_PEM);
        let from_pem = SslDiffieHellmanParameters::from_encoded(dh.to_pem().as_bytes());
        assert_eq!(from_pem, dh);
    }

    #[test]
    fn a_1024_bit_group_is_unsafe() {
        let dh = SslDiffieHellmanParameters::from_encoded(DH1024_PEM.as_bytes());
        assert_eq!(dh.error(), DhError::UnsafeParametersError);
        assert!(!dh.is_valid());
        assert!(!dh.is_empty());
        assert!(dh.to_der().is_empty());
    }

    #[test]
    fn garbage_is_invalid_input() {
        for input in [
            &b""[..],
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"\x30\x03\x02\x01\x02",
        ] {
            let dh = SslDiffieHellmanParameters::from_encoded(input);
            assert_eq!(dh.error(), DhError::InvalidInputDataError, "{input:?}");
            assert_eq!(dh.error_string(), "Invalid input data");
        }
        // Trailing bytes after the structure.
        let mut der = SslDiffieHellmanParameters::default_parameters().to_der();
        der.push(0);
        let dh = SslDiffieHellmanParameters::from_encoded(&der);
        assert_eq!(dh.error(), DhError::InvalidInputDataError);
    }

    #[test]
    fn bad_generators_are_unsafe() -> TestResult {
        let (p, _) = decode(&SslDiffieHellmanParameters::default_parameters().to_der())?;
        let mut p_minus_1 = p.clone();
        if let Some(last) = p_minus_1.last_mut() {
            *last -= 1;
        }
        for g in [vec![1u8], p_minus_1, p.clone()] {
            assert!(!structurally_safe(&p, &g));
        }
        assert!(structurally_safe(&p, &[5]));
        Ok(())
    }

    #[test]
    fn long_primes_are_taken_only_from_named_groups() -> TestResult {
        let started = std::time::Instant::now();
        for pem in NAMED_LONG_GROUPS {
            let dh = SslDiffieHellmanParameters::from_encoded(pem.as_bytes());
            assert_eq!(dh.error(), DhError::NoError, "{pem}");
        }
        // A named group's prime with one byte changed in its middle: odd and long, but no
        // named group's, refused before any primality test.
        let der = to_der(NAMED_LONG_GROUPS[1].as_bytes()).ok_or("the named group")?;
        let mut changed = der.clone();
        if let Some(byte) = changed.get_mut(500) {
            *byte ^= 0x10;
        }
        let dh = SslDiffieHellmanParameters::from_encoded(&changed);
        assert_eq!(dh.error(), DhError::UnsafeParametersError);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        Ok(())
    }
}
