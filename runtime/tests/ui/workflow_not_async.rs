use drover::prelude::*;

#[workflow]
pub fn greet(name: String) -> Result<String, Error> {
    Ok(format!("hello {name}"))
}

fn main() {}
