"""lenna_core.search.data: the digits set, .npz files in every layout, class folders of images,
resizing, limits, stratified deterministic splits, and a one-line LennaError for each bad input."""

from __future__ import annotations

import errno
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from lenna_core.errors import LennaError
from lenna_core.search.data import ImageData, load_images

DIGIT_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def split_sizes(n: int) -> tuple[int, int, int]:
    """Train, val and test sizes of a class of n images: 20% test rounded, the rest halved."""
    test = max(1, (n + 2) // 5)
    return (n - test + 1) // 2, (n - test) // 2, test


def splits(data: ImageData) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(data.train_x, data.train_y), (data.val_x, data.val_y), (data.test_x, data.test_y)]


def assert_contents(data: ImageData, expected_x: np.ndarray, expected_y: np.ndarray) -> None:
    """The splits hold exactly the expected images, each once, with its expected label."""
    label_of = {image.tobytes(): label for image, label in zip(expected_x, expected_y,
                                                               strict=True)}
    assert len(label_of) == len(expected_x), "the test's images must be distinct"
    seen = []
    for x, y in splits(data):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.flags.c_contiguous
        for image, label in zip(x, y, strict=True):
            assert label_of[image.tobytes()] == label
            seen.append(image.tobytes())
    assert sorted(seen) == sorted(label_of)


