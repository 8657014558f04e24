//! Webhooks, the pure part (no pgrx): Standard Webhooks signatures (the retry backoff is crate::retry),
//! `Retry-After`, the host allow-list (its address policy is egress.rs), and what an HTTP
//! answer means for a delivery.
//! The delivery loop that uses them runs in the background worker (src/webhook_delivery.rs).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::egress;

/// Why a webhook setting is refused. Never carries the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the secret must be whsec_ followed by base64 of 16 to 64 bytes")]
    BadSecret,
    #[error("url {0:?} is not an http:// or https:// URL with a host")]
    BadUrl(String),
    /// The host, or one of its addresses, is not allowed (the message names which and why).
    #[error("{0}")]
    HostNotAllowed(egress::Refusal),
}

/// The key of a `whsec_<base64>` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = B64.decode(encoded).map_err(|_| WebhookError::BadSecret)?;
    if key.len() < 16 || key.len() > 64 {
        return Err(WebhookError::BadSecret);
    }
    Ok(key)
}

/// The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// A fresh secret from 32 random bytes.
pub fn new_secret(random: &[u8; 32]) -> String {
    format!("whsec_{}", B64.encode(random))
}

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// A `Retry-After` value: delay-seconds, or an HTTP-date (IMF-fixdate) compared to `now`
/// (Unix seconds). None when it cannot be read; capped at a day; a date past is zero.
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = value.parse().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = parse_imf_fixdate(value)?;
    Some(Duration::from_secs(at.saturating_sub(now).max(0) as u64).min(MAX_RETRY_AFTER))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as Unix seconds.
fn parse_imf_fixdate(value: &str) -> Option<i64> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" || !parts[0].ends_with(',') {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[2])? as i64 + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 || !(1..=31).contains(&day) || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The host (lower case, without brackets) and port of an http(s) URL.
pub fn url_host(url: &str) -> Result<(String, u16), WebhookError> {
    let bad = || WebhookError::BadUrl(url.to_string());
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        return Err(bad());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// Does `lowcode.webhook_allow` allow this URL, as far as can be told without a DNS lookup
/// (at create_webhook time)? Entries: `host`, `*.domain`, `*`, a literal address or a CIDR
/// range (`10.1.2.0/24`, `fd00::/8`), each optionally `:port`; empty allows nothing (see
/// egress.rs). A host a resolver reads as an address (`127.1`, `2130706433`, `[::1]` ...)
/// is decided on that address: a loopback, private, link-local ... address must be named, a
/// wildcard never allows it. A name is checked against the names and wildcards (never
/// `localhost` by a wildcard); its addresses are checked when sending ([`vet_url`]).
pub fn host_allowed(url: &str, allow: &str) -> Result<(), WebhookError> {
    let (host, port) = url_host(url)?;
    egress::decide_name(&host, port, &egress::parse_allow(allow))
        .map_err(WebhookError::HostNotAllowed)
}

/// The check that counts, made when sending: resolves the URL's host, checks every address
/// it resolves to against `lowcode.webhook_allow`, and returns them: the only addresses the
/// request may connect to (pin them, [`egress::Pin`]). Blocking (a DNS lookup).
pub fn vet_url(url: &str, allow: &str) -> Result<egress::Vetted, WebhookError> {
    let (host, port) = url_host(url)?;
    egress::vet(&host, port, allow).map_err(WebhookError::HostNotAllowed)
}

/// What an attempt's result means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: acknowledge.
    Delivered,
    /// 410 Gone: the endpoint asks not to be called again: disable the webhook.
    Gone,
    /// Anything else (a redirect, which is never followed, 4xx, 5xx, a network error or a
    /// timeout): try again later; `after` when a 429 or 503 said when (Retry-After).
    Retry { after: Option<Duration> },
}

