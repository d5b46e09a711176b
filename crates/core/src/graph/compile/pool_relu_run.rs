//! Running a [`PoolStep`]: the fused pooling kernels on the step's tensors (`cpu::pool_fused`,
//! `cpu::conv_pool_fused`), with the full-size fallbacks where eager would take other
//! convolution kernels.

use super::{Kind, PoolStep};
use crate::cpu::pool_fused::{bias_relu_max_pool_2x2, max_pool_2x2_relu_backward};
use crate::graph::Graph;
use crate::params::Conv2dParams;
use crate::{CpuStorage, DType, Error, Result, Tensor};

/// A contiguous CPU f32 or i64 view of `t`'s elements.
fn contiguous(t: &Tensor) -> Result<Tensor> {
    if t.layout().contiguous_range().is_some() {
        Ok(t.clone())
    } else {
        t.contiguous()
    }
}

fn f32s<'a>(s: &'a CpuStorage, t: &Tensor, what: &str) -> Result<&'a [f32]> {
    match (s, t.layout().contiguous_range()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(Error::msg(format!(
            "fused pooling: `{what}` must be contiguous CPU f32"
        ))),
    }
}

/// The storage range of an output (planned buffers' views are contiguous).
fn range(t: &Tensor) -> Result<(usize, usize)> {
    t.layout()
        .contiguous_range()
        .ok_or_else(|| Error::msg("fused pooling: an output is not contiguous"))
}

fn cpu(g: &crate::Storage) -> Result<&CpuStorage> {
    g.as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| Error::msg("fused pooling: tensors must be on the CPU"))
}

impl PoolStep {
    /// A name for profiles: the kind and the stored nodes.
    pub fn name(&self, g: &Graph) -> String {
        let kind = match self.kind {
            Kind::Forward => "bias_relu_max_pool",
            Kind::ConvForward(_) => "conv_bias_relu_max_pool",
            Kind::Backward { .. } => "max_pool_relu_backward",
            Kind::BackwardWeight { .. } => "max_pool_relu_conv_weight_backward",
        };
        let names: Vec<&str> = self
            .stores
            .iter()
            .map(|&k| g.nodes[k].name.as_str())
            .collect();
        format!("{kind}[{}]", names.join(","))
    }

    /// Runs the step on `ins` (one per load) into `outs` (one per store: the planned
    /// buffers' views; `None` where a store gets new memory); returns the stores.
    ///
    /// # Errors
    /// Inputs that are not CPU f32 (i64 indices) of the compiled shapes; indices that do
    /// not come from a 2×2 pooling.
    pub fn run(&self, ins: &[&Tensor], outs: Vec<Option<Tensor>>) -> Result<Vec<Tensor>> {
        let outs: Vec<Tensor> = (self.store_dims.iter().enumerate())
            .map(|(j, d)| match outs.get(j) {
                Some(Some(t)) => Ok(t.clone()),
                _ => {
                    let dt = match (self.kind, j) {
                        (Kind::Forward | Kind::ConvForward(_), 1) => DType::I64,
                        _ => DType::F32,
                    };
                    Tensor::zeros(d.clone(), dt, &crate::Device::Cpu)
                }
            })
            .collect::<Result<_>>()?;
        // The forward's bias is read through its broadcast view, everything else contiguous.
        let ins: Vec<Tensor> = (ins.iter().enumerate())
            .map(|(j, t)| match (self.kind, j) {
                (Kind::Forward, 1) | (Kind::ConvForward(_), 2) => Ok((*t).clone()),
                _ => contiguous(t),
            })
            .collect::<Result<_>>()?;
        match self.kind {
            Kind::Forward => self.forward(&ins, &outs)?,
            Kind::ConvForward(params) => self.conv_forward(&ins, &outs, &params)?,
            Kind::Backward { c0, .. } => self.backward(&ins, &outs, c0)?,
            Kind::BackwardWeight {
                c0,
                params,
                k_hw,
                input_grad,
                ..
            } => self.backward_weight(&ins, &outs, c0, &params, (k_hw, input_grad))?,
        }
        Ok(outs)
    }

