"""Generate tiny random-weight models in real formats for the lab and the tests, offline, deterministically.

Two models come out of one fixed seed, small enough to serve on a laptop CPU in seconds:

    <out>/tiny-llama.gguf     llama.cpp (llama-cpp-python server, llama-server): llama architecture, F32,
                              SentencePiece-style vocab ("llama" tokenizer model) with byte fallback
    <out>/tiny-llama-hf/      vLLM (CPU build): Hugging Face LlamaForCausalLM directory, float32 safetensors,
                              byte-level BPE tokenizer.json

Both are 2 layers, embedding 64, 2 heads of size 32 (vLLM's CPU attention supports only some head sizes,
and a wrong one fails at the first request, not at start), feed-forward 128, context 512, and carry a
ChatML-like chat template. The weights are noise, so the text is gibberish, but greedy decoding
(temperature 0) always gives the same tokens. The output rows of the special, byte-fallback and
invalid-UTF-8 tokens are zero, so greedy decoding never stops early on EOS and always yields printable
text: a request for N tokens gets exactly N (finish_reason "length").

    python lab/models/make_tiny_models.py [--out DIR]

DIR defaults to ${XDG_CACHE_HOME:-~/.cache}/llm-stack-lab/models. A stamp file records the generator
version: when it matches and the outputs exist, nothing is written. Otherwise the models are written to a
temporary directory inside DIR and renamed into place; other files in DIR are left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

# Bump whenever the outputs change, so that existing copies are regenerated.
GENERATOR_VERSION = "1"
STAMP = ".tiny-models.stamp"
GGUF_NAME = "tiny-llama.gguf"
HF_NAME = "tiny-llama-hf"
SEED = 20240501

N_LAYER = 2
N_EMBD = 64
N_HEAD = 2
HEAD_DIM = N_EMBD // N_HEAD
N_FF = 128
N_CTX = 512
VOCAB_SIZE = 512
RMS_EPS = 1e-5
ROPE_THETA = 10000.0

# Same ids in both models: SentencePiece order for the first three, then padding (HF only).
UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
SPM_SPACE = "\u2581"

# ChatML-like. The GGUF template leaves BOS to the runtime (tokenizer.ggml.add_bos_token); vLLM tokenizes
# chat prompts without special tokens, so the Hugging Face template writes BOS itself.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
HF_CHAT_TEMPLATE = "{{ bos_token }}" + CHAT_TEMPLATE

CORPUS = """\
The lab runs small language models on ordinary machines so that every role can be tested end to end.
A model server loads the weights, listens on a local port and answers requests that follow the OpenAI
API: it lists the models, completes a prompt, and streams the answer token by token when asked to.

Llamas are calm animals that live in the high mountains of South America. They carry loads across
steep paths, eat grass and leaves, and walk in long lines behind a guide. A young llama is called a
cria, and a group of llamas is a herd. Their wool is soft and warm, and people weave it into blankets.

When the service starts, the operator checks the health endpoint, reads the logs and sends a short
question. If the reply comes back quickly, the deployment is healthy. If it does not, the operator
restarts the unit, looks at the memory, the disk and the network, and tries again with a smaller model.

Every playbook should be idempotent: running it twice must change nothing the second time. Variables
describe the hosts, templates render the configuration files, and handlers restart the services only
when something changed. Tests prove that the system works before anyone depends on it in production.

