"""An evaluation batch is bounded by its logits, not only by its tokens: with a vocabulary of
100,000 characters, data.eval_tokens' 32,768 tokens would be some 13 GB of logits."""

import random

import pytest

from makemore.data.datamodule import EVAL_LOGITS, NamesDataModule


@pytest.fixture(scope="module")
def many_characters(tmp_path_factory):
    """10,000 items of 10 characters drawn from 5,000 distinct ones (each used at least once)."""
    rng = random.Random(0)
    chars = [chr(0x4E00 + i) for i in range(5000)]  # CJK ideographs: letters, no whitespace
    text = "".join(chars) + "".join(rng.choice(chars) for _ in range(95_000))
    path = tmp_path_factory.mktemp("vocab") / "items.txt"
    path.write_text("\n".join(text[i : i + 10] for i in range(0, len(text), 10)) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("examples", ["windows", "sequences"])
def test_a_large_vocabulary_shrinks_the_evaluation_batch(many_characters, examples):
    data = NamesDataModule(str(many_characters), examples=examples)
    assert data.vocab.size == 5001
    batches = [x.shape for x, _ in data.eval_dataloader("val")]
    tokens = max(shape[0] if examples == "windows" else shape.numel() for shape in batches)  # logits rows
    assert tokens * data.vocab.size <= EVAL_LOGITS < 2 * tokens * data.vocab.size  # as many as fit, no more
    assert sum(shape[0] for shape in batches) == len(data.dataset("val"))  # every example, once


def test_names_keep_their_evaluation_batches():
    """The published losses were measured with these batches: data.eval_tokens tokens each."""
    windows, sequences = NamesDataModule(examples="windows"), NamesDataModule(examples="sequences")
    assert [len(x) for x, _ in windows.eval_dataloader("train")][:2] == [32_768, 32_768]
    width = sequences.block_size
    assert next(iter(sequences.eval_dataloader("train")))[0].shape == (32_768 // width, width)
