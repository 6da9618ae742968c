//! A strict reading of the DER a certificate's extensions are written in, for the rules
//! webpki applies and OpenSSL and x509-parser do not (both take BER forms and bytes after
//! a value): the certificate is parsed by x509-parser as before; this only says whether
//! the bytes it took are DER.
//!
//! Checked at every level: the tag in its shortest form, a definite length in its shortest
//! form, nothing after the last element, constructed encodings made of whole elements; the
//! primitive forms whose DER is fixed: BOOLEAN (`00` or `ff`), INTEGER (shortest),
//! BIT STRING (unused bits 0 to 7, zero, none in an empty string), NULL (empty), OBJECT
//! IDENTIFIER and RELATIVE-OID (shortest subidentifiers). Any other tag, universal or not,
//! is content of a valid length and nothing more (the der crate refuses the universal tags
//! it does not know, such as GeneralString in a Kerberos principal name).

/// Deeper nesting than any extension has is refused, not followed.
const MAX_DEPTH: usize = 16;

/// One element's header: its tag byte, whether it is constructed, and where its content
/// lies in the input.
struct Element<'a> {
    tag: u8,
    constructed: bool,
    content: &'a [u8],
}

/// Reads one element from the front of `input`; the element and what follows it.
fn element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&first, mut rest) = input.split_first()?;
    if first & 0x1f == 0x1f {
        // High tag number form: base 128, shortest, and only for numbers above 30.
        let (&lead, _) = rest.split_first()?;
        if lead == 0x80 {
            return None;
        }
        let mut number: u32 = 0;
        loop {
            let (&byte, after) = rest.split_first()?;
            rest = after;
            number = number.checked_mul(128)? | u32::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                break;
            }
        }
        if number < 31 {
            return None;
        }
    }
    let (&len_byte, after) = rest.split_first()?;
    rest = after;
    let len = match len_byte {
        0..=0x7f => usize::from(len_byte),
        // Indefinite (BER only) or more length bytes than any input here needs.
        0x80 | 0x85.. => return None,
        _ => {
            let count = usize::from(len_byte & 0x7f);
            let (bytes, after) = rest.split_at_checked(count)?;
            rest = after;
            // Shortest form: no leading zero byte, and the long form only past 127.
            if bytes.first() == Some(&0) {
                return None;
            }
            let len = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
            if len < 0x80 {
                return None;
            }
            len
        }
    };
    let (content, rest) = rest.split_at_checked(len)?;
    let element = Element {
        tag: first,
        constructed: first & 0x20 != 0,
        content,
    };
    Some((element, rest))
}

/// Whether `input` is a run of whole DER elements (possibly none).
fn elements(mut input: &[u8], depth: usize) -> bool {
    while !input.is_empty() {
        let Some((element, rest)) = element(input) else {
            return false;
        };
        if !valid(&element, depth) {
            return false;
        }
        input = rest;
    }
    true
}

fn valid(element: &Element<'_>, depth: usize) -> bool {
    let content = element.content;
    if element.constructed {
        // Of the universal types only SEQUENCE and SET are constructed in DER (a
        // constructed string is BER's way of cutting it in pieces).
        let universal = element.tag & 0xc0 == 0;
        if universal && !matches!(element.tag, 0x30 | 0x31) {
            return false;
        }
        return depth < MAX_DEPTH && elements(content, depth + 1);
    }
    match element.tag {
        // BOOLEAN
        0x01 => matches!(content, [0x00] | [0xff]),
        // INTEGER, ENUMERATED: shortest two's complement.
        0x02 | 0x0a => match content {
            [] => false,
            [0x00, next, ..] => next & 0x80 != 0,
            [0xff, next, ..] => next & 0x80 == 0,
            _ => true,
        },
        // BIT STRING
        0x03 => match content {
            [] => false,
            [unused] => *unused == 0,
            [unused, .., last] => *unused < 8 && last & ((1u8 << unused) - 1) == 0,
        },
        // NULL
        0x05 => content.is_empty(),
        // OBJECT IDENTIFIER, RELATIVE-OID
        0x06 | 0x0d => is_shortest_oid(content),
        _ => true,
    }
}

