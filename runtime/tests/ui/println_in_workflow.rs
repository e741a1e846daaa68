use drover::prelude::*;

#[workflow]
pub async fn greet(name: String) -> Result<String, Error> {
    println!("greeting {name}");
    Ok(name)
}

fn main() {}
