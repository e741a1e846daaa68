use drover::prelude::*;

#[workflow]
pub async fn approve(channel: String) -> Result<bool, Error> {
    let ok: bool = signal::<bool>(&channel).await;
    Ok(ok)
}

fn main() {}
