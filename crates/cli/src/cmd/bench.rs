//! stub
use crate::error::Result;
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}
pub fn run(_a: BenchArgs) -> Result<()> { Ok(()) }
