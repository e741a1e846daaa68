use drover::prelude::*;

#[activity]
pub async fn scan(sha: String) -> usize {
    sha.len()
}

fn main() {}
