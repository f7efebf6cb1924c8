"""Constraints in predict: every family's items satisfy them, sampling under them is exact (the
distribution of unconstrained samples with the failures thrown away), --best equals brute force,
and every bad value ends in one line."""

import math
import os
import subprocess
import sys
from collections import Counter
from itertools import product

import pytest
import torch
from torch.utils.data import TensorDataset

from makemore.data.examples import windows
from makemore.data.vocab import Vocabulary
from makemore.digests import file_fingerprint
from makemore.inference.best import best_items
from makemore.inference.constrained import row_dims, sample_constrained, select_rows
from makemore.inference.constraints import BanAutomaton, Constraints
from makemore.inference.predict import main
from makemore.models import Bigram, CharModel
from makemore.sampling.generate import sample, score

from ..conftest import ROOT, fails, write_words
from ..models.test_families import FAMILIES

CHARS = "abcdefghij"  # V - 1 characters for the families' tiny nets


def tiny_nets():
    nets = {name: make().eval() for name, make in FAMILIES.items()}
    nets["bigram"].fit_data(
        TensorDataset(*windows(["ab", "abc", "cab", "bad", "ace", "jig"] * 5, Vocabulary(CHARS), 1))
    )
    return nets


NETS = tiny_nets()


def fitted_bigram(items: list[str], chars: str) -> Bigram:
    bigram = Bigram(len(chars) + 1, 1)
    bigram.fit_data(TensorDataset(*windows(items, Vocabulary(chars), 1)))
    return bigram.eval()


@pytest.mark.parametrize("name", list(NETS))
def test_every_family_produces_only_items_that_satisfy_every_constraint(name):
    net, vocab = NETS[name], Vocabulary(CHARS)
    c = Constraints(
        min_length=2,
        max_length=5,
        suffix="a",
        contains=("b",),
        banned=("bb", "c"),
        excluded=frozenset({"ba", "aba", "dba"}),
        unique=True,
    )
    g = torch.Generator().manual_seed(0)
    items, drawn = sample_constrained(net, vocab, c, 12, "", 5, generator=g, max_draws=200_000)
    assert len(items) == 12 and drawn >= 12 and len(set(items)) == 12
    assert all(c.satisfies(item) for item in items)
    prefixed, _ = sample_constrained(net, vocab, Constraints(min_length=4, max_length=6), 5, "de", 6, generator=g)
    assert all(item.startswith("de") and 4 <= len(item) <= 6 for item in prefixed)


@pytest.mark.parametrize("name", list(NETS))
@torch.no_grad()
def test_finished_rows_leave_the_decoding_state_of_every_family_without_changing_the_others(name):
    net = NETS[name]
    dims = row_dims(net, "cpu")
    assert dims is not None  # every family's state can be narrowed
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, len(CHARS) + 1, (5, 4), generator=g)
    tokens[:, 0] = 0
    whole, part = net.start_decoding(5), None
    net.decode_step(tokens[:, :2], whole)
    keep = torch.tensor([0, 2, 3])
    part = select_rows(whole, dims, keep)  # a new state: the whole one goes on unchanged
    for t in (2, 3):
        expected = net.decode_step(tokens[:, t : t + 1], whole)[keep]
        torch.testing.assert_close(net.decode_step(tokens[keep, t : t + 1], part), expected)


@pytest.mark.parametrize("name", list(NETS))
def test_best_equals_brute_force_enumeration(name):
    net, vocab = NETS[name], Vocabulary(CHARS)
    every = ["".join(chars) for n in (1, 2, 3) for chars in product(CHARS, repeat=n)]
    ranked = score(net, vocab, every)  # most probable first
    for c in [Constraints(max_length=3), Constraints(min_length=2, max_length=3, banned=("a", "jj"), contains=("b",))]:
        expected = [row for row in ranked if c.satisfies(row[0])][:6]
        found = best_items(net, vocab, c, 6, max_length=3, batch=7)
        assert [row[0] for row in found.rows] == [row[0] for row in expected]
        for (_, total, mean), (_, want_total, want_mean) in zip(found.rows, expected):
            assert total == pytest.approx(want_total, abs=1e-4) and mean == pytest.approx(want_mean, abs=1e-4)


