use drover::prelude::*;

#[activity]
pub async fn scan(sha: String) -> Result<bool, Error> {
    Ok(sha.is_empty())
}

#[workflow]
pub async fn check(sha: String) -> Result<bool, Error> {
    let clean = scan(sha);
    Ok(clean)
}

fn main() {}
