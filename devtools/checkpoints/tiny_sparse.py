"""Tiny random retrieval-head checkpoints: a SPLADE model (BertForMaskedLM with
sentence-transformers' SparseEncoder files: MLMTransformer + SpladePooling) and a bge-m3
(XLMRobertaModel with FlagEmbedding's colbert_linear.pt and sparse_linear.pt beside it, an
XLM-R-style tokenizer: <s> text </s>, pad id 1). Small WordPiece / BPE vocabularies, short
maxima (64 tokens) so truncation is exercised. Seeded: every build is the same checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from devtools.checkpoints.tiny_cross_encoder import (MAX_LEN, WORDPIECE_TOKENS, _wordpiece,
                                                     save_tokenizer)
from devtools.checkpoints.tiny_multimodal import CORPUS

M3_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # XLM-R's first ids: cls 0, pad 1, eos 2


def make_tiny_splade(out: Path, pooling: str = "max", activation: str = "relu") -> Path:
    """SpladePooling `pooling` (max or sum) of `activation` (relu or log1p_relu)."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    from transformers import BertConfig, BertForMaskedLM

    if (out / "modules.json").is_file():
        return out
    body = out / "mlm"
    body.mkdir(parents=True, exist_ok=True)
    tok = _wordpiece()
    save_tokenizer(tok, body, **WORDPIECE_TOKENS)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=128,
        initializer_range=0.2)).eval()
    model.save_pretrained(str(body))
    encoder = SparseEncoder(modules=[MLMTransformer(str(body), max_seq_length=MAX_LEN),
                                     SpladePooling(pooling, activation)], device="cpu")
    encoder.save(str(out))
    shutil.rmtree(body)  # the saved encoder holds the body's weights and tokenizer
    return out


def _xlmr_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(M3_SPECIALS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def make_tiny_bge_m3(out: Path) -> Path:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    if (out / "sparse_linear.pt").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    tok = _xlmr_tokenizer()
    save_tokenizer(tok, out, bos_token="<s>", cls_token="<s>", eos_token="</s>",
                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
                   model_input_names=["input_ids", "attention_mask"])
    hidden = 32
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, max_position_embeddings=MAX_LEN + 2,
        initializer_range=0.2), add_pooling_layer=False).eval().save_pretrained(str(out))
    colbert, sparse = torch.nn.Linear(hidden, hidden), torch.nn.Linear(hidden, 1)
    with torch.no_grad():  # about half the tokens get a positive sparse weight
        sparse.bias.zero_()
    torch.save(colbert.state_dict(), out / "colbert_linear.pt")
    torch.save(sparse.state_dict(), out / "sparse_linear.pt")
    return out


COLBERT_CONFIG = {"query_prefix": "[unused0]", "document_prefix": "[unused1]",
                  "query_length": 16, "document_length": 48, "do_query_expansion": True,
                  "attend_to_expansion_tokens": False,
                  "skiplist_words": [".", ",", "?", "!", "-", "'"]}


def make_tiny_colbert(out: Path) -> Path:
    """A PyLate ColBERT: BertModel, a Dense 32 -> 16 without bias, the [Q]/[D] markers as
    added tokens, short query (16) and document (48) lengths."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense
    from transformers import BertConfig, BertModel

    if (out / "modules.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    tok = _wordpiece()
    tok.add_tokens(["[unused0]", "[unused1]"])  # as PyLate adds its markers
    save_tokenizer(tok, out, **WORDPIECE_TOKENS)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=128,
                         initializer_range=0.2), add_pooling_layer=False).save_pretrained(str(out))
    dense = Dense(32, 16, bias=False, activation_function=torch.nn.Identity())
    (out / "1_Dense").mkdir()
    dense.save(str(out / "1_Dense"))
    config = json.loads((out / "1_Dense" / "config.json").read_text())
    (out / "1_Dense" / "config.json").write_text(json.dumps({**config, "use_residual": False}))
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"}]))
    (out / "config_sentence_transformers.json").write_text(json.dumps(COLBERT_CONFIG))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 47}))
    return out
