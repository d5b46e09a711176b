//! Loss functions with PyTorch's formulas (reductions, class weights, `ignore_index`,
//! label smoothing), composed from recorded core ops so autograd differentiates them.
//!
//! Class-index targets are turned into a one-hot mask by comparing with `0..C` (no gather
//! kernel needed, works on every device); rows whose target is `ignore_index` get an all-zero
//! mask and so contribute neither loss nor weight.

use mlfw_core::{CmpOp, DType, Error, Result, Tensor};

/// How per-element losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Keep every element's loss.
    None,
    /// Average (weighted by class weights where a loss has them).
    #[default]
    Mean,
    /// Sum.
    Sum,
}

fn reduce(loss: Tensor, r: Reduction) -> Result<Tensor> {
    match r {
        Reduction::None => Ok(loss),
        Reduction::Mean => loss.mean_all(),
        Reduction::Sum => loss.sum_all(),
    }
}

/// Options of [`cross_entropy_with`] and [`nll_loss_with`] (PyTorch's defaults by `default()`).
#[derive(Debug, Clone)]
pub struct CrossEntropyOptions {
    /// Per-class weights `[C]`.
    pub weight: Option<Tensor>,
    /// Target value whose rows are skipped (default -100).
    pub ignore_index: i64,
    /// Reduction (default mean: `Σ w[t_i]·loss_i / Σ w[t_i]` over non-ignored rows).
    pub reduction: Reduction,
    /// Label smoothing ε in `[0, 1]` (cross entropy only).
    pub label_smoothing: f64,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
        }
    }
}

/// Brings `[N, C, d1, ...]` input to `[M, C]` (class dim last) and the target to `[M]` or
/// `[M, C]`; `[C]` input is one sample. Returns the per-row output shape for `Reduction::None`.
fn flatten_classes(x: &Tensor, target: &Tensor, op: &str) -> Result<(Tensor, Tensor, Vec<usize>)> {
    let probs = target.dtype().is_float();
    let bad = || {
        Error::msg(format!(
            "{op}: input {} and target {} do not match (expected input [N, C, ...] with target [N, ...] of class indices, or a same-shaped float target)",
            x.shape(),
            target.shape()
        ))
    };
    if x.rank() == 1 {
        let ok = if probs {
            target.dims() == x.dims()
        } else {
            target.rank() == 0
        };
        if !ok {
            return Err(bad());
        }
        let t = if probs {
            target.reshape([1, x.dims()[0]])?
        } else {
            target.reshape([1])?
        };
        return Ok((x.unsqueeze(0)?, t, vec![]));
    }
    if x.rank() < 2 {
        return Err(bad());
    }
    let c = x.dims()[1];
    let mut rows_shape = vec![x.dims()[0]];
    rows_shape.extend_from_slice(&x.dims()[2..]);
    let expect_t: Vec<usize> = if probs {
        x.dims().to_vec()
    } else {
        rows_shape.clone()
    };
    if target.dims() != expect_t {
        return Err(bad());
    }
    let class_last = |t: &Tensor| -> Result<Tensor> {
        let mut perm: Vec<usize> = vec![0];
        perm.extend(2..t.rank());
        perm.push(1);
        t.permute(&perm)?.reshape_infer(&[-1, c as isize])
    };
    let xm = if x.rank() == 2 {
        x.clone()
    } else {
        class_last(x)?
    };
    let tm = if probs {
        if x.rank() == 2 {
            target.clone()
        } else {
            class_last(target)?
        }
    } else {
        target.reshape_infer(&[-1])?
    };
    Ok((xm, tm, rows_shape))
}

/// One-hot float mask `[M, C]` of i64 targets `[M]`, and the `[M]` mask of non-ignored rows.
fn target_masks(
    t: &Tensor,
    c: usize,
    ignore: i64,
    dt: DType,
    op: &str,
) -> Result<(Tensor, Tensor)> {
    if t.dtype() != DType::I64 {
        return Err(Error::msg(format!(
            "{op}: class-index targets must be int64, got {}",
            t.dtype()
        )));
    }
    for &v in &t.to_vec::<i64>()? {
        if v != ignore && (v < 0 || v as usize >= c) {
            return Err(Error::msg(format!(
                "{op}: target {v} is out of bounds for {c} classes"
            )));
        }
    }
    let tf = t.to_dtype(dt)?;
    let classes = Tensor::arange(0.0, c as f64, 1.0, dt, &t.device())?;
    let valid = tf.cmp_scalar(ignore as f64, CmpOp::Ne)?.to_dtype(dt)?;
    let onehot = tf
        .unsqueeze(1)?
        .eq(&classes.unsqueeze(0)?)?
        .to_dtype(dt)?
        .mul(&valid.unsqueeze(1)?)?;
    Ok((onehot, valid))
}

