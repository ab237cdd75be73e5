"""Reading a labelled image set: a ``.zip`` or a folder, one sub-folder per class or images + ``labels.csv``.

Every file is opened with Pillow (decompression-bomb guard on) and fully decoded, so corrupt, truncated
and non-image files are found here, not in the middle of a search. Dropped files are counted by reason
(``ImageSet.dropped``), with a few names each, never silently lost:

- ``unsafe``: a path escaping the folder (``../``, absolute), or a symbolic link;
- ``not_image`` / ``corrupt``: Pillow cannot identify or fully decode the file;
- ``too_large``: more pixels than :data:`MAX_PIXELS` (Pillow's decompression-bomb guard) or bytes than
  :data:`MAX_FILE_BYTES`;
- ``duplicate``: the same bytes as an earlier image (sha256), the first one kept;
- ``missing``: named in ``labels.csv`` but not in the set.

``labels.csv`` may hold a list of labels per image (multi-label), written as for a multi-label table target
(``['3', '5']``, ``["3", "5"]`` or, with ``task="multilabel"``, ``3;5``): bracketed cells are detected, and
``task`` overrides (``image_classification``: each cell is one class). A malformed cell is refused naming its
line. A folder per class gives one label per image.

A zip whose entries would unpack to more than :data:`MAX_UNPACKED_BYTES`, or expand one entry more than
:data:`MAX_RATIO` times, is refused as a whole (a zip bomb); zips inside the zip are not opened.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from ..errors import AutoMLInputError
from .extract import MAX_PIXELS, open_image  # noqa: F401 (MAX_PIXELS: documented here)

LABELS_FILE = "labels.csv"

MAX_FILE_BYTES = 50 * 2**20
MAX_UNPACKED_BYTES = 4 * 2**30
MAX_RATIO = 200                        # deflate rarely beats ~10x on images; bombs go 1000x+
MAX_FILES = 500_000
EXAMPLES = 5                           # names kept per drop reason


@dataclass
class ImageSet:
    """The images that opened, in the set's order, and what was dropped (reason -> count, examples)."""

    names: list[str] = field(default_factory=list)       # path inside the zip / folder, '/'-separated
    contents: list[bytes] = field(default_factory=list)  # the file's bytes (decoded again when featurized)
    hashes: list[str] = field(default_factory=list)      # sha256 of the bytes: the feature cache key
    labels: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) after EXIF rotation
    grayscale: list[bool] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    layout: str = ""                                     # "folders" or "labels.csv"
    # multi-label: each image's label list (``labels`` then holds it written in ``label_format``)
    label_sets: list[list[str]] | None = None
    label_format: Any = None                             # prepare.multilabel.LabelFormat when multi-label

    @property
    def multilabel(self) -> bool:
        return self.label_sets is not None

    def drop(self, reason: str, name: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < EXAMPLES:
            self.examples[reason].append(name)

    @property
    def classes(self) -> list[str]:
        """The classes, or for a multi-label set every label seen."""
        if self.label_sets is not None:
            return sorted({x for row in self.label_sets for x in row})
        return sorted(set(self.labels))

    def subset(self, rows: list[int]) -> "ImageSet":
        """These images only (a train / test split), with no drop counts."""
        return ImageSet([self.names[i] for i in rows], [self.contents[i] for i in rows],
                        [self.hashes[i] for i in rows], [self.labels[i] for i in rows],
                        [self.sizes[i] for i in rows], [self.grayscale[i] for i in rows], layout=self.layout,
                        label_sets=None if self.label_sets is None else [self.label_sets[i] for i in rows],
                        label_format=self.label_format)

    def summary(self) -> str:
        """One line: images kept per class count and what was dropped, with reasons."""
        kept = (f"{len(self.names):,} images" if self.layout == "unlabelled"
                else f"{len(self.names):,} images with {len(self.classes)} labels, "
                     f"{sum(map(len, self.label_sets)) / max(len(self.names), 1):.2f} per image ({self.layout})"
                if self.label_sets is not None
                else f"{len(self.names):,} images in {len(self.classes)} classes ({self.layout})")
        if not self.dropped:
            return kept
        parts = [f"{n:,} {reason.replace('_', ' ')} (e.g. {', '.join(self.examples[reason][:2])})"
                 for reason, n in sorted(self.dropped.items())]
        return f"{kept}; dropped {'; '.join(parts)}"


def read_images(source: str | Path, *, labelled: bool = True, task: str = "auto") -> ImageSet:
    """Read an image set from a ``.zip`` or a folder.

    Args:
        source: the zip file or folder.
        labelled: False for images to predict (no labels needed; every image found is read).
        task: ``auto`` (a labels.csv whose cells are mostly bracketed lists is multi-label),
            ``multilabel`` or ``image_classification`` (one class per image).

    Returns:
        The images that opened, with their labels (empty strings when ``labelled`` is False).

    Raises:
        AutoMLInputError: no such file, a zip bomb, no images, fewer than two classes, a malformed
            label list, a multi-label task on a folder per class.
    """
    path = Path(source)
    if not path.exists():
        raise AutoMLInputError(f"'{source}' does not exist", "give a .zip of images or a folder of images")
    out = ImageSet()
    files = dict(_zip_files(path, out) if path.is_file() else _folder_files(path, out))
    if path.is_file() and not zipfile.is_zipfile(path):
        raise AutoMLInputError(f"'{source}' is not a zip file", "give a .zip of images or a folder of images")
    root = _common_root(files)
    files = {name[len(root):]: read for name, read in files.items()}
    labels_name = LABELS_FILE if LABELS_FILE in files else None
    if labelled and labels_name:
        out.layout = LABELS_FILE
        wanted = _labels_csv(files.pop(labels_name)(), source)
        sets = _label_sets(wanted, task, source)
        if sets is not None:
            out.label_sets, out.label_format = [], sets[1]
        for name, (label, _) in wanted.items():
            if name not in files:
                out.drop("missing", name)
            elif sets is None:
                _add(out, name, files[name], label)
            elif _add(out, name, files[name], sets[1].write(sets[0][name])):
                out.label_sets.append(sets[0][name])  # type: ignore[union-attr]
    else:
        if labelled and task == "multilabel":
            raise AutoMLInputError(f"'{source}' holds one sub-folder per class, which gives each image one label",
                                   "for multi-label images add a labels.csv (image_path,label) with a list per "
                                   "image, like ['3', '5'] or 3;5; or train with --task image_classification")
        files.pop(LABELS_FILE, None)
        out.layout = "folders" if labelled else "unlabelled"
        for name, read in sorted(files.items()):
            parts = name.split("/")
            if labelled and len(parts) < 2:
                out.drop("unlabelled", name)  # a file beside the class folders
                continue
            _add(out, name, read, parts[-2] if labelled else "")
    _check(out, source, labelled)
    return out


def _add(out: ImageSet, name: str, read, label: str) -> bool:  # type: ignore[no-untyped-def]
    """Read, check and keep one image; False when it was dropped (counted by reason)."""
    from PIL import Image, UnidentifiedImageError
    try:
        content = read()
    except _TooLarge:
        out.drop("too_large", name)
        return False
    digest = hashlib.sha256(content).hexdigest()
    if digest in _seen(out):
        out.drop("duplicate", name)
        return False
    try:
        image = open_image(content)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        out.drop("too_large", name)
        return False
    except UnidentifiedImageError:
        out.drop("not_image", name)
        return False
    except (OSError, ValueError, SyntaxError, EOFError):
        out.drop("corrupt", name)
        return False
    _seen(out).add(digest)
    out.names.append(name)
    out.contents.append(content)
    out.hashes.append(digest)
    out.labels.append(str(label))
    out.sizes.append(image.size)
    out.grayscale.append(image.mode == "L")
    return True


def _seen(out: ImageSet) -> set[str]:
    if not hasattr(out, "_seen"):
        out._seen = set(out.hashes)  # type: ignore[attr-defined]
    return out._seen  # type: ignore[attr-defined]


class _TooLarge(Exception):
    pass


def _safe_name(name: str) -> str | None:
    """The '/'-separated relative path, or None when it is absolute or climbs out with '..'."""
    name = name.replace("\\", "/")
    pure = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in pure.parts:
        return None
    return "/".join(p for p in pure.parts if p not in ("", "."))


def _skipped(name: str) -> bool:
    """Operating-system clutter, not data: macOS resource forks and folder caches."""
    parts = name.split("/")
    return any(p == "__MACOSX" or p.startswith("._") for p in parts) or parts[-1] in (".DS_Store", "Thumbs.db")


def _zip_files(path: Path, out: ImageSet) -> Iterator[tuple[str, object]]:
    if not zipfile.is_zipfile(path):
        return
    archive = zipfile.ZipFile(path)
    entries = [e for e in archive.infolist() if not e.is_dir()]
    if len(entries) > MAX_FILES:
        raise AutoMLInputError(f"'{path.name}' holds {len(entries):,} files, more than {MAX_FILES:,}",
                               "split the images into several smaller sets")
    total = sum(e.file_size for e in entries)
    bomb = [e.filename for e in entries if e.file_size > 2**20 and e.file_size > MAX_RATIO * max(e.compress_size, 1)]
    if total > MAX_UNPACKED_BYTES or bomb:
        what = f"would unpack to {total / 2**30:.1f} GB" if total > MAX_UNPACKED_BYTES else \
            f"has an entry that expands more than {MAX_RATIO}x ({bomb[0]}): a zip bomb"
        raise AutoMLInputError(f"'{path.name}' {what}", "zip the image files themselves (at most 4 GB unpacked)")
    for entry in entries:
        name = _safe_name(entry.filename)
        is_link = stat.S_ISLNK(entry.external_attr >> 16)
        if name is None or is_link:
            out.drop("unsafe", entry.filename)
            continue
        if _skipped(name):
            continue

        def read(entry: zipfile.ZipInfo = entry) -> bytes:
            if entry.file_size > MAX_FILE_BYTES:
                raise _TooLarge
            with archive.open(entry) as fh:
                data = fh.read(MAX_FILE_BYTES + 1)  # the header's size may lie
            if len(data) > MAX_FILE_BYTES:
                raise _TooLarge
            return data
        yield name, read


def _folder_files(path: Path, out: ImageSet) -> Iterator[tuple[str, object]]:
    root = path.resolve()
    count = 0
    for folder, dirs, names in os.walk(root, followlinks=False):
        for d in list(dirs):
            if os.path.islink(os.path.join(folder, d)):
                out.drop("unsafe", os.path.relpath(os.path.join(folder, d), root))
                dirs.remove(d)
        dirs.sort()
        for fname in sorted(names):
            full = os.path.join(folder, fname)
            rel = Path(os.path.relpath(full, root)).as_posix()
            if os.path.islink(full):
                out.drop("unsafe", rel)
                continue
            if _skipped(rel):
                continue
            count += 1
            if count > MAX_FILES:
                raise AutoMLInputError(f"'{path}' holds more than {MAX_FILES:,} files",
                                       "split the images into several smaller sets")

            def read(full: str = full) -> bytes:
                if os.path.getsize(full) > MAX_FILE_BYTES:
                    raise _TooLarge
                with open(full, "rb") as fh:
                    return fh.read()
            yield rel, read


def _common_root(files: dict[str, object]) -> str:
    """A single top folder wrapping everything (``mnist/3/x.png``, ``set/labels.csv``) is not a class."""
    tops = {name.split("/")[0] for name in files}
    if len(tops) == 1 and all("/" in name for name in files):
        top = tops.pop()
        # strip it unless it is the only folder level (then it is the one class: top/x.png)
        if f"{top}/{LABELS_FILE}" in files or all(name.count("/") >= 2 for name in files):
            return top + "/"
    return ""


def _labels_csv(content: bytes, source: str | Path) -> dict[str, tuple[str, int]]:
    """image path -> (label cell, its line in labels.csv), the first row of each path kept."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AutoMLInputError(f"labels.csv in '{source}' is not UTF-8 text", "save labels.csv as UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text))
    rows = [(row, reader.line_num) for row in reader]
    if not rows or not {"image_path", "label"} <= set(rows[0][0]):
        raise AutoMLInputError(f"labels.csv in '{source}' needs the columns image_path and label",
                               "write a header line 'image_path,label' and one row per image")
    out: dict[str, tuple[str, int]] = {}
    for row, line in rows:
        name = _safe_name((row.get("image_path") or "").strip())
        label = (row.get("label") or "").strip()
        if name and label:
            out.setdefault(name, (label, line))
    return out


def _label_sets(wanted: dict[str, tuple[str, int]], task: str,
                source: str | Path) -> tuple[dict[str, list[str]], Any] | None:
    """Each image's label list and the cells' format, or None for one class per image.

    ``auto`` reads the cells as lists when most of them are bracketed (``['3', '5']``); then, as with
    ``multilabel``, every cell must parse (the table target's parser), or the first bad one is named."""
    import pandas as pd

    from ..prepare.multilabel import parse_labels, readable_list
    cells = [label for label, _ in wanted.values()]
    bracketed = sum(c.startswith("[") for c in cells)
    if task == "image_classification" or (task != "multilabel" and bracketed <= len(cells) / 2):
        return None
    if bracketed:  # lists in brackets: every cell must be one (a stray 'a;b' among them would split wrongly)
        for name, (cell, line) in wanted.items():
            if readable_list(cell) is None:
                raise AutoMLInputError(
                    f"labels.csv in '{source}', line {line} ({name}): the label {cell[:80]!r} is not a readable "
                    "list of labels", "write every label cell as a list like ['3', '5'] (quote the cell, as "
                    "\"['3', '5']\"), or pass --task image_classification for one class per image")
    sets, fmt = parse_labels(pd.Series(cells, name="label"))
    return dict(zip(wanted, sets)), fmt


def _check(out: ImageSet, source: str | Path, labelled: bool) -> None:
    if not out.names:
        detail = f" ({out.summary()})" if out.dropped else ""
        raise AutoMLInputError(f"No readable image in '{source}'{detail}",
                               "put the images in one sub-folder per class, or add a labels.csv "
                               "(image_path,label) beside them" if labelled else "give a zip or folder of images")
    if labelled and len(out.classes) < 2:
        raise AutoMLInputError(f"'{source}' has only one class ({out.classes[0]!r}), so there is nothing to tell apart",
                               "put each class's images in its own sub-folder (at least two classes), "
                               "or label them in labels.csv")
