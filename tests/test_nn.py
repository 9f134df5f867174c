"""Tests for tinygrad_conv.nn's Module machinery: registration, traversal, modes, state dicts,
atomic .npz checkpoints, error messages that name the layer's path, and the initialisers."""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_conv as tc
from tinygrad_conv import nn
from tinygrad_conv.nn import init


class Net(nn.Module):
    """A small NHWC CNN used across the tests: 8x8x1 images -> 10 logits."""

    def __init__(self, c: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding="same", seed=seed),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, strides=2, padding=1, seed=seed + 1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5, seed=seed), nn.Linear(c * 16, 10))

    def forward(self, x: tc.Tensor) -> tc.Tensor:
        return self.head(self.features(x))


def _images(n: int = 3, seed: int = 0) -> tc.Tensor:
    return tc.Tensor(np.random.default_rng(seed).standard_normal((n, 8, 8, 1)).astype(np.float32))


# -- Parameter -------------------------------------------------------------------------------------
def test_parameter_is_a_leaf_tensor_that_requires_grad() -> None:
    arr = np.ones((2, 3), np.float32)
    p = nn.Parameter(arr)
    assert isinstance(p, tc.Tensor) and p.requires_grad and p.is_leaf
    assert p.data is arr  # wrapped without a copy
    assert nn.Parameter(tc.ones(2), requires_grad=False).requires_grad is False
    assert "Parameter containing" in repr(p)
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.data, np.full((2, 3), 2.0))
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.arange(3))


# -- registration and traversal --------------------------------------------------------------------
def test_named_parameters_have_dotted_paths_in_registration_order() -> None:
    names = [n for n, _ in Net().named_parameters()]
    assert names == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.3.weight", "features.3.bias", "head.2.weight", "head.2.bias",
    ]  # fmt: skip
    m = Net()
    assert [p.shape for p in m.parameters()] == [
        (3, 3, 1, 4), (4,), (4,), (4,), (3, 3, 4, 4), (4,), (64, 10), (10,),
    ]  # fmt: skip
    assert m.num_parameters() == 36 + 4 + 4 + 4 + 144 + 4 + 640 + 10


def test_children_and_named_modules() -> None:
    m = Net()
    assert [type(c).__name__ for c in m.children()] == ["Sequential", "Sequential"]
    names = [n for n, _ in m.named_modules()]
    assert names == [
        "", "features", "features.0", "features.1", "features.2", "features.3",
        "head", "head.0", "head.1", "head.2",
    ]  # fmt: skip
    assert [n for n, _ in m.named_children()] == ["features", "head"]
    assert len(list(m.modules())) == 10


def test_shared_parameters_and_modules_are_listed_once() -> None:
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias"]


def test_assigning_none_or_a_plain_value_unregisters() -> None:
    lin = nn.Linear(2, 3)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    y = lin(tc.ones(4, 2))
    np.testing.assert_allclose(y.data, np.ones((4, 2)) @ lin.weight.data, rtol=1e-6)
    m = nn.Module()
    m.sub = nn.ReLU()
    with pytest.raises(TypeError, match="cannot assign int as child module 'sub'"):
        m.sub = 3
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        lin.weight = tc.ones(2, 3)
    m.sub = None
    assert list(m.children()) == [] and m.sub is None
    del lin.weight
    assert list(lin.parameters()) == []


def test_subclass_must_call_super_init() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(np.ones(2, np.float32))

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Bad()


def test_register_buffer_is_in_state_dict_but_not_parameters() -> None:
    m = nn.Module()
    m.register_buffer("stats", np.arange(3.0))
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    assert list(m.parameters()) == []
    assert [n for n, _ in m.named_buffers()] == ["stats", "scratch"]
    assert list(m.state_dict()) == ["stats"]
    m.stats = np.ones(3)
    np.testing.assert_array_equal(m.state_dict()["stats"], np.ones(3))
    with pytest.raises(TypeError, match="buffer"):
        m.stats = tc.ones(3)


def test_sequential_indexing_len_slicing_and_dict_names() -> None:
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    head = s[1:]
    assert isinstance(head, nn.Sequential) and list(head) == [b, c]
    assert [n for n, _ in head.named_children()] == ["1", "2"]
    x = tc.randn(4, 2, generator=0)
    np.testing.assert_allclose(s(x).data, c(b(a(x))).data)
    with pytest.raises(IndexError, match="out of range"):
        s[3]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(a, 3)
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    s.append(nn.Sigmoid())
    assert len(s) == 4 and isinstance(s[3], nn.Sigmoid)


