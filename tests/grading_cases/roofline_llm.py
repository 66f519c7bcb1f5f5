"""Submissions the roofline_llm lab's checks must not pass: a plausible mistake and a cheat each."""

WRONG = {
    "decode_bytes": '''def decode_bytes(model, fmt, context_len):
    # forgets the group-wise scales
    attention = model.d_model * model.head_dim * 2 * (model.num_heads + model.num_kv_heads)
    mlp = 3 * model.d_model * model.d_ff
    blocks = model.num_layers * (attention + mlp) * fmt.linear_bits / 8
    output = model.vocab_size * model.d_model * fmt.output_bits / 8
    kv = 2 * model.num_layers * context_len * model.num_kv_heads * model.head_dim * 2
    return blocks + output + kv
''',
    "decode_bound": '''def decode_bound(model, fmt, device, precision, context_len):
    # the memory roof only: wrong on a device slow at arithmetic
    attention = model.d_model * model.head_dim * 2 * (model.num_heads + model.num_kv_heads)
    mlp = 3 * model.d_model * model.d_ff
    bits = fmt.linear_bits + (fmt.scale_bits / fmt.group_size if fmt.group_size else 0)
    nbytes = (model.num_layers * (attention + mlp) * bits / 8 + model.vocab_size * model.d_model * fmt.output_bits / 8
              + 2 * model.num_layers * context_len * model.num_kv_heads * model.head_dim * 2)
    return device.mem_bw_bytes_per_s / nbytes
''',
}

CHEAT = {
    "decode_bytes": '''from collab_lib.hardware.llm import decode_bytes_per_token


def decode_bytes(model, fmt, context_len):
    return decode_bytes_per_token(model, fmt) + model.kv_cache_bytes(context_len)
''',
    "decode_bound": '''from collab_lib.hardware.llm import predict_decode as decode_bound
''',
}
