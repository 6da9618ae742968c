//! Alerts: every one sent and received, warnings included, from OpenSSL's info callback
//! (`sslsocket_openssl_ext::set_alert_callback`); and the fatal alert received that ended a
//! handshake, from the error stack (reason `1000 + code`), for the failure's message.

use openssl::error::ErrorStack;
use sslsocket_openssl_ext::{StreamError, SSL_CB_ALERT, SSL_CB_READ, SSL_CB_WRITE};

use crate::backend::BackendNotice;
use crate::enums::{Alert, AlertLevel, AlertType};

/// `ERR_LIB_SSL`.
const LIB_SSL: i32 = 20;
/// `SSL_AD_REASON_OFFSET`: an SSL reason code of 1000 + n is "alert n received".
const ALERT_REASON_OFFSET: i32 = 1000;
/// `SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE`.
const PEER_DID_NOT_RETURN_A_CERTIFICATE: i32 = 199;

fn ssl_reasons(error: &StreamError) -> impl Iterator<Item = i32> + '_ {
    error
        .ssl_error()
        .map(ErrorStack::errors)
        .unwrap_or_default()
        .iter()
        .filter(|e| e.library_code() == LIB_SSL)
        .map(openssl::error::Error::reason_code)
}

/// The fatal alert the peer sent, when `error` is one.
pub(crate) fn received(error: &StreamError) -> Option<Alert> {
    ssl_reasons(error)
        .filter_map(|code| code.checked_sub(ALERT_REASON_OFFSET))
        .find_map(|code| u8::try_from(code).ok())
        .map(|code| alert(AlertLevel::Fatal, code))
}

/// Whether `error` is a server's "the client sent no certificate" (`VerifyPeer`).
pub(crate) fn missing_peer_certificate(error: &StreamError) -> bool {
    ssl_reasons(error).any(|code| code == PEER_DID_NOT_RETURN_A_CERTIFICATE)
}

/// The notice for one call of the info callback, when it reports an alert: `where`
/// says read (received) or write (sent), `ret` holds the level (`>> 8`: 1 warning,
/// 2 fatal) and the description (`& 0xff`).
pub(crate) fn from_info(where_: i32, ret: i32) -> Option<BackendNotice> {
    if where_ & SSL_CB_ALERT == 0 {
        return None;
    }
    let level = match (ret >> 8) & 0xff {
        1 => AlertLevel::Warning,
        2 => AlertLevel::Fatal,
        _ => AlertLevel::Unknown,
    };
    let alert = alert(level, u8::try_from(ret & 0xff).unwrap_or_default());
    if where_ & SSL_CB_READ != 0 {
        Some(BackendNotice::AlertReceived(alert))
    } else if where_ & SSL_CB_WRITE != 0 {
        Some(BackendNotice::AlertSent(alert))
    } else {
        None
    }
}

fn alert(level: AlertLevel, code: u8) -> Alert {
    let kind = AlertType::from_code(code);
    Alert {
        level,
        kind,
        description: format!("{kind:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_callback_alerts_carry_direction_level_and_kind() {
        let read = SSL_CB_ALERT | SSL_CB_READ;
        let write = SSL_CB_ALERT | SSL_CB_WRITE;
        assert_eq!(
            from_info(read, 0x0100),
            Some(BackendNotice::AlertReceived(alert(AlertLevel::Warning, 0)))
        );
        let unknown_ca = alert(AlertLevel::Fatal, 48);
        assert_eq!(unknown_ca.kind, AlertType::UnknownCa);
        assert_eq!(
            from_info(write, 0x0230),
            Some(BackendNotice::AlertSent(unknown_ca))
        );
        assert_eq!(from_info(SSL_CB_READ, 0x0100), None);
    }
}
