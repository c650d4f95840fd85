"""Small image classification sets for the architecture search: scikit-learn's digits, .npz
arrays or folders of images, in stratified train/val/test splits, with one-line errors."""

from __future__ import annotations

import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from lenna_core import limits
from lenna_core.errors import LennaError, error_line, first_line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
IMAGE_KEYS = ("x", "images")
LABEL_KEYS = ("y", "labels")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
DIGITS_SIZE = 16
MAX_VALUES = 2**31
TEST_SHARE = 0.2
MIN_PER_CLASS = 3  # one image in each of the three splits
RESIZE_CHUNK = 512


@attrs.frozen(eq=False)
class ImageData:
    """Images as float32 N×C×H×W in [0, 1] and int64 labels 0..classes-1, in three splits:
    ``train`` trains the search's weights, ``val`` its architecture weights (α), and ``test``
    only reports accuracy."""

    name: str
    classes: int
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's shape, (channels, height, width)."""
        channels, height, width = self.train_x.shape[1:]
        return int(channels), int(height), int(width)

    def to_dict(self) -> dict[str, Any]:
        """The set's name, class count, image shape and split sizes, JSON-able."""
        return {"name": self.name, "classes": self.classes, "shape": list(self.shape),
                "train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


@attrs.frozen(eq=False)
class _Source:
    """Images not read yet: every image's class, the class names, the shape each image will
    have, and a reader that returns the chosen images (sorted indices) as float32 N×C×H×W."""

    labels: np.ndarray
    class_names: list[str]
    shape: tuple[int, int, int]
    read: Callable[[np.ndarray], np.ndarray]


def load_images(path: Path | None, size: int | None = None, seed: int = 0,
                limit: int | None = None) -> ImageData:
    """Load scikit-learn's digits (``path`` None), a ``.npz`` file, or a directory of ``.npz``
    files or of one folder of images per class; resize every image to ``size``×``size`` when
    ``size`` is given; keep a stratified random ``limit`` of the images; and split each class
    by ``seed`` into 20% test and the rest halved into train and val. Every problem with the
    input raises a one-line LennaError."""
    limits.IMAGE_SIZE.check(size)
    limits.LIMIT.check(limit)
    if path is None:
        name, source = "digits", _digits(size or DIGITS_SIZE)
    else:
        name, source = str(path), _path_source(Path(path), size)
    _check_classes(source, name)
    rng = np.random.default_rng(seed)
    keep = _subset(source, limit, rng, name)
    total = len(keep) * int(np.prod(source.shape))
    if total > MAX_VALUES:
        channels, height, width = source.shape
        raise LennaError(f"{name}: {len(keep)} images of {channels}x{height}x{width} are "
                         f"{total} values, more than the 2**31 allowed: pass --limit or a "
                         "smaller --image-size")
    x, y = source.read(keep), source.labels[keep].astype(np.int64)
    train, val, test = _split(y, len(source.class_names), rng)
    return ImageData(name, len(source.class_names), x[train], y[train], x[val], y[val],
                     x[test], y[test])


def _path_source(path: Path, size: int | None) -> _Source:
    """The images of a ``.npz`` file or of a directory."""
    if not path.exists():
        raise LennaError(f"{path} does not exist: pass a .npz file or a directory of images")
    if not path.is_dir():
        if path.suffix.lower() != ".npz":
            raise LennaError(f"{path} is neither a .npz file nor a directory: pass a .npz of "
                             "images and labels or a directory of one folder per class")
        return _npz_source([path], size)
    try:
        entries = sorted(path.iterdir())
    except OSError as exc:
        raise LennaError(f"cannot list {path}: {exc.strerror or first_line(exc)}") from None
    npz = [p for p in entries if p.suffix.lower() == ".npz" and p.is_file()]
    folders = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
    if npz and folders:
        raise LennaError(f"{path} holds both .npz files and class folders: keep only one kind")
    if npz:
        return _npz_source(npz, size)
    if not folders:
        raise LennaError(f"{path} holds no .npz files and no class folders of images: pass a "
                         "directory with one folder of images per class, or .npz files")
    return _folder_source(path, folders, size)


def _digits(size: int) -> _Source:
    """scikit-learn's 1797 8×8 handwritten digits, values 0..16 scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise LennaError("the built-in digits set needs scikit-learn: "
                         "pip install 'lenna[sklearn]', or pass a data set") from None
    digits = load_digits()
    images = (digits.images[:, None] / 16.0).astype(np.float32)
    return _Source(digits.target.astype(np.int64), [str(c) for c in digits.target_names],
                   (1, size, size), lambda keep: _resize(images[keep], size))


# --- .npz files -------------------------------------------------------------------------------


@attrs.frozen
class _NpzPart:
    """One .npz file: the keys of its images and labels, its image count and layout."""

    file: Path
    image_key: str
    label_key: str
    count: int
    channels: int
    height: int
    width: int
    channels_last: bool


def _npz_source(files: list[Path], size: int | None) -> _Source:
    """The images of one or more .npz files, concatenated in order."""
    parts = [_npz_part(file) for file in files]
    first = parts[0]
    for part in parts[1:]:
        if size is None and (part.height, part.width) != (first.height, first.width):
            raise LennaError(f"{part.file} holds {part.height}x{part.width} images but "
                             f"{first.file} {first.height}x{first.width}: pass --image-size "
                             "to resize them to one size")
    channels = max(part.channels for part in parts)
    height, width = (size, size) if size else (first.height, first.width)
    raw = np.concatenate([_npz_array(part.file, part.label_key) for part in parts])
    values, labels = np.unique(raw, return_inverse=True)
    starts = np.cumsum([0] + [part.count for part in parts])

    def read(keep: np.ndarray) -> np.ndarray:
        chunks = []
        for part, start, stop in zip(parts, starts[:-1], starts[1:], strict=True):
            rows = keep[(keep >= start) & (keep < stop)] - start
            if rows.size:
                images = np.repeat(_npz_images(part, rows), channels // part.channels, axis=1)
                chunks.append(_resize(images, size) if size else images)
        return np.concatenate(chunks)

    return _Source(labels.astype(np.int64), [str(v) for v in values.tolist()],
                   (channels, height, width), read)


def _npz_part(file: Path) -> _NpzPart:
    """Check a .npz file's keys, shapes and dtypes from its array headers, reading no data."""
    try:
        with zipfile.ZipFile(file) as archive:
            keys = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            image_key = next((k for k in IMAGE_KEYS if k in keys), None)
            label_key = next((k for k in LABEL_KEYS if k in keys), None)
            if image_key is None or label_key is None:
                has = ", ".join(repr(k) for k in keys) or "no arrays"
                raise LennaError(f"{file} has {has}, but needs images under 'x' or 'images' "
                                 "and labels under 'y' or 'labels': save them with "
                                 "numpy.savez(path, x=images, y=labels)")
            image_shape, image_dtype = _npy_header(archive, file, image_key)
            label_shape, label_dtype = _npy_header(archive, file, label_key)
    except zipfile.BadZipFile:
        raise LennaError(f"{file} is not a .npz archive: write one with "
                         "numpy.savez(path, x=images, y=labels)") from None
    except OSError as exc:
        raise LennaError(f"cannot read {file}: {exc.strerror or first_line(exc)}") from None
    if image_dtype.kind not in "buif":
        raise LennaError(f"{file}: images {image_key!r} must be numbers, got dtype "
                         f"{image_dtype}: save them as uint8 or float")
    if label_dtype.kind not in "iu":
        raise LennaError(f"{file}: labels {label_key!r} must be integers, got dtype "
                         f"{label_dtype}: save them with labels.astype(int)")
    if len(label_shape) != 1:
        raise LennaError(f"{file}: labels {label_key!r} must be one-dimensional, got shape "
                         f"{label_shape}")
    count, channels, height, width, channels_last = _layout(image_shape, file, image_key)
    if count != label_shape[0]:
        raise LennaError(f"{file} holds {count} images but {label_shape[0]} labels: "
                         "save one label per image")
    if count == 0 or height == 0 or width == 0:
        raise LennaError(f"{file}: images {image_key!r} of shape {image_shape} are empty")
    return _NpzPart(file, image_key, label_key, count, channels, height, width, channels_last)


def _npy_header(archive: zipfile.ZipFile, file: Path, key: str) -> tuple[tuple[int, ...],
                                                                         np.dtype]:
    """The shape and dtype of one array of a .npz, from its header."""
    try:
        with archive.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    except (ValueError, EOFError, zlib.error) as exc:
        raise LennaError(f"{file}: {key!r} is not a valid array ({first_line(exc)}): write "
                         "the file again with numpy.savez") from None
    if dtype.hasobject:
        raise LennaError(f"{file}: {key!r} holds pickled Python objects, which are not read: "
                         "save plain numeric arrays (uint8 or float images, integer labels)")
    return shape, dtype


def _layout(shape: tuple[int, ...], file: Path, key: str) -> tuple[int, int, int, int, bool]:
    """Count, channels, height, width, and whether channels come last, of an image array:
    N×H×W (grayscale), N×C×H×W or N×H×W×C with C 1 or 3."""
    if len(shape) == 3:
        return shape[0], 1, shape[1], shape[2], False
    if len(shape) == 4 and shape[1] in (1, 3):
        return shape[0], shape[1], shape[2], shape[3], False
    if len(shape) == 4 and shape[3] in (1, 3):
        return shape[0], shape[3], shape[1], shape[2], True
    raise LennaError(f"{file}: images {key!r} have shape {shape}, but must be N×H×W, N×C×H×W "
                     "or N×H×W×C with 1 or 3 channels")


def _npz_array(file: Path, key: str) -> np.ndarray:
    """One array of a .npz file, read without unpickling anything."""
    try:
        with np.load(file, allow_pickle=False) as arrays:
            return arrays[key]
    except MemoryError:
        raise LennaError(f"{file}: {key!r} does not fit in memory: pass --limit with a "
                         "smaller file, or split the file") from None
    except OSError as exc:
        raise LennaError(f"cannot read {file}: {exc.strerror or first_line(exc)}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise LennaError(f"cannot read {key!r} from {file} ({first_line(exc)}): write the "
                         "file again with numpy.savez") from None


def _npz_images(part: _NpzPart, rows: np.ndarray) -> np.ndarray:
    """Rows of a .npz file's images as float32 N×C×H×W in [0, 1]: uint8 divided by 255,
    other numbers kept when at most 1 and divided by 255 otherwise (judged on the whole file)."""
    images = _npz_array(part.file, part.image_key)
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise LennaError(f"{part.file}: images {part.image_key!r} hold NaN or infinite "
                         "values: replace them with numbers in [0, 1] or [0, 255]")
    scale = 255 if images.dtype == np.uint8 or high > 1 else 1
    if low < 0 or high > scale:
        raise LennaError(f"{part.file}: images {part.image_key!r} hold values from {low:g} to "
                         f"{high:g}, but must lie in [0, 1] or [0, 255]")
    images = images[rows]
    if images.ndim == 3:
        images = images[:, None]
    elif part.channels_last:
        images = images.transpose(0, 3, 1, 2)
    images = np.ascontiguousarray(images, dtype=np.float32)
    if scale != 1:
        images /= scale
    return images


# --- folders of images ------------------------------------------------------------------------


def _folder_source(root: Path, folders: list[Path], size: int | None) -> _Source:
    """The images of one folder per class, classes in sorted folder order."""
    files, labels = [], []
    for label, folder in enumerate(folders):
        try:
            found = sorted(p for p in folder.iterdir()
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        except OSError as exc:
            raise LennaError(f"cannot list {folder}: {exc.strerror or first_line(exc)}") from None
        files += found
        labels += [label] * len(found)
    headers = [_with_image(file, lambda image: (image.mode, image.size)) for file in files]
    if not headers:
        raise LennaError(f"{root} has class folders but no images ({', '.join(IMAGE_SUFFIXES)})"
                         " in them: put each class's images in its folder")
    mode = "L" if all(m in GRAY_MODES for m, _ in headers) else "RGB"
    first_width, first_height = headers[0][1]
    if size is None:
        for file, (_, (width, height)) in zip(files, headers, strict=True):
            if (width, height) != (first_width, first_height):
                raise LennaError(f"{file} is {height}x{width} but {files[0]} is "
                                 f"{first_height}x{first_width}: pass --image-size to resize "
                                 "every image to one size")

    def read(keep: np.ndarray) -> np.ndarray:
        images = [_with_image(files[i], lambda image: _pixels(image, mode)) for i in keep]
        if size is None:
            return np.stack(images)
        return np.concatenate([_resize(image[None], size) for image in images])

    shape = (1 if mode == "L" else 3, size or first_height, size or first_width)
    return _Source(np.array(labels, dtype=np.int64), [f.name for f in folders], shape, read)


def _pixels(image: Any, mode: str) -> np.ndarray:
    """A PIL image converted to ``mode`` as float32 C×H×W in [0, 1]; 16-bit grayscale is
    scaled by 65535 (PIL's own conversion would clip it at 255)."""
    if image.mode.startswith("I;16"):
        gray = np.asarray(image, dtype=np.float32) / 65535
        return np.repeat(gray[None], 1 if mode == "L" else 3, axis=0)
    pixels = np.asarray(image.convert(mode), dtype=np.float32) / 255
    return pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _with_image(file: Path, use: Callable[[Any], Any]) -> Any:
    """``use`` applied to the image ``file`` opened with PIL; whatever makes it unreadable
    (a corrupt file, a decompression bomb, an OS error) is a one-line LennaError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                return use(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LennaError(f"{file} is too large to read safely ({first_line(exc)}): shrink or "
                         "remove it") from None
    except UnidentifiedImageError:
        raise LennaError(f"cannot read image {file}: not an image PIL can read (corrupt or of "
                         "an unsupported format): replace or remove it") from None
    except OSError as exc:
        raise LennaError(f"cannot read image {file}: {exc.strerror or first_line(exc)}: "
                         "replace or remove it") from None
    except Exception as exc:  # noqa: BLE001 - PIL's decoders raise many kinds on corrupt data
        raise LennaError(f"cannot read image {file}: {error_line(exc)}: replace or remove "
                         "it") from None


# --- shared steps -----------------------------------------------------------------------------


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """float32 N×C×H×W images resized bilinearly to size×size (unchanged when already so)."""
    if images.shape[2:] == (size, size):
        return images
    try:
        import torch
        from torch.nn import functional
    except ImportError:
        raise LennaError("resizing images needs PyTorch: pip install 'lenna[torch]'") from None
    out = np.empty((len(images), images.shape[1], size, size), dtype=np.float32)
    for start in range(0, len(images), RESIZE_CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + RESIZE_CHUNK]))
        resized = functional.interpolate(chunk, size=(size, size), mode="bilinear",
                                         align_corners=False)
        out[start:start + len(chunk)] = resized.numpy()
    return np.clip(out, 0, 1, out=out)


def _check_classes(source: _Source, name: str) -> None:
    """At least two classes, each with an image for every split."""
    names = source.class_names
    if len(names) < 2:
        raise LennaError(f"{name} has only one class ({names[0]!r}): classification needs at "
                         "least 2")
    counts = np.bincount(source.labels, minlength=len(names))
    small = np.flatnonzero(counts < MIN_PER_CLASS)
    if small.size:
        k = small[0]
        raise LennaError(f"class {names[k]!r} of {name} has only {counts[k]} images, but each "
                         f"class needs at least {MIN_PER_CLASS} (one per train, val and test "
                         "split): add images or remove the class")


def _subset(source: _Source, limit: int | None, rng: np.random.Generator,
            name: str) -> np.ndarray:
    """Sorted indices of a random subset of ``limit`` images with each class in proportion
    (largest remainders get the spare places); all images without a limit."""
    labels = source.labels
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    share = np.bincount(labels, minlength=len(source.class_names)) * limit / len(labels)
    quota = np.floor(share).astype(np.int64)
    quota[np.argsort(quota - share, kind="stable")[:limit - quota.sum()]] += 1
    small = np.flatnonzero(quota < MIN_PER_CLASS)
    if small.size:
        k = small[0]
        raise LennaError(f"--limit {limit} leaves class {source.class_names[k]!r} of {name} "
                         f"with {quota[k]} images, but each class needs at least "
                         f"{MIN_PER_CLASS} (one per split): pass a larger --limit")
    keep = [rng.permutation(np.flatnonzero(labels == k))[:q] for k, q in enumerate(quota)]
    return np.sort(np.concatenate(keep))


def _split(labels: np.ndarray, classes: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled train, val and test indices: each class's images shuffled, 20% (at least one)
    to test and the rest halved into train and val (train gets the odd one)."""
    train, val, test = [], [], []
    for k in range(classes):
        members = rng.permutation(np.flatnonzero(labels == k))
        n_test = max(1, int(np.floor(len(members) * TEST_SHARE + 0.5)))
        n_train = (len(members) - n_test + 1) // 2
        train.append(members[:n_train])
        val.append(members[n_train:len(members) - n_test])
        test.append(members[len(members) - n_test:])
    return tuple(rng.permutation(np.concatenate(part)) for part in (train, val, test))