fn check_weight(w: &Option<Tensor>, c: usize, op: &str) -> Result<Option<Tensor>> {
    match w {
        Some(w) if w.dims() != [c] => Err(Error::msg(format!(
            "{op}: class weight must have shape [{c}], got {}",
            w.shape()
        ))),
        Some(w) => Ok(Some(w.reshape([1, c])?)),
        None => Ok(None),
    }
}

/// Negative log likelihood of log-probabilities `[M, C]` at i64 targets `[M]`.
fn nll_rows(
    logp: &Tensor,
    t: &Tensor,
    o: &CrossEntropyOptions,
    rows: &[usize],
    op: &str,
) -> Result<(Tensor, Tensor, Tensor)> {
    let c = logp.dims()[1];
    let w = check_weight(&o.weight, c, op)?;
    let (onehot, valid) = target_masks(t, c, o.ignore_index, logp.dtype(), op)?;
    let target_class = onehot.cmp_scalar(0.0, CmpOp::Ne)?;
    let wrow = match &w {
        Some(w) => onehot.mul(w)?,
        None => onehot,
    };
    // Select the target's log-probability rather than multiply by the mask: a masked-out
    // class with logit -inf (log-probability -inf) must give 0, not 0·(-inf) = NaN (PyTorch
    // gathers too).
    let picked = target_class.where_cond(logp, &logp.scalar_like(0.0)?)?;
    let per = picked.mul(&wrow)?.sum(&[1], false)?.neg()?;
    let wsum = wrow.sum_all()?;
    let out = match o.reduction {
        Reduction::None => per.reshape(rows.to_vec())?,
        Reduction::Sum => per.sum_all()?,
        Reduction::Mean => per.sum_all()?.div(&wsum)?,
    };
    Ok((out, valid, wsum))
}

/// NLL loss of log-probabilities `[N, C, ...]` and i64 targets `[N, ...]`, PyTorch defaults.
///
/// # Errors
/// As [`nll_loss_with`].
pub fn nll_loss(logp: &Tensor, target: &Tensor) -> Result<Tensor> {
    nll_loss_with(logp, target, &CrossEntropyOptions::default())
}

/// NLL loss with options (`label_smoothing` must be 0).
///
/// # Errors
/// `Error::Msg` for non-zero `label_smoothing` or non-i64 targets, input/target shapes that do not
/// match (`[N, C, ..]` against `[N, ..]`), a target outside `0..C` (other than `ignore_index`), or
/// class weights not shaped `[C]`.
pub fn nll_loss_with(logp: &Tensor, target: &Tensor, o: &CrossEntropyOptions) -> Result<Tensor> {
    if target.dtype().is_float() || o.label_smoothing != 0.0 {
        return Err(Error::msg(
            "nll_loss: takes int64 class-index targets and no label smoothing",
        ));
    }
    let (lp, t, rows) = flatten_classes(logp, target, "nll_loss")?;
    Ok(nll_rows(&lp, &t, o, &rows, "nll_loss")?.0)
}

/// Cross entropy of logits `[N, C, ...]` and i64 class targets `[N, ...]` (or float class
/// probabilities shaped like the input), PyTorch defaults (mean, no weights).
///
/// # Errors
/// As [`cross_entropy_with`].
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    cross_entropy_with(logits, target, &CrossEntropyOptions::default())
}

