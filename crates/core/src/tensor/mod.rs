//! The user-facing [`Tensor`]: a strided view over shared storage on some device, plus the
//! record of the op that made it when gradients are tracked.

mod batch_norm;
mod create;
mod display;
mod elementwise;
mod index;
mod linalg;
mod nn_ops;
mod reduce;
mod view;

use crate::backend::Storage;
use crate::op::Op;
use crate::{DType, Device, Error, Layout, Result, Shape};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A unique id per tensor (views get their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// How a tensor came to be.
#[derive(Clone)]
pub enum OpState {
    /// Made directly (a leaf), or made while gradients were not tracked.
    None,
    /// Made by this op, whose inputs require grad.
    Recorded(Op),
    /// Made by an op whose record was freed by a backward pass.
    Freed(String),
}

pub(crate) struct TensorInner {
    id: TensorId,
    storage: Arc<RwLock<Storage>>,
    layout: Layout,
    dtype: DType,
    device: Device,
    requires_grad: AtomicBool,
    op: Mutex<OpState>,
    grad: Mutex<Option<Tensor>>,
}

/// An n-dimensional array; cheap to clone (clones share storage and identity).
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record their inputs for backward on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns op recording on or off for this thread; returns the previous setting.
/// Prefer the scoped guard `mlfw_autograd::no_grad()`.
pub fn set_grad_enabled(on: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(on))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tensor {
    /// Wraps fresh storage with a layout; records `op` when tracking applies.
    pub(crate) fn make(storage: Storage, layout: Layout, op: Option<Op>) -> Tensor {
        Self::make_shared(Arc::new(RwLock::new(storage)), layout, op)
    }

    /// A new tensor over existing (shared) storage.
    pub(crate) fn make_shared(
        storage: Arc<RwLock<Storage>>,
        layout: Layout,
        op: Option<Op>,
    ) -> Tensor {
        let (dtype, device) = {
            let s = storage.read().unwrap_or_else(|e| e.into_inner());
            (s.dtype(), s.device())
        };
        let rg = op.is_some();
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage,
            layout,
            dtype,
            device,
            requires_grad: AtomicBool::new(rg),
            op: Mutex::new(op.map_or(OpState::None, OpState::Recorded)),
            grad: Mutex::new(None),
        }))
    }

    /// Builds a contiguous tensor from a storage made by a kernel.
    pub(crate) fn from_storage(
        storage: Storage,
        shape: impl Into<Shape>,
        op: impl FnOnce() -> Op,
        inputs: &[&Tensor],
    ) -> Tensor {
        let storage = Arc::new(RwLock::new(storage));
        Self::finish(storage, Layout::contiguous(shape), op, track(inputs))
    }

    /// A view of this tensor's storage with another layout.
    pub(crate) fn view_with(&self, layout: Layout, op: impl FnOnce() -> Op) -> Tensor {
        Self::finish(self.0.storage.clone(), layout, op, track(&[self]))
    }

    /// Wraps an op's result: records `op` for autograd when `autograd`, and appends it to
    /// the active graph capture (if any) whether or not gradients are tracked.
    pub(crate) fn finish(
        storage: Arc<RwLock<Storage>>,
        layout: Layout,
        op: impl FnOnce() -> Op,
        autograd: bool,
    ) -> Tensor {
        if !crate::graph::tape::active() {
            return Self::make_shared(storage, layout, autograd.then(op));
        }
        let op = op();
        let t = Self::make_shared(storage, layout, autograd.then(|| op.clone()));
        crate::graph::tape::push(&t, op);
        t
    }

    /// Wraps a backend storage as a contiguous tensor of `shape` (no gradient record).
    /// For backends and ops defined outside core.
    ///
    /// # Errors
    /// `Error::Msg` when the storage length differs from the shape's element count.
    pub fn from_backend_storage(storage: Storage, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if storage.len() < shape.elem_count() {
            return Err(Error::msg(format!(
                "from_backend_storage: {} elements cannot hold shape {shape}",
                storage.len()
            )));
        }
        Ok(Self::make(storage, Layout::contiguous(shape), None))
    }

    /// A tensor equal to `value` that records `op` (used by autograd's custom functions).
    pub fn with_op(value: &Tensor, op: Op) -> Tensor {
        let op = is_grad_enabled().then_some(op);
        Self::make_shared(value.0.storage.clone(), value.0.layout.clone(), op)
    }

    /// Unique id.
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// Shape.
    pub fn shape(&self) -> &Shape {
        self.0.layout.shape()
    }
    /// Dims.
    pub fn dims(&self) -> &[usize] {
        self.0.layout.dims()
    }
    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.dims().len()
    }
    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.0.layout.elem_count()
    }
    /// Size of `dim` (negative counts from the end).
    ///
    /// # Errors
    /// `Error::DimOutOfRange` when `dim` is outside `-rank..rank`.
    pub fn dim(&self, dim: isize) -> Result<usize> {
        Ok(self.dims()[self.shape().dim(dim, "dim")?])
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    /// Device.
    pub fn device(&self) -> Device {
        self.0.device
    }
    /// Shape, strides and offset.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        self.0.layout.strides()
    }
    /// True for a row-major view without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// Read access to the storage (shared with views).
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Write access to the storage (for in-place updates; views see the change).
    pub fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }
    /// True if `self` and `other` view the same storage.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
    /// A weak handle on the storage: identifies it (`Weak::ptr_eq`; while the handle lives, no
    /// other storage takes its address) without keeping its values alive.
    pub(crate) fn storage_weak(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let w: std::sync::Weak<RwLock<Storage>> = Arc::downgrade(&self.0.storage);
        w
    }

    /// Whether gradients flow to (leaf) or through (op result) this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf as requiring grad (float dtypes only; not on op results).
    ///
    /// # Errors
    /// `Error::Msg` when turning it on for a non-float tensor, or for an op result (only leaves).
    pub fn set_requires_grad(&self, on: bool) -> Result<&Self> {
        if on && !self.dtype().is_float() {
            return Err(Error::msg(format!(
                "only float tensors can require grad, got {}",
                self.dtype()
            )));
        }
        if !self.is_leaf() {
            return Err(Error::msg(
                "requires_grad can only be set on leaf tensors; use detach() for a new leaf",
            ));
        }
        self.0.requires_grad.store(on, Ordering::Relaxed);
        Ok(self)
    }

    /// Builder form of [`Tensor::set_requires_grad`].
    ///
    /// # Errors
    /// As [`Tensor::set_requires_grad`].
    pub fn requires_grad_(self, on: bool) -> Result<Self> {
        self.set_requires_grad(on)?;
        Ok(self)
    }

    /// True when no op record exists (made directly, or with tracking off).
    pub fn is_leaf(&self) -> bool {
        matches!(*lock(&self.0.op), OpState::None)
    }

    /// The op record (clone; cheap).
    pub fn op_state(&self) -> OpState {
        lock(&self.0.op).clone()
    }

    /// The recorded op, if any.
    pub fn op(&self) -> Option<Op> {
        match &*lock(&self.0.op) {
            OpState::Recorded(op) => Some(op.clone()),
            _ => None,
        }
    }

    /// Drops the op record (freeing saved tensors), remembering that it existed.
    pub fn free_op(&self) {
        let mut st = lock(&self.0.op);
        if let OpState::Recorded(op) = &*st {
            *st = OpState::Freed(op.name());
        }
    }

    /// The accumulated gradient of a leaf.
    pub fn grad(&self) -> Option<Tensor> {
        lock(&self.0.grad).clone()
    }

    /// Replaces the gradient.
    pub fn set_grad(&self, g: Option<Tensor>) {
        *lock(&self.0.grad) = g;
    }

    /// Clears the gradient (PyTorch's `set_to_none=True`).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// A new leaf sharing storage, without gradient tracking.
    pub fn detach(&self) -> Tensor {
        Self::make_shared(self.0.storage.clone(), self.0.layout.clone(), None)
    }

    /// Copies `src` (same shape and dtype, any device) into this tensor's storage, in place.
    /// Not recorded: for optimizer and running-statistics updates.
    ///
    /// # Errors
    /// `Error::ShapeMismatch` / `Error::DTypeMismatch` when `src` differs in shape or dtype; device
    /// errors copying it across devices.
    ///
    /// During a graph capture the write is recorded as a state write of the graph and not
    /// performed (see [`crate::graph::Graph::writes`]).
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "assign",
                lhs: self.shape().clone(),
                rhs: src.shape().clone(),
            });
        }
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "assign",
                lhs: self.dtype(),
                rhs: src.dtype(),
            });
        }
        if crate::graph::tape::record_write(self, src) {
            return Ok(());
        }
        let src = if src.device() != self.device() {
            src.to_device(&self.device())?
        } else {
            src.clone()
        };
        if self.same_storage(&src) {
            let tmp = src.copy()?;
            return self.assign(&tmp);
        }
        let s = src.storage();
        let mut d = self.storage_mut();
        s.copy_into(src.layout(), &mut **d, self.layout())
    }

    /// Runs a fused optimizer update on this (contiguous) parameter, in place.
    ///
    /// # Errors
    /// `Error::Msg` when the parameter or a state buffer is not contiguous, or a buffer is shaped
    /// otherwise; `Error::ShapeMismatch` when the gradient's shape differs; backend errors for
    /// dtypes the kernel lacks.
    pub fn optim_update(
        &self,
        grad: &Tensor,
        state: &[Tensor],
        u: &crate::params::OptimUpdate,
    ) -> Result<()> {
        crate::graph::tape::note_side_effect("optim_update");
        if !self.is_contiguous() || self.layout().offset() != 0 {
            return Err(Error::msg(
                "optimizer step: parameter must be a contiguous tensor",
            ));
        }
        if grad.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "optimizer step",
                lhs: self.shape().clone(),
                rhs: grad.shape().clone(),
            });
        }
        for s in state {
            if s.elem_count() != self.elem_count() || !s.is_contiguous() {
                return Err(Error::msg("optimizer step: state buffers must be contiguous and shaped like the parameter"));
            }
        }
        let g = grad.storage();
        let mut guards: Vec<RwLockWriteGuard<'_, Storage>> =
            state.iter().map(|t| t.storage_mut()).collect();
        let mut refs: Vec<&mut dyn crate::BackendStorage> = Vec::with_capacity(guards.len());
        for g in guards.iter_mut() {
            refs.push(g.as_mut());
        }
        let mut p = self.storage_mut();
        p.optim_update(&**g, grad.layout(), &mut refs, u)
    }
}

