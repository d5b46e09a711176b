//! The capture tape: while a [`crate::graph::Capture`] runs its closure, every op made on
//! this thread is appended here (output tensor + op record), whether or not any input
//! requires grad. Reads of tensor values and in-place writes are noted, not baked in silently.

use crate::op::Op;
use crate::Tensor;
use std::cell::{Cell, RefCell};

/// What one capture recorded.
#[derive(Default)]
pub(crate) struct Tape {
    /// Ops in the order they ran, each with the tensor it produced.
    pub entries: Vec<(Tensor, Op)>,
    /// Messages about value reads and side effects during the capture.
    pub notes: Vec<String>,
    /// In-place writes (`assign`) recorded instead of performed: (destination, value,
    /// number of ops recorded before the write).
    pub writes: Vec<(Tensor, Tensor, usize)>,
}

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static TAPE: RefCell<Tape> = RefCell::new(Tape::default());
}

/// True while a capture is running on this thread (one thread-local load: ops check it).
#[inline]
pub(crate) fn active() -> bool {
    ACTIVE.with(|a| a.get())
}

/// Starts recording; false if a capture is already running on this thread.
pub(crate) fn begin() -> bool {
    if active() {
        return false;
    }
    TAPE.with(|t| *t.borrow_mut() = Tape::default());
    ACTIVE.with(|a| a.set(true));
    true
}

/// Stops recording and hands back what was recorded (repeated notes once, with a count).
pub(crate) fn end() -> Tape {
    ACTIVE.with(|a| a.set(false));
    let mut tape = TAPE.with(|t| std::mem::take(&mut *t.borrow_mut()));
    let mut counted: Vec<(String, usize)> = Vec::new();
    for n in tape.notes.drain(..) {
        match counted.iter_mut().find(|(m, _)| *m == n) {
            Some((_, c)) => *c += 1,
            None => counted.push((n, 1)),
        }
    }
    tape.notes = counted
        .into_iter()
        .map(|(m, c)| if c > 1 { format!("{m} ({c} times)") } else { m })
        .collect();
    tape
}

/// Appends an op and the tensor it produced.
pub(crate) fn push(out: &Tensor, op: Op) {
    TAPE.with(|t| t.borrow_mut().entries.push((out.clone(), op)));
}

/// Notes that the values of `t` were read on the host (`item`, `to_vec`): the graph keeps
/// the path those values chose, as `torch.jit.trace` does, and says so.
pub(crate) fn note_read(t: &Tensor, what: &str) {
    if active() {
        let msg = format!(
            "`{what}` read the values of a {} tensor of shape {} during capture; the graph records the path taken for these values",
            t.dtype(),
            t.shape()
        );
        TAPE.with(|tp| tp.borrow_mut().notes.push(msg));
    }
}

/// Records `dst.assign(src)` made during a capture as a state write of the graph (batch
/// norm's running statistics): the write is *not* performed now (the traces must not
/// change the model); [`crate::graph::Graph::run`] and compiled plans perform it after the
/// graph's ops. Returns whether a capture took it (false: perform the write as usual).
pub(crate) fn record_write(dst: &Tensor, src: &Tensor) -> bool {
    if !active() {
        return false;
    }
    TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let at = t.entries.len();
        t.writes.push((dst.clone(), src.clone(), at));
    });
    true
}

/// Part of the note [`note_random`] leaves: a capture whose warnings contain it froze
/// random draws into constants.
pub const RANDOM_DRAW: &str = "drew random numbers during capture";

/// Notes a random draw (dropout's mask, stochastic depth): the graph holds the draw as a
/// constant, so a replay would reuse it instead of drawing anew.
pub(crate) fn note_random() {
    if active() {
        let msg = format!(
            "a random generator {RANDOM_DRAW} (dropout or stochastic depth in training mode?), which the graph holds as constants: every replay would reuse the same draw"
        );
        TAPE.with(|tp| tp.borrow_mut().notes.push(msg));
    }
}

/// Notes an in-place write (optimizer updates): not part of the graph.
pub(crate) fn note_side_effect(what: &str) {
    if active() {
        let msg = format!(
            "`{what}` wrote into a tensor in place during capture; in-place updates are not part of the graph"
        );
        TAPE.with(|tp| tp.borrow_mut().notes.push(msg));
    }
}
