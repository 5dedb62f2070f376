"""examples/image_folder.py end to end on a small folder of generated images."""
import importlib.util
from pathlib import Path

from tests.data.image_folders import folder_fingerprint, write_class_folder

REPO = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("image_folder_example", REPO / "examples" / "image_folder.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_the_example_trains_on_a_folder_and_prints_the_per_class_report(tmp_path, capsys):
    folder = tmp_path / "shapes"
    write_class_folder(folder, classes=("left", "middle", "right"), per_class=10, size=(20, 18))
    before = folder_fingerprint(folder)
    result = load_example().main([str(folder), "--image-size", "16", "16", "--iterations", "40",
                                  "--eval-every", "20", "--stream", "--out-dir", str(tmp_path / "run"),
                                  "--no-progress"])
    out = capsys.readouterr().out
    assert "classes left, middle, right; 24 training, 6 validation images" in out
    assert [line.split()[0] for line in out.splitlines() if line.split()[:1] in (["left"], ["middle"], ["right"])] \
        == ["left", "middle", "right"]
    assert result["report"].class_names == ("left", "middle", "right") and result["report"].support.sum() == 6
    assert result["history"]["iteration"] == [20, 40] and "val_loss" in result["history"].history
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    assert folder_fingerprint(folder) == before
