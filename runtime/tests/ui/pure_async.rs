use drover::prelude::*;

#[pure]
pub async fn severity(score: i64) -> String {
    format!("{score}")
}

fn main() {}
