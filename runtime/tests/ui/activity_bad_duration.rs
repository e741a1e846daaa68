use drover::prelude::*;

#[activity(timeout = "soon", retry(attempts = 3, initial = "0ms"))]
pub async fn scan(sha: String) -> Result<bool, Error> {
    Ok(sha.is_empty())
}

fn main() {}
