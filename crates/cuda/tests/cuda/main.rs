//! CUDA integration tests, one binary (small to carry to a GPU machine). Each test compares
//! the CUDA result with the CPU's on the same inputs, or, without CUDA, prints
//! `skipping: CUDA not available (...)` and passes.

mod common;
mod compiled;
mod conv_pool;
mod device;
mod elementwise;
mod index;
mod matmul;
mod optim;
mod random;
mod reduce;
mod special;
mod staging;
