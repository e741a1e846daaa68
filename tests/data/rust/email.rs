// The surface example of shared-notes/surface.md: effects, an activity, a pure fn, `?`, `match` on an Option, `if let` on a struct variant.
use drover::prelude::*;
use drover::effects::{memcache, statsd, slack, pagerduty};

#[activity(resources(scanner_license = 1))]
pub async fn scan(sha256: String) -> Result<Verdict, Error> { Err(Error::new("scanner", format!("no scanner for {sha256}"))) }

#[pure]
pub fn severity(v: &Verdict) -> String { format!("{v:?}") }

#[workflow]
pub async fn scan_email(email: Email) -> Result<Report, Error> {
    statsd::count("email.scanned", 1, &[]).await?;
    let key = format!("verdict:{}", email.attachment_sha256);
    let cached: Option<Verdict> = memcache::get(&key)
        .retry(3, Duration::from_millis(50), Duration::from_secs(1))
        .timeout(Duration::from_millis(500))
        .await?;
    let verdict = match cached {
        Some(v) => v,
        None => {
            let v = scan(email.attachment_sha256.clone()).await?;
            memcache::set(&key, &v, 86_400).await?;
            v
        }
    };
    let mut alerted = false;
    if let Verdict::Infected { name } = &verdict {
        let sev = severity(&verdict);
        slack::post("#security", &format!("infected: {name} ({sev})"), None).await?;
        alerted = true;
    }
    Ok(Report { message_id: email.message_id, verdict, alerted })
}
