use drover::prelude::*;

pub struct Scanner;

impl Scanner {
    #[activity]
    pub async fn scan(&self, sha: String) -> Result<bool, Error> {
        Ok(sha.is_empty())
    }
}

fn main() {}
