//! Character-level text for language models: a vocabulary, a train/validation split (first
//! 90% / last 10%), and random-window batches of inputs with their next-character targets.
//!
//! `tinyshakespeare` (1,115,394 characters of Shakespeare, public domain; as distributed with
//! char-rnn, MIT) ships gzipped inside the binary; any UTF-8 file works by path
//! (`text:FILE` in [`text_by_name`]).

use std::path::Path;

use mlfw_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::idx::gunzip_if_gzip;
use crate::rng::Rng;

const TINYSHAKESPEARE: &[u8] = include_bytes!("../assets/tinyshakespeare/input.txt.gz");

/// The characters of a text, sorted by code point (as `sorted(set(text))` in Python); a
/// character's id is its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// The distinct characters of `text`, sorted.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        CharVocab { chars }
    }

    /// A vocabulary from its characters in id order (e.g. read back from a run folder);
    /// errors on duplicates or an empty list.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty list or a repeated character.
    pub fn from_chars(chars: Vec<char>) -> Result<Self> {
        let mut s = chars.clone();
        s.sort_unstable();
        s.dedup();
        if chars.is_empty() || s.len() != chars.len() {
            return Err(Error::invalid(
                "vocabulary: expected a non-empty list of distinct characters",
            ));
        }
        Ok(CharVocab { chars })
    }

    /// The characters in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary is empty (never, for one built from a non-empty text).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The id of `c`, if it is in the vocabulary.
    pub fn id(&self, c: char) -> Option<usize> {
        // Sorted vocabularies (every one built from a text) take the binary search.
        self.chars
            .binary_search(&c)
            .ok()
            .or_else(|| self.chars.iter().position(|&x| x == c))
    }

    /// The ids of `text`; errors list the characters outside the vocabulary (`what` names the
    /// argument, e.g. "prompt").
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `what` and listing the characters outside the vocabulary.
    pub fn encode(&self, text: &str, what: &str) -> Result<Vec<i64>> {
        let mut bad: Vec<char> = Vec::new();
        let ids: Vec<i64> = text
            .chars()
            .map(|c| match self.id(c) {
                Some(i) => i as i64,
                None => {
                    if !bad.contains(&c) {
                        bad.push(c);
                    }
                    -1
                }
            })
            .collect();
        if !bad.is_empty() {
            let list: Vec<String> = bad.iter().map(|c| format!("{c:?}")).collect();
            return Err(Error::invalid(format!(
                "{what} has characters outside the vocabulary of {} characters: {}",
                self.len(),
                list.join(", ")
            )));
        }
        Ok(ids)
    }

    /// The text of `ids`; errors on an id outside the vocabulary.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an id outside `0..len`.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        ids.iter()
            .map(|&i| {
                self.chars.get(i as usize).copied().ok_or_else(|| {
                    Error::invalid(format!("id {i} outside the vocabulary of {}", self.len()))
                })
            })
            .collect()
    }
}

/// A character-level corpus: the vocabulary and the ids of the first 90% (train) and last
/// 10% (validation) of the text.
#[derive(Debug, Clone)]
pub struct TextDataset {
    /// Where the text came from (for messages).
    pub name: String,
    /// The vocabulary of the whole text.
    pub vocab: CharVocab,
    /// Ids of the training part.
    pub train: Vec<i64>,
    /// Ids of the validation part.
    pub val: Vec<i64>,
}

