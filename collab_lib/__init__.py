"""collab_lib: the library behind the executable textbook on device–cloud collaborative learning.

One idea per module; labs import from the submodules (``collab_lib.hardware``, ``collab_lib.system``,
``collab_lib.viz``, ``collab_lib.seed``). Importing the package is cheap: no network, no heavy work.
"""

__version__ = "0.1.0"
