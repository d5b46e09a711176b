//! Rules for indexing ops (index_select/gather are dispatched in `mod.rs`).

use mlfw_core::{Result, Tensor};

/// Gradient of scatter_add w.r.t. `src`: the gradient read back at the scattered positions.
///
/// # Errors
/// `ids` not indexing `g` along `dim` (rank, range or dtype); `src` of a different rank than `g`.
pub fn gather_src(g: &Tensor, ids: &Tensor, src: &Tensor, dim: usize) -> Result<Tensor> {
    let gs = g.gather(ids, dim as isize)?;
    if gs.shape() == src.shape() {
        return Ok(gs);
    }
    // Only the leading `ids`-shaped block of `src` was read: zero-pad up to src's shape.
    let mut out = gs;
    for d in 0..src.rank() {
        let (have, want) = (out.dims()[d], src.dims()[d]);
        if have < want {
            let mut zd = out.dims().to_vec();
            zd[d] = want - have;
            let z = Tensor::zeros(zd, g.dtype(), &g.device())?;
            out = Tensor::cat(&[out, z], d as isize)?;
        }
    }
    Ok(out)
}
