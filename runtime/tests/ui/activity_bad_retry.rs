use drover::prelude::*;

#[activity(retry(attempts = 0, jitter = "1s", initial = "20s", max = "1s"), resources(license = 0))]
pub async fn scan(sha: String) -> Result<bool, Error> {
    Ok(sha.is_empty())
}

fn main() {}
