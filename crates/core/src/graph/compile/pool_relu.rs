//! Bias + ReLU + 2×2 max pooling, forward and backward, as one step each.
//!
//! A convolution layer followed by ReLU and 2×2, stride-2 max pooling is recorded as
//!
//! ```text
//! forward:  a = add(x, expand(bias[1, C, 1, 1]));  r = relu(a);  p, i = max_pool2d(r)
//! backward: m = max_pool2d_backward(gp, i);  l = le(r, c0);  w = where(l, 0.0, m)
//! ```
//!
//! ReLU and max pooling commute (`relu` is monotone: the largest ReLU'd value of a window
//! is the ReLU of its largest value), so at the window maximum `r[i[o]] == p[o]` bit for
//! bit, and everywhere else the backward writes `0.0` whatever the mask says. The plan
//! therefore never needs the full-size `a` or `r`: the forward step reads `x` once and
//! writes `p` and `i` (`cpu::pool_fused::bias_relu_max_pool_2x2`), and the backward step
//! takes the ReLU mask from the 4× smaller `p` (`cpu::pool_fused::max_pool_2x2_relu_backward`).
//! Both are bit-identical to the eager ops (the same expressions per element).
//!
//! Matched only when nothing else reads `a`, `r`, `l` or `m`, none is a graph output, the
//! pooling is 2×2, stride 2, no padding, no dilation, floor-sized, everything is CPU f32,
//! and `where`'s true branch is the constant `+0.0`. `MLFW_COMPILE_REWRITE=0` (read at
//! compile time) turns the pass off, to measure it.
//!
//! Two more members join when present (still bit-identical):
//! - `x = conv2d(input, weight)` read by nothing but `a`: the forward step computes the
//!   convolution too, pooling each image's output from the direct kernel's scratch
//!   (`cpu::conv_pool_fused`; other kernels: the plain convolution, then the pooling).
//!   `MLFW_COMPILE_CONV_POOL=0` turns only this off.
//! - the bias gradient `sum(w, [0, 2, 3])` (`[2, 3]` for one sample; at least 2 channels):
//!   the backward step sums each plane while writing it, in eager's order.
//! - `conv2d_backward_weight(input, w)` (and `conv2d_backward_input(w, weight)` of the same
//!   convolution) when they, and the bias gradient, are all that read `w`: where eager would
//!   run the direct kernels, each image's `w` is written into the kernels' scratch and read
//!   there (`cpu::conv_weight_grad_from_pool`), so the full-size `w` is never stored; else
//!   `w` is stored and the plain kernels run on it. `MLFW_COMPILE_CONV_POOL=0` turns this off
//!   too.

use crate::cpu::pool_fused::{
    bias_relu_max_pool_2x2, max_pool_2x2_relu_backward, Pool2x2, BIAS_SUM_MAX_PLANE,
};
use crate::graph::{Graph, NodeKind, ValueId};
use crate::op::Op;
use crate::params::{BinaryOp, CmpOp, Conv2dParams, UnaryOp};
use crate::{CpuStorage, DType, Error, Result, Tensor};

/// Which fused pass a [`PoolStep`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// loads `[x, bias view]`, stores `[pooled, indices]`.
    Forward,
    /// `x = conv2d(input, weight)` fused in (nothing else reads `x`): loads `[input, weight,
    /// bias view]`, stores `[pooled, indices]` (`cpu::conv_pool_fused`).
    ConvForward(Conv2dParams),
    /// loads `[grad of pooled, pooled, indices]`, stores `[grad of the biased map]` and,
    /// with `bias_sum`, `[.., its sum over batch and space]` (the bias gradient, summed in
    /// eager's order while each plane is in L1); `c0` is the ReLU mask's threshold (`r <= c0`
    /// gives 0).
    Backward { c0: f32, bias_sum: bool },
    /// The backward step whose gradient nothing but the convolution's weight gradient, its
    /// input gradient and the bias gradient read: loads `[grad of pooled, pooled, indices,
    /// conv input]` (and, with `input_grad`, `[.., conv weight]`), stores `[weight
    /// gradient]`, then with `input_grad` `[.., input gradient]`, then with `bias_sum`
    /// `[.., bias gradient]`; the full-size gradient is never stored
    /// (`cpu::conv_weight_grad_from_pool`).
    BackwardWeight {
        c0: f32,
        bias_sum: bool,
        params: Conv2dParams,
        k_hw: (usize, usize),
        input_grad: bool,
    },
}

