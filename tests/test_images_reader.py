"""Reading image sets (issue #23): layouts, and every kind of bad file dropped and counted, or refused clearly."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from automl_core.errors import AutoMLInputError
from automl_core.images.reader import read_images
from shared_data import needs_data, DATASETS

MNIST = DATASETS / "images_mnist5k"


def _digits(n: int) -> list[tuple[str, bytes]]:
    """Real MNIST PNGs with their labels, from the shared set."""
    rows = (MNIST / "labels.csv").read_text().splitlines()[1:]
    picked: dict[str, list[bytes]] = {}
    for row in rows:
        path, label = row.split(",")
        if label in ("3", "7") and len(picked.setdefault(label, [])) < n:
            picked[label].append((MNIST / path).read_bytes())
    return [(label, data) for label, items in picked.items() for data in items]


def _png(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


@needs_data
def test_folder_per_class_drops_and_counts_bad_files(tmp_path: Path) -> None:
    digits = _digits(3)
    for i, (label, data) in enumerate(digits):
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / f"{i}.png").write_bytes(data)
    (tmp_path / "3" / "copy.png").write_bytes(digits[0][1])                 # duplicate bytes
    (tmp_path / "3" / "notes.txt").write_text("not an image")               # non-image
    (tmp_path / "7" / "cut.png").write_bytes(digits[-1][1][:60])            # truncated
    (tmp_path / "7" / "big.png").write_bytes(_png(Image.new("1", (20_000, 20_000))))  # decompression bomb
    os.symlink("/etc/hostname", tmp_path / "7" / "link.png")                 # symlink out of the folder
    images = read_images(tmp_path)
    assert images.layout == "folders"
    assert images.classes == ["3", "7"] and len(images.names) == 6
    assert images.dropped == {"duplicate": 1, "not_image": 1, "corrupt": 1, "too_large": 1, "unsafe": 1}
    assert all(images.grayscale) and images.sizes[0] == (28, 28)
    assert "dropped" in images.summary() and "duplicate" in images.summary()


@needs_data
def test_zip_with_labels_csv_refuses_escaping_paths_and_counts_missing(tmp_path: Path) -> None:
    digits = _digits(2)
    path = tmp_path / "set.zip"
    lines = ["image_path,label"]
    with zipfile.ZipFile(path, "w") as zf:
        for i, (label, data) in enumerate(digits):
            zf.writestr(f"set/img/{i}.png", data)
            lines.append(f"img/{i}.png,{label}")
        lines.append("img/absent.png,3")
        zf.writestr("set/labels.csv", "\n".join(lines))
        zf.writestr("../evil.png", digits[0][1])
        link = zipfile.ZipInfo("set/img/link.png")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("__MACOSX/._0.png", b"junk")
    images = read_images(path)
    assert images.layout == "labels.csv"
    assert sorted(images.names) == [f"img/{i}.png" for i in range(4)]
    assert images.dropped == {"missing": 1, "unsafe": 2}


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/x.png", b"\0" * (30 * 2**20))
        zf.writestr("b/y.png", b"\0" * 10)
    with pytest.raises(AutoMLInputError, match="zip bomb"):
        read_images(path)


def test_modes_exif_and_alpha_are_normalised(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the stored 40x20 is shown 20x40
    (tmp_path / "a" / "rot.jpg").write_bytes(_png(Image.new("RGB", (40, 20), "red"), format="JPEG", exif=exif))
    (tmp_path / "a" / "cmyk.jpg").write_bytes(_png(Image.new("CMYK", (8, 8), (0, 255, 0, 0)), format="JPEG"))
    (tmp_path / "b" / "deep.png").write_bytes(_png(Image.new("I;16", (8, 8), 40_000)))
    (tmp_path / "b" / "alpha.png").write_bytes(_png(Image.new("RGBA", (8, 8), (0, 0, 0, 0))))
    (tmp_path / "b" / "tiny.png").write_bytes(_png(Image.new("P", (1, 1))))
    images = read_images(tmp_path)
    by_name = dict(zip(images.names, zip(images.sizes, images.grayscale)))
    assert by_name["a/rot.jpg"] == ((20, 40), False)
    assert by_name["a/cmyk.jpg"][1] is False and by_name["b/deep.png"][1] is True
    assert by_name["b/tiny.png"][0] == (1, 1) and not images.dropped
    from automl_core.images.extract import open_image
    alpha = open_image((tmp_path / "b" / "alpha.png").read_bytes())
    assert alpha.mode == "RGB" and alpha.getpixel((0, 0)) == (255, 255, 255)  # transparent onto white
    assert open_image((tmp_path / "b" / "deep.png").read_bytes()).getpixel((0, 0)) == 155  # 40000/65535 of 255


def test_one_class_or_nothing_readable_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "x.png").write_bytes(_png(Image.new("L", (4, 4))))
    with pytest.raises(AutoMLInputError, match="only one class"):
        read_images(tmp_path)
    (tmp_path / "only" / "x.png").write_text("text")
    with pytest.raises(AutoMLInputError, match="No readable image.*not image"):
        read_images(tmp_path)
    with pytest.raises(AutoMLInputError, match="does not exist"):
        read_images(tmp_path / "nowhere")


def test_cli_refuses_table_options_for_images_and_a_table_without_target(tmp_path: Path, capsys) -> None:
    from automl_core.cli import main
    assert main(["train", str(tmp_path), "--task", "image_classification", "--target", "y"]) == 2
    assert "--target do(es) not apply to image_classification" in capsys.readouterr().err
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert main(["train", str(tmp_path / "t.csv")]) == 2
    assert "No target column given" in capsys.readouterr().err


def test_a_table_with_the_image_task_says_where_images_go() -> None:
    import pandas as pd
    from automl_core import AutoML
    with pytest.raises(AutoMLInputError, match="learns from a set of images, not from a table"):
        AutoML(task="image_classification", time_budget=5).fit(pd.DataFrame({"a": [1, 2] * 10, "y": [0, 1] * 10}),
                                                                target="y")
