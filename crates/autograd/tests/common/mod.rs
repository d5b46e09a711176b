//! Helpers shared by the gradcheck tests.
#![allow(dead_code)]

use mlfw_autograd::{gradcheck, GradcheckOptions};
use mlfw_core::{DType, Device, Generator, Result, Tensor};

/// An f64 leaf whose n elements are a random shuffle of the grid -1 + 2(k + ½)/n:
/// distinct, at least 2/n apart and never 0 when n is even (odd n holds one 0), so kinks stay far
/// from the finite-difference steps.
pub fn leaf(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut g = Generator::new(seed);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        perm.swap(i, g.next_below(i as u64 + 1) as usize);
    }
    let v: Vec<f64> = perm
        .iter()
        .map(|&k| -1.0 + 2.0 * (k as f64 + 0.5) / n as f64)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .requires_grad_(true)
        .unwrap()
}

/// A random positive f64 leaf in [0.5, 2).
pub fn pos_leaf(shape: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::rand_with(0.5, 2.0, shape, DType::F64, &Device::Cpu, &mut g)
        .unwrap()
        .requires_grad_(true)
        .unwrap()
}

/// Gradchecks `f` and panics with the report on failure.
pub fn check(name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    let r =
        gradcheck(f, inputs, GradcheckOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(r.passed(), "{name}:\n{r}");
}

/// i64 index tensor.
pub fn ids(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

/// Second-order check of `f` (gradgradcheck) that panics with the report on failure.
pub fn check2(name: &str, f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    let r = mlfw_autograd::gradgradcheck(f, inputs, GradcheckOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(r.passed(), "{name}:\n{r}");
}