impl TextDataset {
    /// Splits `text` (named `name` in messages). Errors when the text is empty or too short
    /// for a validation split.
    ///
    /// # Errors
    /// [`Error::Format`] naming `name` when the text is empty or too short for a 90%/10% split.
    pub fn from_text(text: &str, name: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::format(name, "the text is empty"));
        }
        let vocab = CharVocab::from_text(text);
        let ids = vocab.encode(text, name)?;
        let n = (ids.len() as f64 * 0.9) as usize;
        if n < 2 || ids.len() - n < 2 {
            return Err(Error::format(
                name,
                format!("{} characters are too few for a 90%/10% split", ids.len()),
            ));
        }
        Ok(TextDataset {
            name: name.to_string(),
            vocab,
            train: ids[..n].to_vec(),
            val: ids[n..].to_vec(),
        })
    }

    /// Reads a UTF-8 text file (gzipped or plain). Errors name the file: unreadable, not
    /// UTF-8 (with the byte offset), or empty.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file when unreadable; [`Error::Format`] naming it for a corrupt
    /// gzip stream, text that is not UTF-8 (with the byte offset), or an empty or too short text.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        let name = path.display().to_string();
        let bytes = gunzip_if_gzip(bytes, &name)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::format(
                path,
                format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        Self::from_text(&text, &name)
    }

    /// The embedded tinyshakespeare corpus (65 characters; 1,003,854 train / 111,540
    /// validation characters).
    ///
    /// # Errors
    /// None in practice (only if the embedded corpus were corrupt).
    pub fn tinyshakespeare() -> Result<Self> {
        let name = "<embedded tinyshakespeare>/input.txt.gz";
        let bytes = gunzip_if_gzip(TINYSHAKESPEARE.to_vec(), name)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::format(name, "not UTF-8 text"))?;
        Self::from_text(&text, "tinyshakespeare")
    }

    /// The ids of the training (`train = true`) or validation split.
    pub fn split(&self, train: bool) -> &[i64] {
        if train {
            &self.train
        } else {
            &self.val
        }
    }

    /// `batch` random windows of `seq_len` characters from a split: inputs `[batch, seq_len]`
    /// and next-character targets `[batch, seq_len]` (both i64). A window starts uniformly in
    /// `[0, len − seq_len − 1)`, as `torch.randint` in PyTorch's recipe. Errors when the
    /// split is shorter than `seq_len + 2`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the split holds fewer than `seq_len + 2` characters.
    pub fn batch(
        &self,
        train: bool,
        batch: usize,
        seq_len: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let src = self.split(train);
        if src.len() < seq_len + 2 || batch == 0 || seq_len == 0 {
            return Err(Error::invalid(format!(
                "{}: cannot draw {batch} windows of {seq_len} characters from a split of {}",
                self.name,
                src.len()
            )));
        }
        let hi = (src.len() - seq_len - 1) as u64;
        let (mut x, mut y) = (
            Vec::with_capacity(batch * seq_len),
            Vec::with_capacity(batch * seq_len),
        );
        for _ in 0..batch {
            let i = rng.below(hi) as usize;
            x.extend_from_slice(&src[i..i + seq_len]);
            y.extend_from_slice(&src[i + 1..i + seq_len + 1]);
        }
        Ok((
            Tensor::from_vec(x, [batch, seq_len], device)?,
            Tensor::from_vec(y, [batch, seq_len], device)?,
        ))
    }
}

/// Text corpora by name: `tinyshakespeare` (built in) or `text:FILE` (any UTF-8 file).
///
/// # Errors
/// [`Error::Invalid`] for a name other than `tinyshakespeare` or `text:FILE`; as
/// [`TextDataset::from_file`] for a file.
pub fn text_by_name(name: &str) -> Result<TextDataset> {
    if let Some(path) = name.strip_prefix("text:") {
        return TextDataset::from_file(Path::new(path));
    }
    match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "tinyshakespeare" | "tiny-shakespeare" | "shakespeare" => TextDataset::tinyshakespeare(),
        _ => Err(Error::invalid(format!(
            "unknown text dataset `{name}`; valid: tinyshakespeare, text:FILE"
        ))),
    }
}

/// Whether `name` names a text corpus ([`text_by_name`] accepts it).
pub fn is_text_dataset(name: &str) -> bool {
    name.starts_with("text:")
        || matches!(
            name.trim().to_ascii_lowercase().replace('_', "-").as_str(),
            "tinyshakespeare" | "tiny-shakespeare" | "shakespeare"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tinyshakespeare_vocab_split_and_batches() {
        let d = TextDataset::tinyshakespeare().unwrap();
        assert_eq!(d.vocab.len(), 65);
        assert_eq!(d.train.len() + d.val.len(), 1_115_394);
        assert_eq!(d.train.len(), 1_003_854);
        assert_eq!(d.vocab.decode(&d.train[..9]).unwrap(), "First Cit");
        let (x, y) = d
            .batch(true, 4, 16, &mut Rng::new(0), &Device::Cpu)
            .unwrap();
        assert_eq!(x.dims(), &[4, 16]);
        let (xv, yv) = (x.to_vec::<i64>().unwrap(), y.to_vec::<i64>().unwrap());
        assert_eq!(xv[1..16], yv[..15]);
        let e = d
            .vocab
            .encode("ROMEO: ∑", "prompt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("prompt") && e.contains("'∑'"), "{e}");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, b"").unwrap();
        let e = TextDataset::from_file(&empty).unwrap_err().to_string();
        assert!(e.contains("empty.txt") && e.contains("empty"), "{e}");
        let bin = dir.path().join("bin.txt");
        std::fs::write(&bin, b"abc\xff\xfe").unwrap();
        let e = TextDataset::from_file(&bin).unwrap_err().to_string();
        assert!(
            e.contains("bin.txt") && e.contains("UTF-8") && e.contains("offset 3"),
            "{e}"
        );
        let ok = dir.path().join("ok.txt");
        std::fs::write(&ok, "hello world, hello text").unwrap();
        let d = text_by_name(&format!("text:{}", ok.display())).unwrap();
        assert_eq!(d.vocab.len(), 11);
        assert!(text_by_name("nope").is_err());
    }
}