def distinct_uint8(n: int, channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """n random uint8 images N×C×H×W (distinct: ``assert_contents`` checks)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, channels, height, width), dtype=np.uint8)


def write_png(path, size: tuple[int, int], mode: str, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def write_headers_only(path, arrays: dict[str, np.ndarray],
                       headers: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """A .npz whose ``headers`` members have an array header and no data."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array)
        for key, (shape, dtype) in headers.items():
            with archive.open(f"{key}.npy", "w") as member:
                descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
                np.lib.format.write_array_header_1_0(
                    member, {"descr": descr, "fortran_order": False, "shape": shape})


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_images(None)


# --- digits -----------------------------------------------------------------------------------


def test_digits_are_upsampled_to_16_and_split_by_class(digits):
    assert digits.name == "digits" and digits.classes == 10
    assert digits.shape == (1, 16, 16)
    assert digits.train_x.shape == (721, 1, 16, 16)
    assert (len(digits.val_y), len(digits.test_y)) == (717, 359)
    expected = [split_sizes(n) for n in DIGIT_COUNTS]
    for index, (x, y) in enumerate(splits(digits)):
        assert x.dtype == np.float32 and len(x) == len(y)
        assert np.bincount(y, minlength=10).tolist() == [sizes[index] for sizes in expected]
    everything = np.concatenate([digits.train_x, digits.val_x, digits.test_x])
    assert everything.min() == 0.0 and everything.max() == 1.0
    assert digits.to_dict() == {"name": "digits", "classes": 10, "shape": [1, 16, 16],
                                "train": 721, "val": 717, "test": 359}
    json.dumps(digits.to_dict())


def test_digits_at_their_own_size_are_the_raw_values_each_once():
    from sklearn.datasets import load_digits

    raw = load_digits()
    data = load_images(None, size=8)
    assert data.shape == (1, 8, 8)
    assert_contents(data, (raw.images[:, None] / 16).astype(np.float32), raw.target)


def test_the_upsampling_is_torch_bilinear(digits):
    import torch
    from torch.nn import functional

    small = load_images(None, size=8)
    expected = functional.interpolate(torch.from_numpy(small.test_x), size=(16, 16),
                                      mode="bilinear", align_corners=False).numpy()
    np.testing.assert_array_equal(np.clip(expected, 0, 1), digits.test_x)


def test_the_split_depends_on_the_seed_only(digits):
    again = load_images(None)
    for (x, y), (x2, y2) in zip(splits(digits), splits(again), strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    other = load_images(None, seed=1)
    assert [len(y) for _, y in splits(other)] == [721, 717, 359]
    assert not np.array_equal(other.test_x, digits.test_x)
    assert not np.array_equal(other.train_y, digits.train_y)


def test_a_limit_keeps_a_stratified_subset():
    data = load_images(None, limit=100, seed=3)
    assert data.to_dict() == {"name": "digits", "classes": 10, "shape": [1, 16, 16],
                              "train": 40, "val": 40, "test": 20}
    for _, y in splits(data):
        assert (np.bincount(y, minlength=10) == len(y) // 10).all()
    assert load_images(None, limit=5000).to_dict()["train"] == 721
    odd = load_images(None, limit=137)
    assert sum(len(y) for _, y in splits(odd)) == 137
    assert all(set(y.tolist()) == set(range(10)) for _, y in splits(odd))


# --- .npz files -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["NHW", "NHWC1", "NHWC3", "NCHW1", "NCHW3"])
def test_an_npz_round_trip_in_each_layout(tmp_path, layout):
    channels = 3 if layout.endswith("3") else 1
    nchw = distinct_uint8(24, channels, 5, 6)
    stored = {"NHW": nchw[:, 0], "NHWC1": nchw.transpose(0, 2, 3, 1),
              "NHWC3": nchw.transpose(0, 2, 3, 1), "NCHW1": nchw, "NCHW3": nchw}[layout]
    raw_labels = np.array([7, -2, 100] * 8)
    np.savez(tmp_path / "d.npz", images=stored, labels=raw_labels)
    data = load_images(tmp_path / "d.npz")
    assert data.name == str(tmp_path / "d.npz")
    assert (data.classes, data.shape) == (3, (channels, 5, 6))
    assert [len(y) for _, y in splits(data)] == [9, 9, 6]
    mapped = np.array([1, 0, 2] * 8)  # -2 -> 0, 7 -> 1, 100 -> 2
    assert_contents(data, nchw.astype(np.float32) / 255, mapped)


def test_npz_floats_are_kept_in_0_1_and_divided_when_above(tmp_path):
    unit = distinct_uint8(9, 1, 4, 4).astype(np.float32) / 255
    np.savez(tmp_path / "unit.npz", x=unit[:, 0], y=np.arange(9) % 3)
    assert_contents(load_images(tmp_path / "unit.npz"), unit, np.arange(9) % 3)
    wide = distinct_uint8(9, 3, 4, 4).astype(np.float64)
    np.savez(tmp_path / "wide.npz", x=wide, y=np.arange(9) % 3)
    assert_contents(load_images(tmp_path / "wide.npz"), wide.astype(np.float32) / 255,
                    np.arange(9) % 3)


def test_a_directory_of_npz_files_is_concatenated_and_resized(tmp_path):
    first, second = distinct_uint8(12, 1, 4, 4), distinct_uint8(12, 1, 4, 4, seed=1)
    np.savez(tmp_path / "a.npz", x=first[:, 0], y=np.repeat([5, 9], 6))
    np.savez(tmp_path / "b.npz", images=second.transpose(0, 2, 3, 1), labels=np.repeat([9, 5], 6))
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_images(tmp_path)
    assert (data.classes, data.shape) == (2, (1, 4, 4))
    assert_contents(data, np.concatenate([first, second]).astype(np.float32) / 255,
                    np.repeat([0, 1, 1, 0], 6))
    resized = load_images(tmp_path, size=8)
    assert resized.shape == (1, 8, 8) and [len(y) for _, y in splits(resized)] == [10, 10, 4]


def test_npz_gray_and_color_files_together_are_color(tmp_path):
    gray, color = distinct_uint8(6, 1, 4, 4), distinct_uint8(6, 3, 4, 4, seed=1)
    np.savez(tmp_path / "a.npz", x=gray, y=np.arange(6) % 2)
    np.savez(tmp_path / "b.npz", x=color, y=np.arange(6) % 2)
    data = load_images(tmp_path)
    assert data.shape == (3, 4, 4)
    expected = np.concatenate([np.repeat(gray, 3, axis=1), color]).astype(np.float32) / 255
    assert_contents(data, expected, np.arange(12) % 2)


# --- class folders ----------------------------------------------------------------------------


def test_class_folders_of_color_and_gray_images_are_rgb_in_sorted_class_order(tmp_path):
    for i in range(4):
        write_png(tmp_path / "zebra" / f"{i}.PNG", (6, 5), "RGB", (10 + i, 20, 30))
        write_png(tmp_path / "ant" / f"{i}.png", (6, 5), "L", 100 + i)
    write_png(tmp_path / "ant" / "extra.bmp", (6, 5), "L", 200)
    (tmp_path / "ant" / "readme.txt").write_text("not an image")
    (tmp_path / ".cache").mkdir()
    data = load_images(tmp_path)
    assert (data.classes, data.shape) == (2, (3, 5, 6))
    zebra = [np.array([10 + i, 20, 30], np.float32) for i in range(4)]
    ant = [np.full(3, v, np.float32) for v in (100, 101, 102, 103, 200)]
    colors = [*ant, *zebra]
    expected = np.stack([np.broadcast_to(c[:, None, None] / 255, (3, 5, 6)) for c in colors])
    assert_contents(data, expected.astype(np.float32), [0] * 5 + [1] * 4)


def test_class_folders_of_gray_images_have_one_channel(tmp_path):
    for label, name in enumerate(["b", "a", "c"]):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", (4, 7), "L", 40 * label + i)
    data = load_images(tmp_path)
    assert (data.classes, data.shape) == (3, (1, 7, 4))
    values = [40 * label + i for label in (1, 0, 2) for i in range(3)]  # a, b, c
    expected = np.stack([np.full((1, 7, 4), v / 255, np.float32) for v in values])
    assert_contents(data, expected, np.repeat([0, 1, 2], 3))
    assert [len(y) for _, y in splits(data)] == [3, 3, 3]


def test_16_bit_gray_images_are_scaled_by_65535(tmp_path):
    for label, name in enumerate(["a", "b"]):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", (4, 4), "I;16", 1000 * (3 * label + i))
    data = load_images(tmp_path)
    assert data.shape == (1, 4, 4)
    expected = np.stack([np.full((1, 4, 4), np.float32(1000 * v) / 65535) for v in range(6)])
    assert_contents(data, expected, np.repeat([0, 1], 3))
    write_png(tmp_path / "b" / "3.png", (4, 4), "RGB", (0, 255, 0))
    color = load_images(tmp_path)
    assert color.shape == (3, 4, 4)
    assert_contents(color, np.concatenate([np.repeat(expected, 3, axis=1),
                                           np.array([0, 1, 0], np.float32)[None, :, None, None]
                                           * np.ones((1, 3, 4, 4), np.float32)]),
                    [0, 0, 0, 1, 1, 1, 1])


def test_class_folder_images_of_different_sizes_need_an_image_size(tmp_path):
    for i in range(3):
        write_png(tmp_path / "a" / f"{i}.png", (8, 8), "RGB", (255, 0, 0))
        write_png(tmp_path / "b" / f"{i}.png", (8 + 2 * i, 4), "RGB", (0, 0, 255))
    with pytest.raises(LennaError, match=r"b/0\.png is 4x8 but .*a/0\.png is 8x8: pass "
                                         r"--image-size"):
        load_images(tmp_path)
    data = load_images(tmp_path, size=6)
    assert data.shape == (3, 6, 6)
    blue = np.concatenate([x for x, y in splits(data)])[np.concatenate(
        [y for _, y in splits(data)]) == 1]
    assert len(blue) == 3
    np.testing.assert_allclose(blue[:, 2], 1, rtol=0, atol=1e-6)
    assert (blue[:, :2] == 0).all()


# --- bad input --------------------------------------------------------------------------------


def one_line_error(*args, match: str, **kwargs) -> None:
    with pytest.raises(LennaError, match=match) as info:
        load_images(*args, **kwargs)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None


@pytest.mark.parametrize(("size", "limit", "match"), [
    (3, None, "--image-size must be at least 4 and at most 512, got 3"),
    (513, None, "--image-size must be at least 4 and at most 512, got 513"),
    (None, 0, "--limit must be at least 10 and at most 10000000, got 0"),
    (None, 25, r"--limit 25 leaves class '\d' of digits with 2 images, .* pass a larger --limit"),
])
def test_bad_sizes_and_limits(size, limit, match):
    one_line_error(None, size=size, limit=limit, match=match)


def test_missing_paths_and_empty_directories(tmp_path):
    one_line_error(tmp_path / "nope", match=r"nope does not exist: pass a \.npz file or a dir")
    (tmp_path / "data.csv").write_text("1,2\n")
    one_line_error(tmp_path / "data.csv", match=r"data\.csv is neither a \.npz file nor a dir")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.png.txt").write_text("")
    one_line_error(tmp_path / "empty", match="empty holds no .npz files and no class folders")
    (tmp_path / "hollow" / "cats").mkdir(parents=True)
    one_line_error(tmp_path / "hollow", match="hollow has class folders but no images")
    (tmp_path / "both" / "cats").mkdir(parents=True)
    np.savez(tmp_path / "both" / "d.npz", x=np.zeros((6, 4, 4)), y=np.arange(6) % 2)
    one_line_error(tmp_path / "both", match="both holds both .npz files and class folders")


def test_npz_without_the_keys_names_what_it_has(tmp_path):
    np.savez(tmp_path / "d.npz", pixels=np.zeros((6, 4, 4)), y=np.arange(6) % 2)
    one_line_error(tmp_path / "d.npz", match=r"d\.npz has 'pixels', 'y', but needs images under "
                                            r"'x' or 'images' and labels under 'y' or 'labels'")
    np.savez(tmp_path / "e.npz", np.zeros((6, 4, 4)))
    one_line_error(tmp_path / "e.npz", match=r"e\.npz has 'arr_0', but needs")


def test_pickled_objects_are_not_read(tmp_path):
    images = np.empty(6, dtype=object)
    images[:] = [np.zeros((4, 4))] * 6
    np.savez(tmp_path / "d.npz", x=images, y=np.arange(6) % 2)
    one_line_error(tmp_path / "d.npz",
                   match=r"d\.npz: 'x' holds pickled Python objects, which are not read")
    np.savez(tmp_path / "e.npz", x=np.zeros((6, 4, 4)), y=np.array(["a", 1] * 3, dtype=object))
    one_line_error(tmp_path / "e.npz", match="'y' holds pickled Python objects")


def test_files_that_are_not_npz_archives(tmp_path):
    (tmp_path / "r.npz").write_bytes(np.random.default_rng(0).bytes(300))
    one_line_error(tmp_path / "r.npz", match=r"r\.npz is not a \.npz archive: write one with")
    np.save(tmp_path / "a.npy", np.zeros((6, 4, 4)))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    one_line_error(tmp_path / "a.npz", match=r"a\.npz is not a \.npz archive")
    write_headers_only(tmp_path / "t.npz", {"y": np.arange(6) % 2}, {"x": ((6, 4, 4), "u1")})
    one_line_error(tmp_path / "t.npz", match=r"cannot read 'x' from .*t\.npz \(.*\): write the")
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as archive:
        archive.writestr("x.npy", b"not an array")
        archive.writestr("y.npy", b"")
    one_line_error(tmp_path / "h.npz", match=r"h\.npz: 'x' is not a valid array")


@pytest.mark.parametrize(("images", "labels", "match"), [
    (np.zeros((6, 4, 4)), np.arange(5) % 2, "holds 6 images but 5 labels"),
    (np.zeros((6, 16)), np.arange(6) % 2, r"have shape \(6, 16\), but must be N×H×W"),
    (np.zeros((6, 4, 4, 2)), np.arange(6) % 2, "with 1 or 3 channels"),
    (np.zeros((6, 2, 4, 4, 1)), np.arange(6) % 2, r"have shape \(6, 2, 4, 4, 1\)"),
    (np.zeros((0, 4, 4)), np.zeros(0, int), r"of shape \(0, 4, 4\) are empty"),
    (np.zeros((6, 4, 4)), np.arange(6.0) % 2, "labels 'y' must be integers, got dtype float64"),
    (np.zeros((6, 4, 4)), (np.arange(6) % 2)[:, None], "labels 'y' must be one-dimensional"),
    (np.full((6, 4, 4), "a"), np.arange(6) % 2, "images 'x' must be numbers, got dtype <U1"),
    (np.full((6, 4, 4), np.nan), np.arange(6) % 2, "hold NaN or infinite values"),
    (np.full((6, 4, 4), np.inf, np.float32), np.arange(6) % 2, "hold NaN or infinite"),
    (np.full((6, 4, 4), -0.5), np.arange(6) % 2,
     r"hold values from -0\.5 to -0\.5, but must lie in \[0, 1\] or \[0, 255\]"),
    (np.full((6, 4, 4), 300), np.arange(6) % 2, "from 300 to 300, but must lie in"),
    (np.zeros((6, 4, 4)), np.full(6, 4), r"has only one class \('4'\)"),
    (np.zeros((7, 4, 4)), np.array([1, 1, 1, 1, 1, 3, 3]),
     r"class '3' of .*d\.npz has only 2 images, but each class needs at least 3"),
])
def test_bad_npz_contents(tmp_path, images, labels, match):
    np.savez(tmp_path / "d.npz", x=images, y=labels)
    one_line_error(tmp_path / "d.npz", match=match)


def test_npz_files_of_different_sizes_need_an_image_size(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((6, 4, 4)), y=np.arange(6) % 2)
    np.savez(tmp_path / "b.npz", x=np.zeros((6, 5, 4)), y=np.arange(6) % 2)
    one_line_error(tmp_path, match=r"b\.npz holds 5x4 images but .*a\.npz 4x4: pass "
                                   "--image-size")
    assert load_images(tmp_path, size=4).shape == (1, 4, 4)


def test_too_many_values_are_refused_before_any_image_is_read(tmp_path):
    labels = np.arange(70_000) % 10
    write_headers_only(tmp_path / "big.npz", {"y": labels}, {"x": ((70_000, 3, 128, 128), "u1")})
    one_line_error(tmp_path / "big.npz", match=r"70000 images of 3x128x128 are 3440640000 "
                                               r"values, more than the 2\*\*31 allowed: pass "
                                               "--limit or a smaller --image-size")
    write_headers_only(tmp_path / "small.npz", {"y": labels[:10_000]},
                       {"x": ((10_000, 3, 8, 8), "u1")})
    one_line_error(tmp_path / "small.npz", size=512,
                   match="10000 images of 3x512x512 are 7864320000 values")
    # Within the bound the images are read, and their missing data is the error.
    one_line_error(tmp_path / "small.npz", size=512, limit=100, match=r"cannot read 'x' from")


def test_corrupt_images_are_named(tmp_path):
    for name in ("a", "b"):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", (5, 5), "L", 9)
    (tmp_path / "b" / "bad.png").write_bytes(np.random.default_rng(0).bytes(200))
    one_line_error(tmp_path, match=r"cannot read image .*b/bad\.png: not an image PIL can read")
    whole = (tmp_path / "b" / "0.png").read_bytes()
    (tmp_path / "b" / "bad.png").write_bytes(whole[:len(whole) - 30])
    one_line_error(tmp_path, match=r"cannot read image .*b/bad\.png: .*replace or remove it")


def test_unreadable_images_give_the_os_reason(tmp_path, monkeypatch):
    for name in ("a", "b"):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", (5, 5), "L", 9)
    real_open = Image.open

    def open_image(file, *args, **kwargs):
        if file.name == "1.png":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(Image, "open", open_image)
    one_line_error(tmp_path, match=r"cannot read image .*a/1\.png: Permission denied: replace")


@pytest.mark.parametrize("pixels", [12, 20])  # a warning above the limit, an error above twice
def test_decompression_bombs_are_refused(tmp_path, monkeypatch, pixels):
    for name in ("a", "b"):
        for i in range(3):
            write_png(tmp_path / name / f"{i}.png", (5, 5), "L", 9)
    write_png(tmp_path / "b" / "huge.png", (pixels, pixels), "L", 9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    one_line_error(tmp_path, size=8, match=r"b/huge\.png is too large to read safely "
                                           r"\(.*\): shrink or remove it")