def test_best_with_a_prefix_counts_the_prefix_and_says_when_the_search_is_exhausted():
    net, vocab = NETS["transformer"], Vocabulary(CHARS)
    found = best_items(net, vocab, Constraints(max_length=3), 5, prefix="ab", max_length=3)
    expected = score(net, vocab, ["ab", *("ab" + ch for ch in CHARS)])[:5]  # the prefix's own log-probability counts
    assert [row[0] for row in found.rows] == [row[0] for row in expected]
    assert [row[1] for row in found.rows] == pytest.approx([row[1] for row in expected], abs=1e-4)
    few = best_items(net, vocab, Constraints(max_length=2, suffix="j"), 50, max_length=2)
    assert len(few.rows) == 11 and few.exhausted  # "j" and the ten "?j"
    cut = best_items(net, vocab, Constraints(max_length=3), 50, max_length=3, max_expansions=3)
    assert not cut.exhausted and cut.expansions == 3


def test_the_ban_automaton_finds_every_piece_even_inside_others():
    vocab = Vocabulary(CHARS)
    automaton = BanAutomaton([vocab.encode(p) for p in ["abcd", "bc", "ca"]], vocab.size)
    for text in ["eabce", "ddbc", "eca", "abca", "abcabcd", "bdbd", "dcadbc"]:
        states = [automaton.walk(vocab.encode(text[: i + 1])) for i in range(len(text))]
        banned = [i + 1 for i, state in enumerate(states) if automaton.is_banned(state)]
        ends = [i + 1 for i in range(len(text)) if any(text[: i + 1].endswith(p) for p in ["abcd", "bc", "ca"])]
        assert banned == ends


class FirstCharDecides(CharModel):
    """A sequence net whose items end at each character with probability 0.5 if they start with
    'a', 0.2 if with 'b': a net with memory, where masking the end token is not conditioning."""

    examples = "sequences"
    block_size = 61

    def forward(self, idx):
        first = idx[:, 1:2].expand(-1, idx.shape[1]) if idx.shape[1] > 1 else torch.zeros_like(idx)
        p_end = torch.where(first == 1, 0.5, 0.2)
        probs = torch.stack([p_end, (1 - p_end) / 2, (1 - p_end) / 2], dim=-1)
        probs[:, 0] = torch.tensor([0.0, 0.5, 0.5])  # the first character: 'a' or 'b'
        return probs.log()


def length_histogram(items, bins):
    counts = Counter(min(len(item), bins[-1]) for item in items)
    return [counts[b] for b in bins]


def two_sample_chi2(a, b):
    na, nb = sum(a), sum(b)
    return sum((math.sqrt(nb / na) * x - math.sqrt(na / nb) * y) ** 2 / (x + y) for x, y in zip(a, b) if x + y)


def test_min_length_keeps_the_length_distribution_of_rejection_and_the_reported_share_is_the_observed_one(tmp_path):
    """Unconstrained samples with the short ones thrown away against sampling under
    --min_length 6, both seeded. Tolerance: the two-sample chi-square over 7 length bins (6..11,
    12+) stays below 22.46, its 99.9% quantile (6 degrees of freedom). Masking the end token until
    the sixth character, the approximate way, keeps the items that start with 'a' (which end
    early) at their unconstrained share, piles them up at length 6 and fails it."""
    net, vocab = FirstCharDecides().eval(), Vocabulary("ab")
    g = torch.Generator().manual_seed(1)
    plain = sample(net, vocab, 12_000, max_length=60, generator=g)
    kept = [item for item in plain if len(item) >= 6]
    constrained, drawn = sample_constrained(
        net, vocab, Constraints(min_length=6, max_length=60), 3000, "", 60, generator=g
    )
    bins = list(range(6, 13))
    chi2 = two_sample_chi2(length_histogram(kept, bins), length_histogram(constrained, bins))
    assert chi2 < 22.46
    masked = masked_sample(net, vocab, 3000, 6, g)
    assert two_sample_chi2(length_histogram(kept, bins), length_histogram(masked, bins)) > 22.46
    # the share: 3000 / drawn estimates the observed share of unconstrained samples that satisfy it
    observed, reported = len(kept) / len(plain), 3000 / drawn
    error = math.sqrt(observed * (1 - observed) * (1 / len(plain) + 1 / drawn))
    assert abs(observed - reported) < 4 * error


