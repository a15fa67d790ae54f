"""Request handlers of the IonQ v0.4 API, one module per resource.

:mod:`.jobs` (create, list, get, cancel, delete, estimate, cost), :mod:`.results`
(probabilities, histogram, shots, artifacts, debiasing variants), :mod:`.backends`
(backends, characterizations, cirq-ionq's calibrations), :mod:`.sessions` and
:mod:`.account` (``/whoami``). :mod:`..app` wires them to paths.
"""
