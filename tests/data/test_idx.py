import numpy as np
import pytest

from cnnlab.data.idx import read_idx
from cnnlab.errors import DataError


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_reads_shape_and_values(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(_idx(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), array)


def test_truncated_file_is_a_clear_error(tmp_path):
    data = _idx(np.zeros((10, 28, 28), np.uint8))
    (tmp_path / "x").write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"expected 7856 bytes .* received 7756 bytes .*truncated"):
        read_idx(tmp_path / "x")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x89PNG....", "magic"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01abcd", "element type"),
        (b"\x00\x00\x08\x03\x00", "header"),
        (b"", "magic"),
    ],
)
def test_not_idx_is_a_clear_error(tmp_path, payload, message):
    (tmp_path / "x").write_bytes(payload)
    with pytest.raises(DataError, match=message):
        read_idx(tmp_path / "x")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "nope")
