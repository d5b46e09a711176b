//! Generic slices seen as f32 when their element type is f32, for kernels that exist only
//! in f32 (the direct convolutions, the vectorised exp) inside dtype-generic code.

use std::any::TypeId;
use std::mem::MaybeUninit;

/// `s` as f32 when `T` is f32.
pub(super) fn as_f32<T: 'static>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: `T` is `f32` (same type id), so the cast is the identity.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// Uninitialised f32 form of [`as_f32`].
pub(super) fn as_f32_uninit<T: 'static>(
    s: &mut [MaybeUninit<T>],
) -> Option<&mut [MaybeUninit<f32>]> {
    // SAFETY: as in `as_f32`.
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| unsafe {
        std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<MaybeUninit<f32>>(), s.len())
    })
}

/// Mutable form of [`as_f32`].
pub(super) fn as_f32_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`.
    (TypeId::of::<T>() == TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}
