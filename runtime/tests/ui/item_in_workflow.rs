use drover::prelude::*;

#[workflow]
pub async fn greet(name: String) -> Result<String, Error> {
    fn shout(s: &str) -> String {
        s.to_uppercase()
    }
    Ok(shout(&name))
}

fn main() {}
