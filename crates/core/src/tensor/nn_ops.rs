//! Convolution and pooling over NCHW tensors, and the raw backward kernels autograd uses.

use super::{same_device_dtype, Tensor};
use crate::op::Op;
use crate::params::{Conv2dParams, Pool2dParams};
use crate::{Error, Result, Shape};

impl Tensor {
    fn check_nchw(&self, op: &'static str) -> Result<(usize, usize, usize, usize)> {
        match *self.dims() {
            [n, c, h, w] => Ok((n, c, h, w)),
            _ => Err(Error::msg(format!(
                "{op}: expected a 4-D [N, C, H, W] input, got shape {}",
                self.shape()
            ))),
        }
    }

    /// 2-D convolution (cross-correlation, as PyTorch): input `[N, C, H, W]`, weight
    /// `[O, C/groups, kH, kW]`, optional bias `[O]`; output `[N, O, oH, oW]`.
    ///
    /// # Errors
    /// `Error::Msg` unless input is 4-D `[N, C, H, W]` and weight `[O, C/groups, kH, kW]` with
    /// `groups` dividing `C` and `O`, bias `[O]`, and the padded input at least the dilated kernel;
    /// dtype and device errors as for binary ops.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: Conv2dParams,
    ) -> Result<Tensor> {
        if let Some((x, w)) = crate::autocast::lower_pair(self, weight)? {
            let b = bias.map(|b| b.to_dtype(w.dtype())).transpose()?;
            return x.conv2d(&w, b.as_ref(), p);
        }
        same_device_dtype(self, weight, "conv2d")?;
        let (n, c, h, w) = self.check_nchw("conv2d")?;
        let [o, cg, kh, kw] = *weight.dims() else {
            return Err(Error::msg(format!(
                "conv2d: expected a 4-D weight [O, C/groups, kH, kW], got {}",
                weight.shape()
            )));
        };
        if p.groups == 0 || c != cg * p.groups || o % p.groups != 0 {
            return Err(Error::msg(format!(
                "conv2d: input {} has {c} channels but weight {} expects {} (groups {})",
                self.shape(),
                weight.shape(),
                cg * p.groups,
                p.groups
            )));
        }
        if kh == 0 || kw == 0 || p.dilation.0 == 0 || p.dilation.1 == 0 {
            return Err(Error::msg(
                "conv2d: kernel size and dilation must be positive",
            ));
        }
        let (oh, ow) = p.out_hw((h, w), (kh, kw)).ok_or_else(|| {
            Error::msg(format!(
                "conv2d: input {} is smaller than the (dilated) kernel {}x{} with padding {:?}",
                self.shape(),
                kh,
                kw,
                p.padding
            ))
        })?;
        let s = self
            .storage()
            .conv2d(self.layout(), &**weight.storage(), weight.layout(), &p)?;
        let out = Tensor::from_storage(
            s,
            [n, o, oh, ow],
            || Op::Conv2d {
                input: self.clone(),
                weight: weight.clone(),
                params: p,
            },
            &[self, weight],
        );
        match bias {
            None => Ok(out),
            Some(b) => {
                if b.dims() != [o] {
                    return Err(Error::msg(format!(
                        "conv2d: bias must have shape [{o}], got {}",
                        b.shape()
                    )));
                }
                out.add(&b.reshape([1, o, 1, 1])?)
            }
        }
    }

    /// Gradient of conv2d w.r.t. its input (`self` = grad_out `[N, O, oH, oW]`), output
    /// `[N, C, input_hw]`; recorded (differentiable in both inputs) when an input requires grad.
    ///
    /// # Errors
    /// `Error::Msg` when `self`, `weight` and `input_hw` do not fit one convolution's geometry.
    pub fn conv2d_backward_input(
        &self,
        weight: &Tensor,
        p: Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Tensor> {
        let (n, _, _, _) = self.check_nchw("conv2d_backward_input")?;
        let c = weight.dims()[1] * p.groups;
        let s = self.storage().conv2d_backward_input(
            self.layout(),
            &**weight.storage(),
            weight.layout(),
            &p,
            input_hw,
        )?;
        Ok(Tensor::from_storage(
            s,
            [n, c, input_hw.0, input_hw.1],
            || Op::Conv2dBackwardInput {
                grad: self.clone(),
                weight: weight.clone(),
                params: p,
                in_hw: input_hw,
            },
            &[self, weight],
        ))
    }

    /// Gradient of conv2d w.r.t. its weight (`self` = input, `grad_out` `[N, O, oH, oW]`),
    /// output `[O, C/groups, kernel_hw]`; recorded when an input requires grad.
    ///
    /// # Errors
    /// `Error::Msg` when `self`, `grad_out` and `kernel_hw` do not fit one convolution's geometry.
    pub fn conv2d_backward_weight(
        &self,
        grad_out: &Tensor,
        p: Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Tensor> {
        let (_, c, _, _) = self.check_nchw("conv2d_backward_weight")?;
        let o = grad_out.dims()[1];
        let s = self.storage().conv2d_backward_weight(
            self.layout(),
            &**grad_out.storage(),
            grad_out.layout(),
            &p,
            kernel_hw,
        )?;
        Ok(Tensor::from_storage(
            s,
            [o, c / p.groups, kernel_hw.0, kernel_hw.1],
            || Op::Conv2dBackwardWeight {
                input: self.clone(),
                grad: grad_out.clone(),
                params: p,
                k_hw: kernel_hw,
            },
            &[self, grad_out],
        ))
    }

    fn pool_out(&self, p: &Pool2dParams, op: &'static str) -> Result<Shape> {
        let (n, c, h, w) = self.check_nchw(op)?;
        if p.kernel.0 == 0 || p.kernel.1 == 0 || p.stride.0 == 0 || p.stride.1 == 0 {
            return Err(Error::msg(format!(
                "{op}: kernel and stride must be positive"
            )));
        }
        if 2 * p.padding.0 > p.kernel.0 || 2 * p.padding.1 > p.kernel.1 {
            return Err(Error::msg(format!(
                "{op}: padding {:?} must be at most half the kernel {:?}",
                p.padding, p.kernel
            )));
        }
        match (p.out_len(h, 0), p.out_len(w, 1)) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok(Shape::new(vec![n, c, oh, ow])),
            _ => Err(Error::msg(format!(
                "{op}: input {} is too small for kernel {:?}",
                self.shape(),
                p.kernel
            ))),
        }
    }

    /// Max pooling; returns values (indices are kept for backward).
    ///
    /// # Errors
    /// `Error::Msg` unless the input is 4-D `[N, C, H, W]`, the kernel non-zero, the padding at
    /// most half the kernel and the window fits; `Error::UnsupportedDType` for integer and bool
    /// inputs.
    pub fn max_pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        Ok(self.max_pool2d_with_indices(p)?.0)
    }

    /// Max pooling with the i64 indices (`h * W + w` within each plane), as PyTorch.
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`].
    pub fn max_pool2d_with_indices(&self, p: Pool2dParams) -> Result<(Tensor, Tensor)> {
        let shape = self.pool_out(&p, "max_pool2d")?;
        let (v, i) = self.storage().max_pool2d(self.layout(), &p)?;
        let idx = Tensor::from_backend_storage(i, shape.clone())?;
        let ic = idx.clone();
        let out = Tensor::from_storage(
            v,
            shape,
            || Op::MaxPool2d {
                input: self.clone(),
                indices: ic,
                params: p,
            },
            &[self],
        );
        Ok((out, idx))
    }

    /// Gradient of max pooling (`self` = grad_out, `indices` from the forward), output
    /// shaped `input`; recorded (differentiable in `self`) when `self` requires grad.
    ///
    /// # Errors
    /// `Error::Msg` when `input` is not 4-D with the gradient's batch and channels, or `indices` is
    /// not i64 shaped like `self`.
    pub fn max_pool2d_backward(&self, indices: &Tensor, input: &Shape) -> Result<Tensor> {
        let in_hw = pool_input_hw(self, input, "max_pool2d_backward")?;
        let s = self.storage().max_pool2d_backward(
            self.layout(),
            &**indices.storage(),
            indices.layout(),
            input,
        )?;
        Ok(Tensor::from_storage(
            s,
            input.clone(),
            || Op::MaxPool2dBackward {
                grad: self.clone(),
                indices: indices.clone(),
                in_hw,
            },
            &[self],
        ))
    }

    /// Average pooling.
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`]; `Error::Msg` for a dilation other than 1 (PyTorch has none).
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Result<Tensor> {
        let shape = self.pool_out(&p, "avg_pool2d")?;
        let s = self.storage().avg_pool2d(self.layout(), &p)?;
        Ok(Tensor::from_storage(
            s,
            shape,
            || Op::AvgPool2d {
                input: self.clone(),
                params: p,
            },
            &[self],
        ))
    }

    /// Gradient of average pooling (`self` = grad_out), output shaped `input`; recorded
    /// when `self` requires grad.
    ///
    /// # Errors
    /// `Error::Msg` when `input` is not 4-D with the gradient's batch and channels.
    pub fn avg_pool2d_backward(&self, p: Pool2dParams, input: &Shape) -> Result<Tensor> {
        let in_hw = pool_input_hw(self, input, "avg_pool2d_backward")?;
        let s = self
            .storage()
            .avg_pool2d_backward(self.layout(), &p, input)?;
        Ok(Tensor::from_storage(
            s,
            input.clone(),
            || Op::AvgPool2dBackward {
                grad: self.clone(),
                params: p,
                in_hw,
            },
            &[self],
        ))
    }

    /// Adaptive average pooling to `out_hw`.
    ///
    /// # Errors
    /// `Error::Msg` unless the input is 4-D and `out_hw` is non-zero.
    pub fn adaptive_avg_pool2d(&self, out_hw: (usize, usize)) -> Result<Tensor> {
        let (n, c, _, _) = self.check_nchw("adaptive_avg_pool2d")?;
        if out_hw.0 == 0 || out_hw.1 == 0 {
            return Err(Error::msg(
                "adaptive_avg_pool2d: output size must be positive",
            ));
        }
        let s = self.storage().adaptive_avg_pool2d(self.layout(), out_hw)?;
        Ok(Tensor::from_storage(
            s,
            [n, c, out_hw.0, out_hw.1],
            || Op::AdaptiveAvgPool2d {
                input: self.clone(),
                out_hw,
            },
            &[self],
        ))
    }

    /// Gradient of adaptive average pooling (`self` = grad_out), output shaped `input`;
    /// recorded when `self` requires grad.
    ///
    /// # Errors
    /// `Error::Msg` when `input` is not 4-D with the gradient's batch and channels.
    pub fn adaptive_avg_pool2d_backward(&self, input: &Shape) -> Result<Tensor> {
        let in_hw = pool_input_hw(self, input, "adaptive_avg_pool2d_backward")?;
        let s = self
            .storage()
            .adaptive_avg_pool2d_backward(self.layout(), input)?;
        Ok(Tensor::from_storage(
            s,
            input.clone(),
            || Op::AdaptiveAvgPool2dBackward {
                grad: self.clone(),
                in_hw,
            },
            &[self],
        ))
    }
}

/// The `(H, W)` of a pooling input shape, checking it is `[N, C, H, W]` with the gradient's
/// batch and channels.
fn pool_input_hw(grad: &Tensor, input: &Shape, op: &'static str) -> Result<(usize, usize)> {
    match (input.dims(), grad.dims()) {
        (&[n, c, h, w], &[gn, gc, _, _]) if n == gn && c == gc => Ok((h, w)),
        _ => Err(Error::msg(format!(
            "{op}: gradient {} does not match input shape {input}",
            grad.shape()
        ))),
    }
}
