"""Wrong and cheating answers to the fill-ins of labs/04_data_based/cloud_augmentation.ipynb, for the grading
test: each must fail its check (``WRONG``: a plausible mistake; ``CHEAT``: the library's function handed back)."""

WRONG = {
    "my_kmeans": '''def my_kmeans(x, init_centroids, iters):
    centroids = init_centroids.clone()
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(dim=1)
        # an empty cluster's mean is NaN: it should keep its centroid
        centroids = torch.stack([x[assign == j].mean(dim=0) for j in range(len(centroids))])
    return centroids, assign
''',
    "my_retrieve_nearest": '''def my_retrieve_nearest(pool_features, centroids, m):
    # distance to the mean of the centroids, not to the nearest one
    d = (pool_features - centroids.mean(dim=0)).norm(dim=1)
    return torch.argsort(d)[:m]
''',
}

CHEAT = {
    "my_kmeans": '''from collab_lib.data_based.augment import kmeans


def my_kmeans(x, init_centroids, iters):
    return kmeans(x, len(init_centroids), seed=0, iters=iters)
''',
    "my_retrieve_nearest": '''from collab_lib.data_based.augment import Descriptor, retrieve_nearest


def my_retrieve_nearest(pool_features, centroids, m):
    return retrieve_nearest(pool_features, Descriptor(centroids), m)
''',
}
