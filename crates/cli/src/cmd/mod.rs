//! One module per subcommand: its arguments (clap) and its `run`.

pub mod bench;
pub mod data;
pub mod eval;
pub mod export;
pub mod generate;
pub mod graph;
pub mod hub;
pub mod plot;
pub mod predict;
pub mod train;
