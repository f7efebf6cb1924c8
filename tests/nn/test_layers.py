"""Every hand-built layer against its PyTorch reference: values and gradients."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from makemore.nn.layers import (
    GELU,
    BatchNorm1d,
    Dropout,
    Embedding,
    FlattenConsecutive,
    LayerNorm,
    Linear,
    Sequential,
    Tanh,
    TokenDropout,
)


def grads(*tensors):
    return [t.grad.clone() for t in tensors]


def test_linear_matches_f_linear():
    layer = Linear(5, 3)
    x = torch.randn(4, 5, requires_grad=True)
    layer(x).pow(2).sum().backward()
    mine = grads(x, layer.weight, layer.bias)
    x.grad = None
    w = layer.weight.detach().T.clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    F.linear(x, w, b).pow(2).sum().backward()
    assert_close(mine, [x.grad, w.grad.T, b.grad])


def test_linear_init_scale_and_no_bias():
    layer = Linear(400, 300, bias=False)
    assert layer.bias is None and sum(p.numel() for p in layer.parameters()) == 400 * 300
    assert abs(layer.weight.std().item() - 400**-0.5) < 0.002


def test_embedding_matches_f_embedding():
    layer = Embedding(7, 4)
    idx = torch.randint(0, 7, (3, 5))
    out = layer(idx)
    out.sum().backward()
    w = layer.weight.detach().clone().requires_grad_()
    ref = F.embedding(idx, w)
    ref.sum().backward()
    assert_close(out, ref)
    assert_close(layer.weight.grad, w.grad)


def _reference_bn(dim):
    ref = torch.nn.BatchNorm1d(dim)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    return ref


@pytest.mark.parametrize("shape", [(16, 6), (8, 4, 6)])
def test_batchnorm_matches_torch(shape):
    dim = shape[-1]
    ref = _reference_bn(dim)
    mine = BatchNorm1d(dim)
    mine.load_state_dict({k: v for k, v in ref.state_dict().items() if k != "num_batches_tracked"})
    for step in range(3):  # training: batch statistics and running-statistics updates
        x = torch.randn(*shape) * 2 + step
        xm = x.clone().requires_grad_()
        xr = x.clone().requires_grad_()
        out = mine(xm)
        # torch wants channels second: (B, C) or (B, C, T)
        expected = ref(xr) if len(shape) == 2 else ref(xr.transpose(1, 2)).transpose(1, 2)
        assert_close(out, expected)
        weights = torch.randn(shape)  # a loss that gives every output its own gradient
        (out * weights).sum().backward()
        (expected * weights).sum().backward()
        assert_close(xm.grad, xr.grad, rtol=1e-5, atol=1e-5)
        assert_close([mine.weight.grad, mine.bias.grad], [ref.weight.grad, ref.bias.grad], rtol=1e-5, atol=1e-5)
        mine.zero_grad(), ref.zero_grad()
    assert_close(mine.running_mean, ref.running_mean)
    assert_close(mine.running_var, ref.running_var)
    mine.eval(), ref.eval()  # eval: running statistics
    x = torch.randn(*shape)
    expected = ref(x) if len(shape) == 2 else ref(x.transpose(1, 2)).transpose(1, 2)
    assert_close(mine(x), expected)


def test_batchnorm_bug_flag_reduces_over_batch_only():
    """V3's bug: (B, T, C) normalised per (position, channel) = torch's BatchNorm over T*C features."""
    B, T, C = 8, 4, 3
    mine = BatchNorm1d(C, batch_dim_only=True)
    ref = torch.nn.BatchNorm1d(T * C)
    for _ in range(2):
        x = torch.randn(B, T, C)
        assert_close(mine(x), ref(x.reshape(B, T * C)).reshape(B, T, C))
    assert mine.running_mean.shape == (T, C)
    assert_close(mine.running_mean.reshape(-1), ref.running_mean)
    assert_close(mine.running_var.reshape(-1), ref.running_var)
    mine.eval(), ref.eval()
    x = torch.randn(B, T, C)
    assert_close(mine(x), ref(x.reshape(B, T * C)).reshape(B, T, C))
    # the grown (T, C) buffers survive a save/load round trip into a fresh layer
    fresh = BatchNorm1d(C, batch_dim_only=True)
    fresh.load_state_dict(mine.state_dict())
    assert_close(fresh.running_var, mine.running_var)


def test_batchnorm_default_is_not_the_bug():
    x = torch.randn(8, 4, 3)
    correct, buggy = BatchNorm1d(3), BatchNorm1d(3, batch_dim_only=True)
    assert not torch.allclose(correct(x), buggy(x))


def test_tanh_matches_torch():
    x = torch.randn(10, requires_grad=True)
    Tanh()(x).sum().backward()
    assert_close(x.grad, 1 - torch.tanh(x.detach()) ** 2)


def test_flatten_consecutive_and_sequential():
    x = torch.arange(2 * 8 * 3.0).reshape(2, 8, 3)
    out = FlattenConsecutive(2)(x)
    assert out.shape == (2, 4, 6)
    assert_close(out[0, 1], torch.cat([x[0, 2], x[0, 3]]))
    assert FlattenConsecutive(8)(x).shape == (2, 24)  # a length-1 time axis is dropped
    net = Sequential(FlattenConsecutive(8), Linear(24, 5), Tanh())
    assert net(x).shape == (2, 5) and len(net) == 3 and isinstance(net[1], Linear)


def test_layernorm_matches_f_layer_norm():
    layer = LayerNorm(6)
    with torch.no_grad():
        layer.weight.normal_()
        layer.bias.normal_()
    x = (torch.randn(3, 4, 6) * 3 + 1).requires_grad_()
    layer(x).pow(3).sum().backward()
    mine = grads(x, layer.weight, layer.bias)
    x.grad = None
    w, b = (t.detach().clone().requires_grad_() for t in (layer.weight, layer.bias))
    F.layer_norm(x, (6,), w, b, eps=1e-5).pow(3).sum().backward()
    assert_close(mine, [x.grad, w.grad, b.grad], atol=1e-4, rtol=1e-4)


def test_layernorm_in_float16_matches_f_layer_norm_with_finite_gradients():
    # A residual stream at init is small: in float16, var^-1.5 in rsqrt's backward would overflow.
    torch.manual_seed(0)
    layer = LayerNorm(64).half()
    x = (torch.randn(8, 64) * 0.02).half().requires_grad_()
    scale = torch.randn(8, 64)
    layer(x).float().pow(2).mul(scale).sum().backward()
    mine = grads(x, layer.weight, layer.bias)
    assert all(torch.isfinite(g).all() for g in mine)
    x.grad = None
    w, b = (t.detach().clone().requires_grad_() for t in (layer.weight, layer.bias))
    F.layer_norm(x, (64,), w, b, eps=1e-5).float().pow(2).mul(scale).sum().backward()
    assert_close(mine, [x.grad, w.grad, b.grad], atol=1e-2, rtol=1e-2)


def test_gelu_matches_f_gelu():
    x = torch.linspace(-6, 6, 101, requires_grad=True)
    GELU()(x).pow(2).sum().backward()
    mine = x.grad.clone()
    x.grad = None
    F.gelu(x).pow(2).sum().backward()
    assert_close(mine, x.grad)
    assert_close(GELU()(x), F.gelu(x))


def test_dropout_scales_in_training_and_is_identity_in_eval():
    layer = Dropout(0.25)
    x = torch.ones(200_000)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    assert_close(y[kept], torch.full_like(y[kept], 1 / 0.75))
    layer.eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError, match="dropout"):
        Dropout(1.0)


def test_token_dropout_hides_whole_positions_and_is_identity_in_eval():
    layer = TokenDropout(0.25)
    x = torch.randn(400, 50, 8)
    y = layer(x)
    hidden = (y == 0).all(dim=-1)  # (B, T): a position is zeroed in every channel or in none
    assert abs(hidden.float().mean().item() - 0.25) < 0.01
    assert_close(y[~hidden], x[~hidden] / 0.75)
    assert torch.equal(layer.eval()(x), x)
