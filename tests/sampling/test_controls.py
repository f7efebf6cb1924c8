"""Temperature, top-k and top-p never emit a token outside the allowed set (random logits)."""

import torch

from makemore.sampling.controls import filter_logits, pick_next


def test_temperature_zero_is_the_argmax():
    logits = torch.randn(50, 9)
    assert torch.equal(pick_next(logits, temperature=0), logits.argmax(-1))


def test_top_k_only_emits_the_k_most_likely():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        logits = torch.randn(8, 11, generator=g) * 3
        k = int(torch.randint(1, 11, (1,), generator=g))
        allowed = logits.topk(k, dim=-1).indices
        picked = pick_next(logits, temperature=1.5, top_k=k, generator=g)
        assert (allowed == picked[:, None]).any(dim=-1).all()


def test_top_p_only_emits_the_nucleus():
    g = torch.Generator().manual_seed(1)
    for _ in range(200):
        logits = torch.randn(8, 11, generator=g) * 3
        p = float(torch.rand(1, generator=g).clamp(min=0.01))
        probs, order = logits.softmax(-1).sort(dim=-1, descending=True)
        for row in range(8):
            # the nucleus: the fewest most likely tokens whose mass reaches p
            size = int((probs[row].cumsum(0) < p).sum()) + 1
            nucleus = set(order[row, :size].tolist())
            filtered = filter_logits(logits[row : row + 1], top_p=p)[0]
            kept = set(torch.nonzero(filtered > float("-inf")).flatten().tolist())
            assert kept == nucleus
        picked = pick_next(logits, top_p=p, generator=g)
        kept_mask = filter_logits(logits, top_p=p) > float("-inf")
        assert kept_mask.gather(1, picked[:, None]).all()


def test_same_generator_seed_same_tokens():
    logits = torch.randn(100, 7)
    a = pick_next(logits, generator=torch.Generator().manual_seed(3))
    b = pick_next(logits, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_a_tiny_temperature_is_near_greedy_and_a_huge_one_near_uniform():
    # logits / 1e-45 overflowed to inf and softmax gave NaN; / 1e308 gave -inf / inf = NaN.
    logits = torch.randn(50, 9) * 3
    logits[:, 0] = float("-inf")  # as the boundary token before an item's first character
    for temperature in (1e-45, 5e-324):
        assert torch.equal(pick_next(logits, temperature, generator=torch.Generator()), logits.argmax(-1))
    picked = pick_next(logits.repeat(40, 1), 1e308, generator=torch.Generator().manual_seed(0))
    assert (picked != 0).all() and len(set(picked.tolist())) == 8


def test_a_top_p_below_float32s_smallest_number_keeps_the_most_likely_token():
    logits = torch.randn(20, 9)
    assert torch.equal(pick_next(logits, top_p=1e-300, generator=torch.Generator()), logits.argmax(-1))
