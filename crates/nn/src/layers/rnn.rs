//! Recurrent layers `Rnn`, `Lstm`, `Gru` (PyTorch's `nn.RNN`, `nn.LSTM`, `nn.GRU`).
//!
//! Keys and shapes as PyTorch: `weight_ih_l{k}[_reverse] [G·H, in]`, `weight_hh_l{k} [G·H, H]`,
//! `bias_ih_l{k}`, `bias_hh_l{k} [G·H]` with G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n);
//! every tensor U(±1/√H) initially. The computation is [`crate::recurrent::recurrent`].

use crate::recurrent::{recurrent, RecurrentOutput, RnnConfig, RnnMode};
use crate::{init, param, Module, TensorKind};
use mlfw_core::{DType, Device, Error, Generator, Result, Tensor};

/// The shared state of the three recurrent layers.
#[derive(Debug, Clone)]
struct Stack {
    mode: RnnMode,
    cfg: RnnConfig,
    /// `(key, parameter)` in PyTorch's order.
    weights: Vec<(String, Tensor)>,
    training: bool,
}

impl Stack {
    fn new(
        mode: RnnMode,
        cfg: RnnConfig,
        device: &Device,
        mut g: Option<&mut Generator>,
    ) -> Result<Self> {
        cfg.validate(mode)?;
        let bound = 1.0 / (cfg.hidden_size as f64).sqrt();
        let mut weights = Vec::new();
        for (k, s) in cfg.weight_keys(mode) {
            let t = Tensor::zeros(s, DType::F32, device)?;
            init::uniform(&t, -bound, bound, g.as_deref_mut())?;
            weights.push((k, param(t)?));
        }
        Ok(Stack {
            mode,
            cfg,
            weights,
            training: true,
        })
    }

    fn tensors(&self) -> Vec<Tensor> {
        self.weights.iter().map(|(_, t)| t.clone()).collect()
    }

    fn run(&self, x: &Tensor, h0: Option<&Tensor>, c0: Option<&Tensor>) -> Result<RecurrentOutput> {
        recurrent(
            self.mode,
            &self.cfg,
            &self.tensors(),
            x,
            h0,
            c0,
            self.training,
        )
    }

    fn get(&self, key: &str) -> Result<&Tensor> {
        self.weights
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::msg(format!("{}: no parameter {key}", self.mode.name())))
    }
}

macro_rules! recurrent_layer {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(Stack);

        impl $name {
            /// The layer's options.
            pub fn config(&self) -> &RnnConfig {
                &self.0.cfg
            }
            /// A parameter by its PyTorch key (`weight_ih_l0`, `bias_hh_l1_reverse`, ...).
            ///
            /// # Errors
            /// `Error::Msg` naming `key` when the layer has no such parameter.
            pub fn weight(&self, key: &str) -> Result<&Tensor> {
                self.0.get(key)
            }
        }

        impl Module for $name {
            /// The output sequence only (see `forward_with` for the final states).
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                Ok(self.0.run(x, None, None)?.output)
            }
            fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
                for (k, t) in &self.0.weights {
                    f(k, t, TensorKind::Parameter);
                }
            }
            fn visit_own_mut(
                &mut self,
                f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
            ) -> Result<()> {
                for (k, t) in &mut self.0.weights {
                    f(k, t, TensorKind::Parameter)?;
                }
                Ok(())
            }
            fn set_own_training(&mut self, on: bool) {
                self.0.training = on;
            }
            fn own_training(&self) -> Option<bool> {
                Some(self.0.training)
            }
        }
    };
}

recurrent_layer!(
    /// Elman RNN (`nn.RNN`): `h' = act(W_ih x + b_ih + W_hh h + b_hh)`, act tanh or relu.
    /// Input `[seq, batch, input]` (`[batch, seq, input]` with `batch_first`, or `[seq, input]`);
    /// output `[.., directions·hidden]`; `h_n [layers·directions, batch, hidden]`.
    Rnn
);
recurrent_layer!(
    /// Long short-term memory (`nn.LSTM`), gates `i, f, g, o`. Shapes as [`Rnn`], plus the
    /// cell state `c` shaped like `h`.
    Lstm
);
recurrent_layer!(
    /// Gated recurrent unit (`nn.GRU`), gates `r, z, n`:
    /// `n = tanh(W_in x + b_in + r·(W_hn h + b_hn))`, `h' = (1 − z)·n + z·h`. Shapes as [`Rnn`].
    Gru
);

