"""Wrong and cheating answers to each lab's fill-ins, one module per lab (``WRONG`` and ``CHEAT``: fill-in name ->
source), for tests/test_grading.py."""
