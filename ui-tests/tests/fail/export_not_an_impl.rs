#[farcall::export(name = "things/x")]
struct NotAnImpl;

fn main() {}
