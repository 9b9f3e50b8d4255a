use farcall::RemoteError;

#[farcall::remote]
pub trait Shape {
    async fn area(&self) -> Result<f64, RemoteError>;
}

#[farcall::remote]
pub trait Circle: Shape {
    /// The radius.
    async fn radius(&self) -> Result<f64, RemoteError>;
    #[remote(oneway)]
    async fn poke(&self, n: u32) -> Result<(), RemoteError>;
    async fn twice(&self) -> Result<f64, RemoteError> {
        Ok(self.radius().await? * 2.0)
    }
}

struct Unit;

#[farcall::remote]
impl Shape for Unit {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(3.14)
    }
}

#[farcall::remote]
impl Circle for Unit {
    async fn radius(&self) -> Result<f64, RemoteError> {
        Ok(1.0)
    }
    async fn poke(&self, _n: u32) -> Result<(), RemoteError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    let server = farcall::Node::listen("tcp://127.0.0.1:0").await.unwrap();
    let c: farcall::Remote<dyn Circle> = server.serve("unit", Unit);
    assert_eq!(c.radius().await.unwrap(), 1.0);
    let client = farcall::Node::new();
    let stub: farcall::Remote<dyn Circle> = client
        .connect_service(server.local_addr().unwrap(), "unit")
        .await
        .unwrap();
    assert_eq!(stub.radius().await.unwrap(), 1.0);
    assert_eq!(stub.area().await.unwrap(), 3.14);
    assert_eq!(stub.twice().await.unwrap(), 2.0);
    stub.poke(3).await.unwrap();
    for d in farcall::remote::catalogue() {
        println!("{} {:x} {:?}", d.name, d.id, d.methods.iter().map(|m| m.name).collect::<Vec<_>>());
    }
}
