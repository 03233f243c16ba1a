# Sourced by the shell tests: tiny_config OUT KEYS writes a tiny byte-level
# model config (2 layers, d=32, T=32, trained on tests/data/README.md) with
# the training keys KEYS (JSON members, comma-separated) to OUT.
tiny_config() {
  cat > "$1" <<YML
{
  "num_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
  "qkv_slot_num": 16, "proj_slot_num": 16, "ffn_slot_num": 32,
  "seq_length": 32, "vocab_size": 256,
  "data_path": "tests/data/README.md", "data_format": "bytes", "val_fraction": 0.1,
  $2
}
YML
}
