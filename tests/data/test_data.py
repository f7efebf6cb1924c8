"""Vocabulary, reading, the deterministic split and the example tensors."""

import os
import random
import re

import pytest
import torch

from makemore.data.batches import TrainBatches
from makemore.data.datamodule import NamesDataModule
from makemore.data.examples import windows
from makemore.data.items import BUNDLED_DATASET, item_of, read_items, split_items
from makemore.data.vocab import BOUNDARY, Vocabulary
from makemore.errors import MakemoreError

from ..conftest import ROOT

SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"


def test_vocabulary_round_trip_and_reserved_boundary():
    vocab = Vocabulary.from_items(["b.a", "ça"])
    assert vocab.chars == ".abç" and vocab.size == 5
    assert BOUNDARY not in vocab.stoi.values()
    assert vocab.encode(".") == [1]  # '.' is an ordinary character
    assert vocab.decode([BOUNDARY] + vocab.encode("ça.b") + [BOUNDARY]) == "ça.b"


def test_read_items_strips_and_drops_blank_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("  anna \n\n\t\nbob\r\n", encoding="utf-8")
    assert read_items(path) == ["anna", "bob"]


def test_items_are_lines_split_at_newline_alone(tmp_path):
    # str.splitlines() also splits at these (1,000 lines read as 1,500) and str.strip() drops some.
    odd = ["a\u2028b", "c\x85d", "e\x0cf", "g\x0bh", "i\x1cj", "k\x1dl", "m\x1en", "o\u2029p", "q\rr", "\x0cs\xa0"]
    lines = [f"{odd[i % len(odd)]}{i}" for i in range(1000)]
    path = tmp_path / "odd.txt"
    path.write_bytes("".join(f" {line}\t\n" for line in lines).encode())
    assert read_items(path) == lines
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("".join(f"{line}\r\n" for line in lines).encode())
    assert read_items(crlf) == lines
    assert item_of(" \tabc\x85 \r") == "abc\x85"  # one rule for lines and for items given on the command line


def test_a_byte_order_mark_is_not_a_character(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffanna\nbob\n".encode())
    assert read_items(path) == ["anna", "bob"]


def test_split_is_the_lectures():
    items = [f"w{i}" for i in range(1000)]
    expected = list(items)
    random.seed(42)
    random.shuffle(expected)
    train, val, test = split_items(items, 42, 0.8, 0.1)
    assert (train, val, test) == (expected[:800], expected[800:900], expected[900:])
    assert split_items(items, 42, 0.8, 0.1) == (train, val, test)  # deterministic


def test_windows_cover_every_position_and_the_end_token():
    vocab = Vocabulary("abc")
    x, y = windows(["ab", "c"], vocab, block_size=3)
    assert x.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2], [0, 0, 0], [0, 0, 3]]
    assert y.tolist() == [1, 2, 0, 3, 0]


def test_sequences_are_shifted_and_padded(words_file):
    dm = NamesDataModule(path=str(words_file), examples="sequences", block_size=None)
    x, y = dm.tensors("train")
    item = dm.splits["train"][0]
    ids = dm.vocab.encode(item)
    assert x.shape[1] == dm.block_size == max(map(len, dm.items)) + 1
    assert x[0, : len(ids) + 1].tolist() == [BOUNDARY] + ids
    assert y[0, : len(ids) + 1].tolist() == ids + [BOUNDARY]
    assert (y[0, len(ids) + 1 :] == -1).all()


def test_bundled_dataset_is_the_default():
    dm = NamesDataModule()
    assert dm.path == str(BUNDLED_DATASET) and len(dm.items) == 32_952
    assert dm.items[:3] == ["emma", "olivia", "sophia"] and dm.vocab.size == 27


@pytest.mark.skipif(not SHARED_NAMES.exists(), reason="needs ../shared/data/names.txt")
def test_lecture_split_sizes_on_names_txt():
    dm = NamesDataModule(path=str(SHARED_NAMES), block_size=3)
    assert [len(dm.tensors(s)[0]) for s in ("train", "val", "test")] == [182_625, 22_655, 22_866]


