//! Hygiene: the generated code names only `::core`, `::std` and
//! `::farcall::__private`, so it compiles without the prelude; so does
//! `#[derive(Schema)]`'s.

#![no_implicit_prelude]

#[::farcall::remote]
pub trait Shape {
    /// Some docs.
    async fn area(&self) -> ::core::result::Result<f64, ::farcall::RemoteError>;
    async fn name(
        &self,
        prefix: ::std::string::String,
        tags: ::std::vec::Vec<::std::option::Option<u8>>,
    ) -> ::core::result::Result<::std::string::String, ::farcall::RemoteError>;
    #[remote(oneway)]
    async fn poke(&self, n: u32) -> ::core::result::Result<(), ::farcall::RemoteError>;
    async fn double(&self) -> ::core::result::Result<f64, ::farcall::RemoteError> {
        ::core::result::Result::Ok(self.area().await? * 2.0)
    }
}

#[::farcall::remote]
pub trait Circle: Shape {
    async fn radius(&self) -> ::core::result::Result<f64, ::farcall::RemoteError>;
}

#[::farcall::remote]
pub trait Store<V> {
    async fn get(
        &self,
        key: u64,
    ) -> ::core::result::Result<::std::option::Option<V>, ::farcall::RemoteError>;
}

struct Unit;

#[::farcall::remote]
impl Shape for Unit {
    async fn area(&self) -> ::core::result::Result<f64, ::farcall::RemoteError> {
        ::core::result::Result::Ok(1.0)
    }
    async fn name(
        &self,
        prefix: ::std::string::String,
        _tags: ::std::vec::Vec<::std::option::Option<u8>>,
    ) -> ::core::result::Result<::std::string::String, ::farcall::RemoteError> {
        ::core::result::Result::Ok(prefix)
    }
    async fn poke(&self, _n: u32) -> ::core::result::Result<(), ::farcall::RemoteError> {
        ::core::result::Result::Ok(())
    }
}

#[::farcall::remote]
impl Circle for Unit {
    async fn radius(&self) -> ::core::result::Result<f64, ::farcall::RemoteError> {
        ::core::result::Result::Ok(1.0)
    }
}

#[allow(dead_code)]
fn export(node: &::farcall::Node) -> ::farcall::Remote<dyn Circle> {
    node.export(Unit)
}

#[derive(::farcall::Schema)]
pub struct Page<T> {
    pub item_list: ::std::vec::Vec<T>,
    #[schema(as = "u64")]
    pub cursor: ::std::option::Option<u64>,
}

#[derive(::farcall::Schema)]
pub enum Event {
    Opened { at: u64 },
    Hidden,
    Closed(u8),
}

#[allow(dead_code)]
fn describe() -> ::std::string::String {
    let mut types = ::farcall::schema::Types::new();
    types.of::<(Page<Event>, Event)>()
}

fn main() {}
