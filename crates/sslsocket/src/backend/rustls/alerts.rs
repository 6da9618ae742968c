//! Alerts from rustls errors.
//!
//! rustls reports a received fatal alert as an error and never reports the alerts it
//! sends; the description of a sent alert is inferred from the error, as rustls itself
//! chooses it (best effort for the errors rustls does not map publicly).

use rustls::{AlertDescription, Error};

use crate::enums::{Alert, AlertLevel, AlertType};

/// The alert the peer sent, when `error` is one.
pub(crate) fn received(error: &Error) -> Option<Alert> {
    match error {
        Error::AlertReceived(desc) => Some(alert(AlertLevel::Fatal, *desc)),
        _ => None,
    }
}

/// The alert rustls sent because of `error`, when it sends one.
pub(crate) fn sent(error: &Error) -> Option<Alert> {
    let desc = match error {
        Error::AlertReceived(_) | Error::General(_) => return None,
        Error::InvalidCertificate(e) => AlertDescription::from(e.clone()),
        Error::InvalidMessage(e) => AlertDescription::from(*e),
        Error::DecryptError => AlertDescription::BadRecordMac,
        Error::PeerIncompatible(why) => incompatible(why),
        Error::PeerMisbehaved(_) => AlertDescription::IllegalParameter,
        Error::NoCertificatesPresented => AlertDescription::CertificateRequired,
        Error::NoApplicationProtocol => AlertDescription::NoApplicationProtocol,
        Error::InappropriateMessage { .. } | Error::InappropriateHandshakeMessage { .. } => {
            AlertDescription::UnexpectedMessage
        }
        _ => AlertDescription::InternalError,
    };
    Some(alert(AlertLevel::Fatal, desc))
}

/// The alert rustls sends for a peer it cannot work with: `protocol_version` where the
/// versions do not meet (rustls 0.23's `send_fatal_alert` sites: server `hs.rs` and client
/// `hs.rs`), else `handshake_failure`.
fn incompatible(why: &rustls::PeerIncompatible) -> AlertDescription {
    use rustls::PeerIncompatible::*;
    match why {
        Tls12NotOfferedOrEnabled
        | Tls13RequiredForQuic
        | Tls12NotOffered
        | SupportedVersionsExtensionRequired
        | ServerTlsVersionIsDisabledByOurConfig
        | ServerDoesNotSupportTls12Or13 => AlertDescription::ProtocolVersion,
        _ => AlertDescription::HandshakeFailure,
    }
}

/// Our close_notify.
pub(crate) fn close_notify() -> Alert {
    alert(AlertLevel::Warning, AlertDescription::CloseNotify)
}

fn alert(level: AlertLevel, desc: AlertDescription) -> Alert {
    let code = u8::from(desc);
    Alert {
        level,
        kind: AlertType::from_code(code),
        // rustls's name of the description (its `Debug` text), without formatting.
        description: desc
            .as_str()
            .map_or_else(|| format!("{desc:?}"), str::to_string),
    }
}