/// One fused pooling step of a plan.
#[derive(Debug, Clone)]
pub(crate) struct PoolStep {
    kind: Kind,
    geo: Pool2x2,
    /// Graph nodes the step computes (it runs at the last one's position).
    pub members: Vec<usize>,
    /// Values read, in the order the kernel takes them.
    pub loads: Vec<usize>,
    /// Values written.
    pub stores: Vec<usize>,
    /// Shapes of the stores.
    store_dims: Vec<Vec<usize>>,
}

/// True unless `MLFW_COMPILE_REWRITE=0`.
pub(crate) fn enabled() -> bool {
    std::env::var_os("MLFW_COMPILE_REWRITE").is_none_or(|v| v != "0")
}

/// True unless `MLFW_COMPILE_CONV_POOL=0` (read at compile time): fuse the convolution
/// feeding a matched chain into its forward step (see [`Kind::ConvForward`]) and its
/// gradients into the backward step (see [`Kind::BackwardWeight`]).
fn conv_enabled() -> bool {
    std::env::var_os("MLFW_COMPILE_CONV_POOL").is_none_or(|v| v != "0")
}

fn op(g: &Graph, k: usize) -> Option<&Op<ValueId>> {
    match &g.nodes[k].kind {
        NodeKind::Op(op) => Some(op),
        _ => None,
    }
}

/// The value of a one-element f32 constant, seen through `expand` views.
fn scalar_const(g: &Graph, k: usize) -> Option<f32> {
    match &g.nodes[k].kind {
        NodeKind::Constant(t) if t.dtype() == DType::F32 && t.elem_count() == 1 => {
            t.to_vec::<f32>().ok()?.first().copied()
        }
        NodeKind::Op(Op::Expand(a) | Op::Reshape(a)) => scalar_const(g, a.0),
        _ => None,
    }
}

/// Finds every bias + ReLU + 2×2 max-pool chain of `g` (and the backward chains reading
/// it). `shapes[k]` is node k's concrete shape, `consumers[k]` the nodes reading it.
pub(crate) fn find(
    g: &Graph,
    shapes: &[Vec<usize>],
    consumers: &[Vec<usize>],
    is_output: &[bool],
) -> Vec<PoolStep> {
    let mut out = Vec::new();
    for p in 0..g.nodes.len() {
        if let Some(steps) = match_at(g, shapes, consumers, is_output, p) {
            out.extend(steps);
        }
    }
    out
}

fn match_at(
    g: &Graph,
    shapes: &[Vec<usize>],
    consumers: &[Vec<usize>],
    is_output: &[bool],
    p: usize,
) -> Option<Vec<PoolStep>> {
    let f32_ = |k: usize| g.nodes[k].dtype == DType::F32;
    let private =
        |k: usize, only: &[usize]| !is_output[k] && consumers[k].iter().all(|c| only.contains(c));
    let Some(Op::MaxPool2d {
        input: r,
        indices: i,
        params,
    }) = op(g, p)
    else {
        return None;
    };
    let (r, i) = (r.0, i.0);
    let two = (2, 2);
    if params.kernel != two || params.stride != two || params.padding != (0, 0) {
        return None;
    }
    if params.dilation != (1, 1) || !f32_(p) || !f32_(r) {
        return None;
    }
    let &[n, c, h, w] = shapes[r].as_slice() else {
        return None;
    };
    if h < 2 || w < 2 || shapes[p] != [n, c, h / 2, w / 2] {
        return None;
    }
    let Some(Op::Unary(a, UnaryOp::Relu)) = op(g, r) else {
        return None;
    };
    let a = a.0;
    let Some(Op::Binary(u, v, BinaryOp::Add)) = op(g, a) else {
        return None;
    };
    if !private(a, &[r]) || !f32_(a) || shapes[a] != shapes[r] {
        return None;
    }
    // One operand the conv output (shaped like `r`), the other a per-channel bias view.
    let is_bias = |e: usize| match op(g, e) {
        Some(Op::Expand(b)) => {
            let d = &shapes[b.0];
            f32_(b.0)
                && d.iter().product::<usize>() == c
                && d.len() >= 3
                && d[d.len() - 3..] == [c, 1, 1]
        }
        _ => false,
    };
    let (x, e) = if is_bias(v.0) {
        (u.0, v.0)
    } else if is_bias(u.0) {
        (v.0, u.0)
    } else {
        return None;
    };
    if !f32_(x) || shapes[x] != shapes[r] {
        return None;
    }
    let geo = Pool2x2 {
        planes: n * c,
        c,
        h,
        w,
    };
    // A convolution only `a` reads joins the step.
    let conv = match op(g, x) {
        Some(Op::Conv2d {
            input,
            weight,
            params,
        }) if conv_enabled()
            && private(x, &[a])
            && f32_(input.0)
            && f32_(weight.0)
            && shapes[input.0].len() == 4
            && shapes[weight.0].len() == 4 =>
        {
            Some((input.0, weight.0, *params))
        }
        _ => None,
    };
    let (kind, members, loads) = match conv {
        Some((xi, wi, params)) => (Kind::ConvForward(params), vec![x, a, r, p], vec![xi, wi, e]),
        None => (Kind::Forward, vec![a, r, p], vec![x, e]),
    };
    // Every other reader of `r` must be a ReLU mask feeding a matched backward.
    let mut steps = vec![PoolStep {
        kind,
        geo,
        members,
        loads,
        stores: vec![p, i],
        store_dims: vec![shapes[p].clone(), shapes[i].clone()],
    }];
    for &l in consumers[r].iter().filter(|&&l| l != p) {
        steps.push(match_backward(
            g,
            shapes,
            consumers,
            is_output,
            (r, p, i),
            l,
        )?);
    }
    Some(steps)
}

