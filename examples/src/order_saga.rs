//! Order saga with compensation: reserve stock, charge the card, ship. When
//! a step fails, the steps already done are undone in reverse order (refund
//! the charge, then release the stock) and the outcome says which step
//! failed, why, and what was undone. If undoing itself fails, the workflow
//! fails with an error naming both failures, since the order is then in a
//! state someone must look at.
//!
//! ```sh
//! dslc compile examples/src/order_saga.rs -o /tmp/out
//! dslc run /tmp/out/place_order.dbc place_order \
//!   --input '{"order_id": "o-1", "customer": "c-7", "sku": "BOOK-42", "quantity": 2, "amount_cents": 3998, "address": "1 Main St"}' \
//!   --effects examples/effects/place_order.json
//! ```

use drover::effects::http;
use drover::prelude::*;
use serde::{Deserialize, Serialize};

/// The inventory service.
pub const INVENTORY_URL: &str = "https://inventory.internal/v1";
/// The payment service.
pub const PAYMENTS_URL: &str = "https://payments.internal/v1";
/// The shipping service.
pub const SHIPPING_URL: &str = "https://shipping.internal/v1";

/// An order to place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id, also the idempotency key of its charge.
    pub order_id: String,
    /// The paying customer.
    pub customer: String,
    /// What is ordered.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// The total to charge, in cents.
    pub amount_cents: i64,
    /// Where to ship it.
    pub address: String,
}

/// A step done that can be undone, with what undoing it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undo {
    /// Stock was reserved: release it.
    ReleaseStock {
        /// The reservation's id.
        reservation: String,
    },
    /// The card was charged: refund it.
    Refund {
        /// The charge's id.
        charge: String,
        /// How much was charged, in cents.
        amount_cents: i64,
    },
}

/// How an order ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderOutcome {
    /// Every step succeeded.
    Placed {
        /// The stock reservation's id.
        reservation: String,
        /// The charge's id.
        charge: String,
        /// The shipment's tracking number.
        tracking: String,
    },
    /// A step failed and the steps before it were undone.
    RolledBack {
        /// The step that failed: `reserve_stock`, `charge_card` or `ship`.
        failed_step: String,
        /// Why it failed.
        reason: String,
        /// The compensations run, in the order they ran.
        undone: Vec<String>,
    },
}

/// POSTs `body` to `url` and gives the JSON answer; a non-2xx status is an
/// error whose kind is `http_<status>` and whose message is the service's.
async fn post(url: &str, body: serde_json::Value) -> Result<serde_json::Value, Error> {
    let resp = http::request("POST", url, &[], Some(body)).await?;
    if (200..300).contains(&resp.status) {
        return Ok(resp.body);
    }
    let message = match resp.body.get("error").and_then(|e| e.as_str()) {
        Some(m) => m.to_owned(),
        None => format!("{url} answered {}", resp.status),
    };
    Err(Error::new(format!("http_{}", resp.status), message))
}

/// The string field `name` of a service's answer.
fn field(body: &serde_json::Value, name: &str) -> Result<String, Error> {
    match body.get(name).and_then(|v| v.as_str()) {
        Some(s) => Ok(s.to_owned()),
        None => Err(Error::decode(format!("no `{name}` in {body}"))),
    }
}

/// Reserves `quantity` of `sku`; gives the reservation's id.
#[activity(retry(attempts = 3, initial = "200ms", max = "5s"), timeout = "10s")]
pub async fn reserve_stock(sku: String, quantity: u32) -> Result<String, Error> {
    let url = format!("{INVENTORY_URL}/reservations");
    let body = post(
        &url,
        serde_json::json!({ "sku": sku, "quantity": quantity }),
    )
    .await?;
    field(&body, "reservation")
}

/// Releases a reservation.
#[activity(retry(attempts = 10, initial = "1s", max = "1m"), timeout = "10s")]
pub async fn release_stock(reservation: String) -> Result<(), Error> {
    let url = format!("{INVENTORY_URL}/reservations/{reservation}/release");
    post(&url, serde_json::json!({})).await.map(|_| ())
}

