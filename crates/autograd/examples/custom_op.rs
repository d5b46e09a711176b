//! A custom differentiable op, the way `torch.autograd.Function` is written: Softplus
//! `y = log(1 + e^x)` with its hand-written derivative `sigmoid(x)`, then `gradcheck` against
//! finite differences — and a deliberately wrong derivative that gradcheck catches.
//!
//! `cargo run -p mlfw-autograd --example custom_op`

use mlfw_autograd::{apply, gradcheck, Backward, Function, GradcheckOptions};
use mlfw_core::{DType, Device, Result, Tensor};

/// Softplus with its derivative; `wrong` scales the derivative by 1.1 (a bug to catch).
struct Softplus {
    wrong: bool,
}

impl Function for Softplus {
    fn name(&self) -> &str {
        "softplus"
    }
    fn forward(&self, inputs: &[Tensor]) -> Result<Tensor> {
        inputs[0].exp()?.add_scalar(1.0)?.log()
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let d = inputs[0].sigmoid()?;
        let d = if self.wrong { d.mul_scalar(1.1)? } else { d };
        Ok(vec![Some(g.mul(&d)?)])
    }
}

fn main() -> Result<()> {
    let x = Tensor::randn(0.0, 1.0, [3, 4], DType::F64, &Device::Cpu)?.requires_grad_(true)?;

    // Used like any op: the result records it, backward calls our rule.
    let y = apply(Softplus { wrong: false }, std::slice::from_ref(&x))?;
    y.sum_all()?.backward()?;
    println!(
        "d sum(softplus(x)) / dx = {}",
        x.grad().expect("x requires grad")
    );

    for wrong in [false, true] {
        let report = gradcheck(
            |xs| apply(Softplus { wrong }, xs),
            std::slice::from_ref(&x),
            GradcheckOptions::default(),
        )?;
        let r = &report.inputs[0];
        println!(
            "gradcheck, {} derivative: passed {} (max abs error {:.2e}, analytic {:.4} vs numerical {:.4} at {})",
            if wrong { "wrong" } else { "correct" },
            report.passed(),
            r.max_abs_err,
            r.analytic,
            r.numerical,
            r.worst
        );
        if report.passed() == wrong {
            return Err(mlfw_core::Error::msg(
                "gradcheck did not tell the rules apart",
            ));
        }
    }
    Ok(())
}