def test_module_list() -> None:
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 3 and isinstance(ml[2], nn.Linear)
    assert [n for n, _ in ml.named_parameters()][-1] == "2.bias"


def test_train_eval_is_recursive() -> None:
    m = Net()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


def test_zero_grad_sets_grad_to_none() -> None:
    m = Net()
    nn.CrossEntropyLoss()(m(_images()), np.array([0, 1, 2])).backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_requires_grad_and_astype() -> None:
    m = Net()
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_(True).double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m.features[1].running_mean.dtype == np.float64
    assert m.features[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    assert m(_images().double()).dtype == np.float64


def test_repr_is_a_tree() -> None:
    text = repr(Net())
    assert text.splitlines()[0] == "Net("
    assert "  (features): Sequential(" in text
    assert "    (0): Conv2d(1, 4, kernel_size=(3, 3), strides=(1, 1), padding='SAME')" in text
    assert "    (1): BatchNorm2d(4, eps=1e-05, momentum=0.1)" in text
    assert "    (2): Linear(in_features=64, out_features=10)" in text
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"


def test_deepcopy_and_pickle_are_independent_and_keep_paths() -> None:
    import copy
    import pickle

    m = Net()
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert clone.features[0].weight is not m.features[0].weight
        assert clone.features[0]._path == "features.0"
        assert clone.features[0]._parent_module() is clone.features
        clone.eval()
        m.eval()
        np.testing.assert_array_equal(clone(_images()).data, m(_images()).data)
        with pytest.raises(ValueError, match=r"^head\.2 \(Linear\)"):
            clone.head(tc.zeros(1, 3))


def test_ops_recorded_inside_a_module_carry_its_scope() -> None:
    from tinygrad_conv import scope

    m = Net()
    x = _images()
    x.requires_grad_()
    y = m(x)
    node = y.grad_fn  # head.2's bias add
    assert scope.module_path(node.scope) == "head.2"
    assert scope.current_scope() == ()  # popped again, also after an error below
    with pytest.raises(ValueError):
        m(tc.zeros(1, 8, 8, 2))
    assert scope.current_scope() == ()


# -- state dicts -----------------------------------------------------------------------------------
def test_state_dict_contains_copies_of_params_and_buffers() -> None:
    m = Net()
    sd = m.state_dict()
    assert list(sd)[:7] == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
    ]  # fmt: skip
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["features.0.weight"][...] = 123.0  # a copy: the model is untouched
    assert not np.any(m.features[0].weight.data == 123.0)


def test_state_dict_round_trip_restores_identical_outputs() -> None:
    a, b = Net(seed=1), Net(seed=2)
    a.train()
    a(_images(8))  # move BatchNorm's running statistics away from their initial values
    a.eval()
    b.eval()
    x = _images(seed=5)
    assert not np.allclose(a(x).data, b(x).data)
    w_obj = b.features[0].weight
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert b.features[0].weight is w_obj  # loaded in place: optimizers keep valid references
    assert int(b.features[1].num_batches_tracked) == 1


def test_load_state_dict_of_another_architecture_names_the_keys() -> None:
    m = Net(c=4)
    other = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError) as err:
        m.load_state_dict(other.state_dict())
    msg = str(err.value)
    assert "missing keys" in msg and "'features.0.weight'" in msg and "'head.2.bias'" in msg
    assert "unexpected keys: ['0.weight', '0.bias']" in msg


def test_load_state_dict_shape_mismatch_names_key_and_shapes_and_changes_nothing() -> None:
    small, big = Net(c=4), Net(c=6)
    before = small.state_dict()
    with pytest.raises(ValueError) as err:
        small.load_state_dict(big.state_dict())
    msg = str(err.value)
    assert "features.0.weight: expected shape (3, 3, 1, 4), got (3, 3, 1, 6)" in msg
    assert "head.2.weight: expected shape (64, 10), got (96, 10)" in msg
    for k, v in small.state_dict().items():  # validated before writing: nothing changed
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_non_strict_reports_keys() -> None:
    m = Net()
    sd = m.state_dict()
    del sd["head.2.bias"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(ValueError, match="missing keys: \\['head.2.bias'\\]"):
        m.load_state_dict(sd)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.2.bias"] and res.unexpected_keys == ["extra"]


def test_load_state_dict_accepts_tensors_and_casts_same_kind() -> None:
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": tc.ones(2, 2, dtype=np.float64), "bias": np.zeros(2)})
    assert lin.weight.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.data, np.ones((2, 2)))
    with pytest.raises(ValueError, match="cannot load dtype"):
        lin.load_state_dict({"weight": np.ones((2, 2), complex), "bias": np.zeros(2)})


