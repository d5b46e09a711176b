//! Pulls a model (default `lenet5`, from the built-in registry: no network needed), then
//! lists the registries and the cache.
//!
//! ```text
//! cargo run -p mlfw-hub --example pull [-- NAME[@VERSION]]
//! MLFW_HUB_REGISTRY=https://host/registry/index.json cargo run -p mlfw-hub --example pull -- mymodel
//! ```

fn main() -> Result<(), mlfw_hub::Error> {
    let spec = std::env::args().nth(1).unwrap_or_else(|| "lenet5".into());
    let opts = mlfw_hub::HubOptions::from_env();
    let pulled = mlfw_hub::pull(&spec, &opts)?;
    let m = &pulled.model;
    println!(
        "{} from {} in {} ({} file(s) fetched)",
        m.entry.id(),
        m.source,
        m.dir.display(),
        pulled.fetched.len()
    );
    let listing = mlfw_hub::list(&opts)?;
    for w in &listing.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{:<16} {:<8} {:>10} {:>8}  {:<8} source",
        "name", "version", "bytes", "acc", "cached"
    );
    for it in &listing.models {
        let acc = it
            .accuracy
            .as_ref()
            .map_or("-".to_string(), |a| format!("{:.2}%", a.accuracy * 100.0));
        println!(
            "{:<16} {:<8} {:>10} {:>8}  {:<8} {}",
            it.name,
            it.version,
            it.size,
            acc,
            if it.cached.is_some() { "yes" } else { "no" },
            it.source
        );
    }
    let w = mlfw_hub::load_weights_with(&spec, &opts, &mlfw_core::Device::Cpu)?;
    println!(
        "{} tensors; preprocessing: size {:?}, mean {:?}, std {:?}",
        w.state_dict.len(),
        w.preprocessing.size,
        w.preprocessing.mean,
        w.preprocessing.std
    );
    Ok(())
}
