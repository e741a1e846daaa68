//! Email virus scanner: look the attachment's hash up in memcache; on a miss
//! scan it (an activity holding one scanner licence) and cache the verdict;
//! if it is infected, post to Slack and page the on-call; publish the report
//! to the `email.verdicts` queue. Metrics go to statsd throughout.
//!
//! ```sh
//! dslc compile examples/src/email_scan.rs -o /tmp/out
//! dslc run /tmp/out/scan_email.dbc scan_email \
//!   --input '{"message_id": "m-1", "sender": "a@example.com", "attachment_sha256": "e3b0c442"}' \
//!   --effects examples/effects/scan_email.json
//! ```

use drover::effects::{http, memcache, pagerduty, rabbitmq, slack, statsd};
use drover::prelude::*;
use serde::{Deserialize, Serialize};

/// The environment variable naming the scanning service's URL. When it is
/// unset, [`scan`] checks the hash against [`LOCAL_SIGNATURES`] instead, so
/// the example runs on a machine with no scanner.
pub const SCANNER_URL_VAR: &str = "DROVER_SCANNER_URL";

/// The local signature list used when no scanner is configured: SHA-256 of
/// a known file → threat name. The one entry is the EICAR anti-virus test
/// file, which every scanner reports and which is harmless.
pub const LOCAL_SIGNATURES: &[(&str, &str)] = &[(
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
    "EICAR-Test-File",
)];

/// An incoming email with one attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// The Message-ID header.
    pub message_id: String,
    /// Who sent it.
    pub sender: String,
    /// The SHA-256 of the attachment, in hex.
    pub attachment_sha256: String,
}

/// What the scanner said about an attachment.
///
/// A struct rather than an enum so that scripted responses (plain JSON, see
/// `examples/effects/scan_email.json`) can express it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the attachment carries malware.
    pub infected: bool,
    /// The malware's name, when infected.
    pub threat: Option<String>,
}

/// What the workflow did with one email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// The email's Message-ID.
    pub message_id: String,
    /// The verdict, cached or fresh.
    pub verdict: Verdict,
    /// Whether the verdict came from the cache.
    pub cached: bool,
    /// Whether Slack and PagerDuty were alerted.
    pub alerted: bool,
}

/// Scans an attachment with the scanning service at `$DROVER_SCANNER_URL`,
/// or against the local signature list when that is unset. It holds one
/// `scanner_license` while it runs, since the engine is licensed per
/// concurrent scan; the node retries it with backoff.
#[activity(
    resources(scanner_license = 1),
    retry(attempts = 5, initial = "100ms", max = "10s"),
    timeout = "30s"
)]
pub async fn scan(sha256: String) -> Result<Verdict, Error> {
    let Some(url) = std::env::var(SCANNER_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return Ok(local_verdict(&sha256));
    };
    let body = serde_json::json!({ "sha256": sha256 });
    let resp = http::request("POST", &url, &[], Some(body)).await?;
    if resp.status != 200 {
        return Err(Error::new(
            "scanner",
            format!("the scanner answered {}", resp.status),
        ));
    }
    serde_json::from_value(resp.body)
        .map_err(|e| Error::new("scanner", format!("unreadable verdict: {e}")))
}

/// The verdict from [`LOCAL_SIGNATURES`].
pub fn local_verdict(sha256: &str) -> Verdict {
    let threat = LOCAL_SIGNATURES
        .iter()
        .find(|(hash, _)| hash.eq_ignore_ascii_case(sha256))
        .map(|(_, name)| (*name).to_owned());
    Verdict {
        infected: threat.is_some(),
        threat,
    }
}

/// The Slack text for an infected email.
#[pure]
pub fn alert_text(email: &Email, threat: &str) -> String {
    format!(
        "{} from {} carries {} (sha256 {})",
        email.message_id, email.sender, threat, email.attachment_sha256
    )
}

/// Scans `email`'s attachment, caching verdicts by hash, and alerts on
/// malware.
#[workflow]
pub async fn scan_email(email: Email) -> Result<ScanReport, Error> {
    statsd::count("email.received", 1, &[]).await?;
    let key = format!("verdict:{}", email.attachment_sha256);
    // The cache only saves work: when memcache is down after its retries,
    // scan anyway instead of failing the email.
    let lookup: Result<Option<Verdict>, Error> = memcache::get(&key)
        .retry(3, Duration::from_millis(50), Duration::from_secs(1))
        .timeout(Duration::from_millis(500))
        .await;
    let cached = match lookup {
        Ok(found) => found,
        Err(e) => {
            log::warn("verdict cache unavailable", &e);
            statsd::count("email.cache_error", 1, &[]).await?;
            None
        }
    };
    let from_cache = cached.is_some();
    let verdict = match cached {
        Some(v) => {
            statsd::count("email.cache_hit", 1, &[]).await?;
            v
        }
        None => {
            statsd::count("email.cache_miss", 1, &[]).await?;
            let v = scan(email.attachment_sha256.clone()).await?;
            // A day, written out: a workflow can't read constants, whose
            // values the IR would not capture.
            memcache::set(&key, &v, 86_400)
                .retry(3, Duration::from_millis(50), Duration::from_secs(1))
                .await?;
            v
        }
    };
    let mut alerted = false;
    if verdict.infected {
        let threat = verdict.threat.clone().unwrap_or("unknown".to_string());
        statsd::count("email.infected", 1, &[("threat", threat.as_str())]).await?;
        let text = alert_text(&email, &threat);
        // Alerts retry through rate limits and outages; PagerDuty's dedup
        // key is the effect id, the same on every attempt, so a retry never
        // pages twice.
        slack::post("#security", &text, None)
            .retry(5, Duration::from_millis(200), Duration::from_secs(5))
            .await?;
        pagerduty::trigger(
            &format!("infected attachment: {threat}"),
            pagerduty::Severity::Critical,
            "drover.scan_email",
            &email,
        )
        .retry(5, Duration::from_millis(200), Duration::from_secs(5))
        .await?;
        alerted = true;
    }
    let report = ScanReport {
        message_id: email.message_id,
        verdict,
        cached: from_cache,
        alerted,
    };
    // Downstream mail filters take verdicts from the queue; the message id
    // is the effect id, so a retried publish is recognisable.
    rabbitmq::publish("", "email.verdicts", &report)
        .retry(5, Duration::from_millis(100), Duration::from_secs(2))
        .await?;
    Ok(report)
}
