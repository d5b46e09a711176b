//! Automatic mixed precision (PyTorch's `torch.autocast`): inside an [`autocast`] scope,
//! matmul and convolution run in a 16-bit float dtype (bf16 or f16; accumulation stays in
//! f32 inside the kernels) while numerically sensitive ops — softmax, log-softmax, sums and
//! means, exp, log, reciprocals, powers — run in f32, as PyTorch's autocast op lists say.
//! Binary ops on two float dtypes promote to the wider one (as PyTorch's type promotion).
//! Parameters stay f32 ("master weights"): the casts are recorded ops, so gradients flow back
//! to them in f32.

use crate::{DType, Error, Result, Tensor};
use std::cell::Cell;

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// The lower-precision dtype of the active autocast scope on this thread, if any.
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST.with(|a| a.get())
}

/// Restores the previous autocast setting when dropped.
#[must_use = "autocast ends as soon as the guard is dropped"]
pub struct AutocastGuard(Option<DType>);

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.0));
    }
}

/// Starts an autocast scope on this thread with `dtype` (`BF16` or `F16`) until the guard
/// is dropped. Run the forward pass and the loss inside it and the backward pass outside,
/// as in PyTorch.
///
/// ```
/// use mlfw_core::{autocast, DType, Device, Tensor};
/// let a = Tensor::ones([2, 3], DType::F32, &Device::Cpu)?;
/// let b = Tensor::ones([3, 4], DType::F32, &Device::Cpu)?;
/// let c = {
///     let _amp = autocast::autocast(DType::BF16)?;
///     a.matmul(&b)?
/// };
/// assert_eq!(c.dtype(), DType::BF16);
/// # Ok::<(), mlfw_core::Error>(())
/// ```
///
/// # Errors
/// `Error::Msg` for a `dtype` other than `BF16` or `F16`.
pub fn autocast(dtype: DType) -> Result<AutocastGuard> {
    if !matches!(dtype, DType::BF16 | DType::F16) {
        return Err(Error::msg(format!(
            "autocast: dtype must be bf16 or f16, got {dtype}"
        )));
    }
    Ok(AutocastGuard(AUTOCAST.with(|a| a.replace(Some(dtype)))))
}

/// Turns autocast off until the guard is dropped (PyTorch's `autocast(enabled=False)`).
pub fn disable_autocast() -> AutocastGuard {
    AutocastGuard(AUTOCAST.with(|a| a.replace(None)))
}

/// For the lower-precision ops (matmul, conv): `a` and `b` cast to the autocast dtype when a
/// scope is active and either is f32; `None` when nothing changes.
pub(crate) fn lower_pair(a: &Tensor, b: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
    let Some(lp) = autocast_dtype() else {
        return Ok(None);
    };
    let cast = |t: &Tensor| match t.dtype() {
        DType::F32 => t.to_dtype(lp),
        _ => Ok(t.clone()),
    };
    if a.dtype() != DType::F32 && b.dtype() != DType::F32 {
        return Ok(None);
    }
    Ok(Some((cast(a)?, cast(b)?)))
}

/// For the f32 ops: `x` cast to f32 when a scope is active and `x` is f16/bf16.
pub(crate) fn to_f32(x: &Tensor) -> Result<Option<Tensor>> {
    match (autocast_dtype(), x.dtype()) {
        (Some(_), DType::F16 | DType::BF16) => x.to_dtype(DType::F32).map(Some),
        _ => Ok(None),
    }
}

/// The dtype two float dtypes promote to (the wider; f16 with bf16 gives f32), or `None`
/// when the pair does not promote (equal, or not both float).
pub(crate) fn promote(a: DType, b: DType) -> Option<DType> {
    if a == b || !a.is_float() || !b.is_float() {
        return None;
    }
    let rank = |d: DType| match d {
        DType::F16 | DType::BF16 => 0,
        DType::F32 => 1,
        _ => 2,
    };
    Some(match rank(a).cmp(&rank(b)) {
        std::cmp::Ordering::Less => b,
        std::cmp::Ordering::Greater => a,
        std::cmp::Ordering::Equal => DType::F32,
    })
}
