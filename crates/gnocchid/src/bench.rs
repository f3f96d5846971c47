//! `gnocchid bench`: measure the server the way users load it.

use crate::server::BoxError;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<(), BoxError> {
    Err("bench: not built yet".into())
}
