//! The im2col + cuBLAS convolution path (used when cuDNN is absent), forced on; its own test
//! binary because the switch is process-wide.

#[path = "cuda/common.rs"]
mod common;
#[path = "cuda/conv_pool.rs"]
mod conv_pool;

#[test]
fn conv2d_without_cudnn() -> mlfw_core::Result<()> {
    mlfw_cuda::set_use_cudnn(false);
    mlfw_cuda::set_allow_tf32(false);
    conv_pool::conv_cases(1e-4)
}
