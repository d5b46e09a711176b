//! The im2col + cuBLAS convolution path (used when cuDNN is absent), forced on; its own test
//! binary because the switch is process-wide.
mod common;

#[path = "conv_pool.rs"]
#[allow(dead_code)]
mod conv_pool;

#[test]
fn conv2d_without_cudnn() -> mlfw_core::Result<()> {
    mlfw_cuda::set_use_cudnn(false);
    mlfw_cuda::set_allow_tf32(false);
    conv_pool::conv_cases(1e-4)
}
