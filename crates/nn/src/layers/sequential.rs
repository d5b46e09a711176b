//! A chain of modules.

use crate::Module;
use mlfw_core::{Result, Tensor};

/// Runs its children in order (PyTorch's `nn.Sequential`); children are named `0`, `1`, ...
/// so keys read `0.weight`, `2.bias`, ...
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer (builder form).
    pub fn append<M: Module + 'static>(mut self, m: M) -> Self {
        self.layers.push(Box::new(m));
        self
    }

    /// Appends a boxed layer.
    pub fn push(&mut self, m: Box<dyn Module>) {
        self.layers.push(m);
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True with no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer `i`.
    pub fn get(&self, i: usize) -> Option<&dyn Module> {
        self.layers.get(i).map(|b| b.as_ref())
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l
                .forward(&h)
                .map_err(|e| e.context(format!("Sequential layer {i}")))?;
        }
        Ok(h)
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        for (i, l) in self.layers.iter().enumerate() {
            f(&i.to_string(), l.as_ref());
        }
    }
    fn visit_children_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        for (i, l) in self.layers.iter_mut().enumerate() {
            f(&i.to_string(), l.as_mut())?;
        }
        Ok(())
    }
}
