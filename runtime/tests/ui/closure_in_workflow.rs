use drover::prelude::*;

#[workflow]
pub async fn double(xs: Vec<i64>) -> Result<Vec<i64>, Error> {
    let f = |x: i64| x * 2;
    Ok(vec![f(xs[0])])
}

fn main() {}
