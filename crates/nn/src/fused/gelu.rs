//! GELU, exact erf form, on float32 CPU tensors as one vectorised op: PyTorch's CPU kernel
//! computes `erf` with the Abramowitz–Stegun 7.1.26 rational approximation (absolute error
//! ≤ 1.5e-7, `aten/src/ATen/cpu/vec/vec512/vec512_float.h`); so does this, with the
//! `exp(−x²/2)` it needs from core's vector `exp`, where the composed op calls libm's `erf`
//! in double precision per element. The backward `Φ(x) + x·φ(x)` reuses the same pieces.

use super::{f32s, Out};
use mlfw_core::parallel;
use mlfw_core::{Device, Result, Tensor};

/// Elements per block (on the stack) and per task at least.
const BLOCK: usize = 512;

/// Whether the fused op applies (see [`super::usable_noted`]).
pub(crate) fn fused_ok(x: &Tensor) -> bool {
    super::usable_noted("GELU", &[x], true)
}

/// `x·Φ(x)` elementwise, any shape.
pub(crate) fn gelu(x: &Tensor) -> Result<Tensor> {
    mlfw_autograd::apply(Gelu, &[x.contiguous()?])
}

struct Gelu;

/// For each `x`: `(Φ(x), φ(x))`, the standard normal CDF and density, into `cdf` and `pdf`.
fn normal_cdf_pdf(x: &[f32], cdf: &mut [f32], pdf: &mut [f32]) {
    // A&S 7.1.26 for erf(z), z = |x|/√2: 1 − (a1·t + … + a5·t⁵)·exp(−z²), t = 1/(1 + p·z).
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    for (e, &v) in pdf.iter_mut().zip(x) {
        *e = -0.5 * v * v;
    }
    mlfw_core::cpu::exp_shifted_sum(pdf, 0.0);
    for ((c, e), &v) in cdf.iter_mut().zip(pdf.iter_mut()).zip(x) {
        let z = v.abs() * std::f32::consts::FRAC_1_SQRT_2;
        let t = 1.0 / (1.0 + P * z);
        let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
        let erf = 1.0 - poly * *e;
        let erf = if v < 0.0 { -erf } else { erf };
        *c = 0.5 * (1.0 + erf);
        *e *= 0.398_942_3; // 1/√(2π)
    }
}

/// Runs `f(x block, out block, cdf, pdf)` over `x` in blocks, in parallel.
fn blocks(
    x: &[f32],
    out: &mut [f32],
    f: impl Fn(usize, &[f32], &mut [f32], &[f32], &[f32]) + Sync,
) {
    let p = Out::new(out);
    let n = x.len();
    let per = parallel::chunk_len(n, 16 * 1024).next_multiple_of(BLOCK);
    parallel::run(n.div_ceil(per), |t| {
        let (mut cdf, mut pdf) = ([0f32; BLOCK], [0f32; BLOCK]);
        let mut i = t * per;
        let end = ((t + 1) * per).min(n);
        while i < end {
            let m = BLOCK.min(end - i);
            normal_cdf_pdf(&x[i..i + m], &mut cdf[..m], &mut pdf[..m]);
            // SAFETY: elements i..i+m belong to this task only.
            let o = unsafe { p.part(i, m) };
            f(i, &x[i..i + m], o, &cdf[..m], &pdf[..m]);
            i += m;
        }
    });
}

impl mlfw_autograd::Function for Gelu {
    fn name(&self) -> &str {
        "gelu"
    }

    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let x = f32s(&inputs[0])?;
        let mut y = vec![0f32; x.len()];
        blocks(&x, &mut y, |_, x, o, cdf, _| {
            for ((o, &v), &c) in o.iter_mut().zip(x).zip(cdf) {
                *o = v * c;
            }
        });
        Tensor::from_vec(y, inputs[0].dims(), &Device::Cpu)
    }

    fn backward(
        &self,
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>> {
        if mlfw_core::is_grad_enabled() {
            let y = inputs[0].gelu()?;
            return mlfw_autograd::grad_with(&y, inputs, Some(grad), true);
        }
        let x = f32s(&inputs[0])?;
        let g = f32s(&grad.contiguous()?)?;
        let mut dx = vec![0f32; x.len()];
        blocks(&x, &mut dx, |i, x, o, cdf, pdf| {
            let g = &g[i..i + x.len()];
            for (k, o) in o.iter_mut().enumerate() {
                *o = g[k] * (cdf[k] + x[k] * pdf[k]);
            }
        });
        Ok(vec![Some(Tensor::from_vec(
            dx,
            inputs[0].dims(),
            &Device::Cpu,
        )?)])
    }
}

#[cfg(test)]
mod tests {
    use mlfw_core::{DType, Device, Tensor};

    /// Against the composed double-precision form: values and gradient within 1e-6 of the
    /// output scale, including the tails, zero, ±inf and NaN.
    #[test]
    fn fused_matches_composed() {
        let mut v: Vec<f32> = (0..3000).map(|i| (i as f32 - 1500.0) / 150.0).collect();
        v.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
            -40.0,
            40.0,
        ]);
        let n = v.len();
        let x = Tensor::from_vec(v, [n], &Device::Cpu)
            .unwrap()
            .requires_grad_(true)
            .unwrap();
        let fused = super::gelu(&x).unwrap();
        let plain = x.gelu().unwrap();
        let (a, b) = (
            fused.to_vec::<f32>().unwrap(),
            plain.to_vec::<f32>().unwrap(),
        );
        for (i, (p, q)) in a.iter().zip(&b).enumerate() {
            assert!(
                (p - q).abs() <= 1e-6 * q.abs().max(1.0) || p == q || (p.is_nan() && q.is_nan()),
                "{i}: {p} vs {q}"
            );
        }
        let g = Tensor::ones([n], DType::F32, &Device::Cpu).unwrap();
        let gf = mlfw_autograd::grad(&fused, std::slice::from_ref(&x), Some(&g)).unwrap();
        let gp = mlfw_autograd::grad(&plain, std::slice::from_ref(&x), Some(&g)).unwrap();
        let (a, b) = (
            gf[0].as_ref().unwrap().to_vec::<f32>().unwrap(),
            gp[0].as_ref().unwrap().to_vec::<f32>().unwrap(),
        );
        for (i, (p, q)) in a.iter().zip(&b).enumerate().take(n - 5) {
            assert!((p - q).abs() <= 2e-6, "grad {i}: {p} vs {q}");
        }
        let nan = Tensor::from_vec(vec![f32::NAN], [1], &Device::Cpu).unwrap();
        assert!(super::gelu(&nan).unwrap().to_vec::<f32>().unwrap()[0].is_nan());
    }
}
