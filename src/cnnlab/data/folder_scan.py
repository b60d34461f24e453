"""Finding the images of a class-per-folder dataset (Keras's ``flow_from_directory`` layout).

Two layouts are accepted::

    ROOT/cats/*.jpg  ROOT/dogs/*.jpg                       one folder per class
    ROOT/train/cats/...  ROOT/val/cats/...  ROOT/test/...  splits (val may be "validation")

Class names are the sub-folder names of the training split, sorted (label = index). Files are
found recursively inside each class folder; hidden files are ignored; any other file that is not
PNG/JPEG/BMP is recorded as a bad file (reported, then skipped or rejected under ``strict``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.data.images import IMAGE_SUFFIXES
from cnnlab.errors import DataError, describe_missing, describe_path

SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


@dataclass
class FolderScan:
    """What :func:`scan_folder` found.

    Attributes:
        root: the folder.
        classes: class names (sorted sub-folder names of the training split).
        splits: split name (``train``, ``val``, ``test``) -> list of ``(path, label)``.
        bad_files: ``(path, reason)`` of files that are not images.
    """

    root: Path
    classes: tuple[str, ...]
    splits: dict[str, list[tuple[Path, int]]]
    bad_files: list[tuple[Path, str]] = field(default_factory=list)

    def all_files(self) -> list[Path]:
        """Every file found (images and bad files), sorted: what the cache key covers."""
        paths = [p for items in self.splits.values() for p, _ in items]
        return sorted(paths + [p for p, _ in self.bad_files])


def scan_folder(root: str | Path) -> FolderScan:
    """List the images of an image folder.

    Raises:
        DataError: not a folder, no class sub-folders, a class folder without images, fewer
            than two classes, or val/test classes that the training split does not have.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"expected a dataset name or a folder of images with one sub-folder per class, "
            f"received {str(root)!r} ({describe_missing(root, 'no such folder')})"
        )
    subdirs = _subdirs(root)
    if "train" in {d.name for d in subdirs}:
        unknown = [d.name for d in subdirs if d.name not in SPLIT_NAMES]
        if unknown:
            raise DataError(
                f"expected only train/, val/ (or validation/) and test/ next to train/ in "
                f"{root}, received {', '.join(sorted(unknown))}"
            )
        split_dirs = {SPLIT_NAMES[d.name]: d for d in subdirs}
    else:
        split_dirs = {"train": root}
    bad: list[tuple[Path, str]] = []
    classes = tuple(d.name for d in _subdirs(split_dirs["train"]))
    if not classes:
        raise DataError(
            f"expected a folder with one sub-folder of images per class, received "
            f"{split_dirs['train']} with no sub-folders"
        )
    splits = {}
    for split, folder in split_dirs.items():
        class_dirs = _subdirs(folder)
        extra = sorted({d.name for d in class_dirs} - set(classes))
        if extra:
            raise DataError(
                f"expected {split} classes among the training classes {list(classes)}, "
                f"received {extra} in {folder}"
            )
        items = []
        empty = []
        for class_dir in class_dirs:
            images = _class_files(class_dir, bad)
            if not images:
                empty.append(str(class_dir))
            items += [(p, classes.index(class_dir.name)) for p in images]
        if empty:
            raise DataError(
                f"expected PNG, JPEG or BMP images in every class folder, received "
                f"{len(empty)} empty class folder(s): {', '.join(empty)}"
            )
        splits[split] = items
    if len(classes) < 2:
        raise DataError(
            f"expected at least 2 classes (sub-folders) to classify, received 1 class "
            f"{classes[0]!r} in {split_dirs['train']}"
        )
    return FolderScan(root, classes, splits, bad)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _class_files(class_dir: Path, bad: list[tuple[Path, str]]) -> list[Path]:
    images = []
    for path in sorted(class_dir.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(class_dir).parts)
        if hidden or (path.is_dir() and not path.is_symlink()):
            continue
        what = describe_path(path)
        if what is not None and what != "a directory":  # a FIFO, dangling link, link loop...
            bad.append((path, f"{what}, not an image file"))
        elif what is None and path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        elif what is None:
            bad.append((path, "not a PNG, JPEG or BMP file"))
    return images
