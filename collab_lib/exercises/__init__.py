"""The labs' check functions, one module per chapter of the book.

Each lab ends with a cell that calls a ``check_*`` function from here on the learner's own function: it runs
it on seeded cases built from the library and compares the result with the library's implementation,
answers "not attempted yet" while the function returns ``None``, and raises ``AssertionError`` naming the
failing case (and, for common mistakes, a hint). :mod:`collab_lib.exercises.answers` reads a learner's
answer in whatever form it comes (number, list, array, tensor). Every check is tested against deliberately
wrong answers in ``tests/test_exercises_<module>.py``. A new lab's check is one function in its chapter's
module, plus those tests.

========================  =======================================
module                    chapter
========================  =======================================
:mod:`.introduction`      1, the trade-off
:mod:`.hardware`          2, hardware
:mod:`.system`            3, system
:mod:`.data_based`        4, data-based collaboration
:mod:`.feature_based`     5, feature-based collaboration
:mod:`.parameter_based`   6, parameter-based collaboration
:mod:`.datasets_metrics`  7, data sets and metrics
:mod:`.applications`      8, applications
========================  =======================================
"""
