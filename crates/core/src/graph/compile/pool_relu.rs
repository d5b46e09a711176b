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

use crate::cpu::pool_fused::{Pool2x2, BIAS_SUM_MAX_PLANE};
use crate::graph::{Graph, NodeKind, ValueId};
use crate::op::Op;
use crate::params::{BinaryOp, CmpOp, Conv2dParams, UnaryOp};
use crate::DType;

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

#[path = "pool_relu_run.rs"]
mod run;

#[cfg(test)]
#[path = "pool_relu_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "conv_pool_tests.rs"]
mod conv_tests;

#[cfg(test)]
#[path = "conv_wgrad_tests.rs"]
mod wgrad_tests;
