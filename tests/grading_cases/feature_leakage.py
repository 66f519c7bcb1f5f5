"""Submissions the feature_leakage checks must reject: a plausible mistake and one that hands back the library."""

WRONG = {
    # Divides every row, also those of ReLU units that are off (0 / 0): NaN on the ReLU networks.
    "my_invert": '''def my_invert(grads, input_shape):
    x = (grads[0] / grads[1][:, None]).mean(dim=0)
    return x.reshape(1, *input_shape), int(grads[-1].argmin())
''',
    # Clips each tensor by its own norm, not the update's.
    "my_clip_and_noise": '''def my_clip_and_noise(grads, clip_norm, noise_multiplier, generator):
    out = []
    for g in grads:
        n = g.norm().item()
        scale = min(1.0, clip_norm / n) if n > 0 else 1.0
        noise = torch.randn(g.shape, generator=generator, dtype=g.dtype)
        out.append(g * scale + noise_multiplier * clip_norm * noise)
    return out
''',
}

CHEAT = {
    "my_invert": '''from collab_lib.feature_based.inversion import analytic_input, infer_label


def my_invert(grads, input_shape):
    x = analytic_input(grads[0], grads[1]).reshape(1, *input_shape)
    return x, infer_label(grads[-1])
''',
    "my_clip_and_noise": '''from collab_lib.feature_based.inversion import clip_and_noise as my_clip_and_noise
''',
}
