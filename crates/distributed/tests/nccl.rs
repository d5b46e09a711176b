//! The NCCL backend with world size 1 (what one GPU can host): the same code path as a
//! multi-GPU job. Skips with a notice where libnccl or a GPU is missing.
#![cfg(feature = "nccl")]

use mlfw_distributed::{NcclGroup, ProcessGroup};
use std::time::Duration;

#[test]
fn world_size_one_reduces_broadcasts_and_gathers() {
    let id = std::env::temp_dir().join(format!("mlfw-nccl-{}", std::process::id()));
    let g = match NcclGroup::new(0, 0, 1, &id, Duration::from_secs(10)) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    assert_eq!(g.backend(), "nccl");
    assert_eq!(g.all_reduce_sum(vec![1.0, 2.5]).unwrap(), vec![1.0, 2.5]);
    assert_eq!(g.broadcast(vec![3.0], 0).unwrap(), vec![3.0]);
    assert_eq!(g.all_gather_f64(4.0).unwrap(), vec![4.0]);
    g.barrier().unwrap();
}

#[test]
fn bad_ranks_are_errors() {
    let id = std::env::temp_dir().join("mlfw-nccl-bad");
    assert!(NcclGroup::new(0, 2, 1, &id, Duration::from_secs(1)).is_err());
}
