//! The operator's side of the portal, under the admin API: which products
//! the portal publishes (and whether subscribing needs approval), the
//! consumer accounts and their subscriptions, approvals, and API docs.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{docs, session};
use crate::{
    api::{AdminRequest, Answer, method_not_allowed},
    error::ApiError,
    model,
    state::State,
    store::{Conn, Kind, resources},
};

pub fn handle(state: &State, req: &AdminRequest, segs: &[&str]) -> Result<Answer, ApiError> {
    match (&req.method, segs) {
        (&Method::GET, ["apis", name, "docs"]) => Ok((
            StatusCode::OK,
            Some(state.store.read(|c| docs::get(c, name))?),
        )),
        (_, ["apis", _, "docs"]) => Err(method_not_allowed(req, "GET")),
        (&Method::GET, ["published-products"]) => Ok((
            StatusCode::OK,
            Some(Value::Array(state.store.read(published)?)),
        )),
        (&Method::PUT, ["published-products", name]) => publish(state, req, name),
        (&Method::DELETE, ["published-products", name]) => {
            let gone = state.store.write(|c| {
                c.execute(
                    "DELETE FROM published_products WHERE product = ?1",
                    &[(*name).into()],
                )
            })?;
            if gone == 0 {
                return Err(ApiError::not_found(format!(
                    "product \"{name}\" is not published"
                )));
            }
            Ok((StatusCode::NO_CONTENT, None))
        }
        (_, ["published-products", ..]) => Err(method_not_allowed(req, "GET, PUT or DELETE")),
        (&Method::GET, ["consumers"]) => Ok((StatusCode::OK, Some(state.store.read(consumers)?))),
        (&Method::DELETE, ["consumers", email]) => {
            state.write(|tx| {
                let subs = subscriptions_of(tx, email)?;
                let gone =
                    tx.execute("DELETE FROM consumers WHERE email = ?1", &[(*email).into()])?;
                if gone == 0 {
                    return Err(ApiError::not_found(format!(
                        "consumer \"{email}\" does not exist"
                    )));
                }
                for s in subs {
                    resources::delete(tx, Kind::Subscription, &s.id)?;
                }
                tx.execute(
                    "DELETE FROM consumer_subscriptions WHERE consumer = ?1",
                    &[(*email).into()],
                )?;
                session::delete_all(tx, session::Kind::Consumer, email)?;
                Ok(())
            })?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        (_, ["consumers", ..]) => Err(method_not_allowed(req, "GET or DELETE")),
        (&Method::POST, ["consumer-subscriptions", id, "approve"]) => {
            state.write(|tx| {
                let pending = tx
                    .query_opt(
                        "SELECT pending FROM consumer_subscriptions WHERE subscription = ?1",
                        &[(*id).into()],
                    )?
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "subscription \"{id}\" was not made in the portal"
                        ))
                    })?
                    .int(0)?;
                if pending != 0 {
                    tx.execute(
                        "UPDATE consumer_subscriptions SET pending = 0 WHERE subscription = ?1",
                        &[(*id).into()],
                    )?;
                    let mut doc = resources::get(tx, Kind::Subscription, id)?.ok_or_else(|| {
                        ApiError::not_found(format!("subscription \"{id}\" does not exist"))
                    })?;
                    doc["state"] = json!("active");
                    resources::put(tx, Kind::Subscription, id, &doc)?;
                }
                Ok(())
            })?;
            Ok((StatusCode::OK, Some(json!({"id": id, "state": "active"}))))
        }
        (_, ["consumer-subscriptions", ..]) => Err(method_not_allowed(req, "POST .../approve")),
        _ => Err(ApiError::not_found(format!(
            "no route /v1/{}; see control-plane/README.md",
            req.segments.join("/")
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Publish {
    /// Subscriptions made in the portal wait for an operator's approval.
    #[serde(default)]
    approval_required: bool,
}

fn publish(state: &State, req: &AdminRequest, name: &str) -> Result<Answer, ApiError> {
    let body: Publish = if req.body.is_empty() {
        Publish {
            approval_required: false,
        }
    } else {
        model::parse("published product", &req.body)?
    };
    let created = state.store.write(|c| {
        if resources::get(c, Kind::Product, name)?.is_none() {
            return Err(ApiError::not_found(format!(
                "product \"{name}\" does not exist; create it with POST /v1/products first"
            )));
        }
        let existed = c
            .query_opt(
                "SELECT product FROM published_products WHERE product = ?1",
                &[name.into()],
            )?
            .is_some();
        c.execute(
            "INSERT INTO published_products (product, approval_required) VALUES (?1, ?2)
             ON CONFLICT (product) DO UPDATE SET approval_required = excluded.approval_required",
            &[name.into(), i64::from(body.approval_required).into()],
        )?;
        Ok::<_, ApiError>(!existed)
    })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Some(json!({"product": name, "approval_required": body.approval_required})),
    ))
}

/// The published products that exist: `[{product, approval_required}]`.
pub fn published(conn: &Conn) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for row in conn.query(
        "SELECT product, approval_required FROM published_products ORDER BY product",
        &[],
    )? {
        let product = row.text(0)?;
        if resources::get(conn, Kind::Product, &product)?.is_some() {
            out.push(json!({"product": product, "approval_required": row.int(1)? != 0}));
        }
    }
    Ok(out)
}

/// A subscription made in the portal.
pub struct Owned {
    pub id: String,
    pub product: String,
    pub pending: bool,
}

impl Owned {
    /// With the subscription's current state.
    pub fn shown(&self, conn: &Conn) -> Result<Value, ApiError> {
        let state = resources::get(conn, Kind::Subscription, &self.id)?
            .map(|d| d["state"].as_str().unwrap_or("active").to_string())
            .unwrap_or_else(|| "deleted".into());
        Ok(json!({
            "id": self.id,
            "product": self.product,
            "state": state,
            "pending": self.pending,
        }))
    }
}

/// The portal subscriptions of `email`, oldest first.
pub fn subscriptions_of(conn: &Conn, email: &str) -> Result<Vec<Owned>, ApiError> {
    conn.query(
        "SELECT subscription, product, pending FROM consumer_subscriptions
         WHERE consumer = ?1 ORDER BY created_at, subscription",
        &[email.into()],
    )?
    .iter()
    .map(|r| {
        Ok(Owned {
            id: r.text(0)?,
            product: r.text(1)?,
            pending: r.int(2)? != 0,
        })
    })
    .collect()
}

fn consumers(conn: &Conn) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for row in conn.query(
        "SELECT email, created_at FROM consumers ORDER BY email",
        &[],
    )? {
        let email = row.text(0)?;
        let subs = subscriptions_of(conn, &email)?
            .iter()
            .map(|s| s.shown(conn))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(json!({"email": email, "created_at": row.int(1)?, "subscriptions": subs}));
    }
    Ok(Value::Array(out))
}