/// `w = where(le(r, c0), +0.0, max_pool2d_backward(gp, i))` at `l = le(r, c0)`.
fn match_backward(
    g: &Graph,
    shapes: &[Vec<usize>],
    consumers: &[Vec<usize>],
    is_output: &[bool],
    (r, p, i): (usize, usize, usize),
    l: usize,
) -> Option<PoolStep> {
    let Some(Op::Cmp(lr, t, CmpOp::Le)) = op(g, l) else {
        return None;
    };
    let c0 = scalar_const(g, t.0)?;
    let &[wn] = consumers[l].as_slice() else {
        return None;
    };
    if lr.0 != r || t.0 == r || is_output[l] {
        return None;
    }
    let Some(Op::Where(cond, zero, m)) = op(g, wn) else {
        return None;
    };
    let m = m.0;
    if cond.0 != l || zero.0 == l || scalar_const(g, zero.0)?.to_bits() != 0 {
        return None;
    }
    let Some(Op::MaxPool2dBackward { grad, indices, .. }) = op(g, m) else {
        return None;
    };
    let gp = grad.0;
    let private = !is_output[m] && consumers[m] == [wn];
    let fits = shapes[m] == shapes[r] && shapes[wn] == shapes[r] && shapes[gp] == shapes[p];
    let f32s = [gp, m, wn].iter().all(|&k| g.nodes[k].dtype == DType::F32);
    if indices.0 != i || !private || !fits || !f32s || m > wn || l > wn {
        return None;
    }
    let &[n, c, h, w] = shapes[r].as_slice() else {
        return None;
    };
    // The bias gradient `sum(wn, [0, 2, 3])` (`[2, 3]` for one sample), summed in the step.
    let sum = consumers[wn].iter().copied().find(|&s| match op(g, s) {
        Some(Op::Reduce {
            arg,
            op: crate::params::ReduceOp::Sum,
            dims,
            ..
        }) => {
            arg.0 == wn
                && (dims == &[0, 2, 3] || (n == 1 && dims == &[2, 3]))
                && g.nodes[s].dtype == DType::F32
                && shapes[s].iter().product::<usize>() == c
                && c >= 2
                && h * w < BIAS_SUM_MAX_PLANE
        }
        _ => false,
    });
    let geo = Pool2x2 {
        planes: n * c,
        c,
        h,
        w,
    };
    // The step runs at its last member, `wn`; the sum and the weight gradient come later in
    // node order (they read only `wn` and values older than it).
    let mut members = vec![m.min(l), m.max(l)];
    members.extend(sum);
    let (mut stores, mut store_dims) = (vec![], vec![]);
    let weight = weight_grad_of(g, shapes, consumers, is_output, wn, sum);
    let (kind, loads) = match weight {
        Some(WeightGrad {
            d,
            x,
            params,
            k_hw,
            input,
        }) => {
            members.push(d);
            stores.push(d);
            store_dims.push(shapes[d].clone());
            let mut loads = vec![gp, p, i, x];
            if let Some((e, wt)) = input {
                members.push(e);
                stores.push(e);
                store_dims.push(shapes[e].clone());
                loads.push(wt);
            }
            let kind = Kind::BackwardWeight {
                c0,
                bias_sum: sum.is_some(),
                params,
                k_hw,
                input_grad: input.is_some(),
            };
            (kind, loads)
        }
        None => {
            stores.push(wn);
            store_dims.push(shapes[wn].clone());
            let kind = Kind::Backward {
                c0,
                bias_sum: sum.is_some(),
            };
            (kind, vec![gp, p, i])
        }
    };
    members.push(wn);
    if let Some(s) = sum {
        stores.push(s);
        store_dims.push(shapes[s].clone());
    }
    Some(PoolStep {
        kind,
        geo,
        members,
        loads,
        stores,
        store_dims,
    })
}

