//! Weight initialisation, as `torch.nn.init`: each function fills a tensor in place (the
//! tensor keeps its identity, so it can be a parameter already handed to an optimizer).
//!
//! Every random function takes `Option<&mut Generator>`: `Some(g)` draws from a seeded
//! stream, `None` from the global one (`mlfw_core::manual_seed`).

use mlfw_core::{Error, Generator, Result, Tensor};

/// Which fan Kaiming initialisation preserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserve the variance of activations in the forward pass.
    FanIn,
    /// Preserve the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity a gain is computed for (`torch.nn.init.calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    /// Gain 1.
    Linear,
    /// Gain 1 (any conv).
    Conv,
    /// Gain 1.
    Sigmoid,
    /// Gain 5/3.
    Tanh,
    /// Gain √2.
    Relu,
    /// Gain √(2 / (1 + slope²)).
    LeakyRelu(f64),
    /// Gain 3/4.
    Selu,
}

/// The recommended gain for a nonlinearity.
pub fn calculate_gain(nl: Nonlinearity) -> f64 {
    match nl {
        Nonlinearity::Linear | Nonlinearity::Conv | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight: `shape[1] * receptive`, `shape[0] * receptive`.
/// Errors for tensors with fewer than 2 dims.
///
/// # Errors
/// `Error::Msg` for a tensor with fewer than 2 dims.
pub fn fan_in_and_fan_out(t: &Tensor) -> Result<(usize, usize)> {
    let d = t.dims();
    if d.len() < 2 {
        return Err(Error::msg(format!(
            "init: fan in and fan out need a tensor with at least 2 dims, got shape {}",
            t.shape()
        )));
    }
    let receptive: usize = d[2..].iter().product();
    Ok((d[1] * receptive, d[0] * receptive))
}

fn fill_from(t: &Tensor, src: Tensor) -> Result<()> {
    t.assign(&src.to_dtype(t.dtype())?)
}

/// Fills with U(lo, hi).
///
/// # Errors
/// `Error::Msg` when `lo > hi`.
pub fn uniform(t: &Tensor, lo: f64, hi: f64, g: Option<&mut Generator>) -> Result<()> {
    if lo > hi {
        return Err(Error::msg(format!("init::uniform: lo {lo} > hi {hi}")));
    }
    let (shape, dt, dev) = (t.shape().clone(), t.dtype(), t.device());
    let src = match g {
        Some(g) => Tensor::rand_with(lo, hi, shape, dt, &dev, g)?,
        None => Tensor::rand(lo, hi, shape, dt, &dev)?,
    };
    fill_from(t, src)
}

/// Fills with N(mean, std²).
///
/// # Errors
/// `Error::Msg` when `std` is negative.
pub fn normal(t: &Tensor, mean: f64, std: f64, g: Option<&mut Generator>) -> Result<()> {
    if std < 0.0 {
        return Err(Error::msg(format!("init::normal: negative std {std}")));
    }
    let (shape, dt, dev) = (t.shape().clone(), t.dtype(), t.device());
    let src = match g {
        Some(g) => Tensor::randn_with(mean, std, shape, dt, &dev, g)?,
        None => Tensor::randn(mean, std, shape, dt, &dev)?,
    };
    fill_from(t, src)
}

/// Fills with `value`.
///
/// # Errors
/// Device errors only (the fill is an in-place copy).
pub fn constant(t: &Tensor, value: f64) -> Result<()> {
    fill_from(t, t.full_like(value)?)
}

/// Fills with zeros.
///
/// # Errors
/// Device errors only.
pub fn zeros(t: &Tensor) -> Result<()> {
    constant(t, 0.0)
}

/// Fills with ones.
///
/// # Errors
/// Device errors only.
pub fn ones(t: &Tensor) -> Result<()> {
    constant(t, 1.0)
}

/// Xavier/Glorot uniform: U(±gain·√(6 / (fan_in + fan_out))).
///
/// # Errors
/// `Error::Msg` for a tensor with fewer than 2 dims (no fan in/out).
pub fn xavier_uniform(t: &Tensor, gain: f64, g: Option<&mut Generator>) -> Result<()> {
    let (fi, fo) = fan_in_and_fan_out(t)?;
    let a = gain * (6.0 / (fi + fo) as f64).sqrt();
    uniform(t, -a, a, g)
}

/// Xavier/Glorot normal: N(0, gain²·2 / (fan_in + fan_out)).
///
/// # Errors
/// `Error::Msg` for a tensor with fewer than 2 dims (no fan in/out).
pub fn xavier_normal(t: &Tensor, gain: f64, g: Option<&mut Generator>) -> Result<()> {
    let (fi, fo) = fan_in_and_fan_out(t)?;
    normal(t, 0.0, gain * (2.0 / (fi + fo) as f64).sqrt(), g)
}

fn kaiming_std(t: &Tensor, mode: FanMode, nl: Nonlinearity) -> Result<f64> {
    let (fi, fo) = fan_in_and_fan_out(t)?;
    let fan = match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
    };
    if fan == 0 {
        return Err(Error::msg(format!(
            "init: cannot initialise a tensor of shape {} with a zero fan",
            t.shape()
        )));
    }
    Ok(calculate_gain(nl) / (fan as f64).sqrt())
}

/// Kaiming/He uniform: U(±√3·gain/√fan). `torch.nn.init.kaiming_uniform_(t, a, mode,
/// nonlinearity)` is `nl = LeakyRelu(a)` (PyTorch's default nonlinearity).
///
/// # Errors
/// `Error::Msg` for a tensor with fewer than 2 dims (no fan in/out).
pub fn kaiming_uniform(
    t: &Tensor,
    mode: FanMode,
    nl: Nonlinearity,
    g: Option<&mut Generator>,
) -> Result<()> {
    let bound = 3f64.sqrt() * kaiming_std(t, mode, nl)?;
    uniform(t, -bound, bound, g)
}

/// Kaiming/He normal: N(0, gain²/fan).
///
/// # Errors
/// `Error::Msg` for a tensor with fewer than 2 dims (no fan in/out).
pub fn kaiming_normal(
    t: &Tensor,
    mode: FanMode,
    nl: Nonlinearity,
    g: Option<&mut Generator>,
) -> Result<()> {
    normal(t, 0.0, kaiming_std(t, mode, nl)?, g)
}

/// PyTorch's default init of Linear and Conv weights: `kaiming_uniform_(w, a=√5)`, which
/// is U(±1/√fan_in).
///
/// # Errors
/// `Error::Msg` for a tensor with fewer than 2 dims (no fan in).
pub fn default_weight(t: &Tensor, g: Option<&mut Generator>) -> Result<()> {
    kaiming_uniform(t, FanMode::FanIn, Nonlinearity::LeakyRelu(5f64.sqrt()), g)
}

/// PyTorch's default init of Linear and Conv biases: U(±1/√fan_in) (zeros if fan_in is 0).
///
/// # Errors
/// Device errors only.
pub fn default_bias(b: &Tensor, fan_in: usize, g: Option<&mut Generator>) -> Result<()> {
    if fan_in == 0 {
        return zeros(b);
    }
    let bound = 1.0 / (fan_in as f64).sqrt();
    uniform(b, -bound, bound, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfw_core::{DType, Device};

    #[test]
    fn gains_and_fans() {
        assert!(
            (calculate_gain(Nonlinearity::LeakyRelu(5f64.sqrt())) - (1.0f64 / 3.0).sqrt()).abs()
                < 1e-15
        );
        let w = Tensor::zeros([6, 3, 5, 5], DType::F32, &Device::Cpu).unwrap();
        assert_eq!(fan_in_and_fan_out(&w).unwrap(), (75, 150));
        let b = Tensor::zeros([6], DType::F32, &Device::Cpu).unwrap();
        assert!(fan_in_and_fan_out(&b).is_err());
    }

    #[test]
    fn ranges_and_seeding() {
        let w = Tensor::zeros([50, 100], DType::F32, &Device::Cpu).unwrap();
        let mut g = Generator::new(1);
        default_weight(&w, Some(&mut g)).unwrap();
        let v = w.to_vec::<f32>().unwrap();
        let bound = 0.1f32;
        assert!(v.iter().all(|x| x.abs() <= bound));
        assert!(v.iter().any(|x| x.abs() > 0.09));
        let w2 = Tensor::zeros([50, 100], DType::F32, &Device::Cpu).unwrap();
        default_weight(&w2, Some(&mut Generator::new(1))).unwrap();
        assert_eq!(v, w2.to_vec::<f32>().unwrap());
        xavier_normal(&w, 1.0, Some(&mut g)).unwrap();
        let v = w.to_vec::<f32>().unwrap();
        let var = v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len() as f64;
        assert!((var - 2.0 / 150.0).abs() < 0.002, "{var}");
        constant(&w, 0.5).unwrap();
        assert!(w.to_vec::<f32>().unwrap().iter().all(|&x| x == 0.5));
    }
}