@torch.no_grad()
def masked_sample(net, vocab, n, min_length, generator):
    """The approximate way this module must not use: the end token masked until min_length."""
    state = net.start_decoding(n)
    logits = net.decode_step(torch.zeros(n, 1, dtype=torch.long), state)
    rows, alive = [], torch.ones(n, dtype=torch.bool)
    for position in range(60):
        if position < min_length:
            logits = logits.clone()
            logits[:, 0] = float("-inf")
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1).masked_fill(~alive, 0)
        rows.append(token)
        alive &= token != 0
        if not alive.any():
            break
        logits = net.decode_step(token[:, None], state)
    ids = torch.stack(rows, 1).tolist()
    return [vocab.decode(row[: row.index(0)] if 0 in row else row) for row in ids]


@pytest.fixture
def bigram_ckpt(tmp_path):
    """A checkpoint of a bigram counted on a small word file (no Lightning: fast), with that
    file's fingerprint as fit saves it."""
    words = write_words(tmp_path / "words.txt")
    items = words.read_text().splitlines()
    chars = "".join(sorted(set("".join(items))))
    net = fitted_bigram(items, chars)
    path = tmp_path / "bigram.ckpt"
    data = {"path": str(words), "split_seed": 42, "train_fraction": 0.8, "val_fraction": 0.1}
    torch.save(
        {
            "state_dict": {"net.counts": net.counts.detach()},
            "hyper_parameters": {"net": {"class_path": "makemore.models.Bigram"}, "chars": chars, "block_size": 1},
            "datamodule_hyper_parameters": {**data, "data_file": file_fingerprint(words)},
        },
        path,
    )
    return path, words, items


def predict(args, capsys):
    capsys.readouterr()
    main(args)
    out = capsys.readouterr()
    return [line.split("\t")[0] for line in out.out.splitlines()], out.err


def test_new_only_unique_and_lists_through_predict(bigram_ckpt, capsys, tmp_path):
    path, words, items = bigram_ckpt
    plain, _ = predict(["--ckpt_path", str(path), "--num_samples", "300", "--seed", "0", "--max_length", "4"], capsys)
    assert set(plain) & set(items) and len(set(plain)) < len(plain)  # without the options: known items, repeats
    avoid = tmp_path / "avoid.txt"
    avoid.write_text("ab\nba\n")
    banned = tmp_path / "ban.txt"
    banned.write_text("ff\n")
    args = ["--ckpt_path", str(path), "--num_samples", "100", "--seed", "0", "--max_length", "4", "--new_only"]
    args += ["--unique", "--exclude_file", str(avoid), "--ban_file", str(banned), "--ban", "e."]
    got, err = predict(args, capsys)
    assert len(got) == 100 and len(set(got)) == 100 and not set(got) & (set(items) | {"ab", "ba"})
    assert not any("ff" in item or "e." in item for item in got) and all(len(item) <= 4 for item in got)
    assert "constraints kept 100 of" in err and "100 of 100 samples are new" in err
    # the data file moved: --new_only asks for it, and takes it back by its contents
    moved = tmp_path / "moved.txt"
    words.rename(moved)
    assert "pass that file with --data_path" in fails(["predict", "--ckpt_path", str(path), "--new_only"], capsys)
    got, _ = predict(["--ckpt_path", str(path), "--new_only", "--data_path", str(moved), "--seed", "1"], capsys)
    assert len(got) == 20 and not set(got) & set(items)
    other = tmp_path / "other.txt"
    other.write_text("abc\n")
    line = fails(["predict", "--ckpt_path", str(path), "--new_only", "--data_path", str(other)], capsys)
    assert "is not the data file the checkpoint was trained on" in line


