use drover::effects::statsd;
use drover::prelude::*;

#[workflow]
pub async fn count(name: String) -> Result<(), Error> {
    statsd::count(&name, "one", &[]).await?;
    Ok(())
}

fn main() {}
