//! Vision Transformer ViT-B/16 (Dosovitskiy et al. 2021) with torchvision's layout and keys:
//! `conv_proj` (16×16 patches, stride 16), `class_token`, `encoder.pos_embedding`,
//! `encoder.layers.encoder_layer_{i}.{ln_1, self_attention, ln_2, mlp.0, mlp.3}`,
//! `encoder.ln`, `heads.head`.

use super::check_input;
use mlfw_core::{DType, Device, Error, Result, Tensor};
use mlfw_nn::{
    init, param, AttnArgs, Conv2d, Conv2dConfig, Dropout, Gelu, LayerNorm, Linear, Module,
    MultiheadAttention, Sequential, TensorKind,
};

/// torchvision's `EncoderBlock`: pre-norm self-attention and MLP, each with a residual:
/// `x + attn(ln_1(x))`, then `y + mlp(ln_2(y))`, with `mlp = [Linear, GELU, Dropout, Linear,
/// Dropout]` (keys `mlp.0`, `mlp.3`). LayerNorm eps 1e-6. Input and output `[N, S, E]`.
pub struct EncoderBlock {
    pub ln_1: LayerNorm,
    pub self_attention: MultiheadAttention,
    pub ln_2: LayerNorm,
    pub mlp: Sequential,
}

impl EncoderBlock {
    /// A block of width `e` with `heads` attention heads and an MLP of width `mlp`.
    ///
    /// # Errors
    /// `Error::Msg` when `e` is not a positive multiple of `heads`.
    pub fn new(e: usize, heads: usize, mlp: usize, d: &Device) -> Result<Self> {
        let l1 = Linear::new(e, mlp, true, d)?;
        let l2 = Linear::new(mlp, e, true, d)?;
        for l in [&l1, &l2] {
            init::xavier_uniform(&l.weight, 1.0, None)?;
            if let Some(b) = &l.bias {
                init::normal(b, 0.0, 1e-6, None)?;
            }
        }
        Ok(EncoderBlock {
            ln_1: LayerNorm::new(&[e], d)?.eps(1e-6),
            self_attention: MultiheadAttention::new(e, heads, true, true, d)?,
            ln_2: LayerNorm::new(&[e], d)?.eps(1e-6),
            mlp: Sequential::new()
                .append(l1)
                .append(Gelu::default())
                .append(Dropout::new(0.0)?)
                .append(l2)
                .append(Dropout::new(0.0)?),
        })
    }
}

impl Module for EncoderBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.ln_1.forward(x)?;
        let args = AttnArgs {
            need_weights: false,
            ..Default::default()
        };
        let x = x.add(&self.self_attention.forward_with(&h, &h, &h, args)?.0)?;
        x.add(&self.mlp.forward(&self.ln_2.forward(&x)?)?)
    }
    mlfw_nn::children!(ln_1, self_attention, ln_2, mlp);
}

/// The encoder's blocks, named `encoder_layer_{i}` as torchvision does.
pub struct EncoderLayers(pub Vec<EncoderBlock>);

impl Module for EncoderLayers {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for b in &self.0 {
            h = b.forward(&h)?;
        }
        Ok(h)
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        for (i, b) in self.0.iter().enumerate() {
            f(&format!("encoder_layer_{i}"), b);
        }
    }
    fn visit_children_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        for (i, b) in self.0.iter_mut().enumerate() {
            f(&format!("encoder_layer_{i}"), b)?;
        }
        Ok(())
    }
}

/// torchvision's `Encoder`: learned position embedding added, the blocks, a final LayerNorm.
pub struct Encoder {
    pub pos_embedding: Tensor,
    pub layers: EncoderLayers,
    pub ln: LayerNorm,
}

impl Module for Encoder {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.dims()[1..] != self.pos_embedding.dims()[1..] {
            return Err(Error::msg(format!(
                "ViT encoder: tokens {} do not match the position embedding {}",
                x.shape(),
                self.pos_embedding.shape()
            )));
        }
        self.ln
            .forward(&self.layers.forward(&x.add(&self.pos_embedding)?)?)
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        f("pos_embedding", &self.pos_embedding, TensorKind::Parameter);
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        f(
            "pos_embedding",
            &mut self.pos_embedding,
            TensorKind::Parameter,
        )
    }
    mlfw_nn::children!(layers, ln);
}

