//! Loopback HTTP servers for contract tests: each test builds an axum
//! router that checks a service's published API and rejects violations,
//! then talks to it over real TCP on 127.0.0.1.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Serves `router` on a free loopback port; the base URL, no trailing slash.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{addr}")
}

/// A scripted failure answered instead of the real handler's answer.
#[derive(Clone, Debug)]
pub struct Fault {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Fault {
            status,
            retry_after: None,
            body: String::new(),
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    pub fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(s) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(s));
        }
        (
            StatusCode::from_u16(self.status).expect("a status code"),
            headers,
            self.body,
        )
            .into_response()
    }
}

/// Faults to answer, in order, before the handler answers for real.
#[derive(Debug, Default)]
pub struct Faults(Mutex<VecDeque<Fault>>);

impl Faults {
    pub fn push(&self, f: Fault) {
        self.0.lock().unwrap().push_back(f);
    }

    pub fn next(&self) -> Option<Fault> {
        self.0.lock().unwrap().pop_front()
    }
}

/// What a server saw: one entry per request, with when it arrived.
#[derive(Debug, Default)]
pub struct Log<T>(Mutex<Vec<(Instant, T)>>);

impl<T: Clone> Log<T> {
    pub fn push(&self, t: T) {
        self.0.lock().unwrap().push((Instant::now(), t));
    }

    pub fn all(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| t.clone())
            .collect()
    }

    pub fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|(i, _)| *i).collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}
