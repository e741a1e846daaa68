// Awaits: effects with policies, activities, child workflows, sleep, signal, now/random/uuid, join!, all, race, log, pure calls.
use drover::prelude::*;
use drover::effects::{http, memcache, statsd};

#[activity]
pub async fn fetch(id: String) -> Result<Page, Error> { Err(Error::new("unavailable", id)) }

#[activity]
pub async fn charge(customer: String, cents: i64) -> Result<Receipt, Error> { Ok(Receipt { customer, cents }) }

#[pure]
pub fn price_of(page: &Page) -> i64 { page.price }

#[workflow]
pub async fn parallel(ids: Vec<String>, customer: String) -> Result<Vec<Page>, Error> {
    let started = now().await?;
    let nonce = random().await;
    let id = drover::uuid().await;
    log::info("starting", (&customer, started));
    drover::log::warn("plain message");
    let first = fetch(ids[0].clone()).retry(5, Duration::from_millis(100), Duration::from_secs(10)).timeout(Duration::from_secs(30)).await?;
    let (a, b) = join!(fetch(ids[1].clone()), memcache::get(&customer));
    let pages = all(ids.iter().map(|id| fetch(id.clone()))).await;
    let totals = all(ids.iter().map(|id| async move {
        let page = fetch(id.clone()).await?;
        Ok(price_of(&page))
    }))
    .await;
    let (winner, value) = race(vec![fetch(ids[0].clone()), fetch(ids[1].clone())]).await;
    sleep(Duration::from_secs(5)).await;
    let approved: bool = signal::<bool>("approved").await;
    if !approved {
        return Err(Error::new("rejected", "not approved"));
    }
    let receipt = charge(customer.clone(), price_of(&first)).await?;
    let report = build_report::run(receipt, pages.len()).await?;
    let resp = http::request("POST", "https://example.com/hook", &[("X-Id", "1")], None).await?;
    statsd::count("charged", 1, &[("customer", customer.as_str())]).await?;
    let _ = (a, b, totals, winner, value, report, resp, nonce, id);
    Ok(pages)
}
