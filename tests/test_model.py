import pytest
import torch
from lhotse import CutSet
from torch.nn.utils.rnn import pack_padded_sequence

from ds2.data.dataset import AsrDataset
from ds2.decode.greedy import greedy_decode
from ds2.model import DeepSpeech2, ModelConfig
from ds2.model.gru import packed_gru
from ds2.model.layers import RecurrentLayer, SequenceBatchNorm
from ds2.text import CharTokenizer

CONFIGS = [
    ModelConfig(conv_channels=[4], conv_kernels=[[5, 7]], conv_strides=[[2, 2]], rnn_layers=1, rnn_hidden=8),
    ModelConfig(conv_channels=[4, 4], conv_kernels=[[11, 21], [11, 11]], conv_strides=[[3, 2], [1, 2]],
                rnn_layers=2, rnn_hidden=8, rnn_type="lstm"),
    ModelConfig(conv_channels=[2, 2, 2], conv_kernels=[[3, 3], [4, 5], [5, 3]], conv_strides=[[2, 1], [2, 2], [1, 3]],
                rnn_layers=2, rnn_hidden=8, rnn_type="rnn", bidirectional=False, lookahead=3, fc_dims=[16]),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_output_length_formula_matches_real_output(cfg):
    torch.manual_seed(0)
    model = DeepSpeech2(cfg, num_features=40, vocab_size=29).eval()
    lengths = torch.tensor([1, 2, 3, 7, 8, 31, 64, 100, 101])
    feats = torch.randn(len(lengths), int(lengths.max()), 40)
    log_probs, out_lens = model(feats, lengths)
    assert torch.equal(out_lens, model.output_lengths(lengths))
    assert log_probs.shape[1] == int(model.output_lengths(lengths).max())
    assert log_probs.shape[2] == 29
    # each utterance alone gives the same number of frames as in the batch
    for i, n in enumerate(lengths.tolist()):
        alone, alone_len = model(feats[i:i + 1, :n], lengths[i:i + 1])
        assert alone.shape[1] == int(alone_len) == int(out_lens[i])
        assert torch.allclose(alone[0], log_probs[i, : int(alone_len)], atol=1e-4)


def _packed(x, lengths):
    return pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)


