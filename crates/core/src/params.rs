//! Plain-data descriptions of kernels: which elementwise op, which reduction, conv geometry.
//! Every backend implements the same set.

/// Elementwise ops of one input (parameters inline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    /// `max(x, 0)`, NaN kept.
    Relu,
    /// GELU with the exact erf form.
    GeluErf,
    /// GELU with the tanh approximation.
    GeluTanh,
    /// -1, 0, 1; NaN kept.
    Sign,
    Recip,
    Square,
    /// `x if x > 0 else slope * x`.
    LeakyRelu(f64),
    /// `x ^ e`.
    Powf(f64),
    /// `min(max(x, lo), hi)`.
    Clamp(f64, f64),
    /// `x * mul + add`.
    Affine(f64, f64),
    /// The error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt` (float dtypes only).
    Erf,
}

/// Elementwise ops of two inputs of equal (already broadcast) shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Pow,
}

/// Comparisons producing a bool mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions; the output keeps reduced dims with size 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
    /// Index (i64) of the first maximum; one dim only.
    ArgMax,
    /// Index (i64) of the first minimum; one dim only.
    ArgMin,
}

/// Geometry of a 2-D convolution (NCHW input, [C_out, C_in/groups, kH, kW] weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// Output spatial size for an input of `(h, w)` and kernel `(kh, kw)`, or `None` if empty.
    pub fn out_hw(
        &self,
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
    ) -> Option<(usize, usize)> {
        let eff_h = self.dilation.0 * (kh - 1) + 1;
        let eff_w = self.dilation.1 * (kw - 1) + 1;
        let ph = h + 2 * self.padding.0;
        let pw = w + 2 * self.padding.1;
        if ph < eff_h || pw < eff_w || self.stride.0 == 0 || self.stride.1 == 0 {
            return None;
        }
        Some((
            (ph - eff_h) / self.stride.0 + 1,
            (pw - eff_w) / self.stride.1 + 1,
        ))
    }
}

/// Geometry of 2-D pooling over NCHW input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub ceil_mode: bool,
    /// Avg pooling only: count padded zeros in the divisor (PyTorch's default true).
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// Square kernel `k`, stride `k` (PyTorch's default), no padding.
    pub fn new(k: usize) -> Self {
        Pool2dParams {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// Output size along one axis, PyTorch's formula (ceil_mode windows must start inside the input).
    pub fn out_len(&self, len: usize, axis: usize) -> Option<usize> {
        let (k, s, p, d) = if axis == 0 {
            (
                self.kernel.0,
                self.stride.0,
                self.padding.0,
                self.dilation.0,
            )
        } else {
            (
                self.kernel.1,
                self.stride.1,
                self.padding.1,
                self.dilation.1,
            )
        };
        let eff = d * (k - 1) + 1;
        if s == 0 || len + 2 * p < eff {
            return None;
        }
        let span = len + 2 * p - eff;
        let mut out = if self.ceil_mode {
            span.div_ceil(s) + 1
        } else {
            span / s + 1
        };
        if self.ceil_mode && (out - 1) * s >= len + p {
            out -= 1;
        }
        Some(out)
    }
}

/// The dims of a batched matmul: `[b, m, k] x [b, k, n] -> [b, m, n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulDims {
    pub b: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// One fused in-place optimizer update of a parameter from its gradient and state buffers.
/// Semantics are PyTorch's (torch.optim, single-tensor path), step counted from 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimUpdate {
    /// state: `[momentum_buffer]` when momentum != 0, else `[]`.
    Sgd {
        lr: f64,
        momentum: f64,
        dampening: f64,
        nesterov: bool,
        weight_decay: f64,
        maximize: bool,
        first_step: bool,
    },
    /// state: `[exp_avg, exp_avg_sq]` plus `[max_exp_avg_sq]` with amsgrad.
    /// `decoupled` = AdamW's weight decay.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        amsgrad: bool,
        decoupled: bool,
        maximize: bool,
        step: u64,
    },
    /// state: `[square_avg]`, then `[momentum_buffer]` if momentum > 0, then `[grad_avg]` if centered.
    RmsProp {
        lr: f64,
        alpha: f64,
        eps: f64,
        weight_decay: f64,
        momentum: f64,
        centered: bool,
        maximize: bool,
    },
    /// state: `[sum]`.
    Adagrad {
        lr: f64,
        lr_decay: f64,
        weight_decay: f64,
        eps: f64,
        maximize: bool,
        step: u64,
    },
}
