//! Normalisation layers: BatchNorm (1-D and 2-D) and LayerNorm.

use super::{visit_opt, visit_opt_mut};
use crate::functional::{self, RunningStats};
use crate::{param, Module, TensorKind};
use mlfw_core::{DType, Device, Error, Result, Tensor};

/// Batch normalisation over channel dim 1 (PyTorch's `_BatchNorm`): training mode
/// normalises with batch statistics and updates the running ones in place; eval mode uses
/// the running statistics. Keys `weight`, `bias` (ones/zeros), `running_mean` (zeros),
/// `running_var` (ones), `num_batches_tracked` (int64 scalar).
#[derive(Debug, Clone)]
pub struct BatchNorm {
    /// `[C]` scale (None without affine).
    pub weight: Option<Tensor>,
    /// `[C]` shift (None without affine).
    pub bias: Option<Tensor>,
    /// `[C]` running mean (None without running statistics).
    pub running_mean: Option<Tensor>,
    /// `[C]` running unbiased variance.
    pub running_var: Option<Tensor>,
    /// int64 scalar count of training batches.
    pub num_batches_tracked: Option<Tensor>,
    /// Weight of each new batch in the running stats (`None`: cumulative average).
    pub momentum: Option<f64>,
    /// Added to the variance.
    pub eps: f64,
    training: bool,
    ranks: &'static [usize],
    name: &'static str,
}

/// `nn.BatchNorm1d`: input `[N, C]` or `[N, C, L]`.
pub type BatchNorm1d = BatchNorm;
/// `nn.BatchNorm2d`: input `[N, C, H, W]`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    fn build(
        c: usize,
        ranks: &'static [usize],
        name: &'static str,
        device: &Device,
    ) -> Result<Self> {
        let z = || Tensor::zeros([c], DType::F32, device);
        let o = || Tensor::ones([c], DType::F32, device);
        Ok(BatchNorm {
            weight: Some(param(o()?)?),
            bias: Some(param(z()?)?),
            running_mean: Some(z()?),
            running_var: Some(o()?),
            num_batches_tracked: Some(Tensor::scalar(0i64, device)?),
            momentum: Some(0.1),
            eps: 1e-5,
            training: true,
            ranks,
            name,
        })
    }

    /// `BatchNorm1d(c)`: eps 1e-5, momentum 0.1, affine, tracking running stats.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new_1d(c: usize, device: &Device) -> Result<Self> {
        Self::build(c, &[2, 3], "BatchNorm1d", device)
    }

    /// `BatchNorm2d(c)`: eps 1e-5, momentum 0.1, affine, tracking running stats.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new_2d(c: usize, device: &Device) -> Result<Self> {
        Self::build(c, &[4], "BatchNorm2d", device)
    }

    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets momentum (`None` = cumulative moving average).
    pub fn momentum(mut self, m: Option<f64>) -> Self {
        self.momentum = m;
        self
    }

    /// Drops weight and bias (`affine=False`).
    pub fn without_affine(mut self) -> Self {
        self.weight = None;
        self.bias = None;
        self
    }

    /// Drops the running statistics (`track_running_stats=False`: batch stats always).
    pub fn without_running_stats(mut self) -> Self {
        self.running_mean = None;
        self.running_var = None;
        self.num_batches_tracked = None;
        self
    }

    /// Number of channels.
    pub fn num_features(&self) -> usize {
        self.weight
            .as_ref()
            .or(self.running_mean.as_ref())
            .map_or(0, |t| t.dims()[0])
    }
}

impl BatchNorm {
    /// `relu(self.forward(x))`, the ReLU fused into the normalisation where the kernels allow
    /// ([`functional::batch_norm_relu`]); same errors as `forward`.
    ///
    /// # Errors
    /// `Error::Msg` when `x` is not `[N, C]`/`[N, C, L]` (1-d) or `[N, C, H, W]` (2-d) with this
    /// layer's `C`; as [`functional::batch_norm`].
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, true)
    }

    fn run(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let c = self.num_features();
        if !self.ranks.contains(&x.rank()) || x.dims()[1] != c {
            let want = if self.ranks == [4] {
                format!("[N, {c}, H, W]")
            } else {
                format!("[N, {c}] or [N, {c}, L]")
            };
            return Err(Error::msg(format!(
                "{}({c}): expected input {want}, got {}",
                self.name,
                x.shape()
            )));
        }
        let running = match (&self.running_mean, &self.running_var) {
            (Some(m), Some(v)) => Some(RunningStats {
                mean: m,
                var: v,
                num_batches_tracked: self.num_batches_tracked.as_ref(),
                momentum: self.momentum,
            }),
            _ => None,
        };
        let use_batch = self.training || running.is_none();
        let running = if self.training || !use_batch {
            running
        } else {
            None
        };
        let f = if relu {
            functional::batch_norm_relu
        } else {
            functional::batch_norm
        };
        f(
            x,
            running,
            self.weight.as_ref(),
            self.bias.as_ref(),
            use_batch,
            self.eps,
        )
        .map_err(|e| e.context(format!("{}({c})", self.name)))
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false)
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        visit_opt(f, "weight", &self.weight, TensorKind::Parameter);
        visit_opt(f, "bias", &self.bias, TensorKind::Parameter);
        visit_opt(f, "running_mean", &self.running_mean, TensorKind::Buffer);
        visit_opt(f, "running_var", &self.running_var, TensorKind::Buffer);
        visit_opt(
            f,
            "num_batches_tracked",
            &self.num_batches_tracked,
            TensorKind::Buffer,
        );
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        visit_opt_mut(f, "weight", &mut self.weight, TensorKind::Parameter)?;
        visit_opt_mut(f, "bias", &mut self.bias, TensorKind::Parameter)?;
        visit_opt_mut(
            f,
            "running_mean",
            &mut self.running_mean,
            TensorKind::Buffer,
        )?;
        visit_opt_mut(f, "running_var", &mut self.running_var, TensorKind::Buffer)?;
        visit_opt_mut(
            f,
            "num_batches_tracked",
            &mut self.num_batches_tracked,
            TensorKind::Buffer,
        )
    }
    fn set_own_training(&mut self, on: bool) {
        self.training = on;
    }
    fn own_training(&self) -> Option<bool> {
        Some(self.training)
    }
}

