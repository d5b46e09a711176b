//! The classic Theano demonstration of symbolic differentiation, in mlfw:
//! for `y = x²`, capture the gradient `dy/dx` as a graph, simplify it, and print it — it is
//! a single multiplication of `x` by 2 — then evaluate it at `x = 4` (8) and take the
//! gradient of the gradient (2).
//!
//! ```text
//! cargo run --release -p mlfw-autograd --example symbolic_grad
//! ```

use mlfw_autograd::{grad, grad_with};
use mlfw_core::graph::Capture;
use mlfw_core::{Device, Error, Result, Tensor};

fn main() -> Result<()> {
    let x = Tensor::from_vec(vec![4f64], [], &Device::Cpu)?.requires_grad_(true)?;
    // gy = dy/dx as a recorded computation (create_graph), traced into a graph.
    let mut g = Capture::new().input("x", &x).run(|xs| {
        let y = xs[0].powf(2.0)?;
        let gy = grad_with(&y, &xs[..1], None, true)?[0].clone();
        Ok(vec![gy.ok_or_else(|| Error::msg("y does not depend on x"))?])
    })?;
    println!("dy/dx as captured ({} ops):\n{g}", g.op_count());
    let stats = g.simplify()?;
    println!("simplified ({stats:?}):\n{g}");

    let at4 = g.run(&[Tensor::from_vec(vec![4f64], [], &Device::Cpu)?])?;
    println!("dy/dx at x = 4: {}", at4[0].item::<f64>()?);

    // The graph's output is itself differentiable: d/dx (dy/dx) = 2.
    let gy = g.run(std::slice::from_ref(&x))?;
    let g2 = grad(&gy[0], &[x], None)?[0]
        .clone()
        .ok_or_else(|| Error::msg("dy/dx does not depend on x"))?;
    println!("d²y/dx² at x = 4: {}", g2.item::<f64>()?);
    Ok(())
}