impl Rnn {
    /// A float32 tanh (`relu = false`) or relu RNN from the global generator.
    ///
    /// # Errors
    /// `Error::Msg` when `hidden_size` or `num_layers` is 0, or `dropout` is outside `[0, 1]`.
    pub fn new(cfg: RnnConfig, relu: bool, device: &Device) -> Result<Self> {
        Ok(Rnn(Stack::new(Self::mode(relu), cfg, device, None)?))
    }
    /// The same, initialised from `g`.
    ///
    /// # Errors
    /// As [`Rnn::new`].
    pub fn new_with(
        cfg: RnnConfig,
        relu: bool,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Self> {
        Ok(Rnn(Stack::new(Self::mode(relu), cfg, device, Some(g))?))
    }
    fn mode(relu: bool) -> RnnMode {
        if relu {
            RnnMode::RnnRelu
        } else {
            RnnMode::RnnTanh
        }
    }
    /// Output and final hidden state; `h0 [layers·directions, batch, hidden]` defaults to zeros.
    /// Errors name the argument and both shapes.
    ///
    /// # Errors
    /// `Error::Msg` naming the argument and both shapes when `x` is not `[seq, batch, input]`
    /// (batch-first or unbatched as configured) or `h0` is shaped or typed otherwise.
    pub fn forward_with(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let r = self.0.run(x, h0, None)?;
        Ok((r.output, r.h_n))
    }
}

impl Lstm {
    /// A float32 LSTM from the global generator.
    ///
    /// # Errors
    /// As [`Rnn::new`].
    pub fn new(cfg: RnnConfig, device: &Device) -> Result<Self> {
        Ok(Lstm(Stack::new(RnnMode::Lstm, cfg, device, None)?))
    }
    /// The same, initialised from `g`.
    ///
    /// # Errors
    /// As [`Rnn::new`].
    pub fn new_with(cfg: RnnConfig, device: &Device, g: &mut Generator) -> Result<Self> {
        Ok(Lstm(Stack::new(RnnMode::Lstm, cfg, device, Some(g))?))
    }
    /// Output and final `(h_n, c_n)`; the initial `(h0, c0)` (both
    /// `[layers·directions, batch, hidden]`) default to zeros.
    ///
    /// # Errors
    /// As [`Rnn::forward_with`], for `h0` and `c0`.
    pub fn forward_with(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let r = self.0.run(x, state.map(|s| s.0), state.map(|s| s.1))?;
        let c_n = r.c_n.ok_or_else(|| Error::msg("LSTM: no cell state"))?;
        Ok((r.output, (r.h_n, c_n)))
    }
}

impl Gru {
    /// A float32 GRU from the global generator.
    ///
    /// # Errors
    /// As [`Rnn::new`].
    pub fn new(cfg: RnnConfig, device: &Device) -> Result<Self> {
        Ok(Gru(Stack::new(RnnMode::Gru, cfg, device, None)?))
    }
    /// The same, initialised from `g`.
    ///
    /// # Errors
    /// As [`Rnn::new`].
    pub fn new_with(cfg: RnnConfig, device: &Device, g: &mut Generator) -> Result<Self> {
        Ok(Gru(Stack::new(RnnMode::Gru, cfg, device, Some(g))?))
    }
    /// Output and final hidden state; `h0` defaults to zeros.
    ///
    /// # Errors
    /// As [`Rnn::forward_with`].
    pub fn forward_with(&self, x: &Tensor, h0: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let r = self.0.run(x, h0, None)?;
        Ok((r.output, r.h_n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_shapes_and_errors() {
        let cfg = RnnConfig::new(5, 7).num_layers(2).bidirectional(true);
        let m = Lstm::new_with(cfg, &Device::Cpu, &mut Generator::new(0)).unwrap();
        let sd = m.state_dict();
        assert_eq!(sd.len(), 16);
        assert_eq!(sd[0].0, "weight_ih_l0");
        assert_eq!(sd[4].0, "weight_ih_l0_reverse");
        assert_eq!(sd[8].1.dims(), &[28, 14]);
        let bound = 1.0 / 7f32.sqrt();
        assert!(sd.iter().all(|(_, t)| t
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.abs() <= bound)));
        let x = Tensor::ones([4, 3, 5], DType::F32, &Device::Cpu).unwrap();
        let (y, (h, c)) = m.forward_with(&x, None).unwrap();
        assert_eq!(
            (y.dims(), h.dims(), c.dims()),
            (&[4, 3, 14][..], &[4, 3, 7][..], &[4, 3, 7][..])
        );
        let bad = Tensor::zeros([4, 2, 7], DType::F32, &Device::Cpu).unwrap();
        let e = m
            .forward_with(&x, Some((&bad, &bad)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h0") && e.contains("[4, 3, 7]") && e.contains("[4, 2, 7]"),
            "{e}"
        );
        let e = m
            .forward(&Tensor::ones([4, 3, 6], DType::F32, &Device::Cpu).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("input") && e.contains("[4, 3, 6]"), "{e}");
        // Unbatched input.
        let (y, h) = Gru::new(RnnConfig::new(5, 4), &Device::Cpu)
            .unwrap()
            .forward_with(
                &Tensor::ones([6, 5], DType::F32, &Device::Cpu).unwrap(),
                None,
            )
            .unwrap();
        assert_eq!((y.dims(), h.dims()), (&[6, 4][..], &[1, 4][..]));
    }
}