/// Charges `customer`'s card; `order_id` makes a repeated charge a no-op.
/// Gives the charge's id.
#[activity(timeout = "30s")]
pub async fn charge_card(
    customer: String,
    amount_cents: i64,
    order_id: String,
) -> Result<String, Error> {
    let url = format!("{PAYMENTS_URL}/charges");
    let body = serde_json::json!({
        "customer": customer,
        "amount_cents": amount_cents,
        "idempotency_key": order_id,
    });
    field(&post(&url, body).await?, "charge")
}

/// Refunds a charge.
#[activity(retry(attempts = 10, initial = "1s", max = "1m"), timeout = "30s")]
pub async fn refund(charge: String, amount_cents: i64) -> Result<(), Error> {
    let url = format!("{PAYMENTS_URL}/charges/{charge}/refunds");
    post(&url, serde_json::json!({ "amount_cents": amount_cents }))
        .await
        .map(|_| ())
}

/// Ships the order; gives the tracking number.
#[activity(timeout = "1m")]
pub async fn ship(
    order_id: String,
    sku: String,
    quantity: u32,
    address: String,
) -> Result<String, Error> {
    let url = format!("{SHIPPING_URL}/shipments");
    let body = serde_json::json!({
        "order_id": order_id,
        "sku": sku,
        "quantity": quantity,
        "address": address,
    });
    field(&post(&url, body).await?, "tracking")
}

/// Places `order`: reserve, charge, ship; on a failure, undoes what was done
/// in reverse order and says what happened.
#[workflow]
pub async fn place_order(order: Order) -> Result<OrderOutcome, Error> {
    // What has been done, in order: undoing walks it backwards.
    let mut done: Vec<Undo> = Vec::new();
    let mut failed: Option<(String, Error)> = None;
    let mut reservation = String::new();
    let mut charge = String::new();
    let mut tracking = String::new();

    match reserve_stock(order.sku.clone(), order.quantity).await {
        Ok(r) => {
            reservation = r.clone();
            done.push(Undo::ReleaseStock { reservation: r });
        }
        Err(e) => failed = Some(("reserve_stock".to_string(), e)),
    }
    if failed.is_none() {
        let charged = charge_card(
            order.customer.clone(),
            order.amount_cents,
            order.order_id.clone(),
        )
        .retry(3, Duration::from_millis(500), Duration::from_secs(5))
        .await;
        match charged {
            Ok(c) => {
                charge = c.clone();
                done.push(Undo::Refund {
                    charge: c,
                    amount_cents: order.amount_cents,
                });
            }
            Err(e) => failed = Some(("charge_card".to_string(), e)),
        }
    }
    if failed.is_none() {
        let shipped = ship(
            order.order_id.clone(),
            order.sku.clone(),
            order.quantity,
            order.address.clone(),
        )
        .await;
        match shipped {
            Ok(t) => tracking = t,
            Err(e) => failed = Some(("ship".to_string(), e)),
        }
    }

    let Some((step, error)) = failed else {
        log::info("order placed", (&order.order_id, &tracking));
        return Ok(OrderOutcome::Placed {
            reservation,
            charge,
            tracking,
        });
    };

    log::warn(
        "order failed; compensating",
        (&order.order_id, &step, &error),
    );
    let mut undone: Vec<String> = Vec::new();
    for undo in done.iter().rev() {
        let (name, result) = match undo {
            Undo::Refund {
                charge,
                amount_cents,
            } => ("refund", refund(charge.clone(), *amount_cents).await),
            Undo::ReleaseStock { reservation } => {
                ("release_stock", release_stock(reservation.clone()).await)
            }
        };
        if let Err(e) = result {
            return Err(Error::new(
                "compensation_failed",
                format!(
                    "order {}: {} failed ({}), then {} failed ({}); undone so far: {:?}",
                    order.order_id, step, error.message, name, e.message, undone
                ),
            ));
        }
        undone.push(name.to_string());
    }
    Ok(OrderOutcome::RolledBack {
        failed_step: step,
        reason: error.message,
        undone,
    })
}
