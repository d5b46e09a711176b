//! Pooling layers (no parameters).

use crate::Module;
use mlfw_core::{Error, Pool2dParams, Result, Tensor};

fn check4(x: &Tensor, name: &str) -> Result<()> {
    if x.rank() != 4 {
        return Err(Error::msg(format!(
            "{name}: expected input [N, C, H, W], got {}",
            x.shape()
        )));
    }
    Ok(())
}

/// Max pooling over `[N, C, H, W]` (PyTorch's `nn.MaxPool2d`).
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d {
    /// Kernel, stride, padding, dilation, ceil mode.
    pub params: Pool2dParams,
}

impl MaxPool2d {
    /// Square kernel `k`, stride `k`, no padding.
    pub fn new(k: usize) -> Self {
        MaxPool2d {
            params: Pool2dParams::new(k),
        }
    }
    /// Square kernel, stride and padding.
    pub fn with(kernel: usize, stride: usize, padding: usize) -> Self {
        let mut p = Pool2dParams::new(kernel);
        p.stride = (stride, stride);
        p.padding = (padding, padding);
        MaxPool2d { params: p }
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check4(x, "MaxPool2d")?;
        x.max_pool2d(self.params)
            .map_err(|e| e.context("MaxPool2d"))
    }
}

/// Average pooling over `[N, C, H, W]` (PyTorch's `nn.AvgPool2d`, padding counted by default).
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d {
    /// Kernel, stride, padding, ceil mode, count_include_pad.
    pub params: Pool2dParams,
}

impl AvgPool2d {
    /// Square kernel `k`, stride `k`, no padding.
    pub fn new(k: usize) -> Self {
        AvgPool2d {
            params: Pool2dParams::new(k),
        }
    }
    /// Square kernel, stride and padding.
    pub fn with(kernel: usize, stride: usize, padding: usize) -> Self {
        let mut p = Pool2dParams::new(kernel);
        p.stride = (stride, stride);
        p.padding = (padding, padding);
        AvgPool2d { params: p }
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check4(x, "AvgPool2d")?;
        x.avg_pool2d(self.params)
            .map_err(|e| e.context("AvgPool2d"))
    }
}

/// Adaptive average pooling to a fixed `(H, W)` (PyTorch's `nn.AdaptiveAvgPool2d`).
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveAvgPool2d {
    /// Output size.
    pub output: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// Output `(h, w)`.
    pub fn new(output: (usize, usize)) -> Self {
        AdaptiveAvgPool2d { output }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check4(x, "AdaptiveAvgPool2d")?;
        x.adaptive_avg_pool2d(self.output)
            .map_err(|e| e.context("AdaptiveAvgPool2d"))
    }
}