/// Layer normalisation over the trailing `normalized_shape` dims (PyTorch's `nn.LayerNorm`,
/// eps 1e-5, `weight` ones and `bias` zeros shaped `normalized_shape`).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// Scale (None without elementwise affine).
    pub weight: Option<Tensor>,
    /// Shift.
    pub bias: Option<Tensor>,
    /// The normalised trailing dims.
    pub normalized_shape: Vec<usize>,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// `LayerNorm(normalized_shape)` with elementwise affine.
    ///
    /// # Errors
    /// `Error::Msg` for an empty `normalized_shape`.
    pub fn new(normalized_shape: &[usize], device: &Device) -> Result<Self> {
        if normalized_shape.is_empty() {
            return Err(Error::msg("LayerNorm: normalized_shape must not be empty"));
        }
        let s = normalized_shape.to_vec();
        Ok(LayerNorm {
            weight: Some(param(Tensor::ones(s.clone(), DType::F32, device)?)?),
            bias: Some(param(Tensor::zeros(s.clone(), DType::F32, device)?)?),
            normalized_shape: s,
            eps: 1e-5,
        })
    }

    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        functional::layer_norm(
            x,
            &self.normalized_shape,
            self.weight.as_ref(),
            self.bias.as_ref(),
            self.eps,
        )
        .map_err(|e| e.context(format!("LayerNorm({:?})", self.normalized_shape)))
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        visit_opt(f, "weight", &self.weight, TensorKind::Parameter);
        visit_opt(f, "bias", &self.bias, TensorKind::Parameter);
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        visit_opt_mut(f, "weight", &mut self.weight, TensorKind::Parameter)?;
        visit_opt_mut(f, "bias", &mut self.bias, TensorKind::Parameter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Tensor {
        let v: Vec<f32> = (0..2 * 3 * 2 * 2)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        Tensor::from_vec(v, [2, 3, 2, 2], &Device::Cpu).unwrap()
    }

    #[test]
    fn train_eval_and_running_stats() {
        let mut bn = BatchNorm2d::new_2d(3, &Device::Cpu).unwrap();
        assert!(bn.is_training());
        let x = input();
        let y = bn.forward(&x).unwrap();
        // per-channel mean ~0 in training mode
        let m = y.mean(&[0, 2, 3], false).unwrap().to_vec::<f32>().unwrap();
        assert!(m.iter().all(|v| v.abs() < 1e-5), "{m:?}");
        let bm = x.mean(&[0, 2, 3], false).unwrap().to_vec::<f32>().unwrap();
        let rm = bn.running_mean.as_ref().unwrap().to_vec::<f32>().unwrap();
        for (a, b) in rm.iter().zip(&bm) {
            assert!((a - 0.1 * b).abs() < 1e-6);
        }
        assert_eq!(
            bn.num_batches_tracked
                .as_ref()
                .unwrap()
                .item::<i64>()
                .unwrap(),
            1
        );
        bn.eval();
        assert!(!bn.is_training());
        let y2 = bn.forward(&x).unwrap();
        let rv = bn.running_var.as_ref().unwrap().to_vec::<f32>().unwrap();
        let xv = x.to_vec::<f32>().unwrap();
        let yv = y2.to_vec::<f32>().unwrap();
        let expect = (xv[0] - rm[0]) / (rv[0] + 1e-5).sqrt();
        assert!((yv[0] - expect).abs() < 1e-5);
        assert_eq!(
            bn.num_batches_tracked
                .as_ref()
                .unwrap()
                .item::<i64>()
                .unwrap(),
            1
        );
        let names: Vec<_> = bn.named_buffers().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["running_mean", "running_var", "num_batches_tracked"]
        );
    }

    #[test]
    fn shape_errors_name_the_layer() {
        let bn = BatchNorm::new_2d(4, &Device::Cpu).unwrap();
        let e = bn.forward(&input()).unwrap_err().to_string();
        assert!(
            e.contains("BatchNorm2d(4)") && e.contains("[2, 3, 2, 2]"),
            "{e}"
        );
        let bn1 = BatchNorm::new_1d(3, &Device::Cpu).unwrap();
        assert!(bn1.forward(&input()).is_err());
        assert_eq!(
            bn1.forward(&Tensor::ones([4, 3], DType::F32, &Device::Cpu).unwrap())
                .unwrap()
                .dims(),
            &[4, 3]
        );
        let ln = LayerNorm::new(&[5], &Device::Cpu).unwrap();
        assert!(ln
            .forward(&input())
            .unwrap_err()
            .to_string()
            .contains("LayerNorm([5])"));
    }
}