Numbers like 1, 2, 8, 64, 128 and 512 appear in configuration files. Time moves on; the river flows
from the mountains to the sea, the sun rises in the east, and the night brings quiet stars over the
valley where the old farmer keeps his sheep, his goats, his horses and his friendly llamas.
"""


# --------------------------------------------------------------------------- weights


def llama_weights(rng: np.random.Generator, n_vocab: int, silent: list[int]) -> dict[str, np.ndarray]:
    """Random llama weights in Hugging Face names and (out_features, in_features) layout."""

    def linear(n_out: int, n_in: int) -> np.ndarray:
        return rng.normal(0.0, n_in**-0.5, (n_out, n_in)).astype(np.float32)

    ones = np.ones(N_EMBD, dtype=np.float32)
    w = {"model.embed_tokens.weight": rng.normal(0.0, 1.0, (n_vocab, N_EMBD)).astype(np.float32)}
    for i in range(N_LAYER):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = ones.copy()
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            w[p + f"self_attn.{name}.weight"] = linear(N_EMBD, N_EMBD)
        w[p + "post_attention_layernorm.weight"] = ones.copy()
        w[p + "mlp.gate_proj.weight"] = linear(N_FF, N_EMBD)
        w[p + "mlp.up_proj.weight"] = linear(N_FF, N_EMBD)
        w[p + "mlp.down_proj.weight"] = linear(N_EMBD, N_FF)
    w["model.norm.weight"] = ones.copy()
    # Wide logits (std ~4) keep greedy decoding clear of near-ties; silent tokens get logit 0, far below
    # the maximum.
    head = rng.normal(0.0, 0.5, (n_vocab, N_EMBD)).astype(np.float32)
    head[silent] = 0.0
    w["lm_head.weight"] = head
    return w


GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_tensor_name(hf_name: str) -> str:
    """llama.cpp's tensor name for a Hugging Face llama tensor name."""
    if hf_name in GGUF_NAMES:
        return GGUF_NAMES[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{GGUF_NAMES[rest]}"


# --------------------------------------------------------------------------- GGUF (SentencePiece vocab)


def corpus_words() -> Counter[str]:
    """The corpus as SentencePiece sees it: whitespace-separated words, each with the ▁ space marker."""
    return Counter(SPM_SPACE + word for word in CORPUS.split())


def train_spm_bpe(words: Counter[str], n_pieces: int) -> list[str]:
    """Characters, then BPE merges in order, until n_pieces distinct pieces (SentencePiece BPE, in small).

    llama.cpp's SPM tokenizer rebuilds words by merging adjacent pieces, best score first, so every piece
    must be reachable through pieces already in the vocab; merges learnt in order guarantee that.
    """
    chars: Counter[str] = Counter()
    for word, n in words.items():
        for c in word:
            chars[c] += n
    pieces = sorted(chars, key=lambda c: (-chars[c], c))
    seen = set(pieces)
    merged: list[str] = []
    split = {word: list(word) for word in words}
    while len(pieces) + len(merged) < n_pieces:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, n in words.items():
            for pair in zip(split[word], split[word][1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        for word in words:
            split[word] = merge_pair(split[word], a, b)
        if a + b not in seen:
            seen.add(a + b)
            merged.append(a + b)
    return merged + pieces


def merge_pair(symbols: list[str], a: str, b: str) -> list[str]:
    """Replace each adjacent (a, b) in symbols, left to right, by a + b."""
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of a llama-style SentencePiece vocab with byte fallback."""
    tokens = [UNK, BOS, EOS]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = train_spm_bpe(corpus_words(), VOCAB_SIZE - len(tokens))
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    # Special and byte tokens score 0; pieces score by merge order (earlier merges win), characters last.
    scores = [0.0] * (len(tokens) - len(pieces)) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write_gguf(path: Path, rng: np.random.Generator) -> None:
    tokens, scores, types = spm_vocab()
    silent = [i for i, t in enumerate(types) if t != gguf.TokenType.NORMAL]
    weights = llama_weights(rng, len(tokens), silent)

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("tiny-llama")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(len(tokens))
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(UNK_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    for name, tensor in weights.items():
        writer.add_tensor(gguf_tensor_name(name), tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --------------------------------------------------------------------------- Hugging Face (byte-level BPE)


def train_hf_tokenizer() -> Tokenizer:
    """Byte-level BPE (GPT-2 style) trained on the corpus; <s> prepended to every encoded text."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[UNK, BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(keepends=True), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, BOS_ID)]
    )
    return tok


def unprintable_ids(tok: Tokenizer) -> list[int]:
    """Special tokens and tokens that decode to nothing printable on their own (partial UTF-8, controls)."""
    silent = []
    for i in range(tok.get_vocab_size()):
        text = tok.decode([i], skip_special_tokens=False)
        if i <= PAD_ID or "\ufffd" in text or not text.replace("\n", "").replace("\t", " ").isprintable():
            silent.append(i)
    return silent


def hf_config(n_vocab: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": n_vocab,
        "hidden_size": N_EMBD,
        "intermediate_size": N_FF,
        "num_hidden_layers": N_LAYER,
        "num_attention_heads": N_HEAD,
        "num_key_value_heads": N_HEAD,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": N_CTX,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_THETA,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "use_cache": True,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "torch_dtype": "float32",
    }


def tokenizer_config() -> dict:
    added = {
        str(i): {
            "content": text,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, text in enumerate((UNK, BOS, EOS, PAD))
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": UNK,
        "pad_token": PAD,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": N_CTX,
        "chat_template": HF_CHAT_TEMPLATE,
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_hf(path: Path, rng: np.random.Generator) -> None:
    path.mkdir()
    tok = train_hf_tokenizer()
    n_vocab = tok.get_vocab_size()
    weights = llama_weights(rng, n_vocab, unprintable_ids(tok))
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    tok.save(str(path / "tokenizer.json"))
    write_json(path / "config.json", hf_config(n_vocab))
    write_json(
        path / "generation_config.json",
        {"bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "pad_token_id": PAD_ID},
    )
    write_json(path / "tokenizer_config.json", tokenizer_config())
    write_json(
        path / "special_tokens_map.json",
        {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": PAD},
    )


# --------------------------------------------------------------------------- driver


def default_out() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "llm-stack-lab" / "models"


def present(out: Path) -> bool:
    stamp = out / STAMP
    return (
        stamp.is_file()
        and stamp.read_text().strip() == GENERATOR_VERSION
        and (out / GGUF_NAME).is_file()
        and (out / HF_NAME / "model.safetensors").is_file()
    )


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def replace(src: Path, dst: Path, trash: Path) -> None:
    """Move src to dst, first moving any existing dst into trash (rename is atomic, rmtree is not)."""
    if dst.exists() or dst.is_symlink():
        dst.rename(trash / dst.name)
    src.rename(dst)


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / STAMP).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".tiny-models-") as tmp:
        work, trash = Path(tmp) / "new", Path(tmp) / "old"
        work.mkdir()
        trash.mkdir()
        write_gguf(work / GGUF_NAME, np.random.default_rng([SEED, 1]))
        write_hf(work / HF_NAME, np.random.default_rng([SEED, 2]))
        for name in (GGUF_NAME, HF_NAME):
            replace(work / name, out / name, trash)
            print(f"wrote {out / name} ({human(size(out / name))})")
    (out / STAMP).write_text(GENERATOR_VERSION + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out(), help="output directory (default: %(default)s)")
    out = parser.parse_args().out.expanduser()
    if present(out):
        print(f"tiny models v{GENERATOR_VERSION} present in {out}")
        return
    generate(out)
    for f in sorted((out / HF_NAME).iterdir()):
        print(f"  {HF_NAME}/{f.name} ({human(size(f))})")


if __name__ == "__main__":
    main()