    /// The bias: the expanded view's channel stride over its storage.
    fn bias(&self, e: &Tensor) -> Result<Vec<f32>> {
        Ok({
            let sg = e.storage();
            let CpuStorage::F32(v) = cpu(&sg)? else {
                return Err(Error::msg("fused pooling: the bias must be CPU f32"));
            };
            let (l, c) = (e.layout(), self.geo.c);
            let (st, d) = (l.strides(), l.dims());
            let broadcast = (0..st.len()).all(|j| j == 1 || d[j] == 1 || st[j] == 0);
            if st.len() != 4 || !broadcast {
                return Err(Error::msg(
                    "fused pooling: the bias is not a channel broadcast",
                ));
            }
            (0..c)
                .map(|k| v.get(l.offset() + k * st[1]).copied())
                .collect::<Option<_>>()
                .ok_or_else(|| Error::msg("fused pooling: the bias view is out of range"))?
        })
    }

    fn forward(&self, ins: &[Tensor], outs: &[Tensor]) -> Result<()> {
        let (x, e) = (&ins[0], &ins[1]);
        let bias = self.bias(e)?;
        let xg = x.storage();
        let xs = f32s(cpu(&xg)?, x, "x")?;
        with_pooled_outputs(outs, |ov, iv| {
            bias_relu_max_pool_2x2(xs, &bias, self.geo, ov, iv)
        })
    }

    /// The convolution and the pooling in one pass where eager would run the direct
    /// kernels; elsewhere the plain convolution, then [`Self::forward`]'s pass on it.
    fn conv_forward(&self, ins: &[Tensor], outs: &[Tensor], p: &Conv2dParams) -> Result<()> {
        let (x, w, e) = (&ins[0], &ins[1], &ins[2]);
        let bias = self.bias(e)?;
        let dims = |t: &Tensor| match *t.dims() {
            [a, b, c, d] => Ok((a, b, c, d)),
            _ => Err(Error::msg(
                "fused convolution: input and weight must be 4-D",
            )),
        };
        let (xd, wd) = (dims(x)?, dims(w)?);
        let ran = {
            let (xg, wg) = (x.storage(), w.storage());
            let (xs, ws) = (f32s(cpu(&xg)?, x, "input")?, f32s(cpu(&wg)?, w, "weight")?);
            with_pooled_outputs(outs, |ov, iv| {
                crate::cpu::conv_bias_relu_max_pool_2x2(xs, xd, ws, wd, p, &bias, ov, iv)
            })?
        };
        if ran {
            return Ok(());
        }
        let y = x.conv2d(w, None, *p)?;
        self.forward(&[y, e.clone()], outs)
    }

    fn backward(&self, ins: &[Tensor], outs: &[Tensor], c0: f32) -> Result<()> {
        let (gp, p, i) = (&ins[0], &ins[1], &ins[2]);
        let (gg, pg, ig) = (gp.storage(), p.storage(), i.storage());
        let gs = f32s(cpu(&gg)?, gp, "grad")?;
        let ps = f32s(cpu(&pg)?, p, "pooled")?;
        let is = i64s(cpu(&ig)?, i)?;
        with_f32_out(&outs[0], "the gradient output", |dx| match outs.get(1) {
            None => max_pool_2x2_relu_backward(gs, ps, is, c0, self.geo, dx, None),
            Some(sum) => with_f32_out(sum, "the bias gradient", |db| {
                max_pool_2x2_relu_backward(gs, ps, is, c0, self.geo, dx, Some(db))
            }),
        })
    }

