use drover::prelude::*;

#[workflow]
pub async fn first(xs: Vec<i64>) -> Result<i64, Error> {
    let x = unsafe { *xs.as_ptr() };
    Ok(x)
}

fn main() {}