/// Cross entropy with class weights, `ignore_index`, label smoothing and a reduction — the
/// formula of ATen's `cross_entropy_loss` (smoothing term normalised like the NLL term).
///
/// # Errors
/// `Error::Msg` for non-float logits, `label_smoothing` outside `[0, 1]`, input/target shapes that
/// do not match, a class index outside `0..C`, or class weights not shaped `[C]`.
pub fn cross_entropy_with(
    logits: &Tensor,
    target: &Tensor,
    o: &CrossEntropyOptions,
) -> Result<Tensor> {
    let eps = o.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        return Err(Error::msg(format!(
            "cross_entropy: label_smoothing must be in [0, 1], got {eps}"
        )));
    }
    if !logits.dtype().is_float() {
        return Err(Error::msg(format!(
            "cross_entropy: logits must be float, got {}",
            logits.dtype()
        )));
    }
    let (x, t, rows) = flatten_classes(logits, target, "cross_entropy")?;
    let c = x.dims()[1];
    let logp = x.log_softmax(1)?;
    let w = check_weight(&o.weight, c, "cross_entropy")?;
    if t.dtype().is_float() {
        let mut t = t.to_dtype(x.dtype())?;
        if eps > 0.0 {
            t = t.affine(1.0 - eps, eps / c as f64)?;
        }
        let mut prod = logp.mul(&t)?;
        if let Some(w) = &w {
            prod = prod.mul(w)?;
        }
        let per = prod.sum(&[1], false)?.neg()?;
        return match o.reduction {
            Reduction::None => per.reshape(rows),
            r => reduce(per, r),
        };
    }
    let (nll, valid, wsum) = nll_rows(&logp, &t, o, &rows, "cross_entropy")?;
    if eps == 0.0 {
        return Ok(nll);
    }
    let all = match &w {
        Some(w) => logp.mul(w)?,
        None => logp,
    };
    let smooth = all.sum(&[1], false)?.neg()?.mul(&valid)?;
    let smooth = match o.reduction {
        Reduction::None => smooth.reshape(rows)?,
        Reduction::Sum => smooth.sum_all()?,
        Reduction::Mean => match &w {
            Some(_) => smooth.sum_all()?.div(&wsum)?,
            None => smooth.sum_all()?.div(&valid.sum_all()?)?,
        },
    };
    nll.mul_scalar(1.0 - eps)?
        .add(&smooth.mul_scalar(eps / c as f64)?)
}