    /// The weight (bias, input) gradients straight from the pooled gradient where eager
    /// would run the direct kernels; elsewhere [`Self::backward`]'s full-size gradient, then
    /// the plain `conv2d_backward_weight` (and `conv2d_backward_input`) on it.
    fn backward_weight(
        &self,
        ins: &[Tensor],
        outs: &[Tensor],
        c0: f32,
        p: &Conv2dParams,
        (k_hw, input_grad): ((usize, usize), bool),
    ) -> Result<()> {
        let (gp, pl, i, x) = (&ins[0], &ins[1], &ins[2], &ins[3]);
        let &[n, c, h, w] = x.dims() else {
            return Err(Error::msg("fused weight gradient: the input must be 4-D"));
        };
        let (xd, wd) = (
            (n, c, h, w),
            (self.geo.c, c / p.groups.max(1), k_hw.0, k_hw.1),
        );
        let (dw_out, dx_out) = (&outs[0], input_grad.then(|| &outs[1]));
        let sum_out = outs.get(1 + input_grad as usize);
        let wt = if input_grad { ins.get(4) } else { None };
        let dw = {
            let (gg, pg, ig, xg) = (gp.storage(), pl.storage(), i.storage(), x.storage());
            let gs = f32s(cpu(&gg)?, gp, "grad")?;
            let ps = f32s(cpu(&pg)?, pl, "pooled")?;
            let is = i64s(cpu(&ig)?, i)?;
            let xs = f32s(cpu(&xg)?, x, "input")?;
            let wg = wt.map(|t| t.storage());
            let ws = match (&wg, wt) {
                (Some(g), Some(t)) => Some(f32s(cpu(g)?, t, "weight")?),
                _ => None,
            };
            let kernel = |db: Option<&mut [f32]>, ig: Option<(&[f32], &mut [f32])>| {
                let sl = (gs, ps, is);
                crate::cpu::conv_weight_grad_from_pool(xs, xd, wd, p, sl, c0, self.geo, db, ig)
            };
            let run = |db: Option<&mut [f32]>| match (ws, dx_out) {
                (Some(ws), Some(dx)) => {
                    with_f32_out(dx, "the input gradient", |dx| kernel(db, Some((ws, dx))))
                }
                (None, None) => kernel(db, None),
                _ => Err(Error::msg(
                    "fused weight gradient: the input gradient needs the weight",
                )),
            };
            match sum_out {
                None => run(None)?,
                Some(sum) => with_f32_out(sum, "the bias gradient", |db| run(Some(db)))?,
            }
        };
        match dw {
            Some(v) => write_out(dw_out, &v),
            None => {
                let g = self.geo;
                let full = Tensor::zeros([n, g.c, g.h, g.w], DType::F32, &crate::Device::Cpu)?;
                let mut outs2 = vec![full.clone()];
                outs2.extend(sum_out.cloned());
                self.backward(&ins[..3], &outs2, c0)?;
                if let (Some(wt), Some(dx)) = (wt, dx_out) {
                    copy_into(dx, &full.conv2d_backward_input(wt, *p, (h, w))?)?;
                }
                copy_into(dw_out, &x.conv2d_backward_weight(&full, *p, k_hw)?)
            }
        }
    }
}

/// Copies `src`'s elements (CPU f32, any layout) into output `dst` of as many elements.
fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let src = contiguous(src)?;
    let g = src.storage();
    write_out(dst, f32s(cpu(&g)?, &src, "a gradient")?)
}

/// Writes `s` into output `dst` of as many elements.
fn write_out(dst: &Tensor, s: &[f32]) -> Result<()> {
    with_f32_out(dst, "a gradient", |d| {
        if d.len() != s.len() {
            return Err(Error::msg(format!(
                "fused weight gradient: {} elements for an output of {}",
                s.len(),
                d.len()
            )));
        }
        d.copy_from_slice(s);
        Ok(())
    })
}

/// The contiguous CPU i64 elements of `i` (pooling indices).
fn i64s<'a>(s: &'a CpuStorage, i: &Tensor) -> Result<&'a [i64]> {
    match (s, i.layout().contiguous_range()) {
        (CpuStorage::I64(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(Error::msg(
            "fused pooling: indices must be contiguous CPU i64",
        )),
    }
}

/// Calls `f` with output `t`'s own range of its CPU f32 storage.
fn with_f32_out<R>(t: &Tensor, what: &str, f: impl FnOnce(&mut [f32]) -> Result<R>) -> Result<R> {
    let mut g = t.storage_mut();
    let Some(CpuStorage::F32(v)) = g.as_any_mut().downcast_mut::<CpuStorage>() else {
        return Err(Error::msg(format!("fused pooling: {what} must be CPU f32")));
    };
    let (a, b) = range(t)?;
    f(&mut v[a..b])
}

/// Calls `f` with the pooled values (CPU f32) and their indices (CPU i64) of a forward
/// step's two outputs, each its tensor's own range of its storage.
fn with_pooled_outputs<R>(
    outs: &[Tensor],
    f: impl FnOnce(&mut [f32], &mut [i64]) -> Result<R>,
) -> Result<R> {
    let (mut og, mut ig) = (outs[0].storage_mut(), outs[1].storage_mut());
    let (os, is) = (
        og.as_any_mut().downcast_mut::<CpuStorage>(),
        ig.as_any_mut().downcast_mut::<CpuStorage>(),
    );
    let (Some(CpuStorage::F32(ov)), Some(CpuStorage::I64(iv))) = (os, is) else {
        return Err(Error::msg("fused pooling: outputs must be CPU f32 and i64"));
    };
    let (o, i) = (range(&outs[0])?, range(&outs[1])?);
    f(&mut ov[o.0..o.1], &mut iv[i.0..i.1])
}
