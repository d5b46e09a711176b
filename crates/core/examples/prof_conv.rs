use mlfw_core::{Conv2dParams, DType, Device, Tensor};
fn main() -> mlfw_core::Result<()> {
    let which: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let d = Device::Cpu;
    let b = 64;
    let (x, w, p) = if which % 10 == 0 {
        (Tensor::randn(0.0, 1.0, [b, 1, 28, 28], DType::F32, &d)?, Tensor::randn(0.0, 0.2, [6, 1, 5, 5], DType::F32, &d)?, Conv2dParams { padding: (2, 2), ..Default::default() })
    } else {
        (Tensor::randn(0.0, 1.0, [b, 6, 14, 14], DType::F32, &d)?, Tensor::randn(0.0, 0.2, [16, 6, 5, 5], DType::F32, &d)?, Conv2dParams::default())
    };
    let y = x.conv2d(&w, None, p)?;
    let t = std::time::Instant::now();
    for _ in 0..2000 {
        match which / 10 {
            0 => { x.conv2d(&w, None, p)?; }
            1 => { y.conv2d_backward_input(&w, p, (x.dims()[2], x.dims()[3]))?; }
            _ => { x.conv2d_backward_weight(&y, p, (5, 5))?; }
        }
    }
    println!("{:.3} ms", t.elapsed().as_secs_f64() / 2.0);
    Ok(())
}
