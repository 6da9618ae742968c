//! Alerts as far as the safe `openssl` API shows them.
//!
//! There is no safe info callback, so alerts are read from what OpenSSL reports anyway: a
//! fatal alert received appears in the error stack as reason `1000 + code`; a close_notify
//! received is `ZERO_RETURN`; the alert we send when we refuse a peer follows from the
//! verification error we leave in the store context, through OpenSSL's own table.

use openssl::error::ErrorStack;

use crate::enums::{Alert, AlertLevel, AlertType};

/// `ERR_LIB_SSL`.
const LIB_SSL: i32 = 20;
/// `SSL_AD_REASON_OFFSET`: an SSL reason code of 1000 + n is "alert n received".
const ALERT_REASON_OFFSET: i32 = 1000;
/// `SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE`.
const PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;

fn ssl_reasons(error: &openssl::ssl::Error) -> impl Iterator<Item = i32> + '_ {
    error
        .ssl_error()
        .map(ErrorStack::errors)
        .unwrap_or_default()
        .iter()
        .filter(|e| e.library_code() == LIB_SSL)
        .map(openssl::error::Error::reason_code)
}

/// The fatal alert the peer sent, when `error` is one.
pub(crate) fn received(error: &openssl::ssl::Error) -> Option<Alert> {
    ssl_reasons(error)
        .filter_map(|code| code.checked_sub(ALERT_REASON_OFFSET))
        .find_map(|code| u8::try_from(code).ok())
        .map(|code| alert(AlertLevel::Fatal, code))
}

/// Whether `error` is a server's "the client sent no certificate" (`VerifyPeer`).
pub(crate) fn missing_peer_certificate(error: &openssl::ssl::Error) -> bool {
    ssl_reasons(error).any(|code| code == PEER_DID_NOT_RETURN_A_CERTIFICATE)
}

/// close_notify, either way.
pub(crate) fn close_notify() -> Alert {
    alert(AlertLevel::Warning, 0)
}

/// The alert OpenSSL sends when verification fails with this `X509_V_ERR_*` code.
pub(crate) fn for_verify_error(code: i32) -> Alert {
    alert(AlertLevel::Fatal, alert_for(code))
}

fn alert(level: AlertLevel, code: u8) -> Alert {
    let kind = AlertType::from_code(code);
    Alert {
        level,
        kind,
        description: format!("{kind:?}"),
    }
}

/// The alert OpenSSL sends for a verification error (`ssl_x509err2alert`, OpenSSL 3.0).
fn alert_for(code: i32) -> u8 {
    const HANDSHAKE_FAILURE: u8 = 40;
    const BAD_CERTIFICATE: u8 = 42;
    const UNSUPPORTED_CERTIFICATE: u8 = 43;
    const CERTIFICATE_REVOKED: u8 = 44;
    const CERTIFICATE_EXPIRED: u8 = 45;
    const CERTIFICATE_UNKNOWN: u8 = 46;
    const UNKNOWN_CA: u8 = 48;
    const DECRYPT_ERROR: u8 = 51;
    const INTERNAL_ERROR: u8 = 80;
    match code {
        50 => HANDSHAKE_FAILURE,
        4 | 6 | 9 | 11 | 13..=16 | 27 | 28 | 45 | 51..=53 | 62..=68 | 94 => BAD_CERTIFICATE,
        26 => UNSUPPORTED_CERTIFICATE,
        23 => CERTIFICATE_REVOKED,
        10 | 12 => CERTIFICATE_EXPIRED,
        2 | 3 | 18..=22 | 25 | 33 | 79 => UNKNOWN_CA,
        7 | 8 => DECRYPT_ERROR,
        17 | 69 | 70 => INTERNAL_ERROR,
        _ => CERTIFICATE_UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_send_the_alert_openssl_chooses() {
        assert_eq!(alert_for(10), 45);
        assert_eq!(alert_for(20), 48);
        assert_eq!(alert_for(62), 42);
        assert_eq!(alert_for(79), 48);
        assert_eq!(alert_for(0), 46);
    }
}
