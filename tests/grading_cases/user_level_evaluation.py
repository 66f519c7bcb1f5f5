"""Wrong and cheating answers to the user-level evaluation lab's fill-ins, which its checks must reject."""

WRONG = {
    # Ranks in sorted order, without midranks: ties broken by position.
    "my_auc": '''def my_auc(labels, scores):
    import numpy as np
    y = np.asarray(labels) == 1
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = np.empty(len(y))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(y) + 1)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
''',
    # The unweighted mean over users.
    "my_gauc": '''def my_gauc(user_ids, labels, scores):
    import numpy as np
    values = []
    for user in np.unique(user_ids):
        mine = user_ids == user
        y, s = labels[mine] == 1, scores[mine]
        if y.any() and (~y).any():
            d = s[y][:, None] - s[~y][None, :]
            values.append(((d > 0) + 0.5 * (d == 0)).mean())
    return float(np.mean(values))
''',
}

CHEAT = {
    "my_auc": '''from collab_lib.metrics import auc as my_auc
''',
    "my_gauc": '''def my_gauc(user_ids, labels, scores):
    from collab_lib.metrics import auc, per_user
    pu = per_user(auc, user_ids, labels, scores)
    return float((pu.counts * pu.values).sum() / pu.counts.sum())
''',
}
