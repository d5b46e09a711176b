//! All-reduce bandwidth of the process group for 1 KB – 64 MB messages (f32 sums), in the
//! style of `osu_allreduce`: median latency over repeats, and the algorithm bandwidth
//! (bytes / time).
//!
//! ```text
//! mpirun -np 2 target/release/examples/allreduce_bench
//! ```

use mlfw_core::Result;
use mlfw_distributed::init_from_env;
use std::time::Instant;

fn main() -> Result<()> {
    let pg = init_from_env()?;
    if pg.rank() == 0 {
        println!("{:>10}  {:>12}  {:>10}", "bytes", "latency µs", "GB/s");
    }
    let mut bytes = 1024usize;
    while bytes <= 64 << 20 {
        let n = bytes / 4;
        let reps = (200 * 1024 * 1024 / bytes).clamp(5, 1000);
        let mut buf = vec![1.0f32; n];
        for _ in 0..3 {
            buf = pg.all_reduce_sum(buf)?;
        }
        pg.barrier()?;
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            buf = pg.all_reduce_sum(buf)?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let t = times[reps / 2];
        if pg.rank() == 0 {
            println!(
                "{bytes:>10}  {:>12.1}  {:>10.2}",
                t * 1e6,
                bytes as f64 / t / 1e9
            );
        }
        bytes *= 4;
    }
    Ok(())
}
