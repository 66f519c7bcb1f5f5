"""Wrong and cheating answers to the fill-in of labs/08_applications/on_device_reranking.ipynb.

WRONG holds a plausible mistake the check rejects, CHEAT an answer that hands back the library's function
(or the check's own reference) or wraps it; both must score 0.
"""

WRONG = {
    "my_session_features": '''def my_session_features(timestamps, categories, clicks, delay_s):
    # counts the outcome of the impression being shown as well (j <= i)
    t, cat, click = (np.asarray(a) for a in (timestamps, categories, clicks))
    out = np.zeros((len(t), 3))
    for i in range(len(t)):
        known = t[: i + 1] <= t[i] - delay_s
        same, hit = cat[: i + 1] == cat[i], click[: i + 1] == 1
        out[i] = [(known & same & hit).sum(), (known & same & ~hit).sum(), (known & ~same & hit).sum()]
    return out
''',
}

CHEAT = {
    "my_session_features": '''from types import SimpleNamespace

import torch

from collab_lib.applications.reranking import session_counts


def my_session_features(timestamps, categories, clicks, delay_s):
    cat = np.asarray(categories)
    data = SimpleNamespace(config=SimpleNamespace(num_categories=int(cat.max()) + 1),
                           session_id=torch.zeros(len(cat), dtype=torch.long),
                           timestamp_s=torch.as_tensor(np.asarray(timestamps, dtype=float)),
                           category_id=torch.as_tensor(cat), click=torch.as_tensor(np.asarray(clicks)))
    c, n = session_counts(data, delay_s)
    rows = np.arange(len(cat))
    same = c[rows, cat]
    return np.column_stack([same, n[rows, cat] - same, c.sum(axis=1) - same])
''',
}