def test_best_sort_and_perplexity_through_predict(bigram_ckpt, capsys):
    path, _, items = bigram_ckpt
    capsys.readouterr()
    main(["--ckpt_path", str(path), "--best", "5", "--new_only", "--min_length", "3", "--max_length", "5"])
    out = capsys.readouterr()
    rows = [line.split("\t") for line in out.out.splitlines()]
    assert len(rows) == 5 and not {r[0] for r in rows} & set(items) and all(3 <= len(r[0]) <= 5 for r in rows)
    totals = [float(r[1]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    main(["--ckpt_path", str(path), "--score", "a", "abcdef", "fed", "--sort", "per_char"])
    out = capsys.readouterr()
    means = [float(line.split("\t")[2]) for line in out.out.splitlines()]
    assert means == sorted(means) and len(means) == 3
    nats = -sum(float(line.split("\t")[1]) for line in out.out.splitlines()) / (1 + 6 + 3 + 3)
    assert f"perplexity {math.exp(nats):.3f}, {nats / math.log(2):.4f} bits per character" in out.err


def test_too_few_satisfying_items_stop_with_one_line(bigram_ckpt, capsys):
    path, _, _ = bigram_ckpt
    line = fails(["predict", "--ckpt_path", str(path), "--contains", "aaaaaa", "--max_draws", "500"], capsys)
    assert line.startswith("error: only 0 of 20 items satisfied the constraints in --max_draws 500 candidates")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min_length", "0"], "--min_length must be at least 1, got 0"),
        (["--min_length", "-3"], "--min_length must be at least 1, got -3"),
        (["--min_length", "nan"], "--min_length must be a whole number, got 'nan'"),
        (["--max_draws", "0"], "--max_draws must be at least 1"),
        (["--best", "-1"], "--best must be at least 1"),
        (["--best", "2", "--max_expansions", "0"], "--max_expansions must be at least 1"),
        (["--min_length", "5", "--max_length", "3"], "--min_length 5 is more than --max_length 3"),
        (["--min_length", "31"], "--min_length 31 is more than the 30 characters items may have"),
        (["--ban_file", "/nonexistent/list.txt"], "--ban_file /nonexistent/list.txt does not exist"),
        (["--exclude_file", "/"], "--exclude_file / is a directory"),
        (["--suffix", "aX"], "--suffix 'aX' has characters the model does not know: 'X'"),
        (["--contains", "Q"], "--contains 'Q' has characters the model does not know: 'Q'"),
        (["--suffix", ""], "--suffix '' is empty"),
        (["--ban", ""], "--ban '' would ban every item"),
        (["--prefix", "aZ", "--unique"], "prefix 'aZ' has characters the model does not know: 'Z'"),
        (["--prefix", "abe", "--ban", "be"], "prefix 'abe' holds the banned piece 'be'"),
        (["--contains", "abcd", "--max_length", "3"], "--contains 'abcd' is longer than the 3 characters"),
        (["--data_path", "x.txt"], "x.txt, which is not there"),
        (["--best", "3", "--temperature", "0.5"], "--best ranks items by the model's own log-probability"),
        (["--best", "3", "--score", "ab"], "--best searches for items and --score/--score_file score given ones"),
        (["--sort", "length"], "argument --sort: invalid choice"),
    ],
)
def test_bad_values_end_in_one_error_line(bigram_ckpt, capsys, args, message):
    path, _, _ = bigram_ckpt
    line = fails(["predict", "--ckpt_path", str(path), *args], capsys)
    assert line.startswith(f"error: {message}") or message in line


def test_predict_with_constraints_as_a_user_runs_it(bigram_ckpt):
    path, _, items = bigram_ckpt
    args = ["predict", "--ckpt_path", str(path), "--new_only", "--unique", "--min_length", "6", "--seed", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "makemore", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    got = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert len(got) == 20 == len(set(got)) and all(len(item) >= 6 and item not in items for item in got)
    assert "constraints kept 20 of" in done.stderr


def test_new_only_asks_for_the_data_file_of_a_checkpoint_that_does_not_name_it(bigram_ckpt, capsys, tmp_path):
    path, words, items = bigram_ckpt
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["datamodule_hyper_parameters"]  # as written before data settings were saved
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    line = fails(["predict", "--ckpt_path", str(old), "--new_only"], capsys)
    assert "does not say which data file it was trained on; pass it with --data_path" in line
    got, _ = predict(["--ckpt_path", str(old), "--new_only", "--data_path", str(words), "--seed", "0"], capsys)
    assert len(got) == 20 and not set(got) & set(items)
