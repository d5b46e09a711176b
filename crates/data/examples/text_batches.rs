//! Character-level language-model batches from the embedded tinyshakespeare corpus.
//!
//! ```text
//! cargo run --release -p mlfw-data --example text_batches
//! ```

use mlfw_core::Device;
use mlfw_data::{Rng, TextDataset};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = TextDataset::tinyshakespeare()?;
    println!(
        "{}: {} characters, {} train / {} validation",
        data.name,
        data.vocab.len(),
        data.train.len(),
        data.val.len()
    );
    let (x, y) = data.batch(true, 2, 40, &mut Rng::new(0), &Device::Cpu)?;
    for r in 0..2 {
        let xs = x.select(0, r)?.to_vec::<i64>()?;
        let ys = y.select(0, r)?.to_vec::<i64>()?;
        println!(
            "input  {:?}\ntarget {:?}",
            data.vocab.decode(&xs)?,
            data.vocab.decode(&ys)?
        );
    }
    let ids = data.vocab.encode("ROMEO:", "prompt")?;
    println!("\"ROMEO:\" -> {ids:?}");
    Ok(())
}