# -- .npz checkpoints ------------------------------------------------------------------------------
def test_save_load_round_trip(tmp_path) -> None:
    a, b = Net(seed=3), Net(seed=4)
    a(_images(6))
    a.eval()
    b.eval()
    path = tmp_path / "ckpt.npz"
    a.save(path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # the temp file is gone
    with np.load(path, allow_pickle=False) as f:
        assert list(f.files) == list(a.state_dict())
    b.load(path)
    x = _images(seed=9)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    a.save(str(tmp_path / "no_suffix"))  # written at exactly the given path
    assert (tmp_path / "no_suffix").exists()


def test_failed_save_keeps_the_old_checkpoint_and_leaves_no_temp(tmp_path, monkeypatch) -> None:
    m = Net(seed=0)
    path = tmp_path / "model.npz"
    m.save(path)
    old = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with _perturbed(m):
        with pytest.raises(OSError, match="disk full"):
            m.save(path)
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


class _perturbed:  # noqa: N801 - used like a function
    """Perturb the model's weights inside the block, so a successful save would differ."""

    def __init__(self, m: nn.Module) -> None:
        self.m = m

    def __enter__(self) -> None:
        for p in self.m.parameters():
            p.data += 1.0

    def __exit__(self, *exc: object) -> None:
        for p in self.m.parameters():
            p.data -= 1.0


def test_load_refuses_pickled_objects(tmp_path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, **{"weight": np.array([{"a": 1}], dtype=object), "bias": np.zeros(2)})
    lin = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="allow_pickle"):
        lin.load(path)


def test_load_uses_allow_pickle_false(tmp_path, monkeypatch) -> None:
    lin = nn.Linear(2, 2)
    lin.save(tmp_path / "l.npz")
    seen = {}
    real = np.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    lin.load(tmp_path / "l.npz")
    assert seen.get("allow_pickle") is False


# -- errors name the layer's place in the model ----------------------------------------------------
def test_wrong_channels_names_the_path() -> None:
    m = Net()
    x = tc.zeros(8, 8, 8, 3)
    with pytest.raises(ValueError) as err:
        m(x)
    assert str(err.value) == (
        "features.0 (Conv2d): expected input [N,H,W,1], got shape (8, 8, 8, 3)"
    )


def test_wrong_rank_and_features_name_the_path() -> None:
    m = Net()
    with pytest.raises(ValueError, match=r"^features\.0 \(Conv2d\): expected input \[N,H,W,1\]"):
        m(tc.zeros(8, 8, 1))
    with pytest.raises(
        ValueError, match=r"^head\.2 \(Linear\): expected input \[\.\.\., 64\], got"
    ):
        m.head(tc.zeros(2, 50))
    bn = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match=r"^1 \(BatchNorm2d\): expected input \[N,H,W,3\], got"):
        bn(tc.zeros(2, 3))
    # a root layer has no path: the class name alone
    with pytest.raises(
        ValueError, match=r"^Linear: expected input \[\.\.\., 3\], got shape \(2, 4\)"
    ):
        nn.Linear(3, 1)(tc.zeros(2, 4))
    with pytest.raises(ValueError, match=r"^GlobalAvgPool2d: expected input \[N,H,W,C\]"):
        nn.GlobalAvgPool2d()(tc.zeros(2, 4))


