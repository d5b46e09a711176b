//! Tensors as a user meets them: creation, dtypes, views that share storage (reshape,
//! transpose, narrow, expand), broadcasting arithmetic, reductions and matmul on strided
//! inputs, and errors instead of panics.
//!
//! `cargo run -p mlfw-core --example tensors`

use mlfw_core::{DType, Device, Result, Tensor};

fn main() -> Result<()> {
    let dev = Device::Cpu;
    // [2, 3] from a Vec; dtypes follow the element type.
    let a = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], [2, 3], &dev)?;
    let idx = Tensor::arange(0.0, 4.0, 1.0, DType::I64, &dev)?;
    println!("a = {a}\nidx = {idx} ({:?})", idx.dtype());

    // Views: no copy, new strides over the same storage.
    let at = a.t()?; // [3, 2], strides [1, 3]
    println!(
        "a.t(): dims {:?}, strides {:?}, contiguous {}",
        at.dims(),
        at.strides(),
        at.is_contiguous()
    );
    let col = a.narrow(1, 1, 2)?; // columns 1..3
    println!("a[:, 1:3] = {col}");
    let flat = a.reshape([6])?;
    println!("a.reshape([6]) = {flat}");

    // Broadcasting: [2, 3] + [3] and [2, 1] * [1, 3], as NumPy and PyTorch do.
    let bias = Tensor::from_vec(vec![10f32, 20., 30.], [3], &dev)?;
    println!("a + bias = {}", a.add(&bias)?);
    let rows = Tensor::from_vec(vec![1f32, 2.], [2, 1], &dev)?;
    let cols = Tensor::from_vec(vec![1f32, 10., 100.], [1, 3], &dev)?;
    println!("outer product by broadcasting = {}", rows.mul(&cols)?);
    println!("expand([4, 3]) of bias: {:?}", bias.expand([4, 3])?.dims());

    // Reductions and matmul accept any layout (the transposed view here).
    println!("a.sum(dim 1) = {}", a.sum(&[1], false)?);
    println!("a.mean() = {}", a.mean(&[], false)?);
    println!("a @ a.t() = {}", a.matmul(&at)?);

    // Mistakes are errors with the shapes in the message, never panics.
    match a.matmul(&a) {
        Ok(p) => println!("unexpected: a @ a gave {:?}", p.dims()),
        Err(e) => println!("a @ a -> error: {e}"),
    }
    Ok(())
}