impl Drop for TensorInner {
    /// Dismantles the recorded graph iteratively: a chain of 100,000 ops must not
    /// overflow the stack through recursive drops.
    fn drop(&mut self) {
        let st = std::mem::replace(
            self.op.get_mut().unwrap_or_else(|e| e.into_inner()),
            OpState::None,
        );
        let OpState::Recorded(op) = st else { return };
        let mut stack = op.into_inputs();
        while let Some(t) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(t.0) {
                let st = std::mem::replace(
                    inner.op.get_mut().unwrap_or_else(|e| e.into_inner()),
                    OpState::None,
                );
                if let OpState::Recorded(op) = st {
                    stack.extend(op.into_inputs());
                }
            }
        }
    }
}

/// True when an op on `inputs` must be recorded.
pub(crate) fn track(inputs: &[&Tensor]) -> bool {
    is_grad_enabled() && inputs.iter().any(|t| t.requires_grad())
}

/// Errors unless `a` and `b` share device and dtype.
pub(crate) fn same_device_dtype(a: &Tensor, b: &Tensor, op: &'static str) -> Result<()> {
    if a.device() != b.device() {
        return Err(Error::DeviceMismatch {
            op,
            lhs: a.device(),
            rhs: b.device(),
        });
    }
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    Ok(())
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor[{}, {}, {}]",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}