def test_batches_depend_on_seed_and_number_only():
    def batches(seed, first, count=6):  # batches `first` to `first + count - 1` of the run
        return torch.stack([TrainBatches(100, 4, 6, seed)[i] for i in range(first, first + count)])

    assert torch.equal(batches(1, 12), batches(1, 12))
    assert torch.equal(batches(1, 12)[2:], batches(1, 14, 4))
    assert not torch.equal(batches(1, 12), batches(1, 18))  # the next epoch
    assert not torch.equal(batches(1, 12), batches(2, 12))
    assert len(TrainBatches(100, 4, 6, 0)) == 6


def test_ranks_split_the_global_batch_without_overlap():
    one = TrainBatches(100, 8, 6, 5).epoch_table(3)
    halves = [TrainBatches(100, 4, 6, 5, rank=r, world_size=2).epoch_table(3) for r in range(2)]
    assert torch.equal(torch.cat(halves, dim=1), one)


def test_the_loader_resumes_from_its_saved_position(words_file):
    dm = NamesDataModule(path=str(words_file), batch_size=4, batches_per_epoch=6)
    loader = dm.train_dataloader()
    unbroken = [*loader, *loader]  # two epochs
    assert len(unbroken) == 12 and unbroken[0].shape == (4,)
    stopped = dm.train_dataloader()
    taken = iter(stopped)
    for _ in range(4):  # four batches in, a checkpoint takes the loader's state
        next(taken)
    state = stopped.state_dict()
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)
    batches = iter(resumed)
    rest = [next(batches), next(batches)]  # the epoch's end: Lightning stops at its length
    rest += list(resumed)  # the next epoch
    assert all(torch.equal(a, b) for a, b in zip(rest, unbroken[4:], strict=True))


@pytest.mark.parametrize("examples", ["windows", "sequences"])
def test_batches_are_gathered_on_the_device_their_ids_are_on(words_file, examples):
    # "meta" stands in for an accelerator: every tensor of the gather must follow the ids there.
    dm = NamesDataModule(path=str(words_file), batch_size=4, batches_per_epoch=6, examples=examples)
    ids = next(iter(dm.train_dataloader()))
    x, y = dm.gather_train(ids.to("meta"))
    here = dm.gather_train(ids)
    assert x.device.type == y.device.type == "meta"
    assert (x.shape, y.shape) == (here[0].shape, here[1].shape)


@pytest.mark.parametrize(
    "content, problem", [(b"", "has no items"), (b" \n\t\n", "has no items"), (b"\xff\xfeab", "not UTF-8")]
)
def test_bad_files_name_the_problem(tmp_path, content, problem):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(MakemoreError, match=problem):
        read_items(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MakemoreError, match="does not exist"):
        read_items(tmp_path / "nope.txt")
    with pytest.raises(MakemoreError, match="is a directory"):
        read_items(tmp_path)


def test_files_that_are_not_regular_are_named_for_what_they_are(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it would block: it must be refused unopened
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "file.txt").write_text("abc\n")
    cases = {
        tmp_path / "fifo": "is a FIFO (named pipe), not a regular file",
        "/dev/null": "is a character device, not a regular file",
        tmp_path / "loop": "is a symbolic link loop",
        tmp_path / "file.txt" / "x": "a part of its path is a file",
    }
    for path, message in cases.items():
        with pytest.raises(MakemoreError, match=re.escape(message)):
            read_items(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_says_so(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("abc\n")
    path.chmod(0)
    with pytest.raises(MakemoreError, match="cannot be read"):
        read_items(path)


def test_items_of_characters_below_newline_become_examples():
    # A file such as b"\x01\x02\n\x03\n" read fine, then fit failed with an IndexError: the
    # code-point table was sized by the largest character, and the "\n" between items indexed past it.
    vocab = Vocabulary.from_items(["\x01\x02", "\x00\x03"])
    x, y = windows(["\x01\x02", "\x00\x03"], vocab, block_size=2)
    assert y.tolist() == [2, 3, 0, 1, 4, 0]
