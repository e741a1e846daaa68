use drover::effects::memcache;
use drover::prelude::*;

#[workflow]
pub async fn fetch(key: String) -> Result<Option<String>, Error> {
    let v = memcache::fetch(&key).await?;
    Ok(v)
}

fn main() {}
