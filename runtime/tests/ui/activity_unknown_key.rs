use drover::prelude::*;

#[activity(colour = "red", timeout = "5s")]
pub async fn scan(sha: String) -> Result<bool, Error> {
    Ok(sha.is_empty())
}

fn main() {}
