//! stub
use crate::error::Result;
#[derive(clap::Args, Debug)]
pub struct EvalArgs {}
pub fn run(_a: EvalArgs) -> Result<()> { Ok(()) }
