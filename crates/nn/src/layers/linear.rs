//! Fully connected layer.

use super::{visit_opt, visit_opt_mut};
use crate::{functional, init, param, Module, TensorKind};
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// `y = x·Wᵀ + b` (PyTorch's `nn.Linear`): input `[.., in]`, output `[.., out]`.
/// Keys `weight [out, in]`, `bias [out]`; both U(±1/√in) initially.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// A float32 layer initialised from the global generator.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(
        in_features: usize,
        out_features: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Self> {
        Self::build(in_features, out_features, bias, device, None)
    }

    /// A float32 layer initialised from `g`.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new_with(
        in_features: usize,
        out_features: usize,
        bias: bool,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Self> {
        Self::build(in_features, out_features, bias, device, Some(g))
    }

    fn build(
        i: usize,
        o: usize,
        bias: bool,
        device: &Device,
        mut g: Option<&mut Generator>,
    ) -> Result<Self> {
        let w = Tensor::zeros([o, i], DType::F32, device)?;
        if i > 0 {
            init::default_weight(&w, g.as_deref_mut())?;
        }
        let b = if bias {
            let b = Tensor::zeros([o], DType::F32, device)?;
            init::default_bias(&b, i, g)?;
            Some(param(b)?)
        } else {
            None
        };
        Ok(Linear {
            weight: param(w)?,
            bias: b,
        })
    }

    /// A layer from existing tensors (`weight [out, in]`, `bias [out]`), made parameters.
    ///
    /// # Errors
    /// `Error::Msg` when `weight` is not 2-D or `bias` is not `[out]`.
    pub fn from_tensors(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::msg(format!(
                "Linear: weight must be 2-D, got {}",
                weight.shape()
            )));
        }
        Ok(Linear {
            weight: param(weight)?,
            bias: bias.map(param).transpose()?,
        })
    }

    /// `in_features`.
    pub fn in_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() == 0 || x.dims()[x.rank() - 1] != self.in_features() {
            return Err(Error::msg(format!(
                "Linear({}, {}): expected input [.., {}], got {}",
                self.in_features(),
                self.out_features(),
                self.in_features(),
                x.shape()
            )));
        }
        functional::linear(x, &self.weight, self.bias.as_ref())
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
        let l = Linear::new_with(16, 4, true, &Device::Cpu, &mut Generator::new(0)).unwrap();
        assert_eq!(l.weight.dims(), &[4, 16]);
        assert!(l.weight.requires_grad() && l.weight.is_leaf());
        let w = l.weight.to_vec::<f32>().unwrap();
        assert!(w.iter().all(|v| v.abs() <= 0.25) && w.iter().any(|v| v.abs() > 0.2));
        assert!(l
            .bias
            .as_ref()
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.abs() <= 0.25));
        let y = l
            .forward(&Tensor::ones([3, 16], DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(y.dims(), &[3, 4]);
        let e = l
            .forward(&Tensor::ones([3, 15], DType::F32, &Device::Cpu).unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("Linear(16, 4)") && e.to_string().contains("[3, 15]"),
            "{e}"
        );
        let names: Vec<_> = l.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(
            Linear::new(3, 2, false, &Device::Cpu)
                .unwrap()
                .num_parameters(),
            6
        );
    }
}
