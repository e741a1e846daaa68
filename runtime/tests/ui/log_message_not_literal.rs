use drover::prelude::*;

#[workflow]
pub async fn greet(name: String) -> Result<String, Error> {
    let msg = format!("greeting {name}");
    log::info(&msg, &name);
    Ok(name)
}

fn main() {}
