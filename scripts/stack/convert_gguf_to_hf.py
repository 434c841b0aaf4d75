"""Convert a GGUF model into a Hugging Face model folder that vLLM can serve.

    python scripts/stack/convert_gguf_to_hf.py MODEL.gguf OUT_DIR [--dtype bfloat16]

Runs in the vLLM virtualenv (it needs ``torch``, ``transformers``, ``gguf`` and
``accelerate``). transformers dequantizes the GGUF when it loads it (``gguf_file=``), but
refuses to ``save_pretrained`` a model loaded that way, so the weights are copied into a
freshly built model of the same config, which is saved as safetensors. The tokenizer (and
the chat template stored in the GGUF metadata) is saved beside it.

The output appears atomically: everything is written to ``OUT_DIR.tmp-<pid>``, checked by
loading it back and generating a few tokens, then renamed to OUT_DIR with a ``complete``
marker written last. Nothing here touches the network (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log(msg: str) -> None:
    print(f"[convert] {msg}", flush=True)


def gguf_chat_template(path: Path) -> str | None:
    """The chat template stored in the GGUF metadata, if any."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def convert(gguf_path: Path, out_dir: Path, dtype_name: str) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, dtype_name)
    src_dir, name = str(gguf_path.parent), gguf_path.name
    t0 = time.monotonic()

    log(f"reading {gguf_path} (dequantizing)")
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(src_dir, gguf_file=name)

    # A fresh model of the same architecture, not tied to the GGUF loader: this one saves.
    config.dtype = dtype
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    state = loaded.state_dict()
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    # Tied embeddings: lm_head.weight may be absent from the GGUF and shared in the model.
    missing = [k for k in missing if not (k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False))]
    if missing or unexpected:
        raise SystemExit(f"weights do not match the fresh model: missing={missing} unexpected={unexpected}")
    fresh = fresh.to(dtype)
    del loaded, state

    template = gguf_chat_template(gguf_path)
    if template and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = template

    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"writing {tmp} ({dtype_name} safetensors)")
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if template and not (tmp / "chat_template.jinja").exists():
        (tmp / "chat_template.jinja").write_text(template)

    # Check: the saved folder loads without the GGUF and continues a prompt.
    log("checking the folder loads and generates")
    check_tok = AutoTokenizer.from_pretrained(tmp)
    check = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    if check_tok.chat_template:
        prompt = check_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        prompt = messages[0]["content"]
    ids = check_tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = check.generate(**ids, max_new_tokens=12, do_sample=False)
    text = check_tok.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
    log(f"sample continuation: {text!r}")
    if not text.strip():
        raise SystemExit("the converted model generated no text")

    (tmp / "conversion.json").write_text(json.dumps({
        "source": str(gguf_path), "dtype": dtype_name, "architecture": config.architectures,
        "seconds": round(time.monotonic() - t0, 1), "sample": text,
    }, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    (out_dir / "complete").write_text(str(gguf_path) + "\n")  # marker, written last
    log(f"done in {time.monotonic() - t0:.1f}s: {out_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args(argv)
    if not args.gguf.is_file():
        print(f"error: {args.gguf} does not exist", file=sys.stderr)
        return 1
    convert(args.gguf.resolve(), args.out_dir.resolve(), args.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
