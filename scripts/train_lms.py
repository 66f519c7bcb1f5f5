"""Train the two character LMs that ship with collab_lib: a small on-device draft and a larger cloud target.

Data: the shipped Shakespeare text (:func:`collab_lib.datasets.shakespeare.lm_text`); three whole plays are
held out for validation (:data:`~collab_lib.datasets.shakespeare.HELD_OUT_PLAYS`). Each step draws a batch
of random 129-character windows from the training stream (seeded) and minimises the mean next-character
cross-entropy over all 128 positions, with AdamW, a linear warm-up and a cosine decay of the learning rate.

Losses are in nats per character, averaged over every position of a 128-character window (so early
positions, which see little context, count too). The final validation loss is measured on the weights as
shipped (bf16, cast back to fp32) over non-overlapping windows covering the held-out plays.

Writes ``collab_lib/_data/char_lm_{device,cloud}.pt`` (bf16 state dicts) and
``collab_lib/_data/char_lm_curves.json`` (configs, curves, final losses, command, seconds).

Run: python scripts/train_lms.py   (``--steps`` to shorten). On 2 otherwise idle CPU cores the device model
takes about 2 minutes and the cloud model about 13 (0.5 s a step); the shipped run took 32 minutes in all
because other jobs shared the machine (``total_seconds`` in the JSON).
Same seed and thread count on the same machine give the same bytes; another CPU may differ in the last
bits of float reductions.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F

from collab_lib.datasets.shakespeare import HELD_OUT_PLAYS, encode, lm_text
from collab_lib.models import CHAR_LM_CONFIGS, DATA_DIR, CharLM, char_lm_checkpoint
from collab_lib.seed import generator, set_seed


def batch(ids: torch.Tensor, batch_size: int, block: int, g: torch.Generator) -> torch.Tensor:
    """(batch_size, block + 1) random windows of ``ids``."""
    starts = torch.randint(0, len(ids) - block - 1, (batch_size,), generator=g)
    return torch.stack([ids[s : s + block + 1] for s in starts.tolist()])


@torch.no_grad()
def loss_on(model: CharLM, windows: torch.Tensor, chunk: int = 64) -> float:
    """Mean next-token cross-entropy (nats) over all positions of ``windows`` (N, block + 1)."""
    total, count = 0.0, 0
    for w in windows.split(chunk):
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
        count += w[:, 1:].numel()
    return total / count


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))  # cosine down to 5% of lr


def train(size: str, train_ids, val_ids, *, steps: int, batch_size: int, lr: float, seed: int, eval_every: int):
    config = CHAR_LM_CONFIGS[size]
    block = config.context_len
    torch.manual_seed(seed)  # initial weights
    model = CharLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    g = generator(seed, offset=1)
    g_eval = generator(seed, offset=2)
    train_eval, val_eval = batch(train_ids, 128, block, g_eval), batch(val_ids, 128, block, g_eval)
    curve = {"step": [], "train_loss": [], "val_loss": []}
    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step % eval_every == 0 or step == steps:
            model.eval()
            curve["step"].append(step)
            curve["train_loss"].append(round(loss_on(model, train_eval), 4))
            curve["val_loss"].append(round(loss_on(model, val_eval), 4))
            model.train()
            print(f"{size} step {step:5d}  train {curve['train_loss'][-1]:.3f}  val {curve['val_loss'][-1]:.3f}"
                  f"  {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if step == steps:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup=steps // 20)
        w = batch(train_ids, batch_size, block, g)
        loss = F.cross_entropy(model(w[:, :-1]).flatten(0, 1), w[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - t0
    # Ship bf16 weights and measure the final validation loss on exactly those.
    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    torch.save(state, char_lm_checkpoint(size))
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval()
    n = (len(val_ids) - 1) // block
    windows = val_ids[: n * block + 1].unfold(0, block + 1, block)  # non-overlapping, all of the held-out text
    return {
        "config": asdict(config),
        "num_params": model.num_params,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "train_seconds": round(seconds),
        "curve": curve,
        "final_val_loss": round(loss_on(model, windows), 4),
        "final_val_windows": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=100)
    args = parser.parse_args()
    set_seed(args.seed, threads=args.threads, dtype=torch.float32)  # as the shipped weights were trained
    train_ids, val_ids = encode(lm_text("train")), encode(lm_text("validation"))
    record = {
        "command": " ".join(["python scripts/train_lms.py", *sys.argv[1:]]),
        "threads": args.threads,
        "held_out_plays": list(HELD_OUT_PLAYS),
        "train_chars": len(train_ids),
        "validation_chars": len(val_ids),
        "loss_unit": "nats per character, mean over the positions of 128-character windows",
        "models": {},
    }
    t0 = time.perf_counter()
    lrs = {"device": 3e-3, "cloud": 1.5e-3}
    for size in ("device", "cloud"):
        record["models"][size] = train(size, train_ids, val_ids, steps=args.steps, batch_size=args.batch_size,
                                       lr=lrs[size], seed=args.seed, eval_every=args.eval_every)
    record["total_seconds"] = round(time.perf_counter() - t0)
    (DATA_DIR / "char_lm_curves.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