/// A convolution's gradients read from a matched backward's result `wn`.
struct WeightGrad {
    /// `d = conv2d_backward_weight(x, wn)`.
    d: usize,
    x: usize,
    params: Conv2dParams,
    k_hw: (usize, usize),
    /// `(e, weight)` with `e = conv2d_backward_input(wn, weight)` of the same convolution.
    input: Option<(usize, usize)>,
}

/// The convolution's weight gradient (and its input gradient, when present) when they are
/// the only readers of `wn` besides the bias gradient `sum`. Off with
/// `MLFW_COMPILE_CONV_POOL=0`.
fn weight_grad_of(
    g: &Graph,
    shapes: &[Vec<usize>],
    consumers: &[Vec<usize>],
    is_output: &[bool],
    wn: usize,
    sum: Option<usize>,
) -> Option<WeightGrad> {
    let others: Vec<usize> = consumers[wn]
        .iter()
        .copied()
        .filter(|&k| Some(k) != sum)
        .collect();
    let f32_4d = |k: usize| g.nodes[k].dtype == DType::F32 && shapes[k].len() == 4;
    let (mut found, mut input) = (None, None);
    for &k in &others {
        match op(g, k) {
            Some(Op::Conv2dBackwardWeight {
                input: x,
                grad,
                params,
                k_hw,
            }) if found.is_none() && grad.0 == wn && x.0 != wn => {
                found = Some((k, x.0, *params, *k_hw));
            }
            Some(Op::Conv2dBackwardInput {
                grad,
                weight,
                params,
                ..
            }) if input.is_none() && grad.0 == wn && weight.0 != wn => {
                input = Some((k, weight.0, *params));
            }
            _ => return None,
        }
    }
    let (d, x, params, k_hw) = found?;
    if let Some((e, wt, ep)) = input {
        let same = ep == params
            && shapes[wt].len() == 4
            && shapes[wt][2..] == [k_hw.0, k_hw.1]
            && shapes[e] == shapes[x];
        if !same || !f32_4d(e) || !f32_4d(wt) {
            return None;
        }
    }
    let ok = conv_enabled() && !is_output[wn] && f32_4d(d) && f32_4d(x);
    ok.then_some(WeightGrad {
        d,
        x,
        params,
        k_hw,
        input: input.map(|(e, wt, _)| (e, wt)),
    })
}

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
        let dw = match dw {
            Some(v) => Tensor::from_vec(v, [wd.0, wd.1, wd.2, wd.3], &crate::Device::Cpu)?,
            None => {
                let g = self.geo;
                let full = Tensor::zeros([n, g.c, g.h, g.w], DType::F32, &crate::Device::Cpu)?;
                let mut outs2 = vec![full.clone()];
                outs2.extend(sum_out.cloned());
                self.backward(&ins[..3], &outs2, c0)?;
                if let (Some(wt), Some(dx)) = (wt, dx_out) {
                    copy_into(dx, &full.conv2d_backward_input(wt, *p, (h, w))?)?;
                }
                x.conv2d_backward_weight(&full, *p, k_hw)?
            }
        };
        copy_into(dw_out, &dw)
    }
}

/// Copies `src`'s elements (CPU f32, any layout) into output `dst` of as many elements.
fn copy_into(dst: &Tensor, src: &Tensor) -> Result<()> {
    let src = contiguous(src)?;
    let g = src.storage();
    let s = f32s(cpu(&g)?, &src, "a gradient")?;
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

#[cfg(test)]
#[path = "pool_relu_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "conv_pool_tests.rs"]
mod conv_tests;

#[cfg(test)]
#[path = "conv_wgrad_tests.rs"]
mod wgrad_tests;
