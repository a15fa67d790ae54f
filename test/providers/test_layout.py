"""The ``qstore_layout`` job metadata: shared list objects encode like copies."""

from __future__ import annotations

import base64
import copy
import json
import unittest
import zlib

from qstore_qiskit.providers.prepared import PreparedCircuit, decode_layout, encode_layout


def _prepared(meas_map: list, creg_sizes: list) -> PreparedCircuit:
    return PreparedCircuit(name="c", body={}, gateset="native", meas_map=meas_map, payload_qubits=3,
                           creg_sizes=creg_sizes, clbit_labels=[])


class TestEncodeLayout(unittest.TestCase):
    def test_shared_lists_encode_like_copies(self) -> None:
        a, sizes = [0, 1, None], [["meas", 3]]
        b = [2, 1, 0]
        shared = [_prepared(a, sizes), _prepared(a, sizes), _prepared(b, sizes), _prepared(a, sizes)]
        copies = [_prepared(copy.deepcopy(p.meas_map), copy.deepcopy(p.creg_sizes)) for p in shared]
        self.assertEqual(encode_layout(shared), encode_layout(copies))
        text = encode_layout(shared)
        for position, p in enumerate(shared):
            self.assertEqual(decode_layout(text, position), (p.meas_map, p.creg_sizes))

    def test_equal_content_in_other_objects_is_one_layout(self) -> None:
        one = encode_layout([_prepared([0, 1], [["c", 2]]), _prepared([0, 1], [["c", 2]])])
        self.assertEqual(one, encode_layout([_prepared([0, 1], [["c", 2]])]))

    def test_text_is_the_json_of_the_document(self) -> None:
        """The assembled text is json.dumps of ``{"l": layouts, "i": positions}``."""
        a, b = _prepared([0, None, 2], [["meas", 3], ["c", 1]]), _prepared([1], [["m\u00e9as \"x\"", 1]])
        for prepared, doc in (
            ([a], {"l": [[a.meas_map, a.creg_sizes]]}),
            ([a, b, a], {"l": [[a.meas_map, a.creg_sizes], [b.meas_map, b.creg_sizes]], "i": [0, 1, 0]}),
        ):
            raw = zlib.decompress(base64.b64decode(encode_layout(prepared))).decode()
            self.assertEqual(raw, json.dumps(doc, separators=(",", ":")))


if __name__ == "__main__":
    unittest.main()
