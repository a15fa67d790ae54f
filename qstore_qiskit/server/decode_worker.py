"""Entry point of a body-decoding worker process (:class:`.decode.BodyDecoder`).

Run as ``python -m qstore_qiskit.server.decode_worker``; it reads frames on stdin and
answers on stdout until stdin closes. Kept apart from :mod:`.decode` so that the
classes it returns are pickled under their module's name, not ``__main__``.
"""

import sys

from .decode import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
