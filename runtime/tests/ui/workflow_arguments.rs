use drover::prelude::*;

#[workflow(name = "other")]
pub async fn greet(name: String) -> Result<String, Error> {
    Ok(format!("hello {name}"))
}

fn main() {}
