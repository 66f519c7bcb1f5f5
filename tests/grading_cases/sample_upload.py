"""Wrong and cheating answers to the fill-in of labs/04_data_based/sample_upload.ipynb, for the grading test:
each must fail its check (``WRONG``: a plausible mistake; ``CHEAT``: the library's function handed back)."""

WRONG = {
    "my_k_center": '''def my_k_center(features, budget, covered):
    # ranks once by the distance to the cloud's samples: forgets that each pick covers its neighbours
    dist = torch.cdist(features, covered).min(dim=1).values
    return torch.argsort(dist, descending=True)[:budget]
''',
}

CHEAT = {
    "my_k_center": '''from collab_lib.data_based.upload import select_diverse as my_k_center
''',
}
