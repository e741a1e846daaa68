use drover::prelude::*;

#[workflow]
pub async fn greet(name: String) -> Result<String, Error> {
    println!("one");
    let _p = &name as *const String;
    let _f = || 1;
    Ok(name)
}

fn main() {}
