//! The resolver of hyper's connector: the system's, or one fixed address
//! for a pool member that is one of the addresses of a host name (the URI
//! keeps the name, for `Host` and TLS, but the connection goes to that
//! address alone).

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

#[derive(Clone)]
pub enum Resolve {
    System(GaiResolver),
    Pinned(SocketAddr),
}

impl Resolve {
    pub fn new(pinned: Option<SocketAddr>) -> Resolve {
        pinned.map_or_else(|| Resolve::System(GaiResolver::new()), Resolve::Pinned)
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolve {
    type Response = Addrs;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Addrs>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        match self {
            Resolve::System(gai) => {
                let lookup = gai.call(name);
                Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
            }
            Resolve::Pinned(address) => {
                Box::pin(std::future::ready(Ok(vec![*address].into_iter())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tower_service::Service;

    use super::*;

    #[tokio::test]
    async fn pinned_ignores_the_name_and_system_resolves_it() {
        let name: Name = "localhost".parse().unwrap();
        let at: SocketAddr = "[::1]:7".parse().unwrap();
        let pinned: Vec<_> = Resolve::new(Some(at))
            .call(name.clone())
            .await
            .unwrap()
            .collect();
        assert_eq!(pinned, vec![at]);
        let system: Vec<_> = Resolve::new(None).call(name).await.unwrap().collect();
        assert!(system.iter().all(|a| a.ip().is_loopback()) && !system.is_empty());
    }
}