fn same_shape(a: &Tensor, b: &Tensor, op: &str) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::msg(format!(
            "{op}: input shape {} and target shape {} differ",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

/// Mean squared error `(x − y)²`.
///
/// # Errors
/// `Error::Msg` when `x` and `y` differ in shape.
pub fn mse_loss(x: &Tensor, y: &Tensor, r: Reduction) -> Result<Tensor> {
    same_shape(x, y, "mse_loss")?;
    reduce(x.sub(y)?.square()?, r)
}

/// Mean absolute error `|x − y|`.
///
/// # Errors
/// `Error::Msg` when `x` and `y` differ in shape.
pub fn l1_loss(x: &Tensor, y: &Tensor, r: Reduction) -> Result<Tensor> {
    same_shape(x, y, "l1_loss")?;
    reduce(x.sub(y)?.abs()?, r)
}

/// Smooth L1 (Huber-like): `0.5·d²/β` where `|d| < β`, else `|d| − 0.5·β`; β = 0 is L1.
///
/// # Errors
/// `Error::Msg` when `x` and `y` differ in shape or `beta` is negative.
pub fn smooth_l1_loss(x: &Tensor, y: &Tensor, beta: f64, r: Reduction) -> Result<Tensor> {
    same_shape(x, y, "smooth_l1_loss")?;
    if beta < 0.0 {
        return Err(Error::msg(format!(
            "smooth_l1_loss: beta must be >= 0, got {beta}"
        )));
    }
    let d = x.sub(y)?;
    let ad = d.abs()?;
    if beta == 0.0 {
        return reduce(ad, r);
    }
    let small = ad.cmp_scalar(beta, CmpOp::Lt)?;
    let loss = small.where_cond(
        &d.square()?.mul_scalar(0.5 / beta)?,
        &ad.sub_scalar(0.5 * beta)?,
    )?;
    reduce(loss, r)
}

/// Binary cross entropy of probabilities `p` and targets `y` (logs clamped at −100, as
/// PyTorch), optionally weighted elementwise (`weight` broadcasts to the input).
///
/// The gradient is PyTorch's, `(p − y) / max(p·(1 − p), 1e-12)` for `p` and
/// `log(1 − p) − log(p)` (clamped logs) for `y`, so saturated probabilities (0 or 1) give a
/// large finite gradient instead of the NaN of differentiating the clamped logs.
///
/// # Errors
/// `Error::Msg` when `p` and `y` differ in shape; `Error::ShapeMismatch` when `weight` does not
/// broadcast.
pub fn binary_cross_entropy(
    p: &Tensor,
    y: &Tensor,
    weight: Option<&Tensor>,
    r: Reduction,
) -> Result<Tensor> {
    same_shape(p, y, "binary_cross_entropy")?;
    let mut loss = mlfw_autograd::custom_op(
        "binary_cross_entropy",
        |xs| {
            let (lp, l1p) = clamped_logs(&xs[0])?;
            let one_minus_y = xs[1].neg()?.add_scalar(1.0)?;
            xs[1].mul(&lp)?.add(&one_minus_y.mul(&l1p)?)?.neg()
        },
        |xs, _, g| {
            let (p, y) = (&xs[0], &xs[1]);
            let gp = match p.requires_grad() {
                true => {
                    let den = p.mul(&p.neg()?.add_scalar(1.0)?)?;
                    let den = den.clamp(1e-12, f64::INFINITY)?;
                    Some(g.mul(&p.sub(y)?)?.div(&den)?)
                }
                false => None,
            };
            let gy = match y.requires_grad() {
                true => {
                    let (lp, l1p) = clamped_logs(p)?;
                    Some(g.mul(&l1p.sub(&lp)?)?)
                }
                false => None,
            };
            Ok(vec![gp, gy])
        },
        &[p.clone(), y.clone()],
    )?;
    if let Some(w) = weight {
        loss = loss.mul(w)?;
    }
    reduce(loss, r)
}

/// `log(p)` and `log(1 − p)`, each clamped below at −100 (PyTorch's BCE).
fn clamped_logs(p: &Tensor) -> Result<(Tensor, Tensor)> {
    let lp = p.log()?.clamp(-100.0, f64::INFINITY)?;
    let l1p = p
        .neg()?
        .add_scalar(1.0)?
        .log()?
        .clamp(-100.0, f64::INFINITY)?;
    Ok((lp, l1p))
}

/// Binary cross entropy on logits, in the stable form
/// `(1 − y)·x + (1 + (pw − 1)·y)·(max(−x, 0) + log(1 + e^{−|x|}))`; `pos_weight` broadcasts
/// over the last (class) dim, `weight` elementwise.
///
/// # Errors
/// `Error::Msg` when `x` and `y` differ in shape; `Error::ShapeMismatch` when `weight` or
/// `pos_weight` does not broadcast.
pub fn binary_cross_entropy_with_logits(
    x: &Tensor,
    y: &Tensor,
    weight: Option<&Tensor>,
    pos_weight: Option<&Tensor>,
    r: Reduction,
) -> Result<Tensor> {
    same_shape(x, y, "binary_cross_entropy_with_logits")?;
    let softplus_neg = x
        .neg()?
        .relu()?
        .add(&x.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?)?;
    let lin = y.neg()?.add_scalar(1.0)?.mul(x)?;
    let mut loss = match pos_weight {
        Some(pw) => {
            let lw = pw.sub_scalar(1.0)?.mul(y)?.add_scalar(1.0)?;
            lin.add(&lw.mul(&softplus_neg)?)?
        }
        None => lin.add(&softplus_neg)?,
    };
    if let Some(w) = weight {
        loss = loss.mul(w)?;
    }
    reduce(loss, r)
}

/// Errors (naming `context` and the value) if any element of `loss` is NaN or infinite.
/// Copies the loss to the host.
///
/// # Errors
/// `Error::Msg` naming `context` and the first NaN or infinite value.
pub fn check_finite(loss: &Tensor, context: &str) -> Result<()> {
    let v = loss.to_f64_vec()?;
    match v.iter().find(|x| !x.is_finite()) {
        Some(bad) => Err(Error::msg(format!(
            "{context}: loss is not finite ({bad}); lower the learning rate or check the inputs"
        ))),
        None => Ok(()),
    }
}
