use drover::prelude::*;

#[pure]
pub fn severity(score: i64) -> String {
    format!("level {score}")
}

#[workflow]
pub async fn rate(score: i64) -> Result<String, Error> {
    let s = severity(score).await?;
    Ok(s)
}

fn main() {}
