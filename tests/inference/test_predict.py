"""predict from a checkpoint alone: sampling controls, prefixes, seeds, scoring, labels, bad input."""

import math
import os
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from makemore.cli import main, run
from makemore.files.atomic_io import write_new
from makemore.inference import predict as predict_module
from makemore.inference.loading import load
from makemore.models import CharModel
from makemore.sampling.generate import sample, score

from ..conftest import ROOT, fails, tiny_fit_args, write_words


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny Transformer run for the whole module (fitting one per test costs minutes)."""
    root = tmp_path_factory.mktemp("predict")
    words = write_words(root / "words.txt")
    run(tiny_fit_args(words, root / "ck", config="configs/transformer.yaml", steps=20))
    return root


@pytest.fixture
def ckpt(trained, tmp_path):
    shutil.copytree(trained / "ck", tmp_path / "ck")
    return tmp_path / "ck" / "transformer-1" / "last.ckpt"


def predict(args, capsys):
    capsys.readouterr()
    main(["predict", *args])
    out = capsys.readouterr()
    return out.out.splitlines(), out.err


def test_samples_with_labels_prefixes_and_seed(ckpt, capsys):
    lines, err = predict(["--ckpt_path", str(ckpt), "--num_samples", "6", "--prefix", "ab", "--seed", "3"], capsys)
    assert len(lines) == 6 and f"checkpoint: {ckpt}" in err
    items = [line.split("\t")[0] for line in lines]
    labels = [line.split("\t")[1] for line in lines]
    assert all(item.startswith("ab") for item in items)
    assert set(labels) <= {"in train", "in val", "in test", "new"} and "samples are new" in err
    again, _ = predict(["--ckpt_path", str(ckpt), "--num_samples", "6", "--prefix", "ab", "--seed", "3"], capsys)
    assert again == lines


def test_no_arguments_uses_the_best_checkpoint_of_the_newest_run(ckpt, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.rename(tmp_path / "ck", tmp_path / "checkpoints")
    lines, err = predict([], capsys)
    assert len(lines) == 20 and "checkpoint: checkpoints/transformer-1/best-" in err


def test_output_file_and_greedy(ckpt, capsys, tmp_path):
    out = tmp_path / "samples.txt"
    args = ["--ckpt_path", str(ckpt), "--num_samples", "4", "--temperature", "0", "--output", str(out)]
    lines, _ = predict(args, capsys)
    items = out.read_text().splitlines()
    assert len(set(items)) == 1 and len(items) == 4  # greedy: the same item every time
    assert [line.split("\t")[0] for line in lines] == items


def test_scoring_is_the_sum_of_per_token_log_probabilities(ckpt, capsys):
    loaded = load(ckpt)
    lines, _ = predict(["--ckpt_path", str(ckpt), "--score", "abc", "fed", "a"], capsys)
    rows = [line.split("\t") for line in lines]
    totals = [float(r[1]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    for item, total, mean in rows:
        ids = [0, *loaded.vocab.encode(item), 0]
        with torch.no_grad():
            logp = loaded.net(torch.tensor([ids[:-1]])).log_softmax(-1)[0]
        expected = sum(logp[t, ids[t + 1]].item() for t in range(len(ids) - 1))
        assert float(total) == pytest.approx(expected, abs=1e-3)
        assert float(mean) == pytest.approx(-expected / (len(item) + 1), abs=1e-3)


@pytest.mark.parametrize("config", ["v4", "bigram", "lstm"])
def test_score_matches_the_models_own_loss(config, words_file, tmp_path):
    cli = run(tiny_fit_args(words_file, tmp_path / "ck", config=f"configs/{config}.yaml", steps=10))
    loaded = load(tmp_path / "ck" / f"{config}-1" / "last.ckpt")
    items = cli.datamodule.splits["val"]
    rows = score(loaded.net, loaded.vocab, items)
    total = -sum(r[1] for r in rows) / sum(len(i) + 1 for i in items)
    val = cli.trainer.validate(cli.model, dataloaders=cli.datamodule.eval_dataloader("val"), verbose=False)
    assert total == pytest.approx(val[0]["val_loss"], abs=1e-4)


def test_prefix_longer_than_a_window_uses_its_last_characters(words_file, tmp_path):
    run(tiny_fit_args(words_file, tmp_path / "ck", config="configs/v1.yaml", steps=10))  # context 3
    loaded = load(tmp_path / "ck" / "v1-1" / "last.ckpt")
    g = torch.Generator().manual_seed(0)
    items = sample(loaded.net, loaded.vocab, 5, prefix="abcdef", max_length=12, generator=g)
    assert all(item.startswith("abcdef") for item in items)


def test_scoring_strips_items_as_training_does_and_scores_the_good_ones_before_failing(ckpt, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--ckpt_path", str(ckpt), "--score", "  abc  ", "aXc", "", "fed"])
    out = capsys.readouterr()
    assert exit_info.value.code == 2
    assert sorted(line.split("\t")[0] for line in out.out.splitlines()) == ["abc", "fed"]
    assert "not scored: 'aXc': characters the model does not know: 'X'" in out.err
    assert "not scored: '': it is empty" in out.err
    assert out.err.strip().splitlines()[-1].startswith("error: 2 of 4 items could not be scored")


class EndsAtOnce(CharModel):
    """A window net that all but always predicts the end token: the empty item, if it could."""

    block_size = 3

    def forward(self, idx):
        logits = torch.zeros(len(idx), 4)
        logits[:, 0] = 30.0
        return logits


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_samples_are_never_empty(temperature):
    from makemore.data.vocab import Vocabulary

    items = sample(EndsAtOnce(), Vocabulary("abc"), 200, temperature=temperature, generator=torch.Generator())
    assert all(len(item) == 1 for item in items)  # a first character, then the end it wanted


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperature", "-1"], "--temperature must be >= 0"),
        (["--top_k", "0"], "--top_k must be at least 1"),
        (["--top_p", "1.5"], "--top_p must be in (0, 1]"),
        (["--num_samples", "0"], "--num_samples must be at least 1"),
        (["--prefix", "aXz"], "prefix 'aXz' has characters the model does not know: 'Xz'; valid characters: '.abcdef'"),
        (["--prefix", "abcdefabcdef"], "prefix 'abcdefabcdef' is longer than --max_length 9"),
        (["--checkpoint_root", ""], "--checkpoint_root is empty"),  # was: "no run under /", of "."
    ],
)
def test_bad_controls(ckpt, capsys, args, message):
    line = fails(["predict", "--ckpt_path", str(ckpt), *args], capsys)
    assert line.startswith(f"error: {message}")


def test_bad_checkpoints(tmp_path, ckpt, capsys):
    missing = tmp_path / "missing.ckpt"
    assert "does not exist" in fails(["predict", "--ckpt_path", str(missing)], capsys)
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint")
    assert "is truncated or not a checkpoint" in fails(["predict", "--ckpt_path", str(text)], capsys)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    assert "is truncated or not a checkpoint" in fails(["predict", "--ckpt_path", str(truncated)], capsys)


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {Payload.marker}",))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_without_running_it(tmp_path, capsys):
    Payload.marker = tmp_path / "ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Payload()}, evil)
    line = fails(["predict", "--ckpt_path", str(evil)], capsys)
    assert "refused without running it" in line and not (tmp_path / "ran").exists()


def test_sampling_stops_every_item_at_its_end_token(ckpt):
    loaded = load(ckpt)
    items = sample(loaded.net, loaded.vocab, 50, max_length=9, generator=torch.Generator().manual_seed(0))
    assert all(len(item) <= 9 and set(item) <= set(".abcdef") for item in items)
    assert math.isfinite(score(loaded.net, loaded.vocab, items[:1] or ["a"])[0][1])


def test_the_shipped_checkpoint_loads_and_samples():
    shipped = sorted((ROOT / "makemore/assets/pretrained/v5").glob("best-*.ckpt"))
    assert len(shipped) == 1, "makemore/assets/pretrained/v5/ must hold one best-*.ckpt"
    assert shipped[0].stat().st_size < 1_000_000
    loaded = load(shipped[0])
    items = sample(loaded.net, loaded.vocab, 20, max_length=20, generator=torch.Generator().manual_seed(0))
    assert len(items) == 20 and all(set(item) <= set(loaded.vocab.chars) for item in items)
    ranked = [row[0] for row in score(loaded.net, loaded.vocab, ["emma", "qzxj", "olivia"])]
    assert ranked[-1] == "qzxj"


def test_fit_shows_samples_every_n_steps_and_logs_them_as_text(words_file, tmp_path, caplog):
    args = [*tiny_fit_args(words_file, tmp_path / "ck", steps=20), "--samples.every_n_steps", "10"]
    with caplog.at_level("INFO"):
        run(args)
    shown = [r.getMessage() for r in caplog.records if r.getMessage().startswith("samples at step")]
    assert [m.split(":")[0] for m in shown] == ["samples at step 10", "samples at step 20"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "ck" / "v4-1"), size_guidance={"tensors": 0})
    events.Reload()
    assert [e.step for e in events.Tensors("samples/text_summary")] == [10, 20]


def test_the_predict_command_starts_without_importing_lightning(ckpt):
    # `python -m makemore predict` needs a checkpoint alone: Lightning's import was 2 s of its start.
    code = (
        "import sys; from makemore.__main__ import main; main(); "
        "print('lightning' in sys.modules, 'jsonargparse' in sys.modules, file=sys.stderr)"
    )
    args = ["predict", "--ckpt_path", str(ckpt), "--num_samples", "2", "--seed", "0"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2
    assert done.stderr.splitlines()[-1] == "False False"


def test_tiny_temperature_top_k_above_the_vocabulary_and_an_empty_prefix_sample(ckpt, capsys):
    base = ["--ckpt_path", str(ckpt), "--num_samples", "5", "--seed", "4"]
    assert predict([*base, "--temperature", "1e-45"], capsys)[0] == predict([*base, "--temperature", "0"], capsys)[0]
    plain, _ = predict(base, capsys)
    assert predict([*base, "--top_k", "1000"], capsys)[0] == plain
    assert predict([*base, "--prefix", ""], capsys)[0] == plain


def test_many_samples_are_drawn_a_chunk_at_a_time(ckpt, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(predict_module, "CHUNK", 3)
    out = tmp_path / "samples.txt"
    args = ["--ckpt_path", str(ckpt), "--num_samples", "7", "--prefix", "a", "--prefix", "b", "--output", str(out)]
    lines, err = predict(args, capsys)
    assert len(lines) == 14 and out.read_text().splitlines() == [line.split("\t")[0] for line in lines]
    assert "of 14 samples are new" in err and "wrote 14 items" in err


def test_write_new_never_replaces_a_file_with_or_without_hard_links(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    write_new(target, lambda f: f.write(b"first\n"))
    with pytest.raises(FileExistsError):
        write_new(target, lambda f: f.write(b"second\n"))
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        write_new(tmp_path / "dangling", lambda f: f.write(b"third\n"))

    def no_links(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)  # a filesystem without hard links
    with pytest.raises(FileExistsError):
        write_new(target, lambda f: f.write(b"fourth\n"))
    write_new(tmp_path / "other.txt", lambda f: f.write(b"fifth\n"))
    assert target.read_bytes() == b"first\n" and (tmp_path / "other.txt").read_bytes() == b"fifth\n"
    assert not (tmp_path / "nowhere").exists() and not list(tmp_path.glob(".*partial"))


# A prefix of 8 of the 9 characters makes every line at least 13 bytes: 8,000 of them overflow a
# pipe's 64 KiB, so a predict whose stdout is not read stops mid-sampling, past its early checks.
BLOCKING = ["--num_samples", "8000", "--prefix", "abcdefab"]


def start_predict(args: list[str], cwd) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "makemore", "predict", *args]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, first: str) -> tuple[int, list[str], list[str]]:
    """Exit status, the items printed and the error lines of a started predict."""
    out = process.stdout.read()  # not communicate(): it would skip what readline() buffered
    err = process.stderr.read()  # a few lines: they never fill the pipe
    process.wait(timeout=300)
    items = [line.split("\t")[0] for line in (first + out).splitlines()]
    return process.returncode, items, [line for line in err.splitlines() if line.startswith("error:")]


def test_four_racing_predicts_write_one_output_and_the_others_say_so(ckpt, tmp_path):
    processes = [
        start_predict(["--ckpt_path", str(ckpt), *BLOCKING, "--seed", str(seed), "--output", "shared.txt"], tmp_path)
        for seed in range(4)
    ]
    firsts = [process.stdout.readline() for process in processes]  # all four are sampling now
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(finish, processes, firsts))
    winners = [items for code, items, errors in results if code == 0]
    losers = [errors for code, items, errors in results if code != 0]
    assert len(winners) == 1 and [code for code, _, _ in results].count(2) == 3
    assert all(len(errors) == 1 and "appeared while sampling and was kept" in errors[0] for errors in losers)
    assert (tmp_path / "shared.txt").read_text().splitlines() == winners[0] and len(winners[0]) == 8000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "shared.txt"]  # no .partial left


def test_a_file_created_at_the_output_while_sampling_is_kept_byte_for_byte(ckpt, tmp_path):
    target = tmp_path / "samples.txt"
    process = start_predict(["--ckpt_path", str(ckpt), *BLOCKING, "--output", str(target)], tmp_path)
    first = process.stdout.readline()  # past the early check, and blocked on its full stdout
    target.write_bytes(b"the user's own\n")
    code, items, errors = finish(process, first)
    assert code == 2 and len(errors) == 1 and "appeared while sampling and was kept" in errors[0]
    assert len(items) == 8000 and target.read_bytes() == b"the user's own\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "samples.txt"]


def test_overwrite_writes_through_a_symbolic_link_and_keeps_the_link(ckpt, tmp_path):
    (tmp_path / "real.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    args = ["--ckpt_path", str(ckpt), "--num_samples", "5", "--output", "link.txt"]
    code, _, errors = finish(start_predict(args, tmp_path), "")
    assert code == 2 and len(errors) == 1 and "exists; pass --overwrite" in errors[0]
    assert (tmp_path / "real.txt").read_text() == "old\n"
    code, items, errors = finish(start_predict([*args, "--overwrite"], tmp_path), "")
    assert code == 0 and not errors and os.readlink(tmp_path / "link.txt") == "real.txt"
    assert (tmp_path / "real.txt").read_text().splitlines() == items and len(items) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "link.txt", "real.txt"]


def test_a_reader_that_stops_early_ends_predict_quietly(ckpt, tmp_path):
    process = start_predict(["--ckpt_path", str(ckpt), *BLOCKING, "--output", "samples.txt"], tmp_path)
    process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read()
    assert process.wait(timeout=300) == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no output, no .partial


def test_scored_items_are_stripped_of_spaces_and_tabs_alone_as_lines_are(ckpt, capsys):
    # str.strip() dropped the form feed, so "abc\f" was scored as "abc"; training keeps it in its item.
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(ckpt), "--score", "\tabc \r", "abc\x0c"])
    out = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.out.splitlines()] == ["abc"]
    assert "not scored: 'abc\\x0c': characters the model does not know: '\\x0c'" in out.err


def test_ctrl_c_while_sampling_leaves_no_output_and_no_partial_file(ckpt, tmp_path):
    process = start_predict(["--ckpt_path", str(ckpt), *BLOCKING, "--output", "samples.txt"], tmp_path)
    first = process.stdout.readline()  # sampling, with the temporary file open beside samples.txt
    assert any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    process.send_signal(signal.SIGINT)
    code, _, errors = finish(process, first)
    assert code == 130 and errors == ["error: interrupted; --output, if given, was not written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
