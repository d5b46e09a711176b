//! stub
use crate::error::Result;
#[derive(clap::Subcommand, Debug)]
pub enum HubCommand { List }
pub fn run(_a: HubCommand) -> Result<()> { Ok(()) }
