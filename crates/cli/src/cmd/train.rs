//! stub
use crate::error::Result;
#[derive(clap::Args, Debug)]
pub struct TrainArgs {}
pub fn run(_a: TrainArgs, _m: &clap::ArgMatches) -> Result<()> { Ok(()) }
