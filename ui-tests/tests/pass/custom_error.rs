//! Methods may return the user's own error type, provided it converts from
//! `farcall::RemoteError` and crosses the wire.

use farcall::RemoteError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub enum BankError {
    Insufficient { balance: u64 },
    Frozen,
    Remote(RemoteError),
}

impl From<RemoteError> for BankError {
    fn from(e: RemoteError) -> Self {
        BankError::Remote(e)
    }
}

#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub struct Receipt {
    pub id: u64,
    pub balance: u64,
}

#[farcall::remote]
pub trait Account {
    async fn withdraw(&self, amount: u64) -> Result<Receipt, BankError>;
    #[remote(oneway)]
    async fn audit(&self, note: String) -> Result<(), BankError>;
}

struct Frozen;

#[farcall::remote]
impl Account for Frozen {
    async fn withdraw(&self, _amount: u64) -> Result<Receipt, BankError> {
        Err(BankError::Frozen)
    }
    async fn audit(&self, _note: String) -> Result<(), BankError> {
        Ok(())
    }
}

#[allow(dead_code)]
async fn use_it(node: farcall::Node) -> Result<u64, BankError> {
    let a: farcall::Remote<dyn Account> = node.export(Frozen);
    a.audit("hello".to_owned()).await?;
    Ok(a.withdraw(10).await?.balance)
}

fn main() {}