def test_sequence_batch_norm_ignores_padding():
    torch.manual_seed(0)
    lengths = torch.tensor([5, 9, 3])
    x = torch.randn(3, 9, 6)
    extra = torch.cat([x, 100 * torch.randn(3, 7, 6)], dim=1)  # more padding, full of junk
    for i, n in enumerate(lengths.tolist()):
        extra[i, n:] = 1e3 * torch.randn(extra.shape[1] - n, 6)
    a, b = SequenceBatchNorm(6), SequenceBatchNorm(6)
    out_a, out_b = a(_packed(x, lengths)), b(_packed(extra, lengths))
    assert torch.allclose(out_a.data, out_b.data, atol=1e-5)
    assert torch.allclose(a.running_mean, b.running_mean) and torch.allclose(a.running_var, b.running_var)
    # the statistics are exactly those of the valid frames
    valid = torch.cat([x[i, :n] for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(a.running_mean, 0.1 * valid.mean(0), atol=1e-6)


def test_sequence_batch_norm_equals_torch_batch_norm_on_the_valid_frames():
    torch.manual_seed(0)
    lengths = torch.tensor([9, 5, 3])
    x = torch.randn(3, 9, 6) * 3 + 1
    ours, ref = SequenceBatchNorm(6), torch.nn.BatchNorm1d(6)
    ref.load_state_dict(ours.state_dict())
    packed = _packed(x, lengths)
    out = ours(packed).data
    expected = ref(packed.data)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(ours.running_var, ref.running_var, atol=1e-6)
    ours.eval(), ref.eval()
    assert torch.allclose(ours(packed).data, ref(packed.data), atol=1e-5)


def test_whole_model_in_training_mode_is_independent_of_padding():
    # the conv front-end's batch norm too: its statistics skip the padded frames
    torch.manual_seed(0)
    model = DeepSpeech2(ModelConfig(conv_channels=[4], conv_kernels=[[5, 5]], conv_strides=[[2, 2]], rnn_hidden=8,
                                    rnn_layers=1), 10, 5)
    lengths = torch.tensor([30, 17])
    x = torch.randn(2, 30, 10)
    padded = torch.cat([x, 50 * torch.randn(2, 12, 10)], dim=1)
    padded[1, 17:] = 50 * torch.randn(25, 10)
    out_a, lens = model(x, lengths)
    out_b, _ = model(padded, lengths)
    for i, n in enumerate(lens.tolist()):
        assert torch.allclose(out_a[i, :n], out_b[i, :n], atol=1e-5)


def test_recurrent_layer_output_on_valid_frames_independent_of_padding():
    torch.manual_seed(0)
    layer = RecurrentLayer(6, 5, "gru", bidirectional=True).train()
    lengths = torch.tensor([4, 8])
    x = torch.randn(2, 8, 6)
    padded = torch.cat([x, torch.randn(2, 5, 6)], dim=1)
    assert torch.allclose(layer(_packed(x, lengths)).data, layer(_packed(padded, lengths)).data, atol=1e-6)


def test_forward_only_model_sees_only_lookahead_future_frames():
    torch.manual_seed(0)
    # Global normalisation: per-utterance statistics would look at the whole future.
    cfg = ModelConfig(feature_norm="global", conv_channels=[2], conv_kernels=[[1, 3]], conv_strides=[[1, 1]],
                      rnn_layers=2, rnn_hidden=8, bidirectional=False, lookahead=2)
    model = DeepSpeech2(cfg, num_features=10, vocab_size=5).eval()
    x = torch.randn(1, 20, 10)
    out, _ = model(x, torch.tensor([20]))
    changed = x.clone()
    changed[0, 12:] += 5.0  # change the future from frame 12 on
    out2, _ = model(changed, torch.tensor([20]))
    assert torch.allclose(out[0, :10], out2[0, :10], atol=1e-6)  # frames <= 12 - lookahead - 1 unchanged
    assert not torch.allclose(out[0, 10], out2[0, 10])  # frame 10 sees frame 12


def test_model_overfits_a_tiny_real_batch(tiny_corpus):
    torch.manual_seed(0)
    cuts = CutSet.from_file(tiny_corpus / "fbank" / "synth_cuts_train.jsonl.gz").subset(first=3)
    tok = CharTokenizer()
    batch = AsrDataset(tok)[cuts]
    stats = torch.load(tiny_corpus / "fbank" / "synth_stats_train.pt", weights_only=True)
    cfg = ModelConfig(conv_channels=[16], conv_kernels=[[5, 11]], conv_strides=[[2, 2]], rnn_layers=2,
                      rnn_hidden=128)
    model = DeepSpeech2(cfg, num_features=80, vocab_size=tok.vocab_size)
    model.set_normalization(stats["mean"], stats["std"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(400):
        log_probs, out_lens = model(batch["features"], batch["feature_lens"])
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), batch["targets"], out_lens,
                                            batch["target_lens"], reduction="sum") / batch["target_lens"].sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05
    model.eval()
    with torch.no_grad():
        log_probs, out_lens = model(batch["features"], batch["feature_lens"])
    assert greedy_decode(log_probs, out_lens, tok) == batch["texts"]


@pytest.mark.parametrize("bidirectional,threads", [(False, 2), (True, 1), (True, 2)])
def test_packed_gru_matches_nn_gru_outputs_and_gradients(bidirectional, threads, monkeypatch):
    # with two threads the directions run concurrently, with one in turn
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    try:
        _check_packed_gru_against_nn_gru(bidirectional)
    finally:
        torch.set_num_threads(before)


def _check_packed_gru_against_nn_gru(bidirectional):
    torch.manual_seed(0)
    x = torch.randn(30, 5, 7)
    lengths = torch.tensor([30, 22, 22, 9, 1])  # ties, a long gap and a one-frame utterance
    gru = torch.nn.GRU(7, 6, bidirectional=bidirectional)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = gru(pack_padded_sequence(xa, lengths))[0].data
    out = packed_gru(pack_padded_sequence(xb, lengths), gru).data
    assert torch.allclose(out, ref, atol=1e-6)
    weights = torch.randn_like(ref)
    grads_ref = torch.autograd.grad((ref * weights).sum(), [xa, *gru.parameters()])
    grads = torch.autograd.grad((out * weights).sum(), [xb, *gru.parameters()])
    for a, b in zip(grads, grads_ref):
        assert torch.allclose(a, b, atol=1e-5)


def test_packed_gru_backward_inside_autocast():
    gru = torch.nn.GRU(4, 3, bidirectional=True)
    x = torch.randn(5, 2, 4, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = packed_gru(pack_padded_sequence(x, torch.tensor([5, 3])), gru).data
        out.float().sum().backward()  # backward() called inside the autocast region, as some loops do
    assert x.grad is not None and gru.weight_hh_l0.grad.dtype == torch.float32


def test_packed_gru_bfloat16_gradients_close_to_float32():
    torch.manual_seed(0)
    gru = torch.nn.GRU(16, 32, bidirectional=True)
    x = torch.randn(40, 6, 16)
    lengths = torch.tensor([40, 35, 30, 20, 10, 3])
    grads = {}
    for dtype in (torch.float32, torch.bfloat16):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            out = packed_gru(pack_padded_sequence(x, lengths), gru).data
        grads[dtype] = torch.autograd.grad(out.float().square().sum(), list(gru.parameters()))
    for a, b in zip(grads[torch.float32], grads[torch.bfloat16]):
        assert torch.linalg.norm(a - b) <= 0.03 * torch.linalg.norm(a)


AUX_CONFIGS = [  # an auxiliary pinyin head on each recurrent layer in turn, bidirectional and forward-only
    ModelConfig(conv_channels=[4], conv_kernels=[[5, 7]], conv_strides=[[2, 2]], rnn_layers=1, rnn_hidden=8,
                aux_units="pinyin", aux_layer=1),
    ModelConfig(conv_channels=[4], conv_kernels=[[5, 7]], conv_strides=[[2, 2]], rnn_layers=3, rnn_hidden=8,
                rnn_type="lstm", aux_units="pinyin", aux_layer=2),
    ModelConfig(conv_channels=[2], conv_kernels=[[3, 3]], conv_strides=[[2, 1]], rnn_layers=2, rnn_hidden=8,
                rnn_type="rnn", bidirectional=False, lookahead=3, fc_dims=[16], aux_units="pinyin", aux_layer=2),
    ModelConfig(conv_channels=[2], conv_kernels=[[3, 3]], conv_strides=[[2, 1]], rnn_layers=3, rnn_hidden=8,
                bidirectional=False, lookahead=2, aux_units="pinyin", aux_layer=1),
]


@pytest.mark.parametrize("cfg", AUX_CONFIGS, ids=lambda c: f"{c.rnn_type}{c.rnn_layers}-aux{c.aux_layer}")
def test_aux_head_reads_its_recurrent_layer_and_leaves_the_main_output_as_it_is(cfg):
    """forward(aux=True) gives the same main log-probs as forward() (bit for bit), and the auxiliary
    head's (B, T', len(UNITS)) log-probs, normalised at every frame, from recurrent layer aux_layer:
    changing the layers after it changes the main output only, changing that layer changes both."""
    from ds2.text.pinyin import UNITS

    torch.manual_seed(0)
    model = DeepSpeech2(cfg, num_features=20, vocab_size=29).eval()
    lengths = torch.tensor([40, 23, 9])
    feats = torch.randn(3, 40, 20)
    with torch.no_grad():
        plain, plain_lens = model(feats, lengths)
        main, out_lens, aux = model(feats, lengths, aux=True)
    assert torch.equal(main, plain) and torch.equal(out_lens, plain_lens)
    assert aux.shape == (3, main.shape[1], len(UNITS)) and aux.dtype == torch.float32
    for i, n in enumerate(out_lens.tolist()):
        assert torch.allclose(aux[i, :n].exp().sum(-1), torch.ones(n), atol=1e-5)
    assert not torch.allclose(aux[0, :5], aux[0, 5:10])  # not a constant: it depends on the input

    def perturbed(layers):
        with torch.no_grad():
            saved = {k: v.clone() for k, v in model.state_dict().items()}
            for rnn in layers:
                for p in rnn.parameters():
                    p.add_(0.5 * torch.randn_like(p))
            out = model(feats, lengths, aux=True)
            model.load_state_dict(saved)
        return out

    k = cfg.aux_layer
    if k < cfg.rnn_layers:  # the layers above the auxiliary head's
        main2, _, aux2 = perturbed(model.rnns[k:])
        assert not torch.allclose(main2, main, atol=1e-3)
        assert torch.equal(aux2, aux)
    main3, _, aux3 = perturbed(model.rnns[k - 1:k])
    for i, n in enumerate(out_lens.tolist()):
        assert not torch.allclose(aux3[i, :n], aux[i, :n], atol=1e-3)


def test_aux_forward_of_a_model_without_an_aux_head_is_a_clear_error():
    model = DeepSpeech2(CONFIGS[1], num_features=20, vocab_size=29).eval()  # two recurrent layers, no head
    assert model.aux_head is None
    with pytest.raises(ValueError, match=r"no auxiliary head \(model.aux_units\)"):
        model(torch.randn(1, 30, 20), torch.tensor([30]), aux=True)
    with_head = DeepSpeech2(AUX_CONFIGS[1], num_features=20, vocab_size=29)
    assert {k for k in with_head.state_dict() if k.startswith("aux_head.")} == {"aux_head.weight", "aux_head.bias"}
    assert not any(k.startswith("aux_head.") for k in model.state_dict())


def test_batch_norm_false_leaves_the_recurrent_layers_without_one_and_the_rest_as_it_is():
    """model.batch_norm: false (the paper's baseline without sequence-wise batch norm) drops exactly the
    recurrent layers' batch norm (a weight, a bias and running statistics per input feature); the
    convolutions keep theirs, and the model still trains (its loss falls on a fixed batch)."""
    options = dict(conv_channels=[4], conv_kernels=[[5, 7]], conv_strides=[[2, 2]], rnn_layers=3, rnn_hidden=8)
    torch.manual_seed(0)
    with_bn, without = DeepSpeech2(ModelConfig(**options), 20, 6), DeepSpeech2(ModelConfig(**options, batch_norm=False), 20, 6)
    assert all(isinstance(layer.bn, SequenceBatchNorm) for layer in with_bn.rnns)
    assert all(layer.bn is None for layer in without.rnns)
    assert not any(isinstance(m, SequenceBatchNorm) for m in without.modules())
    inputs = [layer.rnn.input_size for layer in with_bn.rnns]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(with_bn) - count(without) == 2 * sum(inputs)
    x, lengths, targets = torch.randn(4, 40, 20), torch.tensor([40, 35, 30, 22]), torch.randint(1, 6, (4, 5))
    opt = torch.optim.Adam(without.parameters(), 1e-2)
    losses = []
    for _ in range(30):
        log_probs, out_lens = without(x, lengths)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, out_lens, torch.full((4,), 5))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
