use drover::prelude::*;

#[activity]
pub fn scan(sha: String) -> Result<bool, Error> {
    Ok(sha.is_empty())
}

fn main() {}
