use drover::prelude::*;

pub async fn scan(sha: String) -> Result<bool, Error> {
    Ok(sha.is_empty())
}

#[workflow]
pub async fn check(sha: String) -> Result<bool, Error> {
    let clean = scan(sha).await?;
    Ok(clean)
}

fn main() {}
