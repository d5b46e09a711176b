//! stub
use crate::error::Result;
#[derive(clap::Args, Debug)]
pub struct PredictArgs {}
pub fn run(_a: PredictArgs) -> Result<()> { Ok(()) }
