"""Data sets with user-level and device-level structure, generated or shipped (labs run offline).

* :mod:`~collab_lib.datasets.partition` — split sample indices across clients: IID, shards, Dirichlet.
* :mod:`~collab_lib.datasets.synthetic` — FedProx's Synthetic(alpha, beta), one classifier per user.
* :mod:`~collab_lib.datasets.shakespeare` — next-character prediction, one user per speaking role.
* :mod:`~collab_lib.datasets.recsys` — mobile e-commerce sessions with a lagging cloud view.
* :mod:`~collab_lib.datasets.digits` — scikit-learn's 8x8 digits as a torch dataset.

Every generator takes a ``seed``; none touches global random state.
"""
