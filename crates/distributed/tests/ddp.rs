//! DDP in one process (world size 1) and, with the `mpi` feature, 2 ranks × batch 32 against
//! 1 process × batch 64 (run by `mpirun -np 2` on this very test binary).

mod common;
use mlfw_core::{DType, Device, Tensor};
use mlfw_distributed::{DistributedDataParallel, SingleProcess};
use std::sync::Arc;

/// Runs this test binary's test `test` on 2 MPI ranks (`timeout 120 mpirun -np 2`), with
/// `env` set for the ranks, and returns what the job printed.
#[cfg(feature = "mpi")]
fn mpirun_self(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["120", "mpirun", "-np", "2", "--oversubscribe"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("mpirun (install openmpi-bin)")
}

#[test]
fn one_rank_leaves_gradients_as_they_are_and_reduces_unused_parameters_as_zeros() {
    let a = Tensor::from_vec(vec![1f32, 2.0], [2], &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let unused = Tensor::zeros([3], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let ddp = DistributedDataParallel::new(
        vec![a.clone(), unused.clone()],
        Arc::new(SingleProcess),
        1e-6,
    )
    .unwrap();
    assert_eq!(ddp.num_buckets(), 2);
    for _ in 0..3 {
        a.zero_grad();
        mlfw_autograd::backward(&a.square().unwrap().sum_all().unwrap(), None, false).unwrap();
        ddp.finish().unwrap();
        assert_eq!(a.grad().unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
        assert_eq!(
            unused.grad().unwrap().to_vec::<f32>().unwrap(),
            vec![0.0; 3]
        );
    }
}

#[test]
fn bad_settings_are_errors() {
    let a = Tensor::ones([2], DType::F64, &Device::Cpu).unwrap();
    assert!(DistributedDataParallel::new(vec![a], Arc::new(SingleProcess), 25.0).is_err());
    let b = Tensor::ones([2], DType::F32, &Device::Cpu).unwrap();
    assert!(DistributedDataParallel::new(vec![b], Arc::new(SingleProcess), 0.0).is_err());
}

#[test]
fn single_process_ddp_trains_like_plain_training() {
    // Same data order and batch: world size 1 must change nothing at all.
    let w = common::train(Arc::new(SingleProcess), 64, 5).unwrap();
    assert_eq!(w.len(), 10);
}

#[cfg(feature = "mpi")]
#[test]
fn two_ranks_of_32_match_one_process_of_64_after_20_steps() {
    const CHILD: &str = "MLFW_DDP_CHILD_OUT";
    if let Ok(out) = std::env::var(CHILD) {
        // Inside `mpirun -np 2`: each rank trains on its half of every batch of 64.
        let pg = mlfw_distributed::init_from_env().unwrap();
        assert_eq!(pg.world_size(), 2);
        let w = common::train(pg.clone(), 32, 20).unwrap();
        if pg.rank() == 0 {
            mlfw_core::safetensors::save(&out, &w, None).unwrap();
        }
        return;
    }
    let tmp = std::env::temp_dir().join(format!("mlfw-ddp-{}.safetensors", std::process::id()));
    let o = mpirun_self(
        "two_ranks_of_32_match_one_process_of_64_after_20_steps",
        &[(CHILD, tmp.to_str().unwrap()), ("MLFW_NUM_THREADS", "1")],
    );
    assert!(
        o.status.success(),
        "mpirun failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let two = mlfw_core::safetensors::load(&tmp, &Device::Cpu).unwrap();
    let _ = std::fs::remove_file(&tmp);
    let one = common::train(Arc::new(mlfw_distributed::SingleProcess), 64, 20).unwrap();
    let mut worst = 0f64;
    for (k, t) in &one {
        let d = two.require(k).unwrap();
        let (a, b) = (t.to_f64_vec().unwrap(), d.to_f64_vec().unwrap());
        let scale = a.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        worst = worst.max(diff / scale);
    }
    eprintln!("2 ranks x 32 vs 1 x 64 after 20 steps: max relative difference {worst:.3e}");
    assert!(worst <= 1e-6, "weights differ by {worst:.3e} (relative)");
}

#[cfg(feature = "mpi")]
#[test]
fn a_rank_that_dies_stops_the_others_with_an_error() {
    use std::time::{Duration, Instant};
    const CHILD: &str = "MLFW_DDP_DIE_CHILD";
    if std::env::var(CHILD).is_ok() {
        let pg = mlfw_distributed::init_from_env().unwrap();
        if pg.rank() == 1 {
            std::process::exit(3); // dies before the collective
        }
        let e = pg.all_reduce_sum(vec![1.0; 4]);
        panic!("rank 0 should not get past a collective with a dead peer: {e:?}");
    }
    let t = Instant::now();
    let o = mpirun_self(
        "a_rank_that_dies_stops_the_others_with_an_error",
        &[(CHILD, "1"), ("MLFW_DIST_TIMEOUT_S", "20")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the job must fail");
    assert_ne!(
        o.status.code(),
        Some(124),
        "the job hung until timeout(1) killed it:\n{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(100));
    assert!(err.contains("rank 1") || err.contains("exited"), "{err}");
}

/// A peer that is alive but never joins the collective: a sum made on the caller's thread
/// (the watchdog ends the process) and one handed to the communication thread
/// (`MLFW_MPI_DIRECT=0`: an error is returned) both stop with the timeout error naming the
/// rank instead of waiting forever.
#[cfg(feature = "mpi")]
#[test]
fn a_collective_a_peer_never_joins_times_out_with_an_error() {
    use std::time::{Duration, Instant};
    const CHILD: &str = "MLFW_DDP_STALL_CHILD";
    if let Ok(len) = std::env::var(CHILD) {
        let pg = mlfw_distributed::init_from_env().unwrap();
        if pg.rank() == 1 {
            std::thread::sleep(Duration::from_secs(8));
            std::process::exit(0);
        }
        let len: usize = len.parse().unwrap();
        let e = pg.all_reduce_sum(vec![1.0; len]).unwrap_err().to_string();
        eprintln!("error: {e}");
        // MPI cannot be finalised with a collective still open: leave without dropping `pg`.
        std::process::exit(7);
    }
    for (len, direct) in [(16usize, "1"), (1 << 20, "1"), (16, "0")] {
        let t = Instant::now();
        let o = mpirun_self(
            "a_collective_a_peer_never_joins_times_out_with_an_error",
            &[
                (CHILD, &len.to_string()),
                ("MLFW_MPI_DIRECT", direct),
                ("MLFW_DIST_TIMEOUT_S", "2"),
            ],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "the job must fail");
        assert!(
            err.contains("rank 0 of 2: MPI all_reduce did not finish within 2 s"),
            "{len} floats, direct {direct}: {err}"
        );
        assert!(t.elapsed() < Duration::from_secs(60));
    }
}