/// Whether `content` is a non-empty run of subidentifiers in their shortest form.
pub(crate) fn is_shortest_oid(content: &[u8]) -> bool {
    let mut starts = true;
    for &byte in content {
        if starts && byte == 0x80 {
            return false;
        }
        starts = byte & 0x80 == 0;
    }
    !content.is_empty() && starts
}

/// Whether `value` is exactly one DER element, nothing after it.
pub(crate) fn is_one_value(value: &[u8]) -> bool {
    match element(value) {
        Some((element, rest)) => rest.is_empty() && valid(&element, 0),
        None => false,
    }
}

/// Whether the names and extensions of the certificate `der` are written in DER: the
/// issuer and subject names whole; the extension list, each extension's identifier, its
/// `critical` flag (as webpki reads it: `ff`, or the `00` DER leaves out but certificates
/// carry) and the framing of its value (whose content is for the extension's own reader).
/// `false` for bytes that are not a certificate at all.
pub(crate) fn names_and_extensions_are_der(der: &[u8]) -> bool {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    let Some((certificate, _)) = element(der) else {
        return false;
    };
    let Some((tbs, _)) = element(certificate.content) else {
        return false;
    };
    // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
    //   issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3] extensions }:
    // after the version, the issuer is field 2 and the subject field 4; nothing follows
    // the extensions.
    let mut rest = tbs.content;
    let mut index = 0;
    let mut version_possible = true;
    let mut extensions_seen = false;
    while !rest.is_empty() {
        let Some((field, after)) = element(rest) else {
            return false;
        };
        let whole = rest.get(..rest.len() - after.len()).unwrap_or_default();
        rest = after;
        if extensions_seen {
            return false;
        }
        if std::mem::take(&mut version_possible) && field.tag == 0xa0 {
            continue;
        }
        if (index == 2 || index == 4) && !(field.tag == 0x30 && is_one_value(whole)) {
            return false;
        }
        if field.tag == 0xa3 {
            if !is_one_value(field.content) {
                return false;
            }
            extensions_seen = true;
        }
        index += 1;
    }
    index > 4
}

/// Whether the validity times (`notBefore`, `notAfter`) of the certificate `der` are each
/// in their DER form, as OpenSSL's `X509_cmp_time` reads them (and webpki): a UTCTime of
/// exactly `YYMMDDHHMMSSZ`, a GeneralizedTime of exactly `YYYYMMDDHHMMSSZ`, every field in
/// its range. Seconds left out, a fraction, an offset instead of `Z` are BER forms OpenSSL
/// reports as `X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD` / `..._NOT_AFTER_FIELD` (Qt's
/// `InvalidNotBeforeField`, `InvalidNotAfterField`) and webpki refuses (`BadDerTime`).
/// `(false, false)` for bytes that are not a certificate.
pub(crate) fn validity_times_are_der(der: &[u8]) -> (bool, bool) {
    validity_fields(der).unwrap_or((false, false))
}

/// [`validity_times_are_der`] of bytes shaped as a certificate up to its validity (two
/// elements inside it); `None` when the bytes do not reach that far. For a certificate our
/// parser refuses: which of its times are the reason OpenSSL would give.
pub(crate) fn validity_fields(der: &[u8]) -> Option<(bool, bool)> {
    let validity = (|| {
        let (certificate, _) = element(der)?;
        let (tbs, _) = element(certificate.content)?;
        let mut rest = tbs.content;
        // [0] version OPTIONAL, serialNumber, signature, issuer, validity.
        let (first, after) = element(rest)?;
        if first.tag == 0xa0 {
            rest = after;
        }
        for _ in 0..3 {
            rest = element(rest)?.1;
        }
        let (validity, _) = element(rest)?;
        (validity.tag == 0x30).then_some(validity.content)
    })();
    let (not_before, rest) = element(validity?)?;
    let (not_after, after) = element(rest)?;
    Some((
        is_der_time(&not_before),
        after.is_empty() && is_der_time(&not_after),
    ))
}

