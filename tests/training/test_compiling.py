"""``--model.compile``: one graph for every training batch, the eager loss, plain checkpoint keys."""

import pytest
import torch

from makemore.cli import run
from makemore.training.compiling import compiled_loss

from ..conftest import fails, tiny_fit_args


class GraphCounter:
    """A torch.compile backend that runs each graph as traced and counts the graphs."""

    def __init__(self):
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return graph_module.forward


@pytest.mark.parametrize("config", [f"configs/{name}.yaml" for name in ("v5", "mlp", "transformer", "gru")])
def test_the_training_loss_is_one_graph_for_every_batch(words_file, tmp_path, config):
    args = tiny_fit_args(words_file, tmp_path, config=config)[1:]
    cli = run([*args, "--model.compile", "true"], subcommand=False)
    net, counter = cli.model.net, GraphCounter()
    loss = compiled_loss(net, "default", backend=counter)  # fullgraph: a break raises
    dm = cli.datamodule
    batches = iter(dm.train_dataloader())
    for _ in range(3):  # batches of different items (and lengths), kept at one padded width
        x, y = dm.gather_train(next(batches))
        loss(x, y, "mean").backward()
    assert counter.graphs == 1  # traced once: no recompilation from batch to batch


def test_a_compiled_run_trains_as_the_eager_one_and_saves_plain_keys(words_file, tmp_path):
    eager = run(tiny_fit_args(words_file, tmp_path / "e", config="configs/mlp.yaml", steps=10))
    compiled = run(
        [*tiny_fit_args(words_file, tmp_path / "c", config="configs/mlp.yaml", steps=10), "--model.compile", "true"]
    )
    metric = lambda cli: cli.trainer.callback_metrics["val_loss"].item()  # noqa: E731
    assert metric(compiled) == pytest.approx(metric(eager), abs=1e-4)
    keys = torch.load(tmp_path / "c" / "mlp-1" / "last.ckpt", weights_only=True)["state_dict"]
    assert "net.out.weight" in keys and not any("_orig_mod" in key for key in keys)


def test_an_unknown_compile_mode_is_one_line(words_file, tmp_path, capsys):
    args = [*tiny_fit_args(words_file, tmp_path / "ck"), "--model.compile_mode", "fast"]
    assert "max-autotune" in fails(args, capsys)
    assert not (tmp_path / "ck").exists()
