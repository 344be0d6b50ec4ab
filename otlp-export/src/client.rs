//! The HTTP client of the exporters: hyper's (through opentelemetry-http),
//! each request run on the process's tokio runtime. The SDK calls it from
//! its own threads, which have no runtime of their own.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError, hyper::HyperClient};

#[derive(Debug)]
pub struct OnRuntime {
    client: HyperClient,
    runtime: tokio::runtime::Handle,
}

impl OnRuntime {
    pub fn new(runtime: tokio::runtime::Handle, timeout: Duration) -> OnRuntime {
        OnRuntime {
            client: HyperClient::with_default_connector(timeout, None),
            runtime,
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as HttpError)?
    }
}
