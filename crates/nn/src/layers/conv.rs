//! 2-D convolution layer.

use super::{visit_opt, visit_opt_mut};
use crate::{init, param, Module, TensorKind};
use mlfw_core::{Conv2dParams, DType, Device, Error, Generator, Result, Tensor};

/// Geometry and bias of a [`Conv2d`] (PyTorch's defaults: stride 1, padding 0, dilation 1,
/// groups 1, bias on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Stride `(h, w)`.
    pub stride: (usize, usize),
    /// Zero padding `(h, w)`.
    pub padding: (usize, usize),
    /// Dilation `(h, w)`.
    pub dilation: (usize, usize),
    /// Channel groups (in and out channels must both be divisible by it).
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
            bias: true,
        }
    }
}

impl Conv2dConfig {
    /// Square stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = (s, s);
        self
    }
    /// Square padding.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = (p, p);
        self
    }
    /// Square dilation.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = (d, d);
        self
    }
    /// Groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// Bias on or off.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    fn params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

/// 2-D convolution (PyTorch's `nn.Conv2d`): input `[N, C_in, H, W]` (or unbatched
/// `[C_in, H, W]`), output `[N, C_out, H', W']`. Keys `weight [C_out, C_in/groups, kH, kW]`,
/// `bias [C_out]`; both U(±1/√fan_in) initially, fan_in = C_in/groups·kH·kW.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// `[C_out, C_in/groups, kH, kW]`.
    pub weight: Tensor,
    /// `[C_out]`.
    pub bias: Option<Tensor>,
    /// Geometry.
    pub config: Conv2dConfig,
}

impl Conv2d {
    /// A float32 layer with a square `kernel`, initialised from the global generator.
    ///
    /// # Errors
    /// `Error::Msg` when the channels are not divisible by `groups`, or the kernel, stride or
    /// dilation is 0.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        config: Conv2dConfig,
        device: &Device,
    ) -> Result<Self> {
        Self::build(c_in, c_out, (kernel, kernel), config, device, None)
    }

    /// A float32 layer with kernel `(kh, kw)`, initialised from `g`.
    ///
    /// # Errors
    /// `Error::Msg` when the channels are not divisible by `groups`, or a kernel, stride or
    /// dilation size is 0.
    pub fn new_with(
        c_in: usize,
        c_out: usize,
        kernel: (usize, usize),
        config: Conv2dConfig,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Self> {
        Self::build(c_in, c_out, kernel, config, device, Some(g))
    }

    fn build(
        c_in: usize,
        c_out: usize,
        (kh, kw): (usize, usize),
        config: Conv2dConfig,
        device: &Device,
        mut g: Option<&mut Generator>,
    ) -> Result<Self> {
        let gr = config.groups;
        if c_in.checked_rem(gr) != Some(0) || c_out.checked_rem(gr) != Some(0) {
            return Err(Error::msg(format!(
                "Conv2d: in_channels {c_in} and out_channels {c_out} must be divisible by groups {gr}"
            )));
        }
        if kh == 0
            || kw == 0
            || config.stride.0 == 0
            || config.stride.1 == 0
            || config.dilation.0 == 0
            || config.dilation.1 == 0
        {
            return Err(Error::msg(
                "Conv2d: kernel size, stride and dilation must be positive",
            ));
        }
        let w = Tensor::zeros([c_out, c_in / gr, kh, kw], DType::F32, device)?;
        init::default_weight(&w, g.as_deref_mut())?;
        let bias = if config.bias {
            let b = Tensor::zeros([c_out], DType::F32, device)?;
            init::default_bias(&b, c_in / gr * kh * kw, g)?;
            Some(param(b)?)
        } else {
            None
        };
        Ok(Conv2d {
            weight: param(w)?,
            bias,
            config,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims()[1] * self.config.groups
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ci, co) = (self.in_channels(), self.out_channels());
        let k = (self.weight.dims()[2], self.weight.dims()[3]);
        let ok = matches!(x.rank(), 3 | 4) && x.dims()[x.rank() - 3] == ci;
        if !ok {
            return Err(Error::msg(format!(
                "Conv2d({ci}, {co}, kernel {k:?}): expected input [N, {ci}, H, W], got {}",
                x.shape()
            )));
        }
        if x.rank() == 3 {
            return self.forward(&x.unsqueeze(0)?)?.squeeze(0);
        }
        x.conv2d(&self.weight, self.bias.as_ref(), self.config.params())
            .map_err(|e| e.context(format!("Conv2d({ci}, {co}, kernel {k:?})")))
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        f("weight", &self.weight, TensorKind::Parameter);
        visit_opt(f, "bias", &self.bias, TensorKind::Parameter);
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        f("weight", &mut self.weight, TensorKind::Parameter)?;
        visit_opt_mut(f, "bias", &mut self.bias, TensorKind::Parameter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_init_and_errors() {
        let c = Conv2d::new_with(
            3,
            8,
            (3, 3),
            Conv2dConfig::default().groups(1),
            &Device::Cpu,
            &mut Generator::new(0),
        )
        .unwrap();
        assert_eq!(c.weight.dims(), &[8, 3, 3, 3]);
        let bound = 1.0 / 27f32.sqrt();
        assert!(c
            .weight
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.abs() <= bound));
        assert!(c
            .bias
            .as_ref()
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.abs() <= bound));
        let e = c
            .forward(&Tensor::ones([1, 4, 8, 8], DType::F32, &Device::Cpu).unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("Conv2d(3, 8") && e.to_string().contains("[1, 4, 8, 8]"),
            "{e}"
        );
        assert!(Conv2d::new(3, 8, 3, Conv2dConfig::default().groups(2), &Device::Cpu).is_err());
        let dw = Conv2d::new(
            4,
            8,
            3,
            Conv2dConfig::default().groups(4).bias(false),
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(dw.weight.dims(), &[8, 1, 3, 3]);
        assert_eq!(dw.named_parameters().len(), 1);
    }
}
