//! Choosing the process group from the environment a launcher sets.

use crate::group::{ProcessGroup, SingleProcess};
use mlfw_core::{Error, Result};
use std::sync::Arc;

/// True when this process was started by `mpirun`/`mpiexec` (Open MPI, MPICH, Intel MPI or
/// Slurm's PMI set these variables).
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// This process's rank as the launcher set it (`OMPI_COMM_WORLD_RANK`, `PMI_RANK`,
/// `PMIX_RANK`), read without initialising MPI; `None` outside `mpirun`.
pub fn env_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// The process group for training on `device`: NCCL for a CUDA device when built with the
/// `nccl` feature (rank and world size from the launcher's environment, rank 0's id through
/// the file `MLFW_NCCL_ID_FILE`, required when there is more than one rank), else
/// [`init_from_env`].
///
/// # Errors
/// As [`init_from_env`]; NCCL missing or failing; no `MLFW_NCCL_ID_FILE` for several
/// GPU ranks.
pub fn init_for(device: &mlfw_core::Device) -> Result<Arc<dyn ProcessGroup>> {
    #[cfg(feature = "nccl")]
    if let mlfw_core::Device::Cuda(ordinal) = device {
        let world = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MLFW_WORLD_SIZE"]
            .iter()
            .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
            .unwrap_or(1);
        let rank = env_rank()
            .or_else(|| std::env::var("MLFW_RANK").ok()?.parse().ok())
            .unwrap_or(0);
        let id_file = match std::env::var_os("MLFW_NCCL_ID_FILE") {
            Some(f) => std::path::PathBuf::from(f),
            None if world == 1 => std::env::temp_dir().join(format!("mlfw-nccl-{}", std::process::id())),
            None => {
                return Err(Error::msg(
                    "NCCL with several ranks needs MLFW_NCCL_ID_FILE: a path on a filesystem every rank sees",
                ))
            }
        };
        let timeout = std::time::Duration::from_secs(600);
        return Ok(Arc::new(crate::NcclGroup::new(
            *ordinal, rank, world, &id_file, timeout,
        )?));
    }
    let _ = device;
    init_from_env()
}

/// The process group for this process: MPI's world when launched by `mpirun` (requires the
/// `mpi` feature), else a single process.
///
/// # Errors
/// Launched by `mpirun` (or with `MLFW_WORLD_SIZE` > 1) in a build without the `mpi`
/// feature; MPI failing to initialise.
pub fn init_from_env() -> Result<Arc<dyn ProcessGroup>> {
    let torchrun_style = std::env::var("MLFW_WORLD_SIZE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > 1);
    if launched_by_mpi() {
        #[cfg(feature = "mpi")]
        {
            return Ok(Arc::new(crate::mpi_group::MpiGroup::init()?));
        }
        #[cfg(not(feature = "mpi"))]
        return Err(Error::msg(
            "launched by mpirun, but this mlfw was built without MPI: rebuild with `--features mpi` \
             (needs libopenmpi-dev or an MPICH development package, and libclang)",
        ));
    }
    if torchrun_style {
        return Err(Error::msg(
            "MLFW_WORLD_SIZE > 1 without mpirun: mlfw has no TCP rendezvous store; launch with \
             `mpirun -np N mlfw ...` (build with `--features mpi`)",
        ));
    }
    Ok(Arc::new(SingleProcess))
}