/// Whether `time` is a UTCTime or GeneralizedTime in its DER form (see
/// [`validity_times_are_der`]).
fn is_der_time(time: &Element<'_>) -> bool {
    let digits = match (time.tag, time.content) {
        (0x17, [digits @ .., b'Z']) if digits.len() == 12 => digits,
        (0x18, [digits @ .., b'Z']) if digits.len() == 14 => digits,
        _ => return false,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let number = |at: usize| -> u32 {
        digits.get(at..at + 2).map_or(99, |pair| {
            pair.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
        })
    };
    // Month, day, hour, minute, second after the year (2 or 4 digits).
    let year_digits = digits.len() - 10;
    let year = digits.get(..year_digits).map_or(0, |y| {
        y.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    });
    let year = if year_digits == 2 {
        if year < 50 {
            2000 + year
        } else {
            1900 + year
        }
    } else {
        year
    };
    let (month, day) = (number(year_digits), number(year_digits + 2));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
        && number(year_digits + 4) < 24
        && number(year_digits + 6) < 60
        && number(year_digits + 8) < 60
}

/// The tags of a GeneralName (RFC 5280 4.2.1.6) in DER: the string and address choices
/// primitive, the structured ones constructed (a constructed string is BER).
fn is_general_name(tag: u8) -> bool {
    matches!(
        tag,
        0xa0 | 0x81 | 0x82 | 0xa3 | 0xa4 | 0xa5 | 0x86 | 0x87 | 0x88
    )
}

/// Whether every element of `content` passes `f` (and `content` is whole elements).
fn each(mut content: &[u8], f: impl Fn(&Element<'_>) -> bool) -> bool {
    while !content.is_empty() {
        match element(content) {
            Some((item, rest)) if f(&item) => content = rest,
            _ => return false,
        }
    }
    true
}

/// Whether `value` (subjectAltName, issuerAltName: GeneralNames) is a SEQUENCE of general
/// names each in its DER form.
pub(crate) fn general_names_are_der(value: &[u8]) -> bool {
    matches!(element(value), Some((names, rest))
        if rest.is_empty() && names.tag == 0x30 && each(names.content, |n| is_general_name(n.tag)))
}

/// Whether `value` (nameConstraints) is in its DER form as RFC 5280 4.2.1.10 profiles it:
/// `SEQUENCE { [0] permitted OPTIONAL, [1] excluded OPTIONAL }`, in that order, at least
/// one, each a non-empty run of `GeneralSubtree ::= SEQUENCE { base GeneralName }` (the
/// minimum is 0, which DER leaves out, and no maximum), as webpki reads it. (x509-parser
/// takes only the first `[1]`, and OpenSSL a written-out minimum: round 36, a second
/// exclusion, one before the permitted names, or a bound was read differently by each.)
pub(crate) fn name_constraints_are_der(value: &[u8]) -> bool {
    let subtree = |tree: &Element<'_>| {
        tree.tag == 0x30
            && matches!(element(tree.content), Some((base, rest))
                if rest.is_empty() && is_general_name(base.tag))
    };
    let Some((constraints, rest)) = element(value) else {
        return false;
    };
    if !rest.is_empty() || constraints.tag != 0x30 {
        return false;
    }
    let mut fields = constraints.content;
    let mut seen = 0;
    for tag in [0xa0, 0xa1] {
        let Some((trees, after)) = element(fields) else {
            break;
        };
        if trees.tag != tag {
            continue;
        }
        if trees.content.is_empty() || !each(trees.content, subtree) {
            return false;
        }
        seen += 1;
        fields = after;
    }
    seen > 0 && fields.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_forms_pass_and_ber_forms_do_not() {
        // basicConstraints CA:TRUE
        assert!(is_one_value(&[0x30, 0x03, 0x01, 0x01, 0xff]));
        // bytes after, BER length, BER TRUE, a length past the end, indefinite length
        assert!(!is_one_value(&[0x30, 0x03, 0x01, 0x01, 0xff, 0x00, 0x00]));
        assert!(!is_one_value(&[0x30, 0x81, 0x03, 0x01, 0x01, 0xff]));
        assert!(!is_one_value(&[0x30, 0x03, 0x01, 0x01, 0x01]));
        assert!(!is_one_value(&[0x30, 0x04, 0x01, 0x01, 0xff]));
        assert!(!is_one_value(&[0x30, 0x80, 0x01, 0x01, 0xff, 0x00, 0x00]));
        // INTEGER: 0, 127, 128 shortest; 00 7f and ff 80 are not
        assert!(is_one_value(&[0x02, 0x01, 0x00]));
        assert!(is_one_value(&[0x02, 0x02, 0x00, 0x80]));
        assert!(!is_one_value(&[0x02, 0x02, 0x00, 0x7f]));
        assert!(!is_one_value(&[0x02, 0x02, 0xff, 0x80]));
        assert!(!is_one_value(&[0x02, 0x00]));
        // BIT STRING: padding bits must be zero
        assert!(is_one_value(&[0x03, 0x02, 0x05, 0xa0]));
        assert!(!is_one_value(&[0x03, 0x02, 0x05, 0xa1]));
        assert!(!is_one_value(&[0x03, 0x01, 0x01]));
        // OID 2.5.29.19, and with a padded subidentifier or a cut one
        assert!(is_one_value(&[0x06, 0x03, 0x55, 0x1d, 0x13]));
        assert!(!is_one_value(&[0x06, 0x04, 0x55, 0x1d, 0x80, 0x13]));
        assert!(!is_one_value(&[0x06, 0x02, 0x55, 0x9d]));
        // A GeneralString (universal 27) and a UniversalString (28): content only.
        assert!(is_one_value(&[0x30, 0x04, 0x1b, 0x02, b'A', b'B']));
        assert!(is_one_value(&[0x30, 0x06, 0x1c, 0x04, 0, 0, 0, b'A']));
        // A high tag number that fits the low form is not DER.
        assert!(!is_one_value(&[0x1f, 0x05, 0x00]));
        assert!(is_one_value(&[0x1f, 0x1f, 0x00]));
        // A constructed OCTET STRING (BER) is not DER.
        assert!(!is_one_value(&[0x24, 0x04, 0x04, 0x02, 0x01, 0x02]));
    }

    #[test]
    fn general_names_take_their_der_forms_only() {
        // dNSName "a", then the same constructed (BER), an otherName primitive (wrong)
        assert!(general_names_are_der(&[0x30, 0x03, 0x82, 0x01, b'a']));
        assert!(!general_names_are_der(&[
            0x30, 0x05, 0xa2, 0x03, 0x16, 0x01, b'a'
        ]));
        assert!(!general_names_are_der(&[0x30, 0x03, 0x80, 0x01, 0x00]));
        // nameConstraints excluding dNSName "a", then the base constructed
        let good = [0x30, 0x07, 0xa1, 0x05, 0x30, 0x03, 0x82, 0x01, b'a'];
        assert!(name_constraints_are_der(&good));
        let ber = [
            0x30, 0x09, 0xa1, 0x07, 0x30, 0x05, 0xa2, 0x03, 0x16, 0x01, b'a',
        ];
        assert!(!name_constraints_are_der(&ber));
    }

    #[test]
    fn validity_times_take_their_der_forms_only() {
        let der = |tag: u8, text: &[u8]| {
            let mut bytes = vec![tag, u8::try_from(text.len()).unwrap_or(0)];
            bytes.extend_from_slice(text);
            bytes
        };
        let check = |bytes: &[u8]| match element(bytes) {
            Some((time, [])) => is_der_time(&time),
            _ => false,
        };
        assert!(check(&der(0x17, b"200101000000Z")));
        assert!(check(&der(0x18, b"20200229235959Z")));
        assert!(check(&der(0x18, b"20400101000000Z")));
        // Seconds left out, an offset, a fraction, no Z, a day or hour out of range.
        assert!(!check(&der(0x17, b"2001010000Z")));
        assert!(!check(&der(0x17, b"200101000000+0100")));
        assert!(!check(&der(0x18, b"20200101000000.5Z")));
        assert!(!check(&der(0x18, b"20200101000000")));
        assert!(!check(&der(0x18, b"20210229000000Z")));
        assert!(!check(&der(0x17, b"200101240000Z")));
        assert!(!check(&der(0x17, b"20010100000aZ")));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut value = vec![0x05, 0x00];
        for _ in 0..MAX_DEPTH + 1 {
            let mut outer = vec![0x30, u8::try_from(value.len()).unwrap_or(0)];
            outer.extend_from_slice(&value);
            value = outer;
        }
        assert!(value.len() < 0x80);
        assert!(!is_one_value(&value));
    }
}
