use serde::{Deserialize, Serialize};

/// serde puts a `String` on the wire, which the derive cannot see.
#[derive(Clone, Serialize, Deserialize, farcall::Schema)]
#[serde(into = "String", from = "String")]
pub struct Label(String);

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.0
    }
}

impl From<String> for Label {
    fn from(s: String) -> Label {
        Label(s)
    }
}

fn main() {}