def test_op_errors_inside_a_layer_are_prefixed_with_the_path() -> None:
    m = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 5)))
    with pytest.raises(ValueError, match=r"^0\.0 \(Conv2d\): conv2d: "):
        m(tc.zeros(1, 3, 3, 1))
    with pytest.raises(
        ValueError, match=r"^features\.1 \(BatchNorm2d\): batch_norm: expected more"
    ):
        net = Net()
        net.features(tc.zeros(1, 1, 1, 1))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="padding"):
        nn.Conv2d(1, 1, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        nn.Conv2d(1, 1, 0)
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(1, 1, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


# -- initialisers ----------------------------------------------------------------------------------
def test_fans_for_linear_and_hwio_conv_weights() -> None:
    assert init.fans((20, 30)) == (20, 30)  # Linear [in, out]
    assert init.fans((3, 5, 4, 7)) == (3 * 5 * 4, 3 * 5 * 7)  # HWIO
    with pytest.raises(ValueError, match="at least 2"):
        init.fans((5,))


@pytest.mark.parametrize(
    ("fn", "bound"),
    [
        (lambda t, g: init.kaiming_uniform_(t, generator=g), math.sqrt(6 / (3 * 3 * 16))),
        (
            lambda t, g: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu", generator=g),
            math.sqrt(6 / (3 * 3 * 32)),
        ),
        (lambda t, g: init.xavier_uniform_(t, generator=g), math.sqrt(6 / (9 * 16 + 9 * 32))),
        (
            lambda t, g: init.xavier_uniform_(t, gain=2.0, generator=g),
            2 * math.sqrt(6 / (9 * 16 + 9 * 32)),
        ),
    ],
)
def test_uniform_initialisers_fill_their_bound(fn, bound) -> None:
    w = tc.zeros(3, 3, 16, 32)
    assert fn(w, 0) is w
    assert w.dtype == np.float32
    assert np.abs(w.data).max() <= bound * (1 + 1e-6)
    assert np.abs(w.data).max() > 0.99 * bound  # 4608 samples reach the edge
    assert abs(w.data.std() - bound / math.sqrt(3)) < 0.03 * bound


@pytest.mark.parametrize(
    ("fn", "std"),
    [
        (lambda t, g: init.kaiming_normal_(t, generator=g), math.sqrt(2 / (3 * 3 * 16))),
        (
            lambda t, g: init.kaiming_normal_(t, a=0.2, nonlinearity="leaky_relu", generator=g),
            math.sqrt(2 / 1.04) / math.sqrt(3 * 3 * 16),
        ),
        (lambda t, g: init.xavier_normal_(t, generator=g), math.sqrt(2 / (9 * 16 + 9 * 32))),
    ],
)
def test_normal_initialisers_have_their_std(fn, std) -> None:
    w = tc.zeros(3, 3, 16, 32, dtype=np.float64)
    fn(w, np.random.default_rng(1))
    assert abs(w.data.mean()) < 0.05 * std
    assert abs(w.data.std() - std) < 0.03 * std


def test_constant_initialisers_and_determinism() -> None:
    w = tc.randn(3, 4)
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    a, b = tc.zeros(5, 5), tc.zeros(5, 5, dtype=np.float64)
    init.kaiming_uniform_(a, generator=7)
    init.kaiming_uniform_(b, generator=7)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6)  # same draws in either dtype
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")


def test_layer_default_init_matches_pytorch_default_bounds() -> None:
    conv = nn.Conv2d(6, 8, (3, 5), groups=2, seed=0)
    bound = 1 / math.sqrt(3 * 5 * 3)  # fan_in = kh*kw*in/groups
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.95 * bound
    assert np.abs(conv.bias.data).max() <= bound
    lin = nn.Linear(50, 400, seed=0)
    assert 0.95 / math.sqrt(50) < np.abs(lin.weight.data).max() <= 1 / math.sqrt(50)


def test_seeds_make_models_deterministic() -> None:
    # Net's convs get per-layer seeds; its Linear has none and draws from tc.manual_seed's generator
    tc.manual_seed(0)
    a = Net(seed=0)
    tc.manual_seed(0)
    b = Net(seed=0)
    c = Net(seed=1)
    for (n, pa), (_, pb), (_, pc) in zip(
        a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True
    ):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=n)
        if n.endswith("weight") and n.startswith("features.0"):
            assert not np.array_equal(pa.data, pc.data)
    assert not np.array_equal(nn.Linear(3, 3, seed=0).weight.data, nn.Linear(3, 3).weight.data)


def test_losses_wrap_the_functions() -> None:
    logits = tc.randn(4, 3, generator=0)
    labels = np.array([0, 2, 1, 2])
    np.testing.assert_allclose(
        nn.CrossEntropyLoss()(logits, labels).data, tc.cross_entropy(logits, labels).data
    )
    np.testing.assert_allclose(
        nn.CrossEntropyLoss("none")(logits, labels).data,
        tc.cross_entropy(logits, labels, reduction="none").data,
    )
    t = tc.rand(4, 3, generator=1)
    np.testing.assert_allclose(nn.MSELoss("sum")(logits, t).data, ((logits - t) ** 2).sum().data)
    np.testing.assert_allclose(
        nn.BCEWithLogitsLoss()(logits, t).data,
        tc.binary_cross_entropy_with_logits(logits, t).data,
    )
    assert repr(nn.MSELoss("sum")) == "MSELoss(reduction='sum')"