/// The classification head container (`heads.head`).
pub struct Heads {
    pub head: Linear,
}

impl Module for Heads {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head.forward(x)
    }
    mlfw_nn::children!(head);
}

/// torchvision's `vit_b_16(num_classes)`: 224×224 input in 16×16 patches (196 tokens plus a
/// class token), 12 blocks of width 768 with 12 heads and MLP 3072, the class token's final
/// state into `heads.head`. Input `[N, C, 224, 224]`; output `[N, num_classes]`.
pub struct VisionTransformer {
    pub class_token: Tensor,
    pub conv_proj: Conv2d,
    pub encoder: Encoder,
    pub heads: Heads,
    patch: usize,
    image: usize,
    in_channels: usize,
}

impl VisionTransformer {
    /// ViT-B/16 (patch 16, image 224, 12 layers, 12 heads, width 768, MLP 3072).
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn vit_b_16(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        Self::new(224, 16, 12, 12, 768, 3072, num_classes, in_channels, d)
    }

    /// A ViT with the given sizes, initialised as torchvision (truncated-normal-like patch
    /// projection, N(0, 0.02) position embedding, zero class token and head).
    ///
    /// # Errors
    /// `Error::Msg` for a zero size or an image not divisible by the patch.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        image: usize,
        patch: usize,
        layers: usize,
        heads: usize,
        width: usize,
        mlp: usize,
        num_classes: usize,
        in_channels: usize,
        d: &Device,
    ) -> Result<Self> {
        if num_classes == 0 || in_channels == 0 || patch == 0 || !image.is_multiple_of(patch) {
            return Err(Error::msg(format!(
                "VisionTransformer: need positive classes ({num_classes}) and channels \
                 ({in_channels}), and an image size {image} divisible by the patch {patch}"
            )));
        }
        let conv_proj = Conv2d::new(
            in_channels,
            width,
            patch,
            Conv2dConfig::default().stride(patch),
            d,
        )?;
        let fan_in = (in_channels * patch * patch) as f64;
        init::normal(&conv_proj.weight, 0.0, (1.0 / fan_in).sqrt(), None)?;
        if let Some(b) = &conv_proj.bias {
            init::zeros(b)?;
        }
        let tokens = (image / patch) * (image / patch) + 1;
        let pos = Tensor::zeros([1, tokens, width], DType::F32, d)?;
        init::normal(&pos, 0.0, 0.02, None)?;
        let head = Linear::new(width, num_classes, true, d)?;
        init::zeros(&head.weight)?;
        if let Some(b) = &head.bias {
            init::zeros(b)?;
        }
        Ok(VisionTransformer {
            class_token: param(Tensor::zeros([1, 1, width], DType::F32, d)?)?,
            conv_proj,
            encoder: Encoder {
                pos_embedding: param(pos)?,
                layers: EncoderLayers(
                    (0..layers)
                        .map(|_| EncoderBlock::new(width, heads, mlp, d))
                        .collect::<Result<_>>()?,
                ),
                ln: LayerNorm::new(&[width], d)?.eps(1e-6),
            },
            heads: Heads { head },
            patch,
            image,
            in_channels,
        })
    }
}

impl Module for VisionTransformer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(
            x,
            "VisionTransformer",
            self.in_channels,
            self.image,
            Some((self.image, self.image)),
        )?;
        let n = x.dims()[0];
        let p = self.conv_proj.forward(x)?; // [N, E, H/p, W/p]
        let e = p.dims()[1];
        let tokens = p
            .reshape([n, e, p.elem_count() / (n * e)])?
            .permute(&[0, 2, 1])?;
        let cls = self.class_token.broadcast_to([n, 1, e])?;
        let h = self.encoder.forward(&Tensor::cat(&[cls, tokens], 1)?)?;
        let first = h.narrow(1, 0, 1)?.reshape([n, e])?;
        let _ = self.patch;
        self.heads.forward(&first)
    }
    fn visit_own(&self, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        f("class_token", &self.class_token, TensorKind::Parameter);
    }
    fn visit_own_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        f("class_token", &mut self.class_token, TensorKind::Parameter)
    }
    mlfw_nn::children!(conv_proj, encoder, heads);
}