/// The verdict for an HTTP status (None: no answer) and its Retry-After header.
pub fn verdict(status: Option<u16>, retry_after: Option<&str>, now: i64) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429 | 503) => Verdict::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
        },
        _ => Verdict::Retry { after: None },
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked() {
        assert_eq!(secret_key("whsec_short"), Err(WebhookError::BadSecret));
        assert_eq!(secret_key("whsec_!!!"), Err(WebhookError::BadSecret));
        let s = new_secret(&[7; 32]);
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap(), vec![7; 32]);
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999", 0), Some(MAX_RETRY_AFTER));
        // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-5", 0), None);
    }

    #[test]
    fn allow_list() {
        let ok = |url: &str, allow: &str| host_allowed(url, allow).is_ok();
        assert!(!ok("https://example.com/hook", ""));
        assert!(ok("https://example.com/hook", "example.com"));
        assert!(ok("https://a.example.com/hook", "*.example.com"));
        assert!(!ok("https://badexample.com/hook", "*.example.com"));
        assert!(ok("https://x.org/", "*"));
        assert!(!ok("http://127.0.0.1:8080/", "*"));
        assert!(!ok("http://localhost:8080/", "*"));
        assert!(!ok("http://[::1]:8080/", "*"));
        assert!(ok("http://127.0.0.1:8080/", "127.0.0.1"));
        assert!(ok("http://127.0.0.1:8080/", "127.0.0.1:8080"));
        assert!(!ok("http://127.0.0.1:8081/", "127.0.0.1:8080"));
        assert!(ok("http://[::1]:8080/", "[::1]"));
        assert!(!ok("http://user@example.com/", "example.com"));
        assert!(!ok("ftp://example.com/", "*"));
        assert_eq!(
            host_allowed("https://Evil.com/x", "good.com"),
            Err(WebhookError::HostNotAllowed(egress::Refusal::NotListed {
                host: "evil.com".into()
            }))
        );
        assert_eq!(
            host_allowed("https://Evil.com/x", "good.com")
                .unwrap_err()
                .to_string(),
            "host \"evil.com\" is not allowed by lowcode.webhook_allow"
        );
    }

    /// Issue 19, item 6: every spelling of a loopback address, refused by a wildcard when the
    /// webhook is created (no lookup) and again when sending (after the lookup); allowed once
    /// named by a range.
    #[test]
    fn webhook_loopback_spellings_are_refused_under_a_wildcard() {
        let urls = [
            "http://127.1:8080/",
            "http://2130706433:8080/",
            "http://0x7f000001:8080/",
            "http://0177.0.0.1:8080/",
            "http://0:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://[::1]:8080/",
            "http://localhost:8080/",
            "http://LocalHost:8080/",
            "http://a.localhost:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://[fd00::1]/",
        ];
        for url in urls {
            let created = host_allowed(url, "*");
            assert!(
                matches!(created, Err(WebhookError::HostNotAllowed(_))),
                "{url}: {created:?}"
            );
            if url.contains(".localhost") {
                continue; // may not resolve here
            }
            let sent = vet_url(url, "*");
            assert!(
                matches!(
                    &sent,
                    Err(WebhookError::HostNotAllowed(egress::Refusal::Address {
                        denied: Some(_),
                        ..
                    }))
                ),
                "{url}: {sent:?}"
            );
        }
        let message = vet_url("http://127.1:8080/", "*").unwrap_err().to_string();
        assert_eq!(
            message,
            "host \"127.1\" resolves to 127.0.0.1, a loopback address, which \
             lowcode.webhook_allow does not name (a wildcard never allows loopback or private \
             addresses)"
        );
        for url in [
            "http://127.1:8080/",
            "http://2130706433:8080/",
            "http://0x7f000001:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
        ] {
            assert!(host_allowed(url, "127.0.0.0/8").is_ok(), "{url}");
            let vetted = vet_url(url, "127.0.0.0/8").unwrap();
            assert_eq!(vetted.port, 8080);
            assert!(vetted.addrs.iter().all(|a| a.port() == 8080));
        }
        assert!(vet_url("http://0:8080/", "127.0.0.0/8").is_err());
        assert!(vet_url("http://127.1:8080/", "127.0.0.0/8:8081").is_err());
        assert!(vet_url("http://localhost:8080/", "localhost").is_ok());
        assert!(matches!(
            vet_url("http://no-such-host.invalid/", "*"),
            Err(WebhookError::HostNotAllowed(
                egress::Refusal::Unresolved { .. }
            ))
        ));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Some(204), None, 0), Verdict::Delivered);
        assert_eq!(verdict(Some(410), None, 0), Verdict::Gone);
        assert_eq!(verdict(Some(302), None, 0), Verdict::Retry { after: None });
        assert_eq!(
            verdict(Some(429), Some("7"), 0),
            Verdict::Retry {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            verdict(Some(503), Some("3"), 0),
            Verdict::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            verdict(Some(500), Some("3"), 0),
            Verdict::Retry { after: None }
        );
        assert_eq!(verdict(None, None, 0), Verdict::Retry { after: None });
    }
}
